//! Transactions pinned to one connection: the handle, savepoints for
//! nesting, the ambient (task-scoped) form, and the builder that begins
//! them.

pub(crate) mod builder;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::connection::dispatch::{SqlxBackend, dispatch};
use crate::connection::handle::Connection;
use crate::connection::pool::DbPool;
use crate::connection::registry::ConnectionEntry;
use crate::error::{Error, Result};
use crate::name::ConnectionName;

tokio::task_local! {
    static CURRENT: Arc<TxCore>;
}

/// The transaction the current task is inside, if any.
#[inline]
pub(crate) fn current() -> Option<Arc<TxCore>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `future` with `core` as the current task's transaction.
pub(crate) async fn scope<F: Future>(core: Arc<TxCore>, future: F) -> F::Output {
    CURRENT.scope(core, future).await
}

/// The open connection of a transaction.
pub(crate) enum TxConn {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Finished,
}

struct TxState {
    conn: TxConn,
    /// Savepoints open now (0: only the outer transaction).
    savepoints: u32,
}

/// What every handle of one transaction shares.
pub(crate) struct TxCore {
    pub(crate) entry: Arc<ConnectionEntry>,
    state: Mutex<TxState>,
    /// The outer handle was dropped while a statement held the connection:
    /// roll back at the next chance.
    abandoned: AtomicBool,
    /// The lowest savepoint level dropped without commit or rollback (0:
    /// none): rolled back before the next statement.
    pending_rollback: AtomicU32,
    /// Begun read-only: its commit writes nothing to wait for.
    read_only: bool,
}

impl std::fmt::Debug for TxCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxCore")
            .field("connection", &self.entry.name())
            .finish_non_exhaustive()
    }
}

fn savepoint_sql(verb: &str, level: u32) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{verb} dbroute_sp_{level}"))
}

impl TxCore {
    fn finished(&self) -> Error {
        Error::TransactionFinished {
            connection: self.entry.name().to_string(),
        }
    }

    /// Locks the connection for one statement, first rolling back any
    /// savepoint that was dropped unfinished.
    pub(crate) async fn lock(&self) -> Result<MappedMutexGuard<'_, TxConn>> {
        Ok(MutexGuard::map(self.lock_state().await?, |s| &mut s.conn))
    }

    async fn lock_state(&self) -> Result<MutexGuard<'_, TxState>> {
        let mut state = self.state.lock().await;
        if self.abandoned.load(Ordering::Acquire) {
            state.conn = TxConn::Finished;
        }
        if matches!(state.conn, TxConn::Finished) {
            return Err(self.finished());
        }
        let pending = self.pending_rollback.swap(0, Ordering::AcqRel);
        if pending != 0 && pending <= state.savepoints {
            let level = pending;
            run(&mut state.conn, self, savepoint_sql("ROLLBACK TO SAVEPOINT", level)).await?;
            run(&mut state.conn, self, savepoint_sql("RELEASE SAVEPOINT", level)).await?;
            state.savepoints = level - 1;
        }
        Ok(state)
    }
}

async fn run(conn: &mut TxConn, core: &TxCore, sql: sqlx::AssertSqlSafe<String>) -> Result<()> {
    let result = dispatch!(
        conn,
        TxConn(c) => sqlx::query(sql).execute(&mut **c).await.map(drop),
        TxConn::Finished => return Err(core.finished()),
    );
    result.map_err(|source| Error::Query {
        connection: core.entry.name().to_string(),
        source,
    })
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Commit,
    Rollback,
}

/// Whether a transaction may only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    ReadOnly,
}

/// An open transaction on one connection, or a savepoint inside one.
///
/// Every statement run through it (or through [`Transaction::connection`],
/// or through the engine's routed API inside
/// [`TransactionBuilder::run`](crate::TransactionBuilder::run)) runs on its
/// connection (a write the router sends elsewhere is refused, as
/// [`TransactionRouting`](crate::TransactionRouting) says). [`commit`](Transaction::commit) and
/// [`rollback`](Transaction::rollback) consume it; dropping it unfinished
/// rolls it back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::Engine;
///
/// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// engine.connection("default")?.execute("CREATE TABLE t (x INTEGER)", &[]).await?;
///
/// let tx = engine.transaction().begin().await?;
/// tx.connection().execute("INSERT INTO t VALUES (1)", &[]).await?;
/// let inner = tx.savepoint().await?;
/// inner.connection().execute("INSERT INTO t VALUES (2)", &[]).await?;
/// inner.rollback().await?; // undoes only the 2
/// tx.commit().await?;
///
/// let n: i64 = engine.connection("default")?.fetch_one("SELECT count(*) AS n FROM t", &[]).await?.get("n");
/// assert_eq!(n, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Transaction {
    core: Arc<TxCore>,
    /// 0 for the outer transaction, n for the nth nested savepoint.
    level: u32,
    done: bool,
    /// Its trace span, when transactions are traced.
    trace: crate::trace::TransactionTrace,
}

impl Transaction {
    pub(crate) async fn begin(entry: Arc<ConnectionEntry>, access: Access) -> Result<Transaction> {
        entry.ready().await?;
        if access == Access::ReadWrite {
            crate::causal::positions::fail_fast(&entry).await?;
        }
        let error = |source: sqlx::Error| entry.acquire_error(source);
        let read_only = access == Access::ReadOnly;
        let began = async {
            dispatch!(entry.pool(), DbPool(pool) as DB => {
                let tx = match DB::BEGIN_READ_ONLY {
                    Some(begin) if read_only => pool.begin_with(begin).await,
                    _ => pool.begin().await,
                };
                Ok(DB::wrap_tx(tx.map_err(error)?))
            })
        };
        let conn = match began.await {
            Ok(conn) => conn,
            Err(error) => return Err(entry.explain(error).await),
        };
        Ok(Transaction {
            core: Arc::new(TxCore {
                entry,
                state: Mutex::new(TxState { conn, savepoints: 0 }),
                abandoned: AtomicBool::new(false),
                pending_rollback: AtomicU32::new(0),
                read_only,
            }),
            level: 0,
            done: false,
            trace: Default::default(),
        })
    }

    pub(crate) async fn nested(core: Arc<TxCore>) -> Result<Transaction> {
        let level = {
            let mut state = core.lock_state().await?;
            let level = state.savepoints + 1;
            run(&mut state.conn, &core, savepoint_sql("SAVEPOINT", level)).await?;
            state.savepoints = level;
            level
        };
        Ok(Transaction {
            core,
            level,
            done: false,
            trace: Default::default(),
        })
    }

    pub(crate) fn core(&self) -> &Arc<TxCore> {
        &self.core
    }

    /// The connection this transaction is pinned to.
    pub fn connection_name(&self) -> ConnectionName {
        self.core.entry.name()
    }

    /// Whether this is a savepoint inside another transaction.
    pub fn is_nested(&self) -> bool {
        self.level > 0
    }

    /// A handle that runs SQL inside this transaction.
    pub fn connection(&self) -> Connection {
        Connection::new(self.core.entry.clone(), Some(self.core.clone()))
    }

    /// The transaction's sqlx connection, when it is on PostgreSQL: for
    /// sqlx's own API (`query!`, `query_as!`, `QueryBuilder`) inside the
    /// transaction. The guard holds the transaction's connection: drop it
    /// before running statements through the transaction's other handles.
    ///
    /// # Errors
    ///
    /// [`Error::WrongBackend`] on another backend;
    /// [`Error::TransactionFinished`].
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres(&self) -> Result<MappedMutexGuard<'_, sqlx::PgConnection>> {
        self.lend::<sqlx::Postgres>().await
    }

    /// The transaction's sqlx connection, when it is on MySQL or MariaDB
    /// (see [`Transaction::postgres`]).
    ///
    /// # Errors
    ///
    /// As [`Transaction::postgres`].
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub async fn mysql(&self) -> Result<MappedMutexGuard<'_, sqlx::MySqlConnection>> {
        self.lend::<sqlx::MySql>().await
    }

    /// The transaction's sqlx connection, when it is on SQLite (see
    /// [`Transaction::postgres`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::Engine;
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let tx = engine.transaction().begin().await?;
    /// {
    ///     let mut conn = tx.sqlite().await?;
    ///     dbroute::sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *conn).await.unwrap();
    ///     dbroute::sqlx::query("INSERT INTO t VALUES (?)").bind(7).execute(&mut *conn).await.unwrap();
    /// }
    /// let row = tx.connection().fetch_one("SELECT x FROM t", &[]).await?;
    /// assert_eq!(row.get::<i64, _>("x"), 7);
    /// tx.rollback().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Transaction::postgres`].
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite(&self) -> Result<MappedMutexGuard<'_, sqlx::SqliteConnection>> {
        self.lend::<sqlx::Sqlite>().await
    }

    async fn lend<DB: SqlxBackend>(&self) -> Result<MappedMutexGuard<'_, DB::Connection>> {
        let conn = self.core.lock().await?;
        MappedMutexGuard::try_map(conn, |conn| DB::tx(conn).map(|tx| &mut **tx)).map_err(|_| Error::WrongBackend {
            connection: self.core.entry.name().to_string(),
            backend: self.core.entry.pool().backend(),
            requested: DB::BACKEND,
        })
    }

    /// Opens a savepoint: a nested transaction on the same connection.
    /// Rolling it back keeps the outer transaction's work.
    ///
    /// # Errors
    ///
    /// [`Error::TransactionFinished`] when the transaction is finished;
    /// [`Error::Query`] when the database refuses.
    pub async fn savepoint(&self) -> Result<Transaction> {
        Transaction::nested(self.core.clone()).await
    }

    /// Commits (the outer transaction) or releases (a savepoint).
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the database refuses; nothing is committed
    /// then. [`Error::TransactionFinished`] when an outer rollback or commit
    /// already ended this savepoint.
    pub async fn commit(mut self) -> Result<()> {
        let result = self.finish(Ending::Commit).await;
        self.trace.end("commit", &result);
        result
    }

    /// Rolls back (the outer transaction) or rolls back to and releases (a
    /// savepoint).
    ///
    /// # Errors
    ///
    /// As [`Transaction::commit`].
    pub async fn rollback(mut self) -> Result<()> {
        let result = self.finish(Ending::Rollback).await;
        self.trace.end("rollback", &result);
        result
    }

    /// Gives it the span it is traced in.
    pub(crate) fn set_trace(&mut self, trace: crate::trace::TransactionTrace) {
        self.trace = trace;
    }

    /// The span it is traced in (disabled when it is not).
    pub(crate) fn span(&self) -> tracing::Span {
        self.trace.span()
    }

    async fn finish(&mut self, ending: Ending) -> Result<()> {
        self.done = true;
        if self.level > 0 {
            return self.end_savepoint(ending == Ending::Rollback).await;
        }
        let mut state = self.core.lock().await?;
        let conn = std::mem::replace(&mut *state, TxConn::Finished);
        let name = self.core.entry.name();
        let error = |source| Error::Query {
            connection: name.to_string(),
            source,
        };
        let ended = dispatch!(
            conn,
            TxConn(tx) => match ending {
                Ending::Rollback => tx.rollback().await.map_err(error),
                Ending::Commit => tx.commit().await.map_err(error),
            },
            TxConn::Finished => Err(self.core.finished()),
        );
        drop(state);
        if ended.is_ok() && ending == Ending::Commit && !self.core.read_only {
            // Committed: its position, for read-your-writes.
            crate::causal::positions::after_write(&self.core.entry).await;
        }
        ended
    }

    async fn end_savepoint(&self, rollback: bool) -> Result<()> {
        let mut state = self.core.lock_state().await?;
        if state.savepoints < self.level {
            return Err(self.core.finished());
        }
        if rollback {
            run(
                &mut state.conn,
                &self.core,
                savepoint_sql("ROLLBACK TO SAVEPOINT", self.level),
            )
            .await?;
        }
        run(
            &mut state.conn,
            &self.core,
            savepoint_sql("RELEASE SAVEPOINT", self.level),
        )
        .await?;
        state.savepoints = self.level - 1;
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.trace.end("dropped", &Ok(()));
        if self.level > 0 {
            self.core.pending_rollback.fetch_min(self.level, Ordering::AcqRel);
            // fetch_min with the initial 0 would keep 0: set it if unset.
            let _ = self
                .core
                .pending_rollback
                .compare_exchange(0, self.level, Ordering::AcqRel, Ordering::Acquire);
            return;
        }
        match self.core.state.try_lock() {
            // Dropping sqlx's transaction queues its rollback, which runs
            // before the connection is used again (also in the pool).
            Ok(mut state) => state.conn = TxConn::Finished,
            Err(_) => self.core.abandoned.store(true, Ordering::Release),
        }
        tracing::debug!(connection = %self.core.entry.name(), "transaction dropped unfinished: rolled back");
    }
}
