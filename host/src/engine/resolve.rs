//! Resolution: the one connection an operation runs on, in the documented
//! order — the open transaction, an explicit `using`, the router chain
//! (first opinion wins), the operation's origin, `default` — and the
//! routers' other questions (`allow_relation`, `allow_migrate`).

use std::sync::Arc;

use crate::connection::handle::Connection;
use crate::connection::registry::{ConnectionEntry, ConnectionMap};
use crate::decider::Decider;
use crate::error::{Error, Result};
use crate::model::{Hints, ModelInfo};
use crate::name::ConnectionName;
use crate::router::chain::ChainAnswer;
use crate::router::{
    HostRouter, MigrateRequest, MigrateTarget, RelationRequest, RelationSide, RouteKind, RouteRequest,
};
use crate::transaction::{self, TxCore};

use super::Engine;

/// What a read does when its router faults (traps, runs past a limit,
/// answers badly), or, for a read run through [`Engine::read`] and its
/// kin (`Routed::fetch_*`), when the connection the router chose cannot be
/// reached. A write, a read on a connection named with `using`, and a read
/// in a transaction always fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFailure {
    /// Fail the read (the default).
    #[default]
    Fail,
    /// Log the problem and read from `default`.
    FallBackToDefault,
}

/// What the router is asked inside a transaction, where every statement
/// runs on the transaction's connection (see `docs/transactions.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransactionRouting {
    /// Writes are checked (the default): a write whose router has an
    /// opinion naming another connection is [`Error::CrossConnection`]
    /// instead of landing on the transaction's connection. A write no
    /// router has an opinion on, and every read (to see the transaction's
    /// own rows), runs in the transaction.
    #[default]
    CheckWrites,
    /// Reads and writes are checked, and an operation no router has an
    /// opinion on must belong to its origin's connection, or, without an
    /// origin, to the default connection.
    CheckAll,
    /// Nothing is checked: every operation runs in the transaction, the
    /// router is not asked.
    PinAll,
}

/// The router chain's answer, or its error and whether that error is a
/// fault (which a read may fall back from).
type Asked<'c> = std::result::Result<ChainAnswer<'c>, (Error, bool)>;

/// Who decided an operation's connection, while the decision is at hand
/// (the router is borrowed from the chain that decided).
#[derive(Clone, Copy)]
pub(crate) struct Decided<'r> {
    /// The resolution step that answered.
    pub(crate) by: Decider,
    /// The router that named the connection, when `by` is a router.
    pub(crate) router: Option<&'r Arc<dyn HostRouter>>,
}

impl Decided<'_> {
    /// A decision no router made.
    pub(crate) const fn by(by: Decider) -> Self {
        Decided { by, router: None }
    }
}

/// What [`Engine::db_for_read_with`] and [`Engine::db_for_write_with`]
/// know of an operation besides its model and hints.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{Engine, Hints, ModelInfo, RouteOptions};
///
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("other", "sqlite::memory:")
///     .build()
///     .await?;
/// let user = ModelInfo::new("User");
/// let from_other = RouteOptions::new().origin("other");
/// // No router has an opinion: the row goes back where it came from.
/// assert_eq!(engine.db_for_write_with(&user, &Hints::new(), &from_other)?, "other");
/// assert_eq!(engine.db_for_write(&user, &Hints::new())?, "default");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteOptions<'a> {
    origin: Option<&'a str>,
}

impl<'a> RouteOptions<'a> {
    /// No options: what [`Engine::db_for_read`] and
    /// [`Engine::db_for_write`] use.
    pub const fn new() -> Self {
        RouteOptions { origin: None }
    }

    /// The operation's origin: the connection the row or object it is about
    /// was read from (Django's `instance._state.db`). It is passed to the
    /// routers, and used when none has an opinion, before `default`. It
    /// must be a registered connection (or one the engine's
    /// [`ConnectionFactory`](crate::ConnectionFactory) makes).
    ///
    /// ```
    /// let options = dbroute::RouteOptions::new().origin("other");
    /// assert_eq!(options.origin_name(), Some("other"));
    /// ```
    pub const fn origin(mut self, connection: &'a str) -> Self {
        self.origin = Some(connection);
        self
    }

    /// The origin set with [`RouteOptions::origin`], if any.
    ///
    /// ```
    /// assert_eq!(dbroute::RouteOptions::new().origin_name(), None);
    /// ```
    pub const fn origin_name(&self) -> Option<&'a str> {
        self.origin
    }
}

impl Engine {
    /// Resolves one operation to a connection handle, in order, and hands
    /// it and who decided it to `then` (for an operation's trace span):
    ///
    /// 1. an open transaction (`tx`, else the task's ambient one) pins it to
    ///    its connection (checked against `using` and, by the engine's
    ///    [`TransactionRouting`], the router); the origin does not move it;
    /// 2. then [`decide_with`](Engine::decide_with): `using`, the router
    ///    chain, the origin, `default`.
    #[inline]
    pub(crate) fn resolve<T>(
        &self,
        kind: RouteKind,
        model: &ModelInfo,
        hints: &Hints,
        (using, origin): (Option<&str>, Option<&str>),
        tx: Option<Arc<TxCore>>,
        then: impl FnOnce(Connection, Decided<'_>) -> T,
    ) -> Result<T> {
        match tx.or_else(transaction::current) {
            Some(tx) => self
                .pinned(tx, kind, model, hints, using, origin)
                .map(|connection| then(connection, Decided::by(Decider::Transaction))),
            None => self.decide_with(kind, model, hints, (using, origin), |entry, decided| {
                then(Connection::new(entry.clone(), None), decided)
            }),
        }
    }

    /// The connection for reading `model`, by the resolution order
    /// (outside any transaction).
    ///
    /// # Errors
    ///
    /// A router's refusal or fault; a router naming an unregistered
    /// connection.
    pub fn db_for_read(&self, model: &ModelInfo, hints: &Hints) -> Result<ConnectionName> {
        self.decide_with(RouteKind::Read, model, hints, (None, None), |e, _| e.name())
    }

    /// The connection for writing `model`, by the resolution order
    /// (outside any transaction).
    ///
    /// # Errors
    ///
    /// As [`Engine::db_for_read`].
    pub fn db_for_write(&self, model: &ModelInfo, hints: &Hints) -> Result<ConnectionName> {
        self.decide_with(RouteKind::Write, model, hints, (None, None), |e, _| e.name())
    }

    /// [`Engine::db_for_read`], with options: an origin (see
    /// [`RouteOptions`]), which the routers see and which is used when none
    /// has an opinion.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Hints, ModelInfo, RouteOptions};
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection("replica", "sqlite::memory:")
    ///     .build()
    ///     .await?;
    /// let user = ModelInfo::new("User");
    /// let options = RouteOptions::new().origin("replica");
    /// assert_eq!(engine.db_for_read_with(&user, &Hints::new(), &options)?, "replica");
    /// // An origin that is not a registered connection is an error.
    /// let unknown = RouteOptions::new().origin("elsewhere");
    /// assert!(matches!(
    ///     engine.db_for_read_with(&user, &Hints::new(), &unknown),
    ///     Err(dbroute::Error::UnknownConnection { .. })
    /// ));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Engine::db_for_read`]; [`Error::UnknownConnection`] for an
    /// origin that is not registered, [`Error::InvalidName`] for one that
    /// is not a name.
    pub fn db_for_read_with(
        &self,
        model: &ModelInfo,
        hints: &Hints,
        options: &RouteOptions<'_>,
    ) -> Result<ConnectionName> {
        self.decide_with(RouteKind::Read, model, hints, (None, options.origin), |e, _| e.name())
    }

    /// [`Engine::db_for_write`], with options (see [`RouteOptions`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Hints, ModelInfo, RouteOptions};
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection("archive", "sqlite::memory:")
    ///     .build()
    ///     .await?;
    /// let order = ModelInfo::new("Order");
    /// let options = RouteOptions::new().origin("archive");
    /// assert_eq!(engine.db_for_write_with(&order, &Hints::new(), &options)?, "archive");
    /// assert_eq!(engine.db_for_write_with(&order, &Hints::new(), &RouteOptions::new())?, "default");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Engine::db_for_read_with`].
    pub fn db_for_write_with(
        &self,
        model: &ModelInfo,
        hints: &Hints,
        options: &RouteOptions<'_>,
    ) -> Result<ConnectionName> {
        self.decide_with(RouteKind::Write, model, hints, (None, options.origin), |e, _| e.name())
    }

    /// Resolves one operation to a registered connection, outside any
    /// transaction, and hands it and who decided to `then`.
    pub(crate) fn decide<T>(
        &self,
        kind: RouteKind,
        model: &ModelInfo,
        hints: &Hints,
        then: impl FnOnce(&Arc<ConnectionEntry>, Decided<'_>) -> T,
    ) -> Result<T> {
        self.decide_with(kind, model, hints, (None, None), then)
    }

    /// Resolves one operation outside any transaction, counts the
    /// decision, and hands the chosen entry to `then` (so asking for a name
    /// alone touches no reference count): `using`, else the router chain,
    /// else the origin, else `default`. An origin is checked (it must be
    /// registered) whenever it is given.
    #[inline]
    fn decide_with<T>(
        &self,
        kind: RouteKind,
        model: &ModelInfo,
        hints: &Hints,
        (using, origin): (Option<&str>, Option<&str>),
        then: impl FnOnce(&Arc<ConnectionEntry>, Decided<'_>) -> T,
    ) -> Result<T> {
        self.check_open()?;
        let registry = self.inner.registry.snapshot();
        let made: Arc<ConnectionEntry>;
        let made_origin: Arc<ConnectionEntry>;
        let origin = match origin {
            None => None,
            Some(origin) => match self.origin_entry(&registry, origin)? {
                Ok(entry) => Some(entry),
                Err(entry) => {
                    made_origin = entry;
                    Some(&made_origin)
                }
            },
        };
        // The chain's generation, for route stats, when the chain decided.
        let mut generation = None;
        let routers;
        let mut decided = Decided::by(Decider::Using);
        let entry = if let Some(using) = using {
            // An explicit `using` wins; the router is not asked.
            let name = ConnectionName::new(using)?;
            match registry.get(&name) {
                Some(entry) => entry,
                None => {
                    made = self.make_connection(name, || "using()".to_owned())?;
                    &made
                }
            }
        } else {
            routers = self.inner.routers.load();
            generation = Some(routers.generation);
            match ask(&routers, kind, model, hints, origin.map(|e| e.name_ref())) {
                // The first router with an opinion decides.
                Ok(ChainAnswer::Use(name, router)) => {
                    decided = Decided {
                        by: Decider::Router,
                        router: Some(router),
                    };
                    match registry.get(&name) {
                        Some(entry) => entry,
                        None => {
                            made = self.make_connection(name, || router.identity().to_string())?;
                            &made
                        }
                    }
                }
                // No opinion: the origin, else `default`.
                Ok(ChainAnswer::Default) => match origin {
                    Some(origin) => {
                        decided = Decided::by(Decider::Origin);
                        origin
                    }
                    None => {
                        decided = Decided::by(Decider::Default);
                        registry.default_entry()
                    }
                },
                Err((error, true))
                    if kind == RouteKind::Read && self.inner.read_failure == ReadFailure::FallBackToDefault =>
                {
                    tracing::warn!(
                        model = model.name(),
                        "router fault on a read, falling back to default: {error}"
                    );
                    decided = Decided::by(Decider::Fallback);
                    registry.default_entry()
                }
                Err((error, _)) => return Err(error),
            }
        };
        let origin = origin.map(|e| e.name_ref());
        self.count_decision(kind, (model, hints, origin), entry, decided.by, generation);
        Ok(then(entry, decided))
    }

    /// The entry an operation's origin names: `Ok` a registered one, `Err`
    /// one the connection factory made for it (as for `using`).
    #[inline]
    fn origin_entry<'r>(
        &self,
        registry: &'r ConnectionMap,
        origin: &str,
    ) -> Result<std::result::Result<&'r Arc<ConnectionEntry>, Arc<ConnectionEntry>>> {
        let name = ConnectionName::new(origin)?;
        match registry.get(&name) {
            Some(entry) => Ok(Ok(entry)),
            None => self.make_connection(name, || "origin()".to_owned()).map(Err),
        }
    }

    fn count_decision(
        &self,
        kind: RouteKind,
        (model, hints, origin): (&ModelInfo, &Hints, Option<&ConnectionName>),
        entry: &ConnectionEntry,
        by: Decider,
        generation: Option<u64>,
    ) {
        entry.count_decision(kind, by);
        if let Some(stats) = &self.inner.route_stats {
            let generation = generation.unwrap_or_else(|| self.inner.routers.load().generation);
            // With the hints of the task's scope, as the routers saw them.
            let hints = crate::scope::effective(hints);
            stats.record(generation, (kind, model, hints.hints(), origin.copied()), entry.name());
        }
    }

    /// An operation inside the open transaction `tx`: it runs on the
    /// transaction's connection, if `using` and (as
    /// [`TransactionRouting`] says) the router agree. The origin never
    /// moves it: it is checked, passed to the router, and, with
    /// [`TransactionRouting::CheckAll`], what an operation no router has an
    /// opinion on must belong to (instead of `default`).
    fn pinned(
        &self,
        tx: Arc<TxCore>,
        kind: RouteKind,
        model: &ModelInfo,
        hints: &Hints,
        using: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Connection> {
        let registry = self.inner.registry.snapshot();
        let origin = match origin {
            None => None,
            Some(origin) => Some(match self.origin_entry(&registry, origin)? {
                Ok(entry) => entry.name(),
                Err(made) => made.name(),
            }),
        };
        let routing = self.inner.transaction_routing;
        let check = match routing {
            TransactionRouting::CheckWrites => kind == RouteKind::Write,
            TransactionRouting::CheckAll => true,
            TransactionRouting::PinAll => false,
        };
        let requested = match using {
            Some(using) => Some(ConnectionName::new(using)?),
            None if check => match ask(&self.inner.routers.load(), kind, model, hints, origin.as_ref()) {
                Ok(ChainAnswer::Use(name, _)) => Some(name),
                Ok(ChainAnswer::Default) if routing == TransactionRouting::CheckAll => {
                    Some(origin.unwrap_or_else(|| registry.default_entry().name()))
                }
                Ok(ChainAnswer::Default) => None,
                Err((error, _)) => return Err(error),
            },
            None => None,
        };
        if let Some(requested) = requested {
            joins(&registry, &tx, requested)?;
        }
        tx.entry.count_decision(kind, Decider::Transaction);
        Ok(Connection::new(tx.entry.clone(), Some(tx)))
    }

    /// The one cross-connection check: inside the transaction `tx`, only
    /// its own connection (by any name it is registered under) may be
    /// asked for.
    pub(crate) fn check_joins(&self, tx: &TxCore, requested: ConnectionName) -> Result<()> {
        joins(&self.inner.registry.snapshot(), tx, requested)
    }

    /// May an object of `a` on connection `a.1` be related to one of `b` on
    /// `b.1`? A side's connection is `None` for an object that is not saved
    /// yet. The first router with an opinion decides; without one, as
    /// Django's `ConnectionRouter.allow_relation` (5.2) does, the answer is
    /// whether the two sides' connections are equal
    /// (`obj1._state.db == obj2._state.db`): two objects on one
    /// connection, yes; an unsaved object and a saved one, no; two unsaved
    /// objects, yes.
    ///
    /// A WebAssembly router is asked about an unsaved side (`"db": null` in
    /// its input) only if it reads ABI 1.1 (see
    /// [`ABI_MINOR`](crate::wasm::ABI_MINOR)); an older one has no opinion on it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Hints, ModelInfo};
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection("other", "sqlite::memory:")
    ///     .build()
    ///     .await?;
    /// let (book, author) = (ModelInfo::new("Book"), ModelInfo::new("Author"));
    /// let no = Hints::new();
    /// assert!(engine.allow_relation((&book, Some("other")), (&author, Some("other")), &no)?);
    /// assert!(!engine.allow_relation((&book, Some("default")), (&author, Some("other")), &no)?);
    /// // An unsaved author: no, unless a router says yes.
    /// assert!(!engine.allow_relation((&book, Some("default")), (&author, None), &no)?);
    /// // Two unsaved objects: their (missing) connections are equal.
    /// assert!(engine.allow_relation((&book, None), (&author, None), &no)?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// A router fault; an unknown connection name.
    pub fn allow_relation(
        &self,
        a: (&ModelInfo, Option<&str>),
        b: (&ModelInfo, Option<&str>),
        hints: &Hints,
    ) -> Result<bool> {
        let registered = |db: Option<&str>| db.map(|db| self.registered_name(db, "allow_relation")).transpose();
        let (a_db, b_db) = (registered(a.1)?, registered(b.1)?);
        let relation = RelationRequest {
            a: RelationSide { model: a.0, db: a_db },
            b: RelationSide { model: b.0, db: b_db },
            hints,
        };
        Ok(self
            .inner
            .routers
            .load()
            .allow_relation(&relation)?
            .unwrap_or(a_db == b_db))
    }

    /// May `model`'s schema be created on connection `db`? The first router
    /// with an opinion decides; without one, yes.
    ///
    /// # Errors
    ///
    /// A router fault; an unknown connection name.
    pub fn allow_migrate(&self, db: &str, model: &ModelInfo, hints: &Hints) -> Result<bool> {
        self.allow_migrate_target(db, MigrateTarget::Model(model), hints)
    }

    /// May the app `app`'s migrations run on connection `db`, when no model
    /// is concerned (Django's `allow_migrate(db, app_label)` without a
    /// `model_name`, as for `RunSQL` and `RunPython`)? The first router
    /// with an opinion decides; without one, yes.
    ///
    /// A WebAssembly router is asked (with `"app"` and no `"model"` in its
    /// input) only if it reads ABI 1.1 (see
    /// [`ABI_MINOR`](crate::wasm::ABI_MINOR)); an older one has no opinion on it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Hints};
    /// use dbroute::router::{RouteDecision, Fault, MigrateRequest, RouteRequest, HostRouter, RouterIdentity};
    ///
    /// /// The `metrics` app lives on `analytics` only.
    /// #[derive(Debug)]
    /// struct Metrics;
    ///
    /// impl HostRouter for Metrics {
    ///     fn identity(&self) -> RouterIdentity {
    ///         RouterIdentity::native("metrics")
    ///     }
    ///     fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
    ///         Ok(RouteDecision::NoOpinion)
    ///     }
    ///     fn allow_migrate(&self, m: &MigrateRequest<'_>) -> Result<Option<bool>, Fault> {
    ///         Ok((m.app() == Some("metrics")).then_some(m.db == "analytics"))
    ///     }
    /// }
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection("analytics", "sqlite::memory:")
    ///     .add_router(Metrics)
    ///     .build()
    ///     .await?;
    /// let no = Hints::new();
    /// assert!(engine.allow_migrate_app("analytics", "metrics", &no)?);
    /// assert!(!engine.allow_migrate_app("default", "metrics", &no)?);
    /// assert!(engine.allow_migrate_app("default", "auth", &no)?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// A router fault; an unknown connection name.
    pub fn allow_migrate_app(&self, db: &str, app: &str, hints: &Hints) -> Result<bool> {
        self.allow_migrate_target(db, MigrateTarget::App(app), hints)
    }

    /// [`Engine::allow_migrate`] or [`Engine::allow_migrate_app`], by what
    /// `target` is.
    fn allow_migrate_target(&self, db: &str, target: MigrateTarget<'_>, hints: &Hints) -> Result<bool> {
        let db = self.registered_name(db, "allow_migrate")?;
        let migration = MigrateRequest { db, target, hints };
        Ok(self.inner.routers.load().allow_migrate(&migration)?.unwrap_or(true))
    }

    /// The registered name `name` stands for (`default` is the default
    /// connection's own name).
    fn registered_name(&self, name: &str, requested_by: &str) -> Result<ConnectionName> {
        let registry = self.inner.registry.snapshot();
        let name = ConnectionName::new(name)?;
        registry
            .get(&name)
            .map(|e| e.name())
            .ok_or_else(|| registry.unknown(name, requested_by))
    }
}

/// [`Engine::check_joins`] against a registry snapshot the caller holds.
fn joins(registry: &ConnectionMap, tx: &TxCore, requested: ConnectionName) -> Result<()> {
    if registry.get(&requested).is_some_and(|e| Arc::ptr_eq(e, &tx.entry)) {
        return Ok(());
    }
    Err(Error::CrossConnection {
        transaction: tx.entry.name().to_string(),
        requested: requested.to_string(),
    })
}

/// The router chain's walk, for one operation with the current hint
/// scope's hints merged in.
#[inline]
fn ask<'c>(
    routers: &'c crate::router::chain::ActiveRouters,
    kind: RouteKind,
    model: &ModelInfo,
    hints: &Hints,
    origin: Option<&ConnectionName>,
) -> Asked<'c> {
    let hints = crate::scope::effective(hints);
    routers.decide(&RouteRequest {
        kind,
        model,
        hints: hints.hints(),
        origin,
    })
}
