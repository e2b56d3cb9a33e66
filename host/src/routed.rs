//! `Routed`: one routed operation being put together (model, hints,
//! override, origin), then run.

use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use sqlx::SqlSafeStr;

use crate::causal::ReplicaFailover;
use crate::connection::handle::{Connection, QueryResult};
use crate::connection::value::{Row, Value};
use crate::engine::{Decided, Engine, Pending, ReadFailure, Settle};
use crate::error::{Error, Result};
use crate::model::{Hints, ModelInfo, NO_HINTS};
use crate::router::RouteKind;

/// Runs `$method` on `$conn`, the connection the operation resolved to;
/// `$settled` is told where a read ends up once settled.
///
/// A write runs where it resolved, never anywhere else: outside a
/// transaction, a primary known to be down fails fast, and after the
/// write its WAL position is kept for read-your-writes.
///
/// A read outside a transaction and not named with `using` is settled
/// first (a replica that has not replayed what it must see, or is
/// unavailable, gives way to its own primary: `engine/causal.rs`); then,
/// if its connection proves unreachable, it runs once more on the
/// replica's primary or on `default`, as the policies allow (see
/// [`Routed::may_fall_back`]). The SQL is copied only when a retry is
/// possible.
macro_rules! run_on {
    ($self:ident, $conn:ident, $method:ident, $sql:ident, $params:ident, $settled:expr) => {{
        if $self.kind == RouteKind::Write {
            let follow = !$conn.in_transaction();
            if follow {
                crate::causal::positions::fail_fast($conn.entry()).await?;
            }
            let result = $conn.$method($sql, $params).await;
            if follow && result.is_ok() {
                crate::causal::positions::after_write($conn.entry()).await;
            }
            return result;
        }
        // Settled at once unless a replica's last known position is not
        // enough: no future of its own on the common path.
        let conn = match $self.settle_fast($conn)? {
            Ok(conn) => conn,
            Err(pending) => $self.settle_slow(pending).await?,
        };
        ($settled)(&conn);
        if !$self.may_fall_back(&conn) {
            return conn.$method($sql, $params).await;
        }
        // Its own statement: a scrutinee's future would stay in the
        // operation's future beside the retry's.
        let result = conn.$method($sql.clone(), $params).await;
        match result {
            Err(error) if error.is_unreachable() => {
                // Boxed: the fallback's future stays out of every read's.
                let elsewhere = Box::pin($self.fallback(&conn, error)).await?;
                elsewhere.$method($sql, $params).await
            }
            result => result,
        }
    }};
}

/// Runs `$method` on the connection the operation resolves to (see
/// [`run_on!`]). When routed operations are traced
/// (`trace::operation_enabled`), in the operation's span, which records
/// the connection, who decided it, the time taken and any error; otherwise
/// with no span, clock or formatting.
macro_rules! run_routed {
    ($self:ident, $method:ident, $sql:ident, $params:ident) => {{
        let sql = $sql.into_sql_str();
        if crate::trace::operation_enabled() {
            let span = crate::trace::operation_span($self.kind, $self.model.name());
            let started = std::time::Instant::now();
            let result = match $self.resolve(|connection, decided| {
                crate::trace::record_decision(&span, connection.name(), decided);
                connection
            }) {
                Ok(conn) => {
                    let settled = |conn: &Connection| crate::trace::record_settled(&span, conn.name());
                    // Boxed: a traced operation's future (a span's worth
                    // more) stays out of every untraced one's.
                    let run = async { run_on!($self, conn, $method, sql, $params, settled) };
                    Box::pin(tracing::Instrument::instrument(run, span.clone())).await
                }
                Err(error) => Err(error),
            };
            crate::trace::record_end(&span, started, &result);
            result
        } else {
            let conn = $self.resolved()?;
            run_on!($self, conn, $method, sql, $params, |_: &Connection| ())
        }
    }};
}

/// A routed read or write: add hints or an override, then resolve it to a
/// connection or run SQL on the connection it resolves to.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{Engine, Model};
///
/// #[derive(Model)]
/// #[dbroute(table = "events")]
/// struct Event;
///
/// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// engine.write::<Event>().execute("CREATE TABLE events (id INTEGER)", &[]).await?;
/// let rows = engine.read::<Event>().hint("tenant", "acme").fetch_all("SELECT id FROM events", &[]).await?;
/// assert!(rows.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Routed<'a> {
    engine: &'a Engine,
    kind: RouteKind,
    model: &'a ModelInfo,
    hints: Option<Hints>,
    using: Option<String>,
    origin: Option<String>,
    portable: bool,
}

impl<'a> Routed<'a> {
    pub(crate) fn new(engine: &'a Engine, kind: RouteKind, model: &'a ModelInfo) -> Self {
        Routed {
            engine,
            kind,
            model,
            hints: None,
            using: None,
            origin: None,
            portable: engine.portable_sql(),
        }
    }

    /// Takes its SQL with portable placeholders: `$1`, `$2`… whichever
    /// backend the router picks, translated for MySQL/MariaDB (see
    /// [`Connection::portable`]; [`EngineBuilder::portable_sql`](crate::EngineBuilder::portable_sql)
    /// makes it the engine's default).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{params, Engine, Model};
    ///
    /// #[derive(Model)]
    /// #[dbroute(table = "users")]
    /// struct User;
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// engine.write::<User>().execute("CREATE TABLE users (id INTEGER, name TEXT)", &[]).await?;
    /// engine.write::<User>().portable().execute("INSERT INTO users VALUES ($1, $2)", &params![1, "ada"]).await?;
    /// let name: String = engine
    ///     .read::<User>()
    ///     .portable()
    ///     .fetch_one_as("SELECT name FROM users WHERE id = $1", &params![1])
    ///     .await?;
    /// assert_eq!(name, "ada");
    /// # Ok(()) }
    /// ```
    pub fn portable(mut self) -> Self {
        self.portable = true;
        self
    }

    /// Adds one hint for the router.
    pub fn hint(mut self, key: impl Into<String>, value: impl Into<Json>) -> Self {
        self.hints.get_or_insert_with(Hints::new).insert(key, value);
        self
    }

    /// Adds these hints for the router.
    pub fn hints(mut self, hints: &Hints) -> Self {
        match &mut self.hints {
            Some(mine) => mine.extend(hints),
            None => self.hints = Some(hints.clone()),
        }
        self
    }

    /// Uses this connection, whatever the router would say (it is not
    /// asked). The name must be registered.
    pub fn using(mut self, connection: impl Into<String>) -> Self {
        self.using = Some(connection.into());
        self
    }

    /// The operation's origin: the connection the row or object it is about
    /// was read from (Django's `instance._state.db`), such as the
    /// [`Connection::name`] of the read that fetched it. Routers see it
    /// ([`RouteRequest::origin`](crate::router::RouteRequest::origin), and `"origin"` in a
    /// WebAssembly router's input); when none has an opinion, the operation
    /// goes there instead of to `default`. The resolution order is: an open
    /// transaction, [`using`](Routed::using), the router chain, the origin,
    /// `default`. Inside a transaction the origin does not move the
    /// operation (see [`TransactionRouting`](crate::TransactionRouting)).
    ///
    /// The name must be registered (or made by the engine's
    /// [`ConnectionFactory`](crate::ConnectionFactory)), as for `using`:
    /// else resolving fails with [`Error::UnknownConnection`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Model, params};
    ///
    /// #[derive(Model)]
    /// #[dbroute(table = "users")]
    /// struct User;
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection("other", "sqlite::memory:")
    ///     .build()
    ///     .await?;
    /// let other = engine.write::<User>().using("other").connection()?;
    /// other.execute("CREATE TABLE users (id INTEGER, name TEXT)", &[]).await?;
    /// other.execute("INSERT INTO users VALUES (1, 'ada')", &[]).await?;
    ///
    /// // Read a row from `other`, keeping where it came from...
    /// let read = engine.read::<User>().using("other").connection()?;
    /// let row = read.fetch_one("SELECT id FROM users", &[]).await?;
    /// let origin = read.name();
    ///
    /// // ...and save it again: no router has an opinion, so it goes back
    /// // to `other`, not to `default`.
    /// let id: i64 = row.get(0);
    /// let saved = engine.write::<User>().origin(origin.as_str());
    /// assert_eq!(saved.connection()?.name(), "other");
    /// saved.execute("UPDATE users SET name = $1 WHERE id = $2", &params!["grace", id]).await?;
    /// # Ok(()) }
    /// ```
    pub fn origin(mut self, connection: impl Into<String>) -> Self {
        self.origin = Some(connection.into());
        self
    }

    /// Resolves the operation to a connection handle.
    ///
    /// # Errors
    ///
    /// An unknown connection, a router's refusal or fault, a connection
    /// other than an open transaction's.
    /// A read the routers send to a replica is settled without waiting:
    /// if the replica's last known position is not past the task's writes
    /// (or its scope's causal token), or the replica is unavailable under
    /// [`ReplicaFailover::Primary`](crate::causal::ReplicaFailover::Primary),
    /// the handle is on the replica's primary. The `fetch_*` methods may
    /// instead ask the replica, or wait for it (see
    /// [`EngineBuilder::read_your_writes`](crate::EngineBuilder::read_your_writes)).
    pub fn connection(&self) -> Result<Connection> {
        let conn = self.resolved()?;
        if self.kind == RouteKind::Read && self.using.is_none() && !conn.in_transaction() {
            // The replica's primary, maybe: a handle of its own.
            return Ok(self.engine.settle_read_now(conn)?.with_portable(self.portable));
        }
        Ok(conn)
    }

    /// The connection the resolution order picks, before read-your-writes
    /// and failover.
    fn resolved(&self) -> Result<Connection> {
        self.resolve(|connection, _| connection)
    }

    /// [`Routed::resolved`], handing the connection and who decided it to
    /// `then`.
    #[inline]
    fn resolve(&self, then: impl FnOnce(Connection, Decided<'_>) -> Connection) -> Result<Connection> {
        let hints = self.hints.as_ref().unwrap_or(&NO_HINTS);
        let conn = self.engine.resolve(
            self.kind,
            self.model,
            hints,
            (self.using.as_deref(), self.origin.as_deref()),
            None,
            then,
        )?;
        Ok(conn.with_portable(self.portable))
    }

    /// Resolves, then runs a statement. See [`Connection::execute`].
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::execute`].
    pub async fn execute(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<QueryResult> {
        run_routed!(self, execute, sql, params)
    }

    /// Resolves, then fetches every row. See [`Connection::fetch_all`].
    ///
    /// A read whose connection is unreachable is retried on `default` when
    /// the engine's [`ReadFailure`] is `FallBackToDefault`.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_all`].
    pub async fn fetch_all(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Vec<Row>> {
        run_routed!(self, fetch_all, sql, params)
    }

    /// Resolves, then fetches the first row, if any. Falls back as
    /// [`Routed::fetch_all`] does.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_optional`].
    pub async fn fetch_optional(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Option<Row>> {
        run_routed!(self, fetch_optional, sql, params)
    }

    /// Resolves, then fetches exactly one row. Falls back as
    /// [`Routed::fetch_all`] does.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_one`].
    pub async fn fetch_one(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Row> {
        run_routed!(self, fetch_one, sql, params)
    }

    /// Resolves, then fetches every row as `T` (through serde). Falls back
    /// as [`Routed::fetch_all`] does. See [`Connection::fetch_all_as`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Model};
    ///
    /// #[derive(Model, serde::Deserialize)]
    /// #[dbroute(table = "users")]
    /// struct User {
    ///     id: i64,
    ///     name: String,
    /// }
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// engine.write::<User>().execute("CREATE TABLE users (id INTEGER, name TEXT)", &[]).await?;
    /// engine.write::<User>().execute("INSERT INTO users VALUES (1, 'ada')", &[]).await?;
    /// let users: Vec<User> = engine.read::<User>().fetch_all_as("SELECT * FROM users", &[]).await?;
    /// assert_eq!((users[0].id, users[0].name.as_str()), (1, "ada"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_all_as`].
    pub async fn fetch_all_as<T: DeserializeOwned>(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Vec<T>> {
        self.fetch_all(sql, params)
            .await?
            .iter()
            .map(Row::deserialize)
            .collect()
    }

    /// Resolves, then fetches the first row, if any, as `T`. Falls back as
    /// [`Routed::fetch_all`] does.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_optional_as`].
    pub async fn fetch_optional_as<T: DeserializeOwned>(
        self,
        sql: impl SqlSafeStr,
        params: &[Value],
    ) -> Result<Option<T>> {
        self.fetch_optional(sql, params)
            .await?
            .as_ref()
            .map(Row::deserialize)
            .transpose()
    }

    /// Resolves, then fetches exactly one row as `T`. Falls back as
    /// [`Routed::fetch_all`] does.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_one_as`].
    pub async fn fetch_one_as<T: DeserializeOwned>(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<T> {
        self.fetch_one(sql, params).await?.deserialize()
    }

    /// A read resolved to `conn`, settled: on a replica, it runs there
    /// only if the replica has replayed what it must see and is available;
    /// else on the replica's own primary (`engine/causal.rs`). A read named
    /// with `using`, or in a transaction, runs where it resolved. `Err`:
    /// the replica's last known position is not enough, and
    /// [`Routed::settle_slow`] asks it.
    #[inline]
    fn settle_fast(&self, conn: Connection) -> Result<std::result::Result<Connection, Pending>> {
        if self.using.is_some() || conn.in_transaction() {
            return Ok(Ok(conn));
        }
        Ok(match self.engine.settle_read_fast(conn)? {
            // The replica's primary, maybe: a handle of its own.
            Settle::Ready(conn) => Ok(conn.with_portable(self.portable)),
            Settle::Pending(pending) => Err(pending),
        })
    }

    /// The rest of [`Routed::settle_fast`]: asks the replica, waits, or
    /// goes to its primary.
    async fn settle_slow(&self, pending: Pending) -> Result<Connection> {
        // Boxed: the slow check's future stays out of every read's.
        let settled = Box::pin(self.engine.settle_read_slow(pending)).await?;
        Ok(settled.with_portable(self.portable))
    }

    /// Whether a read on `conn` may be retried elsewhere if `conn` proves
    /// unreachable: it is a read resolved by the router chain or its
    /// origin (not one `using` named), outside a transaction, and either
    /// `conn` is a replica and the engine's
    /// [`ReplicaFailover`](crate::causal::ReplicaFailover) is `Primary` (it
    /// retries on the replica's own primary), or the engine's
    /// [`ReadFailure`] is `FallBackToDefault` and `conn` is not `default`.
    fn may_fall_back(&self, conn: &Connection) -> bool {
        self.kind == RouteKind::Read
            && self.using.is_none()
            && !conn.in_transaction()
            && (self.engine.replica_failover() == ReplicaFailover::Primary && conn.is_replica()
                || self.engine.read_failure() == ReadFailure::FallBackToDefault
                    && conn.name() != self.engine.default_name())
    }

    async fn fallback(&self, conn: &Connection, error: Error) -> Result<Connection> {
        if let Some(primary) = self.engine.replica_failover_target(conn) {
            let primary = primary?;
            tracing::warn!(
                connection = %conn.name(),
                model = self.model.name(),
                "read fails over to the replica's primary `{}`: {error}",
                primary.name()
            );
            return match self.settle_fast(primary)? {
                Ok(conn) => Ok(conn),
                Err(pending) => self.settle_slow(pending).await,
            };
        }
        tracing::warn!(connection = %conn.name(), model = self.model.name(), "read falls back to default: {error}");
        Ok(self.engine.connection("default")?.with_portable(self.portable))
    }
}
