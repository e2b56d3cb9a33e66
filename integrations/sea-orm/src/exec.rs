//! Running SeaORM's statements on a dbroute [`Connection`]: on the sqlx
//! connection it lends (one from its pool, or its transaction's), bound as
//! SeaORM's own drivers bind them.

use dbroute::{Backend, Connection};
use sea_orm::sea_query::Values;
use sea_orm::{DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};
use sea_query_sqlx::SqlxValues;

use crate::error::route_err;

/// SeaORM's name for a dbroute backend.
pub(crate) fn sea_backend(backend: Backend) -> DbBackend {
    match backend {
        Backend::Postgres => DbBackend::Postgres,
        Backend::MySql => DbBackend::MySql,
        Backend::Sqlite => DbBackend::Sqlite,
    }
}

fn exec_err(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(error.into()))
}

fn query_err(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(error.into()))
}

/// Runs `$body` with `$c` the `&mut` sqlx connection `$conn` lends, typed
/// for its backend.
macro_rules! on_lent {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn.backend() {
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let mut lent = $conn.postgres().await.map_err(route_err)?;
                let $c = &mut *lent;
                $body
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let mut lent = $conn.mysql().await.map_err(route_err)?;
                let $c = &mut *lent;
                $body
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let mut lent = $conn.sqlite().await.map_err(route_err)?;
                let $c = &mut *lent;
                $body
            }
            #[allow(unreachable_patterns)]
            backend => Err(DbErr::BackendNotSupported {
                db: backend.as_str(),
                ctx: "dbroute-sea-orm built without this backend's feature",
            }),
        }
    };
}

/// The statement's SQL and its values, bound as SeaORM's own drivers bind
/// them.
fn parts(stmt: Statement) -> (sea_orm::sqlx::AssertSqlSafe<String>, SqlxValues) {
    let values = SqlxValues(stmt.values.unwrap_or(Values(Vec::new())));
    (sea_orm::sqlx::AssertSqlSafe(stmt.sql), values)
}

pub(crate) async fn execute(conn: &Connection, stmt: Statement) -> Result<ExecResult, DbErr> {
    let (sql, values) = parts(stmt);
    on_lent!(conn, |c| sea_orm::sqlx::query_with(sql, values)
        .execute(c)
        .await
        .map(ExecResult::from)
        .map_err(exec_err))
}

pub(crate) async fn execute_unprepared(conn: &Connection, text: &str) -> Result<ExecResult, DbErr> {
    use sea_orm::sqlx::Executor as _;
    on_lent!(conn, |c| c
        .execute(sea_orm::sqlx::AssertSqlSafe(text.to_owned()))
        .await
        .map(ExecResult::from)
        .map_err(exec_err))
}

pub(crate) async fn query_one(conn: &Connection, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
    let (sql, values) = parts(stmt);
    on_lent!(conn, |c| sea_orm::sqlx::query_with(sql, values)
        .fetch_optional(c)
        .await
        .map(|row| row.map(QueryResult::from))
        .map_err(query_err))
}

pub(crate) async fn query_all(conn: &Connection, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
    let (sql, values) = parts(stmt);
    on_lent!(conn, |c| sea_orm::sqlx::query_with(sql, values)
        .fetch_all(c)
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        .map_err(query_err))
}

/// The rows of `stmt`, as they arrive, on the sqlx connection `conn` lends
/// (held until the stream is dropped).
#[cfg(feature = "stream")]
pub(crate) fn stream(conn: &Connection, stmt: Statement) -> crate::connection::RowStream<'_> {
    use futures_util::TryStreamExt as _;

    Box::pin(async_stream::try_stream! {
        let (sql, values) = parts(stmt);
        match conn.backend() {
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let mut lent = conn.postgres().await.map_err(route_err)?;
                let mut rows = sea_orm::sqlx::query_with(sql, values).fetch(&mut *lent);
                while let Some(row) = rows.try_next().await.map_err(query_err)? {
                    yield QueryResult::from(row);
                }
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let mut lent = conn.mysql().await.map_err(route_err)?;
                let mut rows = sea_orm::sqlx::query_with(sql, values).fetch(&mut *lent);
                while let Some(row) = rows.try_next().await.map_err(query_err)? {
                    yield QueryResult::from(row);
                }
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let mut lent = conn.sqlite().await.map_err(route_err)?;
                let mut rows = sea_orm::sqlx::query_with(sql, values).fetch(&mut *lent);
                while let Some(row) = rows.try_next().await.map_err(query_err)? {
                    yield QueryResult::from(row);
                }
            }
            #[allow(unreachable_patterns)]
            backend => Err(DbErr::BackendNotSupported {
                db: backend.as_str(),
                ctx: "dbroute-sea-orm built without this backend's feature",
            })?,
        }
    })
}
