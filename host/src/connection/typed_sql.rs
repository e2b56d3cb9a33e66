//! PostgreSQL statements per parameter types.
//!
//! PostgreSQL fixes a prepared statement's parameter types when it is
//! prepared, and sqlx caches statements by their text alone: the same SQL
//! run with an integer and then a float would send the float's bytes as an
//! integer. So on PostgreSQL the SQL carries the parameters' types in a
//! leading comment (`/* dbroute:if */ SELECT …`), giving each type
//! signature its own cached statement. The commented text is made once per
//! SQL text and signature on each thread and kept there: a statement run
//! again copies no SQL, and takes no lock and no atomic load to find it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::value::Value;

/// How many distinct SQL texts a thread keeps commented. SQL built with
/// values inlined would otherwise grow the cache without end; past this,
/// the comment is added on each run.
const MAX_CACHED: usize = 4096;

/// The most signatures kept for one SQL text (parameters that are NULL
/// in some runs and not in others make several).
const MAX_SIGNATURES: usize = 16;

/// The most parameters whose signature is kept; a statement with more is
/// commented on each run.
const MAX_KEPT_PARAMS: usize = 32;

/// For each SQL text, its commented texts by signature (almost always
/// one).
type Cache = HashMap<Box<str>, Vec<(Box<[u8]>, Arc<str>)>, foldhash::fast::RandomState>;

thread_local! {
    /// This thread's commented texts.
    static CACHE: RefCell<Cache> = RefCell::default();
}

/// `sql` with the types of `params` in a leading comment, for PostgreSQL;
/// as it is without parameters.
pub(crate) fn for_postgres(sql: SqlStr, params: &[Value]) -> SqlStr {
    if params.is_empty() {
        return sql;
    }
    if params.len() > MAX_KEPT_PARAMS {
        let signature: Vec<u8> = params.iter().map(type_letter).collect();
        return AssertSqlSafe(commented(&signature, sql.as_str())).into_sql_str();
    }
    let mut letters = [0u8; MAX_KEPT_PARAMS];
    for (letter, param) in letters.iter_mut().zip(params) {
        *letter = type_letter(param);
    }
    let signature = &letters[..params.len()];
    // A thread being torn down has no cache left: comment once more.
    let text = CACHE
        .try_with(|cache| kept(&mut cache.borrow_mut(), sql.as_str(), signature))
        .unwrap_or_else(|_| commented(signature, sql.as_str()).into());
    AssertSqlSafe(text).into_sql_str()
}

/// `sql`'s text commented with `signature`, from `cache`, or made and
/// kept there (within its bounds).
fn kept(cache: &mut Cache, sql: &str, signature: &[u8]) -> Arc<str> {
    if let Some(typed) = cache.get_mut(sql) {
        if let Some((_, text)) = typed.iter().find(|(kept, _)| **kept == *signature) {
            return text.clone();
        }
        let text: Arc<str> = commented(signature, sql).into();
        if typed.len() < MAX_SIGNATURES {
            typed.push((signature.into(), text.clone()));
        }
        return text;
    }
    let text: Arc<str> = commented(signature, sql).into();
    if cache.len() < MAX_CACHED {
        cache.insert(sql.into(), vec![(signature.into(), text.clone())]);
    }
    text
}

/// `/* dbroute:<signature> */ <sql>`.
fn commented(signature: &[u8], sql: &str) -> String {
    let mut text = String::with_capacity(sql.len() + signature.len() + 16);
    text.push_str("/* dbroute:");
    // Every letter is ASCII (`type_letter`).
    text.extend(signature.iter().map(|&letter| char::from(letter)));
    text.push_str(" */ ");
    text.push_str(sql);
    text
}

/// One letter per value type: parameters of other types make another
/// statement.
fn type_letter(param: &Value) -> u8 {
    match param {
        Value::Null => b'n',
        Value::Bool(_) => b'b',
        Value::Int(_) => b'i',
        Value::Float(_) => b'f',
        Value::Text(_) => b't',
        Value::Bytes(_) => b'x',
        #[cfg(feature = "chrono")]
        Value::Timestamp(_) => b's',
        #[cfg(feature = "chrono")]
        Value::TimestampTz(_) => b'z',
        #[cfg(feature = "chrono")]
        Value::Date(_) => b'd',
        #[cfg(feature = "chrono")]
        Value::Time(_) => b'h',
        #[cfg(feature = "uuid")]
        Value::Uuid(_) => b'u',
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(_) => b'm',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(sql: &'static str, params: &[Value]) -> SqlStr {
        for_postgres(sql.into_sql_str(), params)
    }

    #[test]
    fn the_types_lead_the_sql_in_a_comment() {
        let text = typed("SELECT $1, $2, $3", &[Value::Int(1), Value::Float(2.0), Value::Null]);
        assert_eq!(text.as_str(), "/* dbroute:ifn */ SELECT $1, $2, $3");
        assert_eq!(typed("SELECT 1", &[]).as_str(), "SELECT 1", "no parameters, no comment");
    }

    #[test]
    fn each_signature_is_its_own_statement_and_is_made_once() {
        let sql = "SELECT $1 /* each_signature_is_its_own_statement */";
        let int = typed(sql, &[Value::Int(1)]);
        let float = typed(sql, &[Value::Float(1.5)]);
        assert_eq!(int.as_str(), format!("/* dbroute:i */ {sql}"));
        assert_eq!(float.as_str(), format!("/* dbroute:f */ {sql}"));
        // Run again, each is the text kept the first time, not a copy.
        let again = typed(sql, &[Value::Int(2)]);
        assert!(std::ptr::eq(again.as_str(), int.as_str()));
        let again = typed(sql, &[Value::Float(2.5)]);
        assert!(std::ptr::eq(again.as_str(), float.as_str()));
    }

    #[test]
    fn one_text_keeps_a_bounded_number_of_signatures() {
        let sql = "SELECT $1, $2, $3, $4, $5 /* bounded */";
        for round in 0..2 {
            for nulls in 0..32u32 {
                let params: Vec<Value> = (0..5)
                    .map(|i| {
                        if nulls >> i & 1 == 1 {
                            Value::Null
                        } else {
                            Value::Int(1)
                        }
                    })
                    .collect();
                let letters: String = params.iter().map(|p| char::from(type_letter(p))).collect();
                let text = typed(sql, &params);
                assert_eq!(text.as_str(), format!("/* dbroute:{letters} */ {sql}"), "round {round}");
            }
        }
        let kept = CACHE.with_borrow(|cache| cache.get(sql).map(|typed| typed.len()));
        assert_eq!(kept, Some(MAX_SIGNATURES));
    }

    #[test]
    fn many_parameters_are_commented_each_time() {
        let params = vec![Value::Int(1); MAX_KEPT_PARAMS + 1];
        let text = typed("SELECT 1 /* many */", &params);
        let letters = "i".repeat(MAX_KEPT_PARAMS + 1);
        assert_eq!(text.as_str(), format!("/* dbroute:{letters} */ SELECT 1 /* many */"));
    }
}
