//! Building an engine: connections, routers, limits and policies.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::causal::{ReadYourWrites, ReplicaFailover};
use crate::connection::pool::PoolSettings;
use crate::connection::registry::{ConnectionEntry, Registry};
use crate::connection::replication::check_declarations;
use crate::connection::url::ConnectionUrl;
use crate::error::{Error, Result};
use crate::factory::ConnectionFactory;
use crate::name::ConnectionName;
use crate::route_stats::RouteStats;
use crate::router::chain::ActiveRouters;
use crate::router::wasm::WasmRouterBuilder;
use crate::router::wasm::runtime::RouterLimits;
use crate::router::{HostRouter, RouterChain};

use super::{Engine, EngineInner, ReadFailure, RouterSource, TransactionRouting};

/// How often replicas' lag is measured unless
/// [`EngineBuilder::replication_check_every`] says otherwise.
const DEFAULT_REPLICATION_INTERVAL: Duration = Duration::from_secs(1);

enum PendingRouter {
    Native(Arc<dyn HostRouter>),
    Wasm(WasmRouterBuilder, RouterSource),
}

/// Builds an [`Engine`]: connections, routers, limits and policies.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{Engine, PoolSettings};
///
/// let engine = Engine::builder()
///     .connection("primary", "sqlite::memory:")
///     .connection_with("cache", "sqlite::memory:", PoolSettings::new().max_connections(2))
///     .default_connection("primary")
///     .build()
///     .await?;
/// assert_eq!(engine.connection("default")?.name(), "primary");
/// # Ok(()) }
/// ```
#[must_use]
pub struct EngineBuilder {
    connections: Vec<(String, String, PoolSettings)>,
    default: Option<String>,
    second_default: Option<(String, String)>,
    routers: Vec<PendingRouter>,
    limits: RouterLimits,
    compiled_cache: Option<PathBuf>,
    read_failure: ReadFailure,
    portable_sql: bool,
    transaction_routing: TransactionRouting,
    factory: Option<ConnectionFactory>,
    health_interval: Option<Duration>,
    /// (replica, primary), as declared.
    replicas: Vec<(String, String)>,
    replication_interval: Duration,
    /// (replica, limit), as set.
    max_lags: Vec<(String, Duration)>,
    read_your_writes: ReadYourWrites,
    replica_failover: ReplicaFailover,
    route_stats: bool,
    metrics_interval: Duration,
    lazy: bool,
    #[cfg(feature = "postgres")]
    router_registry: Option<crate::registry::RouterRegistry>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.connections.iter().map(|(n, _, _)| n.as_str()).collect();
        let mut s = f.debug_struct("EngineBuilder");
        s.field("connections", &names)
            .field("default", &self.default)
            .field("replicas", &self.replicas)
            .field("routers", &self.routers.len());
        #[cfg(feature = "postgres")]
        s.field("router_registry", &self.router_registry);
        s.finish_non_exhaustive()
    }
}

impl EngineBuilder {
    pub(super) fn new() -> Self {
        EngineBuilder {
            connections: Vec::new(),
            default: None,
            second_default: None,
            routers: Vec::new(),
            limits: RouterLimits::default(),
            compiled_cache: None,
            read_failure: ReadFailure::default(),
            portable_sql: false,
            transaction_routing: TransactionRouting::default(),
            factory: None,
            health_interval: None,
            replicas: Vec::new(),
            replication_interval: DEFAULT_REPLICATION_INTERVAL,
            max_lags: Vec::new(),
            read_your_writes: ReadYourWrites::default(),
            replica_failover: ReplicaFailover::default(),
            route_stats: false,
            metrics_interval: Duration::from_secs(1),
            lazy: false,
            #[cfg(feature = "postgres")]
            router_registry: None,
        }
    }

    /// Registers a connection with default pool settings. The first
    /// connection is the default unless another is marked with
    /// [`EngineBuilder::default_connection`].
    pub fn connection(self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.connection_with(name, url, PoolSettings::default())
    }

    /// Registers a connection with its own pool settings.
    pub fn connection_with(mut self, name: impl Into<String>, url: impl Into<String>, settings: PoolSettings) -> Self {
        self.connections.push((name.into(), url.into(), settings));
        self
    }

    /// Declares the connection `replica` a replica of `primary` (both
    /// registered, in any order; `default` names the default connection):
    /// a server that streams `primary`'s changes and replays them, some
    /// time behind. The engine then measures how far behind it is (see
    /// [`EngineBuilder::replication_check_every`]) and reports it in
    /// [`Engine::status`] and [`Engine::measure_replication`]. Routing does
    /// not change: routers still decide where reads go.
    ///
    /// A replica of a replica is measured against the replica it streams
    /// from. PostgreSQL and MySQL/MariaDB only (see `docs/replicas.md`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::Engine;
    /// use dbroute::stats::Role;
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "postgres://app@127.0.0.1:5432/app")
    ///     .connection("replica", "postgres://app@127.0.0.1:5433/app")
    ///     .replica_of("replica", "default")
    ///     .build()
    ///     .await?;
    /// let status = engine.status();
    /// assert_eq!(status[1].role, Role::Replica { of: "default".parse()? });
    /// # Ok(()) }
    /// ```
    ///
    /// A declaration that cannot hold fails the build, before any
    /// connection is opened:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use dbroute::{Engine, Error};
    ///
    /// let built = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection("copy", "sqlite::memory:")
    ///     .replica_of("copy", "default")
    ///     .build()
    ///     .await;
    /// assert!(matches!(built, Err(Error::ReplicaOf { .. })));
    /// # }
    /// ```
    pub fn replica_of(mut self, replica: impl Into<String>, primary: impl Into<String>) -> Self {
        self.replicas.push((replica.into(), primary.into()));
        self
    }

    /// Measures every replica's lag this often in the background (default:
    /// every second; only when a replica is declared), each measurement
    /// given as long as the interval, at least a second. `Duration::ZERO`:
    /// never in the background, only when [`Engine::measure_replication`]
    /// is called.
    pub fn replication_check_every(mut self, interval: Duration) -> Self {
        self.replication_interval = interval;
        self
    }

    /// Whether reads see earlier writes (see [`ReadYourWrites`]; on by
    /// default, without waiting): after a write on a primary with
    /// replicas, a read in the same task that the routers send to one of
    /// its replicas goes there only once the replica has replayed the
    /// write, else (after waiting up to [`ReadYourWrites::wait`]) to the
    /// replica's own primary. Causal tokens carry the same guarantee
    /// across tasks and service instances ([`Engine::causal_token`],
    /// [`Engine::accept_token`]). PostgreSQL, and MariaDB replicating by
    /// GTID; see `docs/replicas.md`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use std::time::Duration;
    /// use dbroute::Engine;
    /// use dbroute::causal::ReadYourWrites;
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "postgres://app@127.0.0.1:5432/app")
    ///     .connection("replica", "postgres://app@127.0.0.1:5433/app")
    ///     .replica_of("replica", "default")
    ///     // Wait up to 20 ms for the replica before reading from the primary.
    ///     .read_your_writes(ReadYourWrites::on().wait(Duration::from_millis(20)))
    ///     .build()
    ///     .await?;
    /// assert!(engine.read_your_writes().is_on());
    /// # Ok(()) }
    /// ```
    pub fn read_your_writes(mut self, policy: ReadYourWrites) -> Self {
        self.read_your_writes = policy;
        self
    }

    /// What a read the routers send to an unavailable replica does (see
    /// [`ReplicaFailover`]; by default it runs there anyway, failing if
    /// the replica cannot be reached). Writes are never redirected.
    pub fn replica_failover(mut self, policy: ReplicaFailover) -> Self {
        self.replica_failover = policy;
        self
    }

    /// Skips the declared replica `replica` for reads while it lags past
    /// `limit` (as measured: behind in bytes, by more than `limit` since
    /// its last replayed transaction, and for longer than `limit`); what
    /// such a read does is the [`ReplicaFailover`] policy. It is used again
    /// once a measurement finds it within the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use dbroute::{Engine, Error};
    ///
    /// // A limit for a connection that is not a declared replica is refused.
    /// let built = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .replica_max_lag("default", Duration::from_secs(5))
    ///     .build()
    ///     .await;
    /// assert!(matches!(built, Err(Error::ReplicaOf { .. })));
    /// # }
    /// ```
    pub fn replica_max_lag(mut self, replica: impl Into<String>, limit: Duration) -> Self {
        self.max_lags.push((replica.into(), limit));
        self
    }

    /// Makes every connection, registered before or after this call,
    /// connect on first use instead of when the engine is built (a dead
    /// server then shows up in [`Engine::check_health`] instead of failing
    /// the build). One connection alone: [`PoolSettings::lazy`].
    pub fn connect_lazily(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// Marks a registered connection as the default.
    pub fn default_connection(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        match &self.default {
            Some(existing) if *existing != name => self.second_default = Some((existing.clone(), name)),
            _ => self.default = Some(name),
        }
        self
    }

    /// Appends a native router to the chain (routers are asked in the order
    /// they are added; [`Engine::set_router`] later replaces the whole
    /// chain).
    pub fn add_router(mut self, router: impl HostRouter) -> Self {
        self.routers.push(PendingRouter::Native(Arc::new(router)));
        self
    }

    /// Appends a WebAssembly router to the chain, loaded from `source` (a
    /// file's path or module bytes) when the engine is built (its
    /// `dbroute_init` learns the registered connections).
    pub fn add_wasm_router(mut self, router: WasmRouterBuilder, source: impl Into<RouterSource>) -> Self {
        self.routers.push(PendingRouter::Wasm(router, source.into()));
        self
    }

    /// The limits WebAssembly routers run under.
    pub fn router_limits(mut self, limits: RouterLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keeps compiled WebAssembly routers in the folder `dir` (made private
    /// to this user if missing), keyed by their content hash: loading a
    /// router optimized before, by this process or an earlier one, compiles
    /// nothing and runs optimized code at once; the folder keeps the 64
    /// most recently used, within 1 GiB (see
    /// [`RouterRuntime::with_compiled_cache`](crate::wasm::RouterRuntime::with_compiled_cache)).
    pub fn compiled_router_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.compiled_cache = Some(dir.into());
        self
    }

    /// What a read does when its router faults or its connection cannot
    /// be reached (see [`ReadFailure`]).
    pub fn read_failure(mut self, policy: ReadFailure) -> Self {
        self.read_failure = policy;
        self
    }

    /// Makes every routed operation, and every handle
    /// [`Engine::connection`] gives, take portable placeholders: `$1`,
    /// `$2`… on every backend, translated for MySQL/MariaDB (see
    /// [`Connection::portable`](crate::Connection::portable); off by
    /// default, and per operation with [`Routed::portable`](crate::Routed::portable)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// let engine = dbroute::Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .portable_sql(true)
    ///     .build()
    ///     .await?;
    /// assert!(engine.connection("default")?.is_portable());
    /// # Ok(()) }
    /// ```
    pub fn portable_sql(mut self, portable: bool) -> Self {
        self.portable_sql = portable;
        self
    }

    /// What the router is asked inside a transaction (see
    /// [`TransactionRouting`]; by default a write the router would send to
    /// another connection is an error).
    pub fn transaction_routing(mut self, routing: TransactionRouting) -> Self {
        self.transaction_routing = routing;
        self
    }

    /// Makes connections for names that are not registered (see
    /// [`ConnectionFactory`]); evicts idle ones in the background.
    pub fn connection_factory(mut self, factory: ConnectionFactory) -> Self {
        self.factory = Some(factory);
        self
    }

    /// Publishes the engine's counts to the `metrics` crate's recorder this
    /// often in the background (default: every second;
    /// [`Duration::ZERO`]: never, the service calls
    /// [`Engine::publish_metrics`] itself). A service that renders its
    /// metrics on request (a Prometheus `/metrics` endpoint) also calls
    /// `publish_metrics` before rendering, so that they are exact.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use std::time::Duration;
    ///
    /// let engine = dbroute::Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .publish_metrics_every(Duration::from_secs(10))
    ///     .build()
    ///     .await?;
    /// // Between two runs of the timer, publish now.
    /// engine.publish_metrics();
    /// # Ok(()) }
    /// ```
    pub fn publish_metrics_every(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    /// Checks every connection's health this often in the background (see
    /// [`Engine::check_health`]), so a dead database is reported before a
    /// user trips on it.
    pub fn health_check_every(mut self, interval: Duration) -> Self {
        self.health_interval = Some(interval);
        self
    }

    /// Counts decisions per route (router generation, operation, model,
    /// hints, origin, chosen connection): see [`Engine::route_stats`] and
    /// [`Engine::write_route_operations`]. Off by default: it costs a hash
    /// of the model's and the hints' JSON and a lock of the thread's own
    /// shard per decision.
    pub fn route_stats(mut self, enabled: bool) -> Self {
        self.route_stats = enabled;
        self
    }

    /// Follows the router registry at `url` (PostgreSQL) as an instance of
    /// `service`, running the router named like the service; see
    /// [`EngineBuilder::router_registry_with`] for the rest.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn router_registry(self, url: impl Into<String>, service: impl Into<String>) -> Self {
        self.router_registry_with(crate::registry::RouterRegistry::new(url, service))
    }

    /// Follows a router registry (see [`crate::registry`] and
    /// `docs/fleet.md`). At build the engine loads the version its
    /// instance should run (the rollout's new version when the instance's
    /// canary bucket is under the rollout's percent, else the fleet's
    /// stable version), then `LISTEN`s for changes in the background and
    /// loads each new version with the same validation as any router, the
    /// whole active chain becoming that router. A version that does not
    /// load is refused there, reported, and the current router keeps
    /// serving; so do the routers given to this builder while the registry
    /// names no version.
    ///
    /// The build fails when the registry cannot be reached, is not
    /// initialised, or was made by a newer dbroute. Afterwards the registry
    /// being down never fails a decision: the instance keeps its router and
    /// reconnects with backoff.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use std::time::Duration;
    /// use dbroute::Engine;
    /// use dbroute::registry::RouterRegistry;
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "postgres://app@127.0.0.1/app")
    ///     .router_registry_with(
    ///         RouterRegistry::new("postgres://svc@127.0.0.1/ops", "checkout")
    ///             .heartbeat_every(Duration::from_secs(5)),
    ///     )
    ///     .build()
    ///     .await?;
    /// println!("{:?}", engine.registry_status());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn router_registry_with(mut self, registry: crate::registry::RouterRegistry) -> Self {
        self.router_registry = Some(registry);
        self
    }

    /// Opens every connection, loads the routers, and returns the engine.
    ///
    /// # Errors
    ///
    /// The first problem found: an invalid or duplicate name, two defaults,
    /// no connection, a bad URL, a replica declaration that cannot hold
    /// ([`Error::ReplicaOf`]), a server that cannot be reached (for eager
    /// pools), a router refused at load. Pools already opened are closed.
    pub async fn build(self) -> Result<Engine> {
        if let Some((existing, new)) = &self.second_default {
            return Err(Error::SecondDefault {
                existing: ConnectionName::new(existing)?.to_string(),
                new: ConnectionName::new(new)?.to_string(),
            });
        }
        let mut names = Vec::new();
        let mut urls = Vec::new();
        for (name, url, settings) in &self.connections {
            let name = ConnectionName::new(name)?;
            if names.contains(&name) {
                return Err(Error::DuplicateConnection { name: name.to_string() });
            }
            names.push(name);
            let settings = if self.lazy {
                settings.clone().lazy(true)
            } else {
                settings.clone()
            };
            urls.push((name, ConnectionUrl::parse(name, url)?, settings));
        }
        let default = match &self.default {
            Some(d) => {
                let d = ConnectionName::new(d)?;
                if !names.contains(&d) {
                    return Err(Error::UnknownConnection {
                        name: d.to_string(),
                        requested_by: "default_connection".into(),
                        registered: names,
                    });
                }
                d
            }
            None => *names.first().ok_or(Error::NoConnections)?,
        };
        if default != ConnectionName::DEFAULT && names.contains(&ConnectionName::DEFAULT) {
            return Err(Error::InvalidName {
                name: "default".into(),
                reason: "`default` is reserved for the default connection, which is another one here",
            });
        }
        let backends: Vec<_> = urls.iter().map(|(name, url, _)| (*name, url.backend())).collect();
        let replicas = check_declarations(&backends, default, &self.replicas)?;
        let mut max_lags = Vec::new();
        for (name, limit) in &self.max_lags {
            let name = ConnectionName::new(name)?;
            max_lags.push((if name.is_default() { default } else { name }, *limit));
        }
        let (consistency, mut roles) = super::causal::plan(
            &backends,
            &replicas,
            &max_lags,
            self.read_your_writes,
            self.replica_failover,
        )?;
        let mut entries: Vec<ConnectionEntry> = Vec::new();
        for (name, url, settings) in urls {
            match ConnectionEntry::open(name, url, settings).await {
                Ok(mut entry) => {
                    entry.set_replica_of(replicas.get(&name).copied());
                    entry.set_causal(roles.remove(&name));
                    entries.push(entry);
                }
                Err(e) => {
                    for entry in &entries {
                        entry.pool().close().await;
                    }
                    return Err(e);
                }
            }
        }
        let registry = Registry::new(entries, default)?;
        let engine = Engine {
            inner: Arc::new(EngineInner {
                registry,
                routers: ArcSwap::from_pointee(ActiveRouters::new(RouterChain::new(), 0)),
                swap: Mutex::new(()),
                runtime: OnceLock::new(),
                limits: self.limits,
                compiled_cache: self.compiled_cache,
                read_failure: self.read_failure,
                portable_sql: self.portable_sql,
                transaction_routing: self.transaction_routing,
                closed: AtomicBool::new(false),
                factory: self.factory,
                route_stats: self.route_stats.then(RouteStats::default),
                notify: Mutex::new(()),
                last_told: Mutex::new(None),
                provision_failures: Mutex::new(Vec::new()),
                consistency,
                #[cfg(feature = "postgres")]
                router_registry: OnceLock::new(),
                telemetry: Default::default(),
            }),
        };
        let mut chain = RouterChain::new();
        for pending in self.routers {
            chain = match pending {
                PendingRouter::Native(router) => chain.then_shared(router),
                PendingRouter::Wasm(builder, source) => match engine.load_router(builder, source) {
                    Ok(router) => chain.then(router),
                    Err(e) => {
                        engine.close().await;
                        return Err(e);
                    }
                },
            };
        }
        engine.inner.routers.store(Arc::new(ActiveRouters::new(chain, 0)));
        // Native routers (an SdkRouter, say) learn the registered names as
        // a loaded WebAssembly router does.
        engine.connections_changed();
        #[cfg(feature = "postgres")]
        if let Some(settings) = self.router_registry {
            match crate::registry::follow::start(&engine, settings).await {
                Ok(follower) => {
                    let _ = engine.inner.router_registry.set(follower);
                }
                Err(e) => {
                    engine.close().await;
                    return Err(e);
                }
            }
        }
        if let Some(idle) = engine.inner.factory.as_ref().and_then(|f| f.idle_timeout) {
            engine.every((idle / 4).max(Duration::from_millis(100)), |engine| async move {
                engine.evict_idle().await;
            });
        }
        if !self.metrics_interval.is_zero() {
            engine.every(self.metrics_interval, |engine| async move { engine.publish_metrics() });
        }
        if let Some(interval) = self.health_interval {
            engine.every(interval, move |engine| async move {
                engine.check_health(interval).await;
            });
        }
        let interval = self.replication_interval;
        if !replicas.is_empty() && !interval.is_zero() {
            let timeout = interval.max(Duration::from_secs(1));
            engine.every(interval, move |engine| async move {
                engine.measure_replication(timeout).await;
            });
        }
        Ok(engine)
    }
}
