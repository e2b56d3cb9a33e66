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

fn values(stmt: &Statement) -> SqlxValues {
    SqlxValues(stmt.values.clone().unwrap_or(Values(Vec::new())))
}

fn sql(stmt: &Statement) -> sea_orm::sqlx::AssertSqlSafe<&str> {
    sea_orm::sqlx::AssertSqlSafe(stmt.sql.as_str())
}

pub(crate) async fn execute(conn: &Connection, stmt: Statement) -> Result<ExecResult, DbErr> {
    on_lent!(conn, |c| sea_orm::sqlx::query_with(sql(&stmt), values(&stmt))
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
    on_lent!(conn, |c| sea_orm::sqlx::query_with(sql(&stmt), values(&stmt))
        .fetch_optional(c)
        .await
        .map(|row| row.map(QueryResult::from))
        .map_err(query_err))
}

pub(crate) async fn query_all(conn: &Connection, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
    on_lent!(conn, |c| sea_orm::sqlx::query_with(sql(&stmt), values(&stmt))
        .fetch_all(c)
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        .map_err(query_err))
}
