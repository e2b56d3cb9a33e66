//! Connection URLs: which backend they name, and how to show them without
//! their secrets.

use std::fmt;

use crate::error::{Error, Result};
use crate::name::ConnectionName;

/// The database behind a connection, chosen by its URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mariadb://`).
    MySql,
    /// SQLite (`sqlite:path`, `sqlite://path`, `sqlite::memory:`).
    Sqlite,
}

impl Backend {
    /// The bind-parameter placeholder for the `n`th parameter (1-based):
    /// `$1` on PostgreSQL and SQLite, `?` on MySQL. For SQL built as text;
    /// SQL written once for every backend can use `$1` everywhere on a
    /// [portable](crate::Connection::portable) handle instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::Backend;
    /// assert_eq!(Backend::Postgres.placeholder(2), "$2");
    /// assert_eq!(Backend::MySql.placeholder(2), "?");
    /// ```
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Backend::MySql => "?".to_owned(),
            Backend::Postgres | Backend::Sqlite => format!("${n}"),
        }
    }

    /// A short lowercase name: `postgres`, `mysql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection URL. It keeps the secret form for connecting and shows only
/// the redacted form, in `Debug` and `Display` alike.
#[derive(Clone)]
pub(crate) struct ConnectionUrl {
    secret: String,
    redacted: String,
    backend: Backend,
}

impl ConnectionUrl {
    /// Parses `url` for connection `name`.
    pub(crate) fn parse(name: ConnectionName, url: &str) -> Result<Self> {
        let redacted = redact(url);
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(Error::InvalidUrl {
                connection: name.to_string(),
                url: redacted,
                reason: "it has no scheme; write it like postgres://host/db, mysql://host/db or sqlite:file.db".into(),
            });
        };
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            "sqlite" => Backend::Sqlite,
            other => {
                return Err(Error::UnsupportedScheme {
                    connection: name.to_string(),
                    scheme: crate::name::printable(other),
                });
            }
        };
        let secret = match backend {
            // sqlx speaks `mysql://` for both MySQL and MariaDB.
            Backend::MySql => format!("mysql:{rest}"),
            _ => url.to_owned(),
        };
        if backend != Backend::Sqlite {
            if let Err(e) = url::Url::parse(&secret) {
                return Err(Error::InvalidUrl {
                    connection: name.to_string(),
                    url: redacted,
                    reason: e.to_string(),
                });
            }
        } else if rest.trim_start_matches('/').is_empty() {
            return Err(Error::InvalidUrl {
                connection: name.to_string(),
                url: redacted,
                reason: "it names no database file; use sqlite:path/to/file.db or sqlite::memory:".into(),
            });
        }
        Ok(ConnectionUrl {
            secret,
            redacted,
            backend,
        })
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// The full URL, secrets included: only for handing to the driver.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// The URL with its user information and password parameters hidden.
    pub(crate) fn redacted(&self) -> &str {
        &self.redacted
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

const SECRET_PARAMS: [&str; 5] = ["password", "pass", "pwd", "sslpassword", "sslkey"];

/// Hides the user information (`user:password@`) and the values of
/// password-like query parameters. Works on malformed URLs too.
pub(crate) fn redact(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    let authority_start = before_query.find("://").map(|i| i + 3);
    match (authority_start, before_query.rfind('@')) {
        (Some(start), Some(at)) if at >= start => {
            out.push_str(&before_query[..start]);
            out.push_str("***");
            out.push_str(&before_query[at..]);
        }
        (None, Some(at)) => {
            out.push_str("***");
            out.push_str(&before_query[at..]);
        }
        _ => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) if SECRET_PARAMS.contains(&key.to_ascii_lowercase().as_str()) => {
                    out.push_str(key);
                    out.push_str("=***");
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> ConnectionName {
        ConnectionName::from_static("main")
    }

    #[test]
    fn picks_the_backend_from_the_scheme() {
        let cases = [
            ("postgres://u@h/db", Backend::Postgres),
            ("postgresql://h/db", Backend::Postgres),
            ("mysql://root@h/db", Backend::MySql),
            ("mariadb://root@h/db", Backend::MySql),
            ("sqlite::memory:", Backend::Sqlite),
            ("sqlite:data.db", Backend::Sqlite),
            ("sqlite:///tmp/x.db", Backend::Sqlite),
        ];
        for (url, backend) in cases {
            assert_eq!(ConnectionUrl::parse(name(), url).unwrap().backend(), backend, "{url}");
        }
    }

    #[test]
    fn mariadb_is_spoken_as_mysql() {
        let url = ConnectionUrl::parse(name(), "mariadb://root@127.0.0.1/test").unwrap();
        assert_eq!(url.secret(), "mysql://root@127.0.0.1/test");
    }

    #[test]
    fn refuses_unknown_schemes_and_garbage() {
        assert!(matches!(
            ConnectionUrl::parse(name(), "oracle://h/db"),
            Err(Error::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            ConnectionUrl::parse(name(), "no scheme here"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            ConnectionUrl::parse(name(), "postgres://u:p@[bad"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            ConnectionUrl::parse(name(), "sqlite:"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn redaction_hides_user_information_and_password_parameters() {
        assert_eq!(
            redact("postgres://bob:hunter2@db:5432/app"),
            "postgres://***@db:5432/app"
        );
        assert_eq!(
            redact("mysql://h/app?user=x&password=hunter2"),
            "mysql://h/app?user=x&password=***"
        );
        assert_eq!(redact("postgres://h/app"), "postgres://h/app");
        assert_eq!(redact("weird:bob:hunter2@host"), "***@host");
        let url = ConnectionUrl::parse(name(), "postgres://bob:hunter2@db/app").unwrap();
        assert!(!format!("{url:?} {url}").contains("hunter2"));
        let err = ConnectionUrl::parse(name(), "postgres://bob:hunter2@[bad/app").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
