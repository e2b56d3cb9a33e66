//! The engine: the registry of connections, the active router chain, and
//! the resolution of every operation to one connection. By concern:
//! `builder.rs` (building one), `resolve.rs` (which connection an
//! operation runs on), `routers.rs` (loading and swapping routers),
//! `status.rs` (status, health and counts); here, connections and the
//! entry points of routed operations and transactions.

mod builder;
mod causal;
mod resolve;
mod routers;
mod state;
mod status;

pub use builder::EngineBuilder;
pub use causal::ConsistencyCounts;
pub(crate) use causal::{Pending, Settle};
pub(crate) use resolve::Decided;
pub use resolve::{ReadFailure, RouteOptions, TransactionRouting};
pub use routers::RouterSource;
pub use status::DecisionCount;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::connection::handle::Connection;
use crate::connection::pool::PoolSettings;
use crate::connection::registry::{ConnectionEntry, Registry};
use crate::connection::stats::{ConnectionStatus, Health, ProvisionState};
use crate::connection::url::ConnectionUrl;
use crate::error::{Error, Result};
use crate::factory::ConnectionFactory;
use crate::model::{Model, ModelInfo};
use crate::name::ConnectionName;
use crate::route_stats::RouteStats;
use crate::routed::Routed;
use crate::router::RouteKind;
use crate::router::chain::ActiveRouters;
use crate::router::wasm::runtime::{RouterLimits, RouterRuntime};
use crate::transaction;
use crate::transaction::builder::TransactionBuilder;

struct EngineInner {
    registry: Registry,
    routers: ArcSwap<ActiveRouters>,
    swap: Mutex<()>,
    runtime: OnceLock<Result<RouterRuntime>>,
    limits: RouterLimits,
    compiled_cache: Option<PathBuf>,
    read_failure: ReadFailure,
    transaction_routing: TransactionRouting,
    /// Whether routed operations and handles take portable placeholders.
    portable_sql: bool,
    closed: AtomicBool,
    factory: Option<ConnectionFactory>,
    route_stats: Option<RouteStats>,
    /// Serialises telling routers about connection changes and the
    /// connections' state.
    notify: Mutex<()>,
    /// The connections' state the active chain was last told.
    last_told: Mutex<state::LastTold>,
    /// The status of made connections whose provisioning hook failed (they
    /// are unregistered), until the factory makes them again; the most
    /// recent [`MAX_PROVISION_FAILURES`].
    provision_failures: Mutex<Vec<ConnectionStatus>>,
    /// Read-your-writes and replica failover (`causal.rs`).
    consistency: causal::Consistency,
    /// The router registry this engine follows, if any.
    #[cfg(feature = "postgres")]
    router_registry: OnceLock<Arc<crate::registry::follow::Follower>>,
    /// Counts off the hot path, and what was published of every count.
    telemetry: crate::publish::Telemetry,
}

/// How many failed provisionings the status keeps.
const MAX_PROVISION_FAILURES: usize = 64;

/// The engine, not kept alive: what a connection's provisioning holds, to
/// unregister the connection when its hook fails.
#[derive(Clone)]
pub(crate) struct WeakEngine(Weak<EngineInner>);

impl WeakEngine {
    pub(crate) fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(|inner| Engine { inner })
    }
}

/// The routing engine: named connection pools, the router chain that picks
/// one per operation, and transactions pinned to one connection. Cheap to
/// clone; clones share everything.
///
/// Resolution, as in Django: an open transaction pins everything to its
/// connection (a write the router sends elsewhere is refused, see
/// [`TransactionRouting`]); then an explicit [`using`](Routed::using) wins;
/// then the router chain, in order, first opinion wins; then the
/// operation's origin, the connection its row was read from
/// ([`Routed::origin`], Django's `instance` hint); then `default`. A name
/// that is not registered is an error, never a silent fallback.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{Engine, ModelInfo};
///
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("replica", "sqlite::memory:")
///     .build()
///     .await?;
/// let user = ModelInfo::new("User");
/// // No router: everything goes to default.
/// assert_eq!(engine.db_for_read(&user, &Default::default())?, "default");
/// // An explicit override wins.
/// let replica = engine.read_model(&user).using("replica").connection()?;
/// assert_eq!(replica.name(), "replica");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self.inner.registry.snapshot();
        let connections: Vec<_> = registry
            .entries()
            .map(|e| (e.name(), e.url().redacted().to_owned()))
            .collect();
        f.debug_struct("Engine")
            .field("connections", &connections)
            .field("default", &registry.default_entry().name())
            .field("routers", &self.router_status())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// A handle on the connection registered as `name` (`"default"`: the
    /// default connection, whatever its own name). Inside a transaction it
    /// runs in the transaction, and naming another connection is an error.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConnection`] listing the registered names;
    /// [`Error::CrossConnection`] inside a transaction on another connection.
    pub fn connection(&self, name: &str) -> Result<Connection> {
        self.check_open()?;
        let name = ConnectionName::new(name)?;
        if let Some(tx) = transaction::current() {
            self.check_joins(&tx, name)?;
            return Ok(Connection::new(tx.entry.clone(), Some(tx)).with_portable(self.inner.portable_sql));
        }
        let registry = self.inner.registry.snapshot();
        let entry = registry
            .get(&name)
            .ok_or_else(|| registry.unknown(name, "connection()"))?;
        Ok(Connection::new(entry.clone(), None).with_portable(self.inner.portable_sql))
    }

    /// Whether routed operations and the handles [`Engine::connection`]
    /// gives take portable placeholders (see
    /// [`EngineBuilder::portable_sql`]).
    pub fn portable_sql(&self) -> bool {
        self.inner.portable_sql
    }

    /// What a read does when its router faults or its connection cannot
    /// be reached (see [`ReadFailure`]).
    pub fn read_failure(&self) -> ReadFailure {
        self.inner.read_failure
    }

    /// The registered connection names, the default first.
    pub fn connection_names(&self) -> Vec<ConnectionName> {
        self.inner.registry.snapshot().names()
    }

    /// The default connection's registered name.
    pub fn default_name(&self) -> ConnectionName {
        self.inner.registry.snapshot().default_entry().name()
    }

    /// Registers a connection while the engine runs. Active routers make new
    /// instances that know the new name.
    ///
    /// # Errors
    ///
    /// As for [`EngineBuilder::build`]: an invalid or duplicate name, a bad
    /// URL, an unreachable server (unless the pool is lazy).
    pub async fn add_connection(&self, name: &str, url: &str, settings: PoolSettings) -> Result<()> {
        self.check_open()?;
        let name = ConnectionName::new(name)?;
        if self.inner.registry.snapshot().get(&name).is_some() {
            return Err(Error::DuplicateConnection { name: name.to_string() });
        }
        let url = ConnectionUrl::parse(name, url)?;
        let entry = ConnectionEntry::open(name, url, settings).await?;
        self.inner.registry.add(entry).await?;
        self.connections_changed();
        Ok(())
    }

    /// Unregisters a connection: new operations can no longer pick it, those
    /// in flight finish, then its pool closes. The default cannot be removed
    /// while other connections are registered.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConnection`], [`Error::RemoveDefault`].
    pub async fn remove_connection(&self, name: &str) -> Result<()> {
        let name = ConnectionName::new(name)?;
        self.inner.registry.remove(name).await?;
        self.connections_changed();
        Ok(())
    }

    /// Closes every pool, waiting for connections in use to come back.
    /// Later operations fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.registry.close_all().await;
    }

    /// Whether [`Engine::close`] was called.
    #[cfg(feature = "postgres")]
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Relaxed)
    }

    /// What this instance runs from the router registry it follows, and
    /// its link to it; `None` when it follows none (see
    /// [`EngineBuilder::router_registry`]).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn registry_status(&self) -> Option<crate::registry::RegistryStatus> {
        self.inner.router_registry.get().map(|f| f.status())
    }

    /// A connection for a name that is not registered: made by the
    /// factory, or the unknown-connection error.
    pub(crate) fn make_connection(
        &self,
        name: ConnectionName,
        requested_by: impl FnOnce() -> String,
    ) -> Result<Arc<ConnectionEntry>> {
        let registry = &self.inner.registry;
        let made = match &self.inner.factory {
            Some(factory) => factory.make(registry, name, || self.downgrade())?,
            None => None,
        };
        let Some(entry) = made else {
            return Err(registry.snapshot().unknown(name, requested_by()));
        };
        // Made again: no longer a failure to report.
        self.provision_failures().retain(|failed| failed.name != name);
        self.connections_changed();
        Ok(entry)
    }

    pub(crate) fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.inner))
    }

    fn provision_failures(&self) -> std::sync::MutexGuard<'_, Vec<ConnectionStatus>> {
        self.inner
            .provision_failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A made connection's provisioning hook failed with `message`:
    /// unregisters it (if it is still the one registered under its name)
    /// and keeps its status, failed, for [`Engine::status`]. The caller
    /// closes its pool.
    pub(crate) fn provision_failed(&self, entry: &Arc<ConnectionEntry>, message: &str) {
        let mut status = ConnectionStatus::of(entry, false);
        status.health = Health::Unhealthy;
        status.provision = ProvisionState::Failed;
        status.last_error = Some(
            Error::Provision {
                connection: entry.name().to_string(),
                message: message.to_owned(),
            }
            .to_string(),
        );
        {
            let mut failures = self.provision_failures();
            failures.retain(|failed| failed.name != entry.name());
            if failures.len() >= MAX_PROVISION_FAILURES {
                failures.remove(0);
            }
            failures.push(status);
        }
        self.inner
            .telemetry
            .provision_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Recorded first: the factory makes the name again only once it is
        // unregistered, and then forgets the failure.
        let removed = self.inner.registry.take_entry(entry);
        if removed {
            self.connections_changed();
        }
    }

    pub(crate) fn telemetry(&self) -> &crate::publish::Telemetry {
        &self.inner.telemetry
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub(crate) fn active_routers(&self) -> Arc<ActiveRouters> {
        self.inner.routers.load_full()
    }

    /// The connection factory's connections made, evicted idle and evicted
    /// over its limit.
    pub(crate) fn factory_counts(&self) -> (u64, u64, u64) {
        self.inner.factory.as_ref().map_or((0, 0, 0), ConnectionFactory::counts)
    }

    /// The statuses of made connections whose provisioning failed.
    pub(super) fn failed_provisions(&self) -> Vec<ConnectionStatus> {
        self.provision_failures().clone()
    }

    /// Evicts the factory-made connections no decision chose within the
    /// factory's idle time; returns their names. (Runs in the background
    /// when the factory has an idle time.)
    pub async fn evict_idle(&self) -> Vec<ConnectionName> {
        let Some(factory) = &self.inner.factory else {
            return Vec::new();
        };
        let evicted = factory.evict_idle(&self.inner.registry).await;
        if !evicted.is_empty() {
            self.connections_changed();
        }
        evicted
    }

    /// Runs `work` every `interval` in the background while the engine
    /// lives.
    pub(super) fn every<F, Fut>(&self, interval: Duration, work: F)
    where
        F: Fn(Engine) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let engine = Engine { inner };
                if engine.inner.closed.load(Ordering::Relaxed) {
                    break;
                }
                work(engine).await;
            }
        });
    }

    /// A read of model `M`, routed by `db_for_read`.
    pub fn read<M: Model>(&self) -> Routed<'_> {
        Routed::new(self, RouteKind::Read, M::model_info())
    }

    /// A write of model `M`, routed by `db_for_write`.
    pub fn write<M: Model>(&self) -> Routed<'_> {
        Routed::new(self, RouteKind::Write, M::model_info())
    }

    /// A read of a model given by its metadata.
    pub fn read_model<'a>(&'a self, model: &'a ModelInfo) -> Routed<'a> {
        Routed::new(self, RouteKind::Read, model)
    }

    /// A write of a model given by its metadata.
    pub fn write_model<'a>(&'a self, model: &'a ModelInfo) -> Routed<'a> {
        Routed::new(self, RouteKind::Write, model)
    }

    /// A transaction, to be pinned to one connection: the default one, a
    /// named one ([`on`](TransactionBuilder::on)), or the one the router
    /// picks for a model ([`for_write`](TransactionBuilder::for_write)),
    /// then [`begin`](TransactionBuilder::begin) for a handle or
    /// [`run`](TransactionBuilder::run) for a closure whose statements join
    /// it. Inside it, a write the router would send to another connection
    /// is an error (see [`TransactionRouting`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, ModelInfo};
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// engine.connection("default")?.execute("CREATE TABLE t (x INTEGER)", &[]).await?;
    /// let model = ModelInfo::new("T");
    /// engine
    ///     .transaction()
    ///     .run(|_| async {
    ///         // Joins the transaction without being handed it:
    ///         engine.write_model(&model).execute("INSERT INTO t VALUES (1)", &[]).await?;
    ///         Ok::<_, dbroute::Error>(())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn transaction(&self) -> TransactionBuilder<'_> {
        TransactionBuilder::new(self)
    }

    /// The entry registered as `name` (`None`: the default), outside any
    /// transaction.
    pub(crate) fn named_entry(&self, name: Option<&str>, requested_by: &str) -> Result<Arc<ConnectionEntry>> {
        self.check_open()?;
        let registry = self.inner.registry.snapshot_full();
        let Some(name) = name else {
            return Ok(registry.default_entry().clone());
        };
        let name = ConnectionName::new(name)?;
        registry
            .get(&name)
            .cloned()
            .ok_or_else(|| registry.unknown(name, requested_by))
    }

    /// The entry registered as `name` (`default`: the default connection),
    /// outside any transaction: schema changes run on the pool itself.
    pub(crate) fn schema_entry(&self, name: &str, requested_by: &str) -> Result<Arc<ConnectionEntry>> {
        self.check_open()?;
        let registry = self.inner.registry.snapshot();
        let name = ConnectionName::new(name)?;
        registry
            .get(&name)
            .cloned()
            .ok_or_else(|| registry.unknown(name, requested_by))
    }
}
