//! The one place that lists the backends: [`dispatch!`] goes from a backend
//! value ([`Backend`], [`DbPool`], a transaction's [`TxConn`]) to code typed
//! for that backend's sqlx database, and [`SqlxBackend`] holds what differs
//! between those databases (read-only `BEGIN`, connect options, what a
//! statement reports, how its server says a database does not exist, the
//! variant of `DbPool` and `TxConn` each lives in).
//!
//! Adding a backend means a variant in `Backend`, `DbPool` and `TxConn`, an
//! arm in each rule of `dispatch!` and an implementation of `SqlxBackend`,
//! here; the compiler then asks for most of the rest (`Backend`'s own
//! matches in `url.rs`, binding a `Value` and reading a row in `value.rs`).
//!
//! `dispatch!` expands to a plain `match` whose arms are its body, typed
//! once per backend: no boxing and no dynamic dispatch, so the statement
//! path (`handle.rs`) costs what the hand-written `match` did.

use std::str::FromStr;

use super::handle::QueryResult;
use super::pool::DbPool;
use super::url::Backend;
use crate::name::ConnectionName;
use crate::transaction::TxConn;

/// Runs `$body` once per backend, typed for that backend's sqlx database.
///
/// - `dispatch!(backend, Backend as DB => body, not_built(backend) =>
///   expression)`: on a [`Backend`], with `DB` naming the sqlx database
///   type; the last arm takes the backends this build has no feature for.
/// - `dispatch!(value, Enum(binding) => body)`, or `… Enum(binding) as DB
///   => body`: on a value of an enum with one variant per backend
///   ([`DbPool`], [`TxConn`], or a reference to one), with the variant's
///   content bound to `binding`. Variants that are not a backend's
///   (`TxConn::Finished`) take one more arm: `…, TxConn::Finished =>
///   expression`.
///
/// `Enum` must be in scope by that name.
macro_rules! dispatch {
    ($backend:expr, Backend as $DB:ident => $body:expr, not_built($missing:ident) => $disabled:expr $(,)?) => {
        match $backend {
            #[cfg(feature = "postgres")]
            $crate::connection::url::Backend::Postgres => {
                type $DB = ::sqlx::Postgres;
                $body
            }
            #[cfg(feature = "mysql")]
            $crate::connection::url::Backend::MySql => {
                type $DB = ::sqlx::MySql;
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::connection::url::Backend::Sqlite => {
                type $DB = ::sqlx::Sqlite;
                $body
            }
            #[allow(unreachable_patterns)]
            $missing => $disabled,
        }
    };
    ($value:expr, $Enum:ident($bind:pat) $(as $DB:ident)? => $body:expr $(, $other:pat => $rest:expr)? $(,)?) => {
        match $value {
            #[cfg(feature = "postgres")]
            $Enum::Postgres($bind) => {
                $(type $DB = ::sqlx::Postgres;)?
                $body
            }
            #[cfg(feature = "mysql")]
            $Enum::MySql($bind) => {
                $(type $DB = ::sqlx::MySql;)?
                $body
            }
            #[cfg(feature = "sqlite")]
            $Enum::Sqlite($bind) => {
                $(type $DB = ::sqlx::Sqlite;)?
                $body
            }
            $($other => $rest,)?
        }
    };
}
pub(crate) use dispatch;

/// What differs between the sqlx databases dbroute runs on, one
/// implementation per [`Backend`].
pub(crate) trait SqlxBackend: sqlx::Database {
    /// The backend this database is.
    const BACKEND: Backend;

    /// The statement that begins a read-only transaction, if the backend
    /// has one.
    const BEGIN_READ_ONLY: Option<&'static str>;

    /// Connect options from a URL.
    fn connect_options(url: &str) -> Result<Options<Self>, sqlx::Error>;

    /// The database `options` open, for messages: its name (on PostgreSQL
    /// the user's name when the URL names none), or SQLite's file.
    fn database(options: &Options<Self>) -> String;

    /// Whether `error`, met while connecting with `options`, says that the
    /// database does not exist (not that the server is down, or refused
    /// the credentials).
    fn database_missing(error: &sqlx::Error, options: &Options<Self>) -> bool;

    /// What a statement changed, from sqlx's report.
    fn query_result(result: Self::QueryResult, connection: ConnectionName) -> QueryResult;

    /// The pool, as the variant of [`DbPool`] for this backend.
    fn wrap_pool(pool: sqlx::Pool<Self>) -> DbPool;

    /// The pool inside `pool`, if it is this backend's.
    fn pool(pool: &DbPool) -> Option<&sqlx::Pool<Self>>;

    /// The transaction, as the variant of [`TxConn`] for this backend.
    fn wrap_tx(tx: sqlx::Transaction<'static, Self>) -> TxConn;

    /// The transaction inside `conn`, if it is this backend's.
    fn tx(conn: &mut TxConn) -> Option<&mut sqlx::Transaction<'static, Self>>;
}

/// The connect options of a sqlx database.
pub(crate) type Options<DB> = <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;

/// The server's error code of `error`, when it is one.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn server_code(error: &sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    match error {
        sqlx::Error::Database(e) => e.code(),
        _ => None,
    }
}

/// The items of [`SqlxBackend`] that only name the backend's variant.
macro_rules! variants {
    ($Variant:ident) => {
        fn wrap_pool(pool: sqlx::Pool<Self>) -> DbPool {
            DbPool::$Variant(pool)
        }

        #[allow(unreachable_patterns)]
        fn pool(pool: &DbPool) -> Option<&sqlx::Pool<Self>> {
            match pool {
                DbPool::$Variant(pool) => Some(pool),
                _ => None,
            }
        }

        fn wrap_tx(tx: sqlx::Transaction<'static, Self>) -> TxConn {
            TxConn::$Variant(tx)
        }

        #[allow(unreachable_patterns)]
        fn tx(conn: &mut TxConn) -> Option<&mut sqlx::Transaction<'static, Self>> {
            match conn {
                TxConn::$Variant(tx) => Some(tx),
                _ => None,
            }
        }
    };
}

#[cfg(feature = "postgres")]
impl SqlxBackend for sqlx::Postgres {
    const BACKEND: Backend = Backend::Postgres;
    const BEGIN_READ_ONLY: Option<&'static str> = Some("BEGIN READ ONLY");

    fn connect_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions, sqlx::Error> {
        sqlx::postgres::PgConnectOptions::from_str(url)
    }

    fn database(options: &sqlx::postgres::PgConnectOptions) -> String {
        options
            .get_database()
            .unwrap_or_else(|| options.get_username())
            .to_owned()
    }

    fn database_missing(error: &sqlx::Error, _: &sqlx::postgres::PgConnectOptions) -> bool {
        // invalid_catalog_name: the server refuses the start-up packet.
        server_code(error).is_some_and(|code| code == "3D000")
    }

    fn query_result(result: sqlx::postgres::PgQueryResult, connection: ConnectionName) -> QueryResult {
        QueryResult {
            connection,
            rows_affected: result.rows_affected(),
            last_insert_id: None,
        }
    }

    variants!(Postgres);
}

#[cfg(feature = "mysql")]
impl SqlxBackend for sqlx::MySql {
    const BACKEND: Backend = Backend::MySql;
    const BEGIN_READ_ONLY: Option<&'static str> = Some("START TRANSACTION READ ONLY");

    fn connect_options(url: &str) -> Result<sqlx::mysql::MySqlConnectOptions, sqlx::Error> {
        sqlx::mysql::MySqlConnectOptions::from_str(url)
    }

    fn database(options: &sqlx::mysql::MySqlConnectOptions) -> String {
        options.get_database().unwrap_or_default().to_owned()
    }

    fn database_missing(error: &sqlx::Error, _: &sqlx::mysql::MySqlConnectOptions) -> bool {
        // ER_BAD_DB_ERROR (SQLSTATE 42000, shared with syntax errors: the
        // number tells them apart).
        matches!(error, sqlx::Error::Database(e)
            if e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|e| e.number() == 1049))
    }

    fn query_result(result: sqlx::mysql::MySqlQueryResult, connection: ConnectionName) -> QueryResult {
        QueryResult {
            connection,
            rows_affected: result.rows_affected(),
            last_insert_id: i64::try_from(result.last_insert_id()).ok().filter(|id| *id != 0),
        }
    }

    variants!(MySql);
}

#[cfg(feature = "sqlite")]
impl SqlxBackend for sqlx::Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    // SQLite has no read-only transactions: a deferred one takes no write
    // lock until it writes.
    const BEGIN_READ_ONLY: Option<&'static str> = None;

    fn connect_options(url: &str) -> Result<sqlx::sqlite::SqliteConnectOptions, sqlx::Error> {
        Ok(sqlx::sqlite::SqliteConnectOptions::from_str(url)?.create_if_missing(true))
    }

    fn database(options: &sqlx::sqlite::SqliteConnectOptions) -> String {
        options.get_filename().display().to_string()
    }

    fn database_missing(error: &sqlx::Error, options: &sqlx::sqlite::SqliteConnectOptions) -> bool {
        // SQLITE_CANTOPEN (or one of its extended codes) for a file that is
        // not there: opened read-only (`mode=ro`; otherwise dbroute creates
        // missing files), or in a folder that does not exist. CANTOPEN on a
        // file that exists (permissions, a folder) is another problem.
        let cant_open = server_code(error)
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == 14);
        cant_open && !options.get_filename().exists()
    }

    fn query_result(result: sqlx::sqlite::SqliteQueryResult, connection: ConnectionName) -> QueryResult {
        QueryResult {
            connection,
            rows_affected: result.rows_affected(),
            last_insert_id: Some(result.last_insert_rowid()).filter(|id| *id != 0),
        }
    }

    variants!(Sqlite);
}
