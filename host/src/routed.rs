//! `Routed`: one routed operation being put together (model, hints,
//! override, origin), then run.

use serde_json::Value as Json;
use sqlx::SqlSafeStr;

use crate::connection::handle::{Connection, QueryResult};
use crate::connection::value::{Row, Value};
use crate::engine::{Engine, ReadFailure};
use crate::error::{Error, Result};
use crate::model::{Hints, ModelInfo, NO_HINTS};
use crate::router::RouteKind;

/// Runs `$method` on the resolved connection; a read that may fall back
/// (see [`Routed::may_fall_back`]) and finds its connection unreachable runs
/// once more on `default`. The SQL is copied only when a retry is possible.
macro_rules! read_with_fallback {
    ($self:ident, $method:ident, $sql:ident, $params:ident) => {{
        let sql = $sql.into_sql_str();
        let conn = $self.connection()?;
        if !$self.may_fall_back(&conn) {
            return conn.$method(sql, $params).await;
        }
        match conn.$method(sql.clone(), $params).await {
            Err(error) if error.is_unreachable() => $self.fallback(&conn, error)?.$method(sql, $params).await,
            result => result,
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
        }
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
    pub fn connection(&self) -> Result<Connection> {
        let hints = self.hints.as_ref().unwrap_or(&NO_HINTS);
        self.engine.resolve(
            self.kind,
            self.model,
            hints,
            (self.using.as_deref(), self.origin.as_deref()),
            None,
        )
    }

    /// Resolves, then runs a statement. See [`Connection::execute`].
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::execute`].
    pub async fn execute(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<QueryResult> {
        self.connection()?.execute(sql, params).await
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
        read_with_fallback!(self, fetch_all, sql, params)
    }

    /// Resolves, then fetches the first row, if any. Falls back as
    /// [`Routed::fetch_all`] does.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_optional`].
    pub async fn fetch_optional(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Option<Row>> {
        read_with_fallback!(self, fetch_optional, sql, params)
    }

    /// Resolves, then fetches exactly one row. Falls back as
    /// [`Routed::fetch_all`] does.
    ///
    /// # Errors
    ///
    /// As [`Routed::connection`] and [`Connection::fetch_one`].
    pub async fn fetch_one(self, sql: impl SqlSafeStr, params: &[Value]) -> Result<Row> {
        read_with_fallback!(self, fetch_one, sql, params)
    }

    /// Whether a read on `conn` may be retried on `default` if `conn`
    /// proves unreachable: the policy says so, it is a read resolved by the
    /// router chain or its origin (not one `using` named), outside a
    /// transaction, and it is not already on `default`.
    fn may_fall_back(&self, conn: &Connection) -> bool {
        self.kind == RouteKind::Read
            && self.using.is_none()
            && self.engine.read_failure() == ReadFailure::FallBackToDefault
            && !conn.in_transaction()
            && conn.name() != self.engine.default_name()
    }

    fn fallback(&self, conn: &Connection, error: Error) -> Result<Connection> {
        tracing::warn!(connection = %conn.name(), model = self.model.name(), "read falls back to default: {error}");
        self.engine.connection("default")
    }
}
