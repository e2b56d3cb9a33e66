//! Portable placeholders: SQL written once with `$1`, `$2`… and run on
//! whichever backend a router picks.
//!
//! `$n` is PostgreSQL's and SQLite's own syntax, so there the SQL runs as
//! written, unscanned. MySQL and MariaDB take `?`, bound in order: the SQL
//! is scanned once per distinct text (then cached), each `$n` outside
//! string literals, quoted identifiers, comments and dollar-quoted bodies
//! becomes `?`, and the parameters are bound in the order the `$n` appear
//! (so `$1` may come twice, or after `$2`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

/// SQL translated for MySQL: its text, and which parameter each `?` binds.
#[derive(Debug)]
pub(crate) struct Translated {
    sql: Arc<str>,
    /// For each `?` in order, the index of its parameter (`$n` → `n - 1`).
    order: Box<[usize]>,
    /// The highest `$n`.
    needs: usize,
}

impl Translated {
    /// The translated SQL, for sqlx.
    pub(crate) fn sql(&self) -> sqlx::SqlStr {
        use sqlx::SqlSafeStr as _;
        sqlx::AssertSqlSafe(self.sql.clone()).into_sql_str()
    }

    /// The parameter index each `?` binds, in order.
    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// Whether `given` parameters are enough for the SQL; else what is
    /// wrong.
    pub(crate) fn check(&self, given: usize) -> Result<(), String> {
        if self.needs > given {
            return Err(format!(
                "the SQL names ${}, but {given} parameter{} {} given",
                self.needs,
                if given == 1 { "" } else { "s" },
                if given == 1 { "was" } else { "were" },
            ));
        }
        Ok(())
    }
}

/// How many distinct statements are kept translated. SQL built with
/// values inlined would otherwise grow the cache without end; past this,
/// statements are translated on each run.
const MAX_CACHED: usize = 4096;

type Cache = HashMap<Box<str>, Arc<Translated>, foldhash::fast::RandomState>;

/// Translations by SQL text: read without a lock; a new statement copies
/// the map (rare: a service has a fixed set of statements).
static CACHE: LazyLock<ArcSwap<Cache>> = LazyLock::new(|| ArcSwap::from_pointee(Cache::default()));

/// `sql`, written with `$n` placeholders, as MySQL takes it: from the
/// cache, or scanned once.
///
/// # Errors
///
/// What is wrong with the SQL (a `?` placeholder, `$0`, an unclosed quote
/// or dollar-quoted body), said for a message.
pub(crate) fn for_mysql(sql: &str) -> Result<Arc<Translated>, String> {
    if let Some(hit) = CACHE.load().get(sql) {
        return Ok(hit.clone());
    }
    let translated = Arc::new(translate(sql)?);
    if CACHE.load().len() < MAX_CACHED {
        CACHE.rcu(|cache| {
            let mut cache = Cache::clone(cache);
            cache.insert(sql.into(), translated.clone());
            cache
        });
    }
    Ok(translated)
}

/// Whether `byte` may be part of an identifier (so that `$` after it is
/// part of the identifier, as in MySQL's `price$1`).
fn identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// The end (exclusive) of the quoted text starting at `start` with the
/// quote `bytes[start]`: a doubled quote is one quote; in strings (not
/// backquoted identifiers) a backslash escapes the next byte, as in
/// MySQL's default SQL mode.
fn end_of_quoted(bytes: &[u8], start: usize) -> Option<usize> {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The dollar-quote tag starting at `start` (`$$` or `$tag$`), if one
/// does.
fn dollar_tag(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let rest = &bytes[start + 1..];
    let len = rest.iter().position(|&b| b == b'$')?;
    let tag = &rest[..len];
    let valid = tag.first().is_none_or(|b| !b.is_ascii_digit()) && tag.iter().all(|&b| identifier_byte(b) && b != b'$');
    valid.then(|| &bytes[start..start + len + 2])
}

/// Translates `sql`: each `$n` outside quotes, comments and dollar-quoted
/// bodies becomes `?`.
fn translate(sql: &str) -> Result<Translated, String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' | b'`' => {
                i = end_of_quoted(bytes, i).ok_or_else(|| {
                    format!("the quoted text at byte {i} is not closed; close it (a quote inside is written twice)")
                })?;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = end_of_line(bytes, i),
            b'#' => i = end_of_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = find(bytes, i + 2, b"*/").map_or(bytes.len(), |end| end + 2);
            }
            b'$' if i > 0 && identifier_byte(bytes[i - 1]) => i += 1,
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                let end = i + 1 + digits;
                let n: usize = sql[i + 1..end]
                    .parse()
                    .map_err(|_| format!("the placeholder at byte {i} is too large"))?;
                if n == 0 {
                    return Err(format!("`$0` at byte {i}: placeholders count from $1"));
                }
                out.push_str(&sql[copied..i]);
                out.push('?');
                order.push(n - 1);
                copied = end;
                i = end;
            }
            b'$' => match dollar_tag(bytes, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    let close = find(bytes, body, tag).ok_or_else(|| {
                        format!(
                            "the dollar-quoted body at byte {i} is not closed by {}",
                            String::from_utf8_lossy(tag)
                        )
                    })?;
                    i = close + tag.len();
                }
                None => i += 1,
            },
            b'?' => {
                return Err(format!(
                    "`?` at byte {i}: portable SQL writes its parameters $1, $2…, translated for each backend; \
                     write `$n` (or run the statement without `portable`)"
                ));
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    let needs = order.iter().max().map_or(0, |i| i + 1);
    Ok(Translated {
        sql: out.into(),
        order: order.into(),
        needs,
    })
}

fn end_of_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| from + n + 1)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(sql: &str) -> (String, Vec<usize>) {
        let t = translate(sql).unwrap();
        (t.sql.to_string(), t.order.to_vec())
    }

    #[test]
    fn placeholders_become_question_marks_bound_in_order() {
        assert_eq!(
            mysql("SELECT * FROM t WHERE a = $2 AND b = $1 OR c = $2"),
            ("SELECT * FROM t WHERE a = ? AND b = ? OR c = ?".into(), vec![1, 0, 1])
        );
        assert_eq!(mysql("INSERT INTO t VALUES ($1,$10)").1, vec![0, 9]);
        assert_eq!(mysql("SELECT 1"), ("SELECT 1".into(), vec![]));
    }

    #[test]
    fn quotes_comments_and_dollar_bodies_are_left_alone() {
        let sql = r#"SELECT '$1', 'it''s $2', 'a\'$3', "$4", `c$5`, price$6 -- $7
            # $8
            /* $9 */ , $$ $10 $$, $body$ '$11 $body$, $1"#;
        let (out, order) = mysql(sql);
        assert_eq!(order, vec![0], "{out}");
        assert!(out.ends_with(", ?"), "{out}");
        assert!(out.contains("'$1'") && out.contains("$body$ '$11 $body$"), "{out}");
    }

    #[test]
    fn bad_portable_sql_says_what_to_write() {
        let e = translate("SELECT * FROM t WHERE a = ?").unwrap_err();
        assert!(e.contains("`?`") && e.contains("$1"), "{e}");
        assert!(translate("SELECT $0").unwrap_err().contains("from $1"));
        assert!(translate("SELECT 'open").unwrap_err().contains("not closed"));
        assert!(translate("SELECT $x$ body").unwrap_err().contains("$x$"));
        let t = translate("SELECT $3").unwrap();
        assert!(t.check(2).unwrap_err().contains("$3, but 2 parameters were given"));
        assert!(t.check(3).is_ok());
    }

    #[test]
    fn a_statement_is_scanned_once() {
        let sql = "SELECT $1 /* a_statement_is_scanned_once */";
        let first = for_mysql(sql).unwrap();
        let second = for_mysql(sql).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }
}
