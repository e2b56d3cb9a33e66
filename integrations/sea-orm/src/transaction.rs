//! `RoutedTransaction`: a dbroute transaction SeaORM runs its statements
//! in (pinned to one connection, as every dbroute transaction).

use std::pin::Pin;

use async_trait::async_trait;
use dbroute::{Backend, Connection, Transaction};
use sea_orm::{
    AccessMode, ConnectionTrait, DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult, Statement,
    TransactionError, TransactionOptions, TransactionSession, TransactionTrait,
};

use crate::error::{Error, route_err};
use crate::exec;

/// A dbroute transaction, for SeaORM: every statement SeaORM runs through
/// it runs on the transaction's one connection; [`commit`](Self::commit)
/// or [`rollback`](Self::rollback) end it, and dropping it unfinished rolls
/// it back. [`begin`](TransactionTrait::begin) on it opens a savepoint.
///
/// Made by [`RoutedDb::begin`](TransactionTrait::begin) (and SeaORM's
/// `transaction` closure), by
/// [`EntityRouter::begin_for_write`](crate::EntityRouter::begin_for_write),
/// or from a dbroute [`Transaction`] begun by the engine
/// (`RoutedTransaction::from(tx)`). To keep a dbroute transaction and run
/// SeaORM inside it, use a [`RoutedDb`](crate::RoutedDb) made from
/// [`Transaction::connection`] instead.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// use dbroute_sea_orm::RoutedTransaction;
/// use sea_orm::{ConnectionTrait, TransactionSession};
///
/// let engine = dbroute::Engine::builder().connection("default", "sqlite::memory:").build().await.unwrap();
/// engine.connection("default").unwrap().execute("CREATE TABLE t (x INTEGER)", &[]).await.unwrap();
///
/// let txn = RoutedTransaction::from(engine.transaction().on("default").begin().await.unwrap());
/// txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
/// txn.rollback().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RoutedTransaction {
    tx: Transaction,
    conn: Connection,
}

impl From<Transaction> for RoutedTransaction {
    fn from(tx: Transaction) -> Self {
        let conn = tx.connection();
        RoutedTransaction { tx, conn }
    }
}

impl RoutedTransaction {
    /// The dbroute transaction.
    pub fn transaction(&self) -> &Transaction {
        &self.tx
    }

    /// The dbroute transaction, given back (to commit it through dbroute,
    /// or keep using it with dbroute's own API).
    pub fn into_inner(self) -> Transaction {
        self.tx
    }

    /// The connection this transaction is pinned to.
    pub fn connection_name(&self) -> dbroute::ConnectionName {
        self.tx.connection_name()
    }

    /// Commits (or releases a savepoint).
    ///
    /// # Errors
    ///
    /// [`DbErr::Conn`] when the database refuses (nothing is committed
    /// then) or the transaction is already finished.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.commit().await.map_err(route_err)
    }

    /// Rolls back (or rolls back to a savepoint and releases it).
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit).
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.tx.rollback().await.map_err(route_err)
    }

    /// Begins a transaction on `conn` (a savepoint when `conn` is a
    /// transaction's), with SeaORM's settings where the backend can honour
    /// them after the transaction began (PostgreSQL: `SET TRANSACTION`; a
    /// savepoint takes its transaction's settings).
    pub(crate) async fn begin_on(
        conn: &Connection,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<RoutedTransaction, DbErr> {
        let txn = RoutedTransaction::from(conn.begin().await.map_err(route_err)?);
        if txn.tx.is_nested() {
            return Ok(txn);
        }
        let mut settings = Vec::new();
        if let Some(level) = isolation_level {
            settings.push(format!("ISOLATION LEVEL {level}"));
        }
        if let Some(mode) = access_mode {
            settings.push(mode.to_string());
        }
        if settings.is_empty() {
            return Ok(txn);
        }
        if conn.backend() != Backend::Postgres {
            // Dropped unfinished: rolled back.
            return Err(Error::TransactionConfig {
                setting: if isolation_level.is_some() {
                    "an isolation level"
                } else {
                    "an access mode"
                },
                connection: conn.name().to_string(),
                backend: conn.backend(),
            }
            .into());
        }
        txn.execute_unprepared(&format!("SET TRANSACTION {}", settings.join(" ")))
            .await?;
        Ok(txn)
    }

    /// Runs SeaORM's transaction closure: commits on `Ok`, rolls back on
    /// `Err`.
    pub(crate) async fn run<F, T, E>(self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c RoutedTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let result = callback(&self).await.map_err(TransactionError::Transaction);
        if result.is_ok() {
            self.commit().await.map_err(TransactionError::Connection)?;
        } else {
            self.rollback().await.map_err(TransactionError::Connection)?;
        }
        result
    }
}

/// Rows as they arrive, inside the transaction (which the stream holds
/// until it is dropped).
#[cfg(feature = "stream")]
#[cfg_attr(docsrs, doc(cfg(feature = "stream")))]
impl sea_orm::StreamTrait for RoutedTransaction {
    type Stream<'a> = crate::connection::RowStream<'a>;

    fn get_database_backend(&self) -> DbBackend {
        exec::sea_backend(self.conn.backend())
    }

    fn stream_raw<'a>(
        &'a self,
        stmt: Statement,
    ) -> Pin<Box<dyn Future<Output = Result<Self::Stream<'a>, DbErr>> + 'a + Send>> {
        Box::pin(async move { Ok(exec::stream(&self.conn, stmt)) })
    }
}

#[async_trait]
impl ConnectionTrait for RoutedTransaction {
    fn get_database_backend(&self) -> DbBackend {
        exec::sea_backend(self.conn.backend())
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        exec::execute(&self.conn, stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        exec::execute_unprepared(&self.conn, sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        exec::query_one(&self.conn, stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        exec::query_all(&self.conn, stmt).await
    }
}

#[async_trait]
impl TransactionSession for RoutedTransaction {
    async fn commit(self) -> Result<(), DbErr> {
        RoutedTransaction::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        RoutedTransaction::rollback(self).await
    }
}

/// SeaORM's `TransactionTrait` for a type with a `conn: Connection` field:
/// every transaction it begins is a dbroute transaction on that connection
/// (a savepoint inside one). [`RoutedDb`](crate::RoutedDb) and
/// [`RoutedTransaction`] share it.
macro_rules! transactions_on_conn {
    ($ty:ty) => {
        #[async_trait]
        impl TransactionTrait for $ty {
            type Transaction = RoutedTransaction;

            /// Begins a dbroute transaction on this connection (a savepoint when
            /// it is already a transaction's connection).
            async fn begin(&self) -> Result<RoutedTransaction, DbErr> {
                RoutedTransaction::begin_on(&self.conn, None, None).await
            }

            /// As [`begin`](Self::begin); an isolation level or access mode is
            /// set with `SET TRANSACTION` on PostgreSQL, and refused on the other
            /// backends (dbroute begins the transaction before SeaORM could set
            /// them there).
            async fn begin_with_config(
                &self,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<RoutedTransaction, DbErr> {
                RoutedTransaction::begin_on(&self.conn, isolation_level, access_mode).await
            }

            async fn begin_with_options(&self, options: TransactionOptions) -> Result<RoutedTransaction, DbErr> {
                RoutedTransaction::begin_on(&self.conn, options.isolation_level, options.access_mode).await
            }

            async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(&'c RoutedTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
                    + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let txn = self.begin().await.map_err(TransactionError::Connection)?;
                txn.run(callback).await
            }

            async fn transaction_with_config<F, T, E>(
                &self,
                callback: F,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(&'c RoutedTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
                    + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let txn = self
                    .begin_with_config(isolation_level, access_mode)
                    .await
                    .map_err(TransactionError::Connection)?;
                txn.run(callback).await
            }
        }
    };
}
pub(crate) use transactions_on_conn;

transactions_on_conn!(RoutedTransaction);
