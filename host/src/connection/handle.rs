//! `Connection`: a handle for running SQL on one named connection, or on the
//! open transaction that pins it.

use std::sync::Arc;

use sqlx::{Arguments, Database, Encode, Executor, IntoArguments, SqlSafeStr, SqlStr, Type};

use super::dispatch::{SqlxBackend, dispatch};
use super::lent::Lent;
use super::pool::DbPool;
use super::registry::ConnectionEntry;
use super::url::Backend;
use super::value::{Row, Value};
use crate::error::{Error, Result};
use crate::name::ConnectionName;
use crate::transaction::{Access, Transaction, TxConn, TxCore};

/// What a statement changed, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryResult {
    /// The connection that ran the statement (its registered name: the
    /// default connection's own name, not `default`).
    pub connection: ConnectionName,
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// The id of the last inserted row, where the backend reports one
    /// (MySQL/MariaDB and SQLite; `None` on PostgreSQL: use `RETURNING`).
    pub last_insert_id: Option<i64>,
}

/// A handle for running SQL on one connection.
///
/// Parameters are always bound, never interpolated. Write placeholders in
/// the backend's own syntax (`$1` on PostgreSQL and SQLite, `?` on MySQL and
/// SQLite); [`Backend::placeholder`] helps portable code. SQL must be a
/// `&'static str` or wrapped in [`sqlx::AssertSqlSafe`], as in sqlx.
///
/// Inside a transaction the handle runs on the transaction's connection.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{params, Engine};
///
/// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// let db = engine.connection("default")?;
/// db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", &[]).await?;
/// db.execute("INSERT INTO users (name) VALUES ($1)", &params!["ada"]).await?;
/// let row = db.fetch_one("SELECT id, name FROM users", &[]).await?;
/// assert_eq!(row.get::<String, _>("name"), "ada");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Connection {
    entry: Arc<ConnectionEntry>,
    tx: Option<Arc<TxCore>>,
}

fn bind<DB>(params: &[Value]) -> std::result::Result<DB::Arguments, sqlx::Error>
where
    DB: Database,
    for<'q> Value: Encode<'q, DB> + Type<DB>,
{
    let mut args = DB::Arguments::default();
    // Sized once: growing the buffer value by value reallocates it.
    args.reserve(params.len(), params.iter().map(|p| Encode::<DB>::size_hint(p)).sum());
    for p in params {
        args.add(p).map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

async fn fetch_all_on<'c, DB, E>(
    exec: E,
    sql: SqlStr,
    params: &[Value],
) -> std::result::Result<Vec<DB::Row>, sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    for<'q> Value: Encode<'q, DB> + Type<DB>,
    DB::Arguments: IntoArguments<DB>,
{
    sqlx::query_with(sql, bind::<DB>(params)?).fetch_all(exec).await
}

async fn fetch_optional_on<'c, DB, E>(
    exec: E,
    sql: SqlStr,
    params: &[Value],
) -> std::result::Result<Option<DB::Row>, sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    for<'q> Value: Encode<'q, DB> + Type<DB>,
    DB::Arguments: IntoArguments<DB>,
{
    sqlx::query_with(sql, bind::<DB>(params)?).fetch_optional(exec).await
}

async fn execute_on<'c, DB, E>(
    exec: E,
    sql: SqlStr,
    params: &[Value],
    connection: ConnectionName,
) -> std::result::Result<QueryResult, sqlx::Error>
where
    DB: SqlxBackend,
    E: Executor<'c, Database = DB>,
    for<'q> Value: Encode<'q, DB> + Type<DB>,
    DB::Arguments: IntoArguments<DB>,
{
    let result = sqlx::query_with(sql, bind::<DB>(params)?).execute(exec).await?;
    Ok(DB::query_result(result, connection))
}

/// PostgreSQL fixes a prepared statement's parameter types when it is
/// prepared, and sqlx caches statements by their text alone: the same SQL
/// run with an integer and then a float would send the float's bytes as an
/// integer. So on PostgreSQL the SQL carries the parameters' types in a
/// leading comment, giving each type signature its own cached statement.
fn typed_sql(backend: Backend, sql: SqlStr, params: &[Value]) -> SqlStr {
    if backend != Backend::Postgres || params.is_empty() {
        return sql;
    }
    let mut typed = String::with_capacity(sql.as_str().len() + params.len() + 16);
    typed.push_str("/* dbroute:");
    for p in params {
        typed.push(match p {
            Value::Null => 'n',
            Value::Bool(_) => 'b',
            Value::Int(_) => 'i',
            Value::Float(_) => 'f',
            Value::Text(_) => 't',
            Value::Bytes(_) => 'x',
        });
    }
    typed.push_str(" */ ");
    typed.push_str(sql.as_str());
    sqlx::AssertSqlSafe(typed).into_sql_str()
}

/// Takes a connection from the pool, counted as waiting meanwhile.
///
/// sqlx's acquire future is large (about 8.5 KiB for PostgreSQL, 7 KiB for
/// MySQL): held inline, it made every statement's future over 17 KiB, copied
/// in full each time the future moved. Boxed, as sqlx's own `&Pool`
/// executor boxes it, it is allocated once and never copied.
///
/// A connection the factory made is provisioned first (once; boxed too,
/// and here, where it shares the acquire's room in the statement's future
/// instead of adding to it).
async fn acquire<DB: Database>(pool: &sqlx::Pool<DB>, on: &Connection) -> Result<sqlx::pool::PoolConnection<DB>> {
    on.entry.ready().await?;
    let _waiting = on.entry.stats().waiting_guard();
    Box::pin(pool.acquire()).await.map_err(|e| on.entry.acquire_error(e))
}

/// Runs `$body` with `$exec` bound to the right executor: a connection
/// taken from the pool (once the connection is provisioned), or the
/// transaction's connection.
macro_rules! on_executor {
    ($self:ident, |$exec:ident| $body:expr) => {{
        match &$self.tx {
            None => dispatch!($self.entry.pool(), DbPool(pool) => {
                let mut conn = acquire(pool, $self).await?;
                let $exec = &mut *conn;
                $body
            }),
            Some(tx) => {
                let mut guard = tx.lock().await?;
                dispatch!(
                    &mut *guard,
                    TxConn(conn) => {
                        let $exec = &mut **conn;
                        $body
                    },
                    TxConn::Finished => unreachable!("TxCore::lock refuses finished transactions"),
                )
            }
        }
    }};
}

impl Connection {
    pub(crate) fn new(entry: Arc<ConnectionEntry>, tx: Option<Arc<TxCore>>) -> Self {
        Connection { entry, tx }
    }

    /// The registered connection it runs on.
    #[inline]
    pub(crate) fn entry(&self) -> &Arc<ConnectionEntry> {
        &self.entry
    }

    /// Whether it was declared a replica of another connection.
    #[inline]
    pub(crate) fn is_replica(&self) -> bool {
        self.entry.replica_of().is_some()
    }

    /// The connection's registered name (the real name of the default, not
    /// the alias `default`).
    pub fn name(&self) -> ConnectionName {
        self.entry.name()
    }

    /// The backend behind this connection.
    pub fn backend(&self) -> Backend {
        self.entry.url().backend()
    }

    /// The typed sqlx pool behind this connection. Statements run directly on
    /// it bypass any open transaction, and do not wait for the connection
    /// factory's [provisioning hook](crate::ConnectionFactory::provision)
    /// (run a statement through the handle first).
    pub fn pool(&self) -> &DbPool {
        self.entry.pool()
    }

    /// Whether this handle runs inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// The sqlx connection this handle runs on, when it is on PostgreSQL:
    /// one taken from the pool (once the connection is provisioned), or,
    /// inside a transaction, the transaction's own. For sqlx's own API
    /// (`query!`, `QueryBuilder`) and the libraries built on sqlx, on the
    /// connection dbroute chose. Drop it before running statements through
    /// the transaction's other handles.
    ///
    /// # Errors
    ///
    /// [`Error::WrongBackend`] on another backend; [`Error::PoolTimedOut`]
    /// when no connection became free in time;
    /// [`Error::TransactionFinished`]; [`Error::Provision`] when the
    /// connection's provisioning hook failed.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres(&self) -> Result<Lent<'_, sqlx::Postgres>> {
        self.lend().await
    }

    /// The sqlx connection this handle runs on, when it is on MySQL or
    /// MariaDB (see [`Connection::postgres`]).
    ///
    /// # Errors
    ///
    /// As [`Connection::postgres`].
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub async fn mysql(&self) -> Result<Lent<'_, sqlx::MySql>> {
        self.lend().await
    }

    /// The sqlx connection this handle runs on, when it is on SQLite (see
    /// [`Connection::postgres`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::Engine;
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let db = engine.connection("default")?;
    /// let mut conn = db.sqlite().await?;
    /// let (n,): (i64,) = dbroute::sqlx::query_as("SELECT 6 * 7").fetch_one(&mut *conn).await.unwrap();
    /// assert_eq!(n, 42);
    /// assert!(!conn.in_transaction());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Connection::postgres`].
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite(&self) -> Result<Lent<'_, sqlx::Sqlite>> {
        self.lend().await
    }

    async fn lend<DB: SqlxBackend>(&self) -> Result<Lent<'_, DB>> {
        let wrong_backend = || Error::WrongBackend {
            connection: self.entry.name().to_string(),
            backend: self.backend(),
            requested: DB::BACKEND,
        };
        match &self.tx {
            None => {
                let pool = DB::pool(self.entry.pool()).ok_or_else(wrong_backend)?;
                match acquire(pool, self).await {
                    Ok(conn) => Ok(Lent::pooled(conn)),
                    Err(error) => Err(Box::pin(self.entry.explain(error)).await),
                }
            }
            Some(tx) => {
                let conn = tx.lock().await?;
                tokio::sync::MappedMutexGuard::try_map(conn, |conn| DB::tx(conn).map(|tx| &mut **tx))
                    .map(Lent::pinned)
                    .map_err(|_| wrong_backend())
            }
        }
    }

    /// Tells the engine that a write committed here, outside a transaction,
    /// through the sqlx connection this handle lent ([`Connection::postgres`]
    /// and its kin), which the engine does not see: on a primary whose
    /// writes are followed for read-your-writes
    /// ([`EngineBuilder::read_your_writes`](crate::EngineBuilder::read_your_writes)),
    /// it keeps the write's position for the current task, as a routed
    /// write does, so that the task's later reads routed to a replica see
    /// it. Does nothing elsewhere, nor inside a transaction (its commit
    /// does it). Never fails (a position that cannot be read is logged).
    pub async fn after_write(&self) {
        if self.tx.is_none() {
            Box::pin(crate::causal::positions::after_write(&self.entry)).await;
        }
    }

    /// Begins a transaction on this handle's connection; on a handle inside
    /// a transaction, a savepoint inside it (as
    /// [`Transaction::savepoint`]). The transaction is this handle's
    /// connection's whatever the routers say now: resolution happened when
    /// the handle was made.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::Engine;
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let db = engine.connection("default")?;
    /// db.execute("CREATE TABLE t (x INTEGER)", &[]).await?;
    /// let tx = db.begin().await?;
    /// tx.connection().execute("INSERT INTO t VALUES (1)", &[]).await?;
    /// let inner = tx.connection().begin().await?; // a savepoint
    /// assert!(inner.is_nested());
    /// inner.rollback().await?;
    /// tx.rollback().await?;
    /// let n: i64 = db.fetch_one("SELECT count(*) AS n FROM t", &[]).await?.get("n");
    /// assert_eq!(n, 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TransactionBuilder::begin`](crate::TransactionBuilder::begin).
    pub async fn begin(&self) -> Result<Transaction> {
        match &self.tx {
            Some(core) => Transaction::nested(core.clone()).await,
            None => Transaction::begin(self.entry.clone(), Access::ReadWrite).await,
        }
    }

    fn error(&self, source: sqlx::Error) -> Error {
        match source {
            sqlx::Error::PoolTimedOut => Error::PoolTimedOut {
                connection: self.entry.name().to_string(),
                timeout: self.entry.settings().get_acquire_timeout(),
            },
            sqlx::Error::RowNotFound => Error::RowNotFound {
                connection: self.entry.name().to_string(),
            },
            source => Error::Query {
                connection: self.entry.name().to_string(),
                source,
            },
        }
    }

    /// Runs a statement and reports what it changed.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the database refuses the statement,
    /// [`Error::PoolTimedOut`] when no connection became free in time.
    pub async fn execute(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<QueryResult> {
        let sql = typed_sql(self.backend(), sql.into_sql_str(), params);
        self.timed(async {
            on_executor!(self, |exec| execute_on(exec, sql, params, self.entry.name())
                .await
                .map_err(|e| self.error(e)))
        })
        .await
    }

    /// Runs `work`, counting it in the connection's statistics.
    async fn timed<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let started = std::time::Instant::now();
        let mut result = work.await;
        if let Err(error @ Error::PoolTimedOut { .. }) = result {
            // Boxed: the error path's future stays out of every statement's.
            result = Err(Box::pin(self.entry.explain(error)).await);
        }
        self.entry.stats().record(started.elapsed(), result.as_ref().err());
        result
    }

    /// Runs a query and returns every row.
    ///
    /// # Errors
    ///
    /// As [`Connection::execute`], and [`Error::Decode`] for a column type
    /// that [`Row`] cannot read.
    pub async fn fetch_all(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Vec<Row>> {
        let sql = typed_sql(self.backend(), sql.into_sql_str(), params);
        self.timed(async {
            on_executor!(self, |exec| {
                let rows = fetch_all_on(exec, sql, params).await.map_err(|e| self.error(e))?;
                Ok(rows.into_iter().map(Row::from).collect())
            })
        })
        .await
    }

    /// Runs a query and returns its first row, if any.
    ///
    /// # Errors
    ///
    /// As [`Connection::fetch_all`].
    pub async fn fetch_optional(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Option<Row>> {
        let sql = typed_sql(self.backend(), sql.into_sql_str(), params);
        self.timed(async {
            on_executor!(self, |exec| {
                let row = fetch_optional_on(exec, sql, params).await.map_err(|e| self.error(e))?;
                Ok(row.map(Row::from))
            })
        })
        .await
    }

    /// Runs a query that must return a row, and returns the first.
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is none; otherwise as
    /// [`Connection::fetch_all`].
    pub async fn fetch_one(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Row> {
        self.fetch_optional(sql, params)
            .await?
            .ok_or_else(|| Error::RowNotFound {
                connection: self.entry.name().to_string(),
            })
    }
}
