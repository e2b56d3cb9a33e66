//! Pools: per-connection settings, and the typed sqlx pool behind each name.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

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
            lazy: false,
        }
    }
}

impl PoolSettings {
    /// The defaults: at most 10 connections, none kept open, a 10 s acquire
    /// timeout, idle connections closed after 10 min, every connection
    /// replaced after 30 min, connected eagerly.
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
        options
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
    }
}

/// The typed sqlx pool behind a connection. Clone it to keep everything sqlx
/// offers.
#[derive(Clone)]
#[non_exhaustive]
pub enum DbPool {
    /// A PostgreSQL pool.
    Postgres(PgPool),
    /// A MySQL or MariaDB pool.
    MySql(MySqlPool),
    /// A SQLite pool.
    Sqlite(SqlitePool),
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
        let connect_error = |source: sqlx::Error| match source {
            sqlx::Error::PoolTimedOut => Error::PoolTimedOut {
                connection: name.to_string(),
                timeout: settings.acquire_timeout,
            },
            source => Error::Connect {
                connection: name.to_string(),
                url: url.redacted().to_owned(),
                source,
            },
        };
        let bad_url = |e: sqlx::Error| Error::InvalidUrl {
            connection: name.to_string(),
            url: url.redacted().to_owned(),
            reason: crate::connection::url::redact(&e.to_string()),
        };
        Ok(match url.backend() {
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url.secret()).map_err(bad_url)?;
                let pool = settings.apply(PgPoolOptions::new());
                DbPool::Postgres(if settings.lazy {
                    pool.connect_lazy_with(options)
                } else {
                    pool.connect_with(options).await.map_err(connect_error)?
                })
            }
            Backend::MySql => {
                let options = MySqlConnectOptions::from_str(url.secret()).map_err(bad_url)?;
                let pool = settings.apply(MySqlPoolOptions::new());
                DbPool::MySql(if settings.lazy {
                    pool.connect_lazy_with(options)
                } else {
                    pool.connect_with(options).await.map_err(connect_error)?
                })
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.secret())
                    .map_err(bad_url)?
                    .create_if_missing(true);
                let pool = settings.apply(SqlitePoolOptions::new());
                DbPool::Sqlite(if settings.lazy {
                    pool.connect_lazy_with(options)
                } else {
                    pool.connect_with(options).await.map_err(connect_error)?
                })
            }
        })
    }

    /// Makes a pool that connects on first use (no I/O now).
    pub(crate) fn open_lazy(name: ConnectionName, url: &ConnectionUrl, settings: &PoolSettings) -> Result<DbPool> {
        let bad_url = |e: sqlx::Error| Error::InvalidUrl {
            connection: name.to_string(),
            url: url.redacted().to_owned(),
            reason: crate::connection::url::redact(&e.to_string()),
        };
        Ok(match url.backend() {
            Backend::Postgres => DbPool::Postgres(
                settings
                    .apply(PgPoolOptions::new())
                    .connect_lazy_with(PgConnectOptions::from_str(url.secret()).map_err(bad_url)?),
            ),
            Backend::MySql => DbPool::MySql(
                settings
                    .apply(MySqlPoolOptions::new())
                    .connect_lazy_with(MySqlConnectOptions::from_str(url.secret()).map_err(bad_url)?),
            ),
            Backend::Sqlite => DbPool::Sqlite(
                settings.apply(SqlitePoolOptions::new()).connect_lazy_with(
                    SqliteConnectOptions::from_str(url.secret())
                        .map_err(bad_url)?
                        .create_if_missing(true),
                ),
            ),
        })
    }

    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbPool::Postgres(_) => Backend::Postgres,
            DbPool::MySql(_) => Backend::MySql,
            DbPool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The PostgreSQL pool, if this is one.
    pub fn as_postgres(&self) -> Option<&PgPool> {
        match self {
            DbPool::Postgres(p) => Some(p),
            _ => None,
        }
    }
    /// The MySQL/MariaDB pool, if this is one.
    pub fn as_mysql(&self) -> Option<&MySqlPool> {
        match self {
            DbPool::MySql(p) => Some(p),
            _ => None,
        }
    }
    /// The SQLite pool, if this is one.
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match self {
            DbPool::Sqlite(p) => Some(p),
            _ => None,
        }
    }

    /// Connections open now, idle or in use.
    pub fn size(&self) -> u32 {
        match self {
            DbPool::Postgres(p) => p.size(),
            DbPool::MySql(p) => p.size(),
            DbPool::Sqlite(p) => p.size(),
        }
    }
    /// Connections open and idle now.
    pub fn num_idle(&self) -> usize {
        match self {
            DbPool::Postgres(p) => p.num_idle(),
            DbPool::MySql(p) => p.num_idle(),
            DbPool::Sqlite(p) => p.num_idle(),
        }
    }

    /// Opens one connection outside the pool, with the pool's options, and
    /// closes it: the driver's own error when the server cannot be used.
    pub(crate) async fn connect_once(&self) -> std::result::Result<(), sqlx::Error> {
        use sqlx::{ConnectOptions, Connection};
        match self {
            DbPool::Postgres(p) => p.connect_options().connect().await?.close().await,
            DbPool::MySql(p) => p.connect_options().connect().await?.close().await,
            DbPool::Sqlite(p) => p.connect_options().connect().await?.close().await,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            DbPool::Postgres(p) => p.close().await,
            DbPool::MySql(p) => p.close().await,
            DbPool::Sqlite(p) => p.close().await,
        }
    }
}
