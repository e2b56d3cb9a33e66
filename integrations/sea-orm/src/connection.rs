//! `RoutedDb`: the connection dbroute chose, as a SeaORM connection.

use std::pin::Pin;

use async_trait::async_trait;
use dbroute::{Connection, ConnectionName};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult,
    Statement, TransactionError, TransactionOptions, TransactionTrait,
};

use crate::exec;
use crate::transaction::RoutedTransaction;

/// The connection dbroute chose for an entity, for SeaORM: pass `&db`
/// wherever SeaORM takes a connection (`Entity::find().all(&db)`,
/// `active_model.insert(&db)`); [`begin`](TransactionTrait::begin) and
/// SeaORM's `transaction` closure begin a dbroute transaction on it.
///
/// Statements run on dbroute's own sqlx pool of the connection (once its
/// provisioning hook, if any, succeeded), or, when this was made inside a
/// dbroute transaction, on that transaction's connection. The connection
/// was chosen once, when this was made: every statement through it goes
/// there, whatever the routers say meanwhile. Cheap to clone.
///
/// Outside a transaction, a handle that may write (all but those of
/// [`EntityRouter::for_read`](crate::EntityRouter::for_read)) tells the
/// engine after each statement, for read-your-writes on replicas (see
/// [`dbroute::Connection::after_write`]).
///
/// Made by [`EntityRouter::for_read`](crate::EntityRouter::for_read) and
/// its kin, or from any dbroute [`Connection`] (`RoutedDb::from(conn)`), a
/// transaction's included ([`dbroute::Transaction::connection`]).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// use dbroute_sea_orm::RoutedDb;
/// use sea_orm::{ConnectionTrait, Statement};
///
/// let engine = dbroute::Engine::builder().connection("default", "sqlite::memory:").build().await.unwrap();
/// let db = RoutedDb::from(engine.connection("default").unwrap());
/// let row = db
///     .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT 6 * 7 AS n"))
///     .await?
///     .unwrap();
/// assert_eq!(row.try_get::<i64>("", "n")?, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RoutedDb {
    conn: Connection,
    /// Statements may write: after each, outside a transaction, the engine
    /// is told (read-your-writes).
    writes: bool,
}

/// A handle for any statement: writes are followed for read-your-writes
/// (as on a handle from [`EntityRouter::for_write`](crate::EntityRouter::for_write)).
impl From<Connection> for RoutedDb {
    fn from(conn: Connection) -> Self {
        RoutedDb { conn, writes: true }
    }
}

impl RoutedDb {
    /// A handle for reads only: its statements are not followed for
    /// read-your-writes.
    pub(crate) fn for_reads(conn: Connection) -> Self {
        RoutedDb { conn, writes: false }
    }

    /// After a statement that succeeded: on a handle that may write, outside
    /// a transaction, tells the engine (a followed primary keeps the
    /// write's position for the task's later reads; elsewhere, nothing).
    async fn after<T>(&self, result: Result<T, DbErr>) -> Result<T, DbErr> {
        if self.writes && result.is_ok() {
            self.conn.after_write().await;
        }
        result
    }

    /// The dbroute connection handle.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection's registered name.
    pub fn name(&self) -> ConnectionName {
        self.conn.name()
    }

    /// Whether this runs inside a dbroute transaction.
    pub fn in_transaction(&self) -> bool {
        self.conn.in_transaction()
    }

    /// A SeaORM [`DatabaseConnection`] on the same sqlx pool (not a second
    /// pool), for code written against that concrete type. It runs its
    /// statements on the pool directly: it does not wait for the
    /// connection's provisioning hook (run a statement through `self`
    /// first).
    ///
    /// # Errors
    ///
    /// [`DbErr::Custom`] inside a transaction: a `DatabaseConnection`
    /// would run outside it; use `self`.
    pub fn to_database_connection(&self) -> Result<DatabaseConnection, DbErr> {
        if self.conn.in_transaction() {
            return Err(DbErr::Custom(format!(
                "dbroute-sea-orm: the connection `{}` is inside a transaction; a DatabaseConnection would run outside it, use the RoutedDb itself",
                self.conn.name()
            )));
        }
        let pool = self.conn.pool();
        #[cfg(feature = "postgres")]
        if let Some(pool) = pool.as_postgres() {
            return Ok(DatabaseConnection::from(pool.clone()));
        }
        #[cfg(feature = "mysql")]
        if let Some(pool) = pool.as_mysql() {
            return Ok(DatabaseConnection::from(pool.clone()));
        }
        #[cfg(feature = "sqlite")]
        if let Some(pool) = pool.as_sqlite() {
            return Ok(DatabaseConnection::from(pool.clone()));
        }
        Err(DbErr::BackendNotSupported {
            db: pool.backend().as_str(),
            ctx: "dbroute-sea-orm built without this backend's feature",
        })
    }
}

/// The rows of a streamed query (SeaORM's `StreamTrait::Stream`).
#[cfg(feature = "stream")]
pub(crate) type RowStream<'a> = Pin<Box<dyn futures_util::Stream<Item = Result<QueryResult, DbErr>> + Send + 'a>>;

/// Rows as they arrive (`Select::stream(&db)`), on the connection this
/// runs on, which the stream holds until it is dropped.
#[cfg(feature = "stream")]
#[cfg_attr(docsrs, doc(cfg(feature = "stream")))]
impl sea_orm::StreamTrait for RoutedDb {
    type Stream<'a> = RowStream<'a>;

    fn get_database_backend(&self) -> DbBackend {
        exec::sea_backend(self.conn.backend())
    }

    fn stream_raw<'a>(
        &'a self,
        stmt: Statement,
    ) -> Pin<Box<dyn Future<Output = Result<RowStream<'a>, DbErr>> + 'a + Send>> {
        Box::pin(async move { Ok(exec::stream(&self.conn, stmt)) })
    }
}

#[async_trait]
impl ConnectionTrait for RoutedDb {
    fn get_database_backend(&self) -> DbBackend {
        exec::sea_backend(self.conn.backend())
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.after(exec::execute(&self.conn, stmt).await).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.after(exec::execute_unprepared(&self.conn, sql).await).await
    }

    /// A query may write too (`INSERT ... RETURNING`).
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.after(exec::query_one(&self.conn, stmt).await).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.after(exec::query_all(&self.conn, stmt).await).await
    }
}

// Transactions on a routed connection: SeaORM's trait, implemented as for a
// transaction's own connection (a savepoint there).
crate::transaction::transactions_on_conn!(RoutedDb);
