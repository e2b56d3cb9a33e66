//! PostgreSQL statements per parameter types.
//!
//! PostgreSQL fixes a prepared statement's parameter types when it is
//! prepared, and sqlx caches statements by their text alone: the same SQL
//! run with an integer and then a float would send the float's bytes as an
//! integer. So on PostgreSQL the SQL carries the parameters' types in a
//! leading comment (`/* dbroute:if */ SELECT …`), giving each type
//! signature its own cached statement. The commented text is made once per
//! SQL text and signature and kept: a statement run again copies no SQL.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::value::Value;

/// How many distinct SQL texts are kept commented. SQL built with values
/// inlined would otherwise grow the cache without end; past this, the
/// comment is added on each run.
const MAX_CACHED: usize = 4096;

/// The most parameters whose signature is kept; a statement with more is
/// commented on each run.
const MAX_KEPT_PARAMS: usize = 32;

/// For each SQL text, its commented texts by signature (almost always
/// one).
type Cache = HashMap<Box<str>, Box<[(Box<[u8]>, Arc<str>)]>, foldhash::fast::RandomState>;

/// Read without a lock; a new text or signature copies the map (rare: a
/// service has a fixed set of statements).
static CACHE: LazyLock<ArcSwap<Cache>> = LazyLock::new(|| ArcSwap::from_pointee(Cache::default()));

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
    let mut kept = [0u8; MAX_KEPT_PARAMS];
    for (letter, param) in kept.iter_mut().zip(params) {
        *letter = type_letter(param);
    }
    let signature = &kept[..params.len()];
    let cache = CACHE.load();
    if let Some(typed) = cache.get(sql.as_str())
        && let Some((_, text)) = typed.iter().find(|(kept, _)| **kept == *signature)
    {
        return AssertSqlSafe(text.clone()).into_sql_str();
    }
    let text: Arc<str> = commented(signature, sql.as_str()).into();
    if cache.len() < MAX_CACHED {
        drop(cache);
        CACHE.rcu(|cache| {
            let mut cache = Cache::clone(cache);
            let entry = cache.entry(sql.as_str().into()).or_default();
            if !entry.iter().any(|(kept, _)| **kept == *signature) {
                let mut typed = entry.to_vec();
                typed.push((signature.into(), text.clone()));
                *entry = typed.into_boxed_slice();
            }
            cache
        });
    }
    AssertSqlSafe(text).into_sql_str()
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
    fn many_parameters_are_commented_each_time() {
        let params = vec![Value::Int(1); MAX_KEPT_PARAMS + 1];
        let text = typed("SELECT 1 /* many */", &params);
        let letters = "i".repeat(MAX_KEPT_PARAMS + 1);
        assert_eq!(text.as_str(), format!("/* dbroute:{letters} */ SELECT 1 /* many */"));
    }
}
