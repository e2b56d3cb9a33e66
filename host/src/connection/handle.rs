//! `Connection`: a handle for running SQL on one named connection, or on the
//! open transaction that pins it.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use sqlx::{Arguments, Database, Encode, Executor, IntoArguments, SqlSafeStr, SqlStr, Type};

use super::dispatch::{SqlxBackend, dispatch};
use super::lent::Lent;
use super::pool::DbPool;
use super::portable::{self, Translated};
use super::registry::ConnectionEntry;
use super::typed_sql;
use super::url::Backend;
use super::value::{Row, Value};
use crate::error::{Error, Result};
use crate::name::ConnectionName;
use crate::transaction::{Access, Transaction, TxConn, TxCore};

/// What a statement changed, and where.
///
/// The id of an inserted row: `last_insert_id` on MySQL/MariaDB and
/// SQLite; on PostgreSQL, `INSERT … RETURNING id` with a fetch, which
/// SQLite (3.35+) and MariaDB (10.5+) also run, so that one statement
/// reads the id on all three (MySQL has no `RETURNING`): see `docs/sql.md`.
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
/// SQLite), or `$1`, `$2`… everywhere on a [portable](Connection::portable)
/// handle. SQL must be a `&'static str` or wrapped in
/// [`sqlx::AssertSqlSafe`], as in sqlx.
///
/// Rows read as [`Row`]s, or as your own types through serde
/// ([`fetch_all_as`](Connection::fetch_all_as) and the other `_as` reads).
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
    portable: bool,
}

/// A statement's parameters, in the order its placeholders bind them.
#[derive(Clone, Copy)]
struct Params<'a> {
    values: &'a [Value],
    /// For SQL translated from portable placeholders: the parameter each
    /// placeholder binds, in order.
    order: Option<&'a [usize]>,
}

fn bind<DB>(params: Params<'_>) -> std::result::Result<DB::Arguments, sqlx::Error>
where
    DB: Database,
    for<'q> Value: Encode<'q, DB> + Type<DB>,
{
    let mut args = DB::Arguments::default();
    match params.order {
        None => {
            // Sized once: growing the buffer value by value reallocates it.
            let values = params.values;
            args.reserve(values.len(), values.iter().map(|p| Encode::<DB>::size_hint(p)).sum());
            for p in values {
                args.add(p).map_err(sqlx::Error::Encode)?;
            }
        }
        Some(order) => {
            // `Translated::check` made sure every index is in range.
            for p in order.iter().filter_map(|&i| params.values.get(i)) {
                args.add(p).map_err(sqlx::Error::Encode)?;
            }
        }
    }
    Ok(args)
}

async fn fetch_all_on<'c, DB, E>(
    exec: E,
    sql: SqlStr,
    params: Params<'_>,
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
    params: Params<'_>,
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
    params: Params<'_>,
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
///
/// A statement's wait is measured from its clock's start (`clock`), and
/// recorded with the statement when it ends: one clock read here, and one
/// histogram lookup per statement. Without a clock (a connection lent to
/// the caller), the wait is measured and recorded here.
async fn acquire<DB: Database>(
    pool: &sqlx::Pool<DB>,
    on: &Connection,
    clock: Option<&StatementClock>,
) -> Result<sqlx::pool::PoolConnection<DB>> {
    on.entry.ready().await?;
    let _waiting = on.entry.stats().waiting_guard();
    let started = clock.map_or_else(std::time::Instant::now, |clock| clock.started);
    let acquired = Box::pin(pool.acquire()).await;
    let waited = started.elapsed();
    match clock {
        Some(clock) => clock.waited(waited),
        None => on.entry.stats().record_acquire(waited),
    }
    acquired.map_err(|e| on.entry.acquire_error(e))
}

/// One statement's clock: when it started, and how long it waited for a
/// pooled connection (recorded with the statement when it ends).
struct StatementClock {
    started: std::time::Instant,
    /// The wait in nanoseconds; `u64::MAX`: none (a transaction's
    /// statement takes no pooled connection).
    waited_nanos: std::sync::atomic::AtomicU64,
}

impl StatementClock {
    #[inline]
    fn start() -> Self {
        StatementClock {
            started: std::time::Instant::now(),
            waited_nanos: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    #[inline]
    fn waited(&self, waited: std::time::Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX - 1);
        self.waited_nanos.store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    #[inline]
    fn wait(&self) -> Option<std::time::Duration> {
        match self.waited_nanos.load(std::sync::atomic::Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(std::time::Duration::from_nanos(nanos)),
        }
    }
}

/// Runs `$body` with `$exec` bound to the right executor: a connection
/// taken from the pool (once the connection is provisioned), or the
/// transaction's connection.
macro_rules! on_executor {
    ($self:ident, $clock:expr, |$exec:ident| $body:expr) => {{
        match &$self.tx {
            None => dispatch!($self.entry.pool(), DbPool(pool) => {
                let mut conn = acquire(pool, $self, Some($clock)).await?;
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

/// Runs one statement of `$self` as every statement method does: the SQL
/// checked (and its portable placeholders translated), its parameters in
/// their order, then `$body` timed on the right executor.
macro_rules! run_statement {
    ($self:ident, $sql:ident, $params:ident, |$exec:ident, $s:ident, $p:ident| $body:expr) => {{
        let ($s, translated) = $self.statement($sql.into_sql_str(), $params)?;
        let $p = Params {
            values: $params,
            order: translated.as_deref().map(Translated::order),
        };
        let clock = StatementClock::start();
        // Awaited where it is made: a future passed to an `async fn`
        // would be stored twice in the statement's future.
        let result = async { on_executor!($self, &clock, |$exec| $body) }.await;
        $self.record_statement(&clock, result).await
    }};
}

impl Connection {
    pub(crate) fn new(entry: Arc<ConnectionEntry>, tx: Option<Arc<TxCore>>) -> Self {
        Connection {
            entry,
            tx,
            portable: false,
        }
    }

    /// This handle, taking SQL with portable placeholders: `$1`, `$2`… on
    /// every backend, translated to `?` on MySQL/MariaDB (each distinct SQL
    /// text is scanned once, then cached), run as written on PostgreSQL
    /// and SQLite, whose own syntax it is. A `$n` inside a string literal,
    /// a quoted identifier, a comment or a dollar-quoted body is left
    /// alone; a placeholder may come more than once and in any order. A
    /// `?` placeholder in portable SQL is refused on MySQL
    /// ([`Error::PortableSql`]). `docs/sql.md` has the details.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{params, Engine};
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let db = engine.connection("default")?.portable();
    /// db.execute("CREATE TABLE t (a INTEGER, b TEXT)", &[]).await?;
    /// // The same text runs on MySQL, where it becomes `VALUES (?, ?)`.
    /// db.execute("INSERT INTO t (b, a) VALUES ($2, $1)", &params![1, "one"]).await?;
    /// let row = db.fetch_one("SELECT b FROM t WHERE a = $1 AND b <> '$1'", &params![1]).await?;
    /// assert_eq!(row.get::<String, _>("b"), "one");
    /// # Ok(()) }
    /// ```
    pub fn portable(mut self) -> Self {
        self.portable = true;
        self
    }

    /// Whether this handle takes portable placeholders (see
    /// [`Connection::portable`]).
    pub fn is_portable(&self) -> bool {
        self.portable
    }

    pub(crate) fn with_portable(mut self, portable: bool) -> Self {
        self.portable = portable;
        self
    }

    /// The SQL to run, and the translation of portable placeholders when
    /// it had to be translated.
    fn statement(&self, sql: SqlStr, params: &[Value]) -> Result<(SqlStr, Option<Arc<Translated>>)> {
        let backend = self.backend();
        if self.portable && backend == Backend::MySql {
            let translated = portable::for_mysql(sql.as_str())
                .and_then(|t| t.check(params.len()).map(|()| t))
                .map_err(|problem| Error::PortableSql {
                    connection: self.entry.name().to_string(),
                    problem,
                })?;
            return Ok((translated.sql(), Some(translated)));
        }
        if backend == Backend::Postgres {
            return Ok((typed_sql::for_postgres(sql, params), None));
        }
        Ok((sql, None))
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
                match acquire(pool, self, None).await {
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
            crate::causal::positions::after_write(&self.entry).await;
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
        run_statement!(self, sql, params, |exec, sql, params| {
            execute_on(exec, sql, params, self.entry.name())
                .await
                .map_err(|e| self.error(e))
        })
    }

    /// Counts the statement `clock` timed, which ended with `result`, in
    /// the connection's statistics.
    async fn record_statement<T>(&self, clock: &StatementClock, mut result: Result<T>) -> Result<T> {
        if let Err(error @ Error::PoolTimedOut { .. }) = result {
            // Boxed: the error path's future stays out of every statement's.
            result = Err(Box::pin(self.entry.explain(error)).await);
        }
        self.entry
            .stats()
            .record(clock.started.elapsed(), clock.wait(), result.as_ref().err());
        result
    }

    /// Runs a query and returns every row.
    ///
    /// # Errors
    ///
    /// As [`Connection::execute`], and [`Error::Decode`] for a column type
    /// that [`Row`] cannot read.
    pub async fn fetch_all(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Vec<Row>> {
        run_statement!(self, sql, params, |exec, sql, params| {
            let rows = fetch_all_on(exec, sql, params).await.map_err(|e| self.error(e))?;
            Ok(rows.into_iter().map(Row::from).collect())
        })
    }

    /// Runs a query and returns its first row, if any.
    ///
    /// # Errors
    ///
    /// As [`Connection::fetch_all`].
    pub async fn fetch_optional(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Option<Row>> {
        run_statement!(self, sql, params, |exec, sql, params| {
            let row = fetch_optional_on(exec, sql, params).await.map_err(|e| self.error(e))?;
            Ok(row.map(Row::from))
        })
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

    /// Runs a query and reads every row as `T`, through serde: a struct's
    /// fields are the columns by name, a tuple's the columns in order, and
    /// a row of one column reads as a plain value. Each cell converts as
    /// [`Row::try_get`] converts it (an `INT4` reads as `i64`, `0`/`1` as
    /// `bool`), so one type reads the rows of every backend; see
    /// [`Row::deserialize`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{params, Engine};
    ///
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct User {
    ///     id: i64,
    ///     name: String,
    ///     email: Option<String>,
    /// }
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let db = engine.connection("default")?;
    /// db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)", &[]).await?;
    /// db.execute("INSERT INTO users (name) VALUES ($1)", &params!["ada"]).await?;
    /// let users: Vec<User> = db.fetch_all_as("SELECT * FROM users", &[]).await?;
    /// assert_eq!(users, [User { id: 1, name: "ada".into(), email: None }]);
    /// let count: i64 = db.fetch_one_as("SELECT COUNT(*) FROM users", &[]).await?;
    /// assert_eq!(count, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Connection::fetch_all`], and [`Error::RowType`] when a row does
    /// not read as `T` (the message names the column, or the field the row
    /// lacks).
    pub async fn fetch_all_as<T: DeserializeOwned>(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Vec<T>> {
        self.fetch_all(sql, params)
            .await?
            .iter()
            .map(Row::deserialize)
            .collect()
    }

    /// Runs a query and reads its first row, if any, as `T` (see
    /// [`Connection::fetch_all_as`]).
    ///
    /// # Errors
    ///
    /// As [`Connection::fetch_all_as`].
    pub async fn fetch_optional_as<T: DeserializeOwned>(
        &self,
        sql: impl SqlSafeStr,
        params: &[Value],
    ) -> Result<Option<T>> {
        self.fetch_optional(sql, params)
            .await?
            .as_ref()
            .map(Row::deserialize)
            .transpose()
    }

    /// Runs a query that must return a row, and reads the first as `T`
    /// (see [`Connection::fetch_all_as`]).
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is none; otherwise as
    /// [`Connection::fetch_all_as`].
    pub async fn fetch_one_as<T: DeserializeOwned>(&self, sql: impl SqlSafeStr, params: &[Value]) -> Result<T> {
        self.fetch_one(sql, params).await?.deserialize()
    }
}
