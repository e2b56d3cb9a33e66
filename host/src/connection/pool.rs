//! Pools: per-connection settings, and the typed sqlx pool behind each name.

use std::fmt;
use std::time::Duration;

use sqlx::pool::PoolOptions;

use super::dispatch::{SqlxBackend, dispatch};
use super::url::{Backend, ConnectionUrl};
use crate::error::{Error, Result};
use crate::name::ConnectionName;

/// Pool settings for one connection.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dbroute::PoolSettings;
///
/// let settings = PoolSettings::new()
///     .max_connections(20)
///     .min_connections(2)
///     .acquire_timeout(Duration::from_secs(3))
///     .lazy(true);
/// assert_eq!(settings.get_max_connections(), 20);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    max_connections: u32,
    min_connections: u32,
    acquire_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    test_idle_after: Option<Duration>,
    lazy: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            test_idle_after: Some(Duration::from_secs(1)),
            lazy: false,
        }
    }
}

impl PoolSettings {
    /// The defaults: at most 10 connections, none kept open, a 10 s acquire
    /// timeout, idle connections closed after 10 min, every connection
    /// replaced after 30 min, a connection idle for over 1 s checked
    /// before it is handed out, connected eagerly.
    pub fn new() -> Self {
        Self::default()
    }
    /// The most connections the pool opens.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
    /// The connections the pool keeps open even when idle.
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }
    /// How long an operation waits for a free connection before failing with
    /// [`Error::PoolTimedOut`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
    /// Idle connections are closed after this long (`None`: never).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Connections are replaced after this long (`None`: never).
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }
    /// A connection that sat idle in the pool for longer than `after` is
    /// checked (pinged) before it is handed out, and replaced if it is
    /// dead; one used more recently is handed out at once. Default: 1 s.
    ///
    /// Checking every connection (`Some(Duration::ZERO)`, sqlx's own
    /// default) costs every statement a second round trip to the
    /// database; a connection that was just working is very likely alive,
    /// and one that died since fails its statement as it would have
    /// failed mid-statement. `None`: never check.
    pub fn test_idle_after(mut self, after: Option<Duration>) -> Self {
        self.test_idle_after = after;
        self
    }
    /// `true`: connect on first use; `false` (default): connect when
    /// registered, so a bad URL or a dead server is reported at once.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }
    /// The most connections the pool opens.
    pub fn get_max_connections(&self) -> u32 {
        self.max_connections
    }
    /// The acquire timeout.
    pub fn get_acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }
    /// Whether the pool connects on first use.
    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    fn apply<DB: sqlx::Database>(&self, options: sqlx::pool::PoolOptions<DB>) -> sqlx::pool::PoolOptions<DB> {
        let options = options
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime);
        match self.test_idle_after {
            None => options.test_before_acquire(false),
            Some(after) if after.is_zero() => options.test_before_acquire(true),
            Some(after) => options.test_before_acquire(false).before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > after {
                        // A dead connection fails here: the pool closes it
                        // and hands out another.
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            }),
        }
    }
}

/// The typed sqlx pool behind a connection. Clone it to keep everything sqlx
/// offers.
#[derive(Clone)]
#[non_exhaustive]
pub enum DbPool {
    /// A PostgreSQL pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(sqlx::PgPool),
    /// A MySQL or MariaDB pool.
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    MySql(sqlx::MySqlPool),
    /// A SQLite pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(sqlx::SqlitePool),
}

impl fmt::Debug for DbPool {
    // sqlx's own Debug would print the connect options, password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPool")
            .field("backend", &self.backend())
            .field("size", &self.size())
            .field("idle", &self.num_idle())
            .finish()
    }
}

impl DbPool {
    /// Opens a pool for `url` with `settings`.
    pub(crate) async fn open(name: ConnectionName, url: &ConnectionUrl, settings: &PoolSettings) -> Result<DbPool> {
        if settings.lazy {
            return Self::open_lazy(name, url, settings);
        }
        dispatch!(url.backend(), Backend as DB => {
            let options = DB::connect_options(url.secret()).map_err(|e| bad_url(name, url, e))?;
            let pool = settings.apply(PoolOptions::<DB>::new());
            Ok(DB::wrap_pool({
                let connected = pool.connect_with(options.clone()).await;
                connected.map_err(|source| match source {
                    sqlx::Error::PoolTimedOut => Error::PoolTimedOut {
                        connection: name.to_string(),
                        timeout: settings.acquire_timeout,
                    },
                    source => {
                        let missing = DB::database_missing(&source, &options).then(|| DB::database(&options));
                        connect_error(name, url, missing, source)
                    }
                })?
            }))
        }, not_built(backend) => Err(not_built(name, backend)))
    }

    /// Makes a pool that connects on first use (no I/O now).
    pub(crate) fn open_lazy(name: ConnectionName, url: &ConnectionUrl, settings: &PoolSettings) -> Result<DbPool> {
        dispatch!(url.backend(), Backend as DB => {
            let options = DB::connect_options(url.secret()).map_err(|e| bad_url(name, url, e))?;
            Ok(DB::wrap_pool(settings.apply(PoolOptions::<DB>::new()).connect_lazy_with(options)))
        }, not_built(backend) => Err(not_built(name, backend)))
    }

    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        dispatch!(self, DbPool(_) as DB => DB::BACKEND)
    }

    /// The PostgreSQL pool, if this is one.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn as_postgres(&self) -> Option<&sqlx::PgPool> {
        <sqlx::Postgres as SqlxBackend>::pool(self)
    }
    /// The MySQL/MariaDB pool, if this is one.
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub fn as_mysql(&self) -> Option<&sqlx::MySqlPool> {
        <sqlx::MySql as SqlxBackend>::pool(self)
    }
    /// The SQLite pool, if this is one.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn as_sqlite(&self) -> Option<&sqlx::SqlitePool> {
        <sqlx::Sqlite as SqlxBackend>::pool(self)
    }

    /// Connections open now, idle or in use.
    pub fn size(&self) -> u32 {
        dispatch!(self, DbPool(p) => p.size())
    }
    /// Connections open and idle now.
    pub fn num_idle(&self) -> usize {
        dispatch!(self, DbPool(p) => p.num_idle())
    }

    /// The database this pool's connections open, when `error`, met while
    /// connecting, says that it does not exist: its name (SQLite: its
    /// file). Error path only.
    pub(crate) fn missing_database(&self, error: &sqlx::Error) -> Option<String> {
        if !matches!(error, sqlx::Error::Database(_)) {
            return None;
        }
        dispatch!(self, DbPool(p) as DB => {
            let options = p.connect_options();
            DB::database_missing(error, &options).then(|| DB::database(&options))
        })
    }

    /// Opens one connection outside the pool, with the pool's options, and
    /// closes it: the driver's own error when the server cannot be used.
    pub(crate) async fn connect_once(&self) -> std::result::Result<(), sqlx::Error> {
        use sqlx::{ConnectOptions, Connection};
        dispatch!(self, DbPool(p) => p.connect_options().connect().await?.close().await)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        dispatch!(self, DbPool(p) => p.close().await)
    }
}

/// The error for a URL sqlx cannot read (its message redacted).
fn bad_url(name: ConnectionName, url: &ConnectionUrl, error: sqlx::Error) -> Error {
    Error::InvalidUrl {
        connection: name.to_string(),
        url: url.redacted().to_owned(),
        reason: crate::connection::url::redact(&error.to_string()),
    }
}

/// The error for a URL of a backend this build has no driver for.
fn not_built(name: ConnectionName, backend: Backend) -> Error {
    Error::BackendNotBuilt {
        connection: name.to_string(),
        backend,
    }
}

/// The error of a failed attempt to connect: [`Error::DatabaseMissing`]
/// when `missing` names the database the server says does not exist, else
/// [`Error::Connect`].
pub(crate) fn connect_error(
    name: ConnectionName,
    url: &ConnectionUrl,
    missing: Option<String>,
    source: sqlx::Error,
) -> Error {
    match missing {
        Some(database) => Error::DatabaseMissing {
            connection: name.to_string(),
            database,
            source,
        },
        None => Error::Connect {
            connection: name.to_string(),
            url: url.redacted().to_owned(),
            source,
        },
    }
}

/// Run by CI with `--no-default-features --features sqlite`.
#[cfg(all(test, not(feature = "mysql")))]
mod tests {
    use super::*;

    /// A build with one backend refuses another's URL, naming the feature
    /// to enable.
    #[test]
    fn a_url_of_a_backend_not_built_is_refused_with_its_feature() {
        let name = ConnectionName::new("reports").unwrap();
        let url = ConnectionUrl::parse(name, "mysql://app:S3cr3t@127.0.0.1/reports").unwrap();
        let err = DbPool::open_lazy(name, &url, &PoolSettings::new()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::BackendNotBuilt {
                    backend: Backend::MySql,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("`reports`") && text.contains("features = [\"mysql\"]"),
            "{text}"
        );
        assert!(!format!("{text} {err:?}").contains("S3cr3t"), "{text}");
    }
}
