//! Telling when two connection names point at the same physical database:
//! the obvious case, the same URL up to spelling.
//!
//! The key built here holds the host, port and database name, never the
//! user or password, and never leaves this module but in comparisons.

use std::path::Path;

use super::SchemaProblem;
use crate::connection::registry::ConnectionEntry;
use crate::connection::url::{Backend, ConnectionUrl};
use crate::error::Result;

/// What identifies the database behind `url`; `None` when the URL names a
/// database no other connection can share (an in-memory SQLite database).
pub(super) fn database_key(url: &ConnectionUrl) -> Option<String> {
    let secret = url.secret();
    match url.backend() {
        Backend::Sqlite => sqlite_key(secret),
        backend => server_key(backend, secret),
    }
}

fn sqlite_key(secret: &str) -> Option<String> {
    let rest = secret.split_once(':').map_or(secret, |(_, rest)| rest);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    };
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|pair| pair.eq_ignore_ascii_case("mode=memory"));
    if in_memory {
        return None;
    }
    let path = Path::new(path);
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Some(format!("sqlite:{}", path.display()))
}

fn server_key(backend: Backend, secret: &str) -> Option<String> {
    let Ok(url) = url::Url::parse(secret) else {
        return Some(format!("{backend}:{secret}"));
    };
    let host = url.host_str().unwrap_or("localhost").to_ascii_lowercase();
    let host = match host.as_str() {
        "127.0.0.1" | "[::1]" | "::1" => "localhost".to_owned(),
        _ => host,
    };
    let port = url.port().unwrap_or(match backend {
        Backend::Postgres => 5432,
        _ => 3306,
    });
    let database = url.path().trim_matches('/');
    // PostgreSQL's database defaults to the user's name.
    let database = if database.is_empty() && backend == Backend::Postgres {
        url.username()
    } else {
        database
    };
    Some(format!("{backend}://{host}:{port}/{database}"))
}

/// Refuses when two of `entries` point at the same database, naming them.
pub(super) fn check_distinct<'a>(entries: impl IntoIterator<Item = &'a ConnectionEntry>) -> Result<()> {
    let mut seen: Vec<(String, &ConnectionEntry)> = Vec::new();
    for entry in entries {
        let Some(key) = database_key(entry.url()) else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(k, e)| *k == key && e.name() != entry.name()) {
            return Err(SchemaProblem::SameDatabase {
                first: first.name().to_string(),
                second: entry.name().to_string(),
            }
            .into());
        }
        seen.push((key, entry));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ConnectionName;

    fn key(url: &str) -> Option<String> {
        database_key(&ConnectionUrl::parse(ConnectionName::from_static("t"), url).unwrap())
    }

    #[test]
    fn the_same_server_database_spelled_differently_is_the_same() {
        let same = [
            "postgres://app:secret@127.0.0.1:5432/shop",
            "postgresql://other@localhost/shop",
            "postgres://LOCALHOST:5432/shop?sslmode=disable",
        ];
        for url in same {
            assert_eq!(key(url), key(same[0]), "{url}");
        }
        assert_eq!(
            key("mysql://root@127.0.0.1/shop"),
            key("mariadb://u:p@localhost:3306/shop")
        );
    }

    #[test]
    fn other_databases_ports_hosts_and_backends_differ() {
        let base = key("postgres://127.0.0.1/shop");
        for url in [
            "postgres://127.0.0.1/auth",
            "postgres://127.0.0.1:5433/shop",
            "postgres://db.internal/shop",
            "mysql://127.0.0.1/shop",
        ] {
            assert_ne!(key(url), base, "{url}");
        }
    }

    #[test]
    fn keys_never_hold_secrets() {
        let key = key("postgres://bob:hunter2@db/app?password=hunter3").unwrap();
        assert!(!key.contains("hunter") && !key.contains("bob"), "{key}");
    }

    #[test]
    fn sqlite_files_compare_by_path_and_memory_is_never_shared() {
        assert_eq!(key("sqlite::memory:"), None);
        assert_eq!(key("sqlite:file:x?mode=memory"), None);
        assert_eq!(key("sqlite:data.db"), key("sqlite://data.db"));
        assert_ne!(key("sqlite:data.db"), key("sqlite:other.db"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.db");
        std::fs::write(&file, b"").unwrap();
        let dotted = dir.path().join(".").join("x.db");
        assert_eq!(
            key(&format!("sqlite:{}", file.display())),
            key(&format!("sqlite:{}?mode=rwc", dotted.display()))
        );
    }
}
