//! `engine.transaction()`: where a transaction goes, then begun or run.

use crate::connection::handle::Connection;
use crate::connection::registry::ConnectionEntry;
use crate::decider::Decider;
use crate::engine::Decided;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Hints, Model, ModelInfo};
use crate::router::RouteKind;
use crate::trace::TransactionTrace;
use crate::transaction::{self, Access, Transaction};

/// Which connection a transaction is pinned to.
#[derive(Debug)]
enum Target<'a> {
    Default,
    Named(&'a str),
    Model(RouteKind, &'a ModelInfo),
}

/// A transaction being set up: made by
/// [`Engine::transaction`](crate::Engine::transaction), then
/// [`begin`](TransactionBuilder::begin) (an explicit handle) or
/// [`run`](TransactionBuilder::run) (a closure whose statements join it).
///
/// Without [`on`](TransactionBuilder::on) or a `for_*` choice it runs on the
/// default connection. Inside another transaction on the same connection it
/// is a savepoint; on another connection, [`Error::CrossConnection`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{params, Engine, Model};
///
/// #[derive(Model)]
/// #[dbroute(table = "orders")]
/// struct Order;
///
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("billing", "sqlite::memory:")
///     .build()
///     .await?;
/// engine.connection("default")?.execute("CREATE TABLE orders (id INTEGER)", &[]).await?;
///
/// // On the connection the router picks for writing orders (no router
/// // here: default); routed statements inside join it.
/// engine
///     .transaction()
///     .for_write::<Order>()
///     .run(|_| async {
///         engine.write::<Order>().execute("INSERT INTO orders VALUES ($1)", &params![1]).await?;
///         Ok::<_, dbroute::Error>(())
///     })
///     .await?;
///
/// // An explicit handle on a named connection.
/// let tx = engine.transaction().on("billing").begin().await?;
/// tx.connection().execute("CREATE TABLE charges (id INTEGER)", &[]).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a transaction builder does nothing until begin() or run()"]
pub struct TransactionBuilder<'a> {
    engine: &'a Engine,
    target: Target<'a>,
    hints: Option<&'a Hints>,
    access: Access,
}

impl<'a> TransactionBuilder<'a> {
    pub(crate) fn new(engine: &'a Engine) -> Self {
        TransactionBuilder {
            engine,
            target: Target::Default,
            hints: None,
            access: Access::ReadWrite,
        }
    }

    /// On the connection registered as `name` (`default` names the default
    /// connection).
    pub fn on(mut self, name: &'a str) -> Self {
        self.target = Target::Named(name);
        self
    }

    /// On the connection the router chain picks for writing `M`
    /// (`db_for_write`, asked once, when the transaction begins).
    pub fn for_write<M: Model>(self) -> Self {
        self.for_write_model(M::model_info())
    }

    /// As [`for_write`](TransactionBuilder::for_write), for a model given
    /// by its metadata.
    pub fn for_write_model(mut self, model: &'a ModelInfo) -> Self {
        self.target = Target::Model(RouteKind::Write, model);
        self
    }

    /// On the connection the router chain picks for reading `M`
    /// (`db_for_read`, asked once), and read-only.
    pub fn for_read<M: Model>(self) -> Self {
        self.for_read_model(M::model_info())
    }

    /// As [`for_read`](TransactionBuilder::for_read), for a model given by
    /// its metadata.
    pub fn for_read_model(mut self, model: &'a ModelInfo) -> Self {
        self.target = Target::Model(RouteKind::Read, model);
        self.access = Access::ReadOnly;
        self
    }

    /// Hints for the router's choice (added to those of the current hint
    /// scope, as for any routed operation).
    pub fn hints(mut self, hints: &'a Hints) -> Self {
        self.hints = Some(hints);
        self
    }

    /// Read-only: PostgreSQL and MySQL refuse writes in it; SQLite runs a
    /// deferred transaction (no write lock until it writes).
    pub fn read_only(mut self) -> Self {
        self.access = Access::ReadOnly;
        self
    }

    /// Begins the transaction and returns its handle: statements run
    /// through [`Transaction::connection`] (or its sqlx connection, see
    /// [`Transaction::postgres`] and its kin); [`commit`](Transaction::commit) or
    /// [`rollback`](Transaction::rollback) end it, and dropping it
    /// unfinished rolls it back.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConnection`]; the router's refusal or fault;
    /// [`Error::CrossConnection`] inside a transaction on another
    /// connection; [`Error::PoolTimedOut`] or [`Error::Query`] when the
    /// database cannot begin it.
    pub async fn begin(self) -> Result<Transaction> {
        if !crate::trace::transaction_enabled() {
            return self.begin_on(|_, _| ()).await;
        }
        let (kind, model) = match self.target {
            Target::Model(kind, model) => (Some(kind), Some(model.name())),
            _ => (None, None),
        };
        let span = crate::trace::transaction_span(kind, model);
        let started = std::time::Instant::now();
        let began = self
            .begin_on(|entry, decided| crate::trace::record_decision(&span, entry.name(), decided))
            .await;
        let mut trace = TransactionTrace::new(span, started);
        match began {
            Ok(mut tx) => {
                tx.set_trace(trace);
                Ok(tx)
            }
            failed @ Err(_) => {
                trace.end("failed", &failed);
                failed
            }
        }
    }

    /// Begins the transaction on the connection its target resolves to,
    /// handing that connection and who decided it to `decided` first.
    async fn begin_on(self, decided: impl FnOnce(&ConnectionEntry, Decided<'_>)) -> Result<Transaction> {
        let entry = match self.target {
            Target::Default => {
                let entry = self.engine.named_entry(None, "transaction()")?;
                decided(&entry, Decided::by(Decider::Default));
                entry
            }
            Target::Named(name) => {
                let entry = self.engine.named_entry(Some(name), "transaction().on()")?;
                decided(&entry, Decided::by(Decider::Using));
                entry
            }
            Target::Model(kind, model) => {
                let hints = self.hints.unwrap_or(&crate::model::NO_HINTS);
                let entry = self.engine.decide(kind, model, hints, |entry, by| {
                    decided(entry, by);
                    entry.clone()
                })?;
                if kind == RouteKind::Read && transaction::current().is_none() {
                    // A read-only transaction on a replica sees the task's
                    // writes, as a read does (`engine/causal.rs`).
                    self.engine.settle_read_entry(entry).await?
                } else {
                    entry
                }
            }
        };
        if let Some(tx) = transaction::current() {
            self.engine.check_joins(&tx, entry.name())?;
            return Transaction::nested(tx).await;
        }
        Transaction::begin(entry, self.access).await
    }

    /// Runs `work` inside the transaction: the engine's routed API and
    /// [`Engine::connection`](crate::Engine::connection) join it without
    /// being handed it, in this task only (spawned tasks do not inherit
    /// it); `work` also gets a [`Connection`] on it. `Ok` commits; `Err`
    /// rolls back and returns the error; a panic rolls back and resumes.
    /// Nested calls make savepoints.
    ///
    /// # Errors
    ///
    /// `work`'s error, or the engine's: as [`begin`](TransactionBuilder::begin),
    /// or the commit failed.
    pub async fn run<T, E, F, Fut>(self, work: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        let tx = self.begin().await?;
        let work = transaction::scope(tx.core().clone(), work(tx.connection()));
        let span = tx.span();
        let result = if span.is_disabled() {
            work.await
        } else {
            tracing::Instrument::instrument(work, span).await
        };
        match result {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::error!("rollback after an error failed: {rollback}");
                }
                Err(error)
            }
        }
    }
}
