//! The engine: the registry of connections, the active router chain, and
//! the resolution of every operation to one connection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::connection::handle::Connection;
use crate::connection::pool::PoolSettings;
use crate::connection::registry::{ConnectionEntry, Registry};
use crate::connection::stats::ConnectionStatus;
use crate::connection::url::ConnectionUrl;
use crate::error::{Error, Result};
use crate::factory::ConnectionFactory;
use crate::model::{Hints, Model, ModelInfo};
use crate::name::ConnectionName;
use crate::route_stats::{RouteCount, RouteStats};
use crate::routed::Routed;
use crate::router::chain::{ActiveRouters, ChainAnswer};
use crate::router::wasm::runtime::{RouterLimits, RouterRuntime};
use crate::router::wasm::{WasmRouter, WasmRouterBuilder};
use crate::router::{Migration, OpKind, Operation, Relation, RelationSide, Router, RouterChain, RouterStatus};
use crate::transaction::builder::TransactionBuilder;
use crate::transaction::{self};

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
    /// opinion on must belong to the default connection.
    CheckAll,
    /// Nothing is checked: every operation runs in the transaction, the
    /// router is not asked.
    PinAll,
}

/// How many decisions chose one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionCount {
    /// The connection.
    pub connection: ConnectionName,
    /// Reads routed to it.
    pub reads: u64,
    /// Writes routed to it.
    pub writes: u64,
}

enum PendingRouter {
    Native(Arc<dyn Router>),
    Wasm(WasmRouterBuilder, RouterSource),
}

/// Where a WebAssembly router's module comes from.
#[derive(Debug, Clone)]
pub enum RouterSource {
    /// A `.wasm` or `.wat` file.
    File(PathBuf),
    /// Module bytes (binary or WAT text).
    Bytes(Arc<[u8]>),
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
/// assert_eq!(engine.connection(Some("default"))?.name(), "primary");
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
    transaction_routing: TransactionRouting,
    factory: Option<ConnectionFactory>,
    health_interval: Option<Duration>,
    route_stats: bool,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.connections.iter().map(|(n, _, _)| n.as_str()).collect();
        f.debug_struct("EngineBuilder")
            .field("connections", &names)
            .field("default", &self.default)
            .field("routers", &self.routers.len())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
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

    /// Makes every connection registered so far connect on first use
    /// instead of when the engine is built (a dead server then shows up in
    /// [`Engine::check_health`] instead of failing the build).
    pub fn connect_lazily(mut self) -> Self {
        for (_, _, settings) in &mut self.connections {
            *settings = settings.clone().lazy(true);
        }
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

    /// Appends a native router to the chain.
    pub fn router(mut self, router: impl Router) -> Self {
        self.routers.push(PendingRouter::Native(Arc::new(router)));
        self
    }

    /// Appends a WebAssembly router to the chain, loaded when the engine is
    /// built (its `dbroute_init` learns the registered connections).
    pub fn wasm_router(mut self, router: WasmRouterBuilder, source: RouterSource) -> Self {
        self.routers.push(PendingRouter::Wasm(router, source));
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
    /// nothing and runs optimized code at once (see
    /// [`RouterRuntime::with_compiled_cache`]).
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

    /// Checks every connection's health this often in the background (see
    /// [`Engine::check_health`]), so a dead database is reported before a
    /// user trips on it.
    pub fn health_check_every(mut self, interval: Duration) -> Self {
        self.health_interval = Some(interval);
        self
    }

    /// Counts decisions per route (router generation, operation, model,
    /// chosen connection): see [`Engine::route_stats`]. Off by default: it
    /// costs a hash of the model's name per decision.
    pub fn route_stats(mut self, enabled: bool) -> Self {
        self.route_stats = enabled;
        self
    }

    /// Opens every connection, loads the routers, and returns the engine.
    ///
    /// # Errors
    ///
    /// The first problem found: an invalid or duplicate name, two defaults,
    /// no connection, a bad URL, a server that cannot be reached (for eager
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
            urls.push((name, ConnectionUrl::parse(name, url)?, settings.clone()));
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
        let mut entries: Vec<ConnectionEntry> = Vec::new();
        for (name, url, settings) in urls {
            match ConnectionEntry::open(name, url, settings).await {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    for entry in &entries {
                        entry.pool.close().await;
                    }
                    return Err(e);
                }
            }
        }
        let registry = Registry::new(entries, default)?;
        let engine = Engine {
            inner: Arc::new(EngineInner {
                registry,
                routers: ArcSwap::from_pointee(ActiveRouters {
                    chain: RouterChain::new(),
                    generation: 0,
                }),
                swap: Mutex::new(()),
                runtime: OnceLock::new(),
                limits: self.limits,
                compiled_cache: self.compiled_cache,
                read_failure: self.read_failure,
                transaction_routing: self.transaction_routing,
                closed: AtomicBool::new(false),
                factory: self.factory,
                factory_lock: Mutex::new(()),
                route_stats: self.route_stats.then(RouteStats::default),
                notify: Mutex::new(()),
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
        engine
            .inner
            .routers
            .store(Arc::new(ActiveRouters { chain, generation: 0 }));
        // Native routers (an SdkRouter, say) learn the registered names as
        // a loaded WebAssembly router does.
        engine.connections_changed();
        if let Some(idle) = engine.inner.factory.as_ref().and_then(|f| f.idle_timeout) {
            engine.every((idle / 4).max(Duration::from_millis(100)), |engine| async move {
                engine.evict_idle().await;
            });
        }
        if let Some(interval) = self.health_interval {
            engine.every(interval, move |engine| async move {
                engine.check_health(interval).await;
            });
        }
        Ok(engine)
    }
}

struct EngineInner {
    registry: Registry,
    routers: ArcSwap<ActiveRouters>,
    swap: Mutex<()>,
    runtime: OnceLock<Result<RouterRuntime>>,
    limits: RouterLimits,
    compiled_cache: Option<PathBuf>,
    read_failure: ReadFailure,
    transaction_routing: TransactionRouting,
    closed: AtomicBool,
    factory: Option<ConnectionFactory>,
    /// Serialises the factory, so racing first requests make one pool.
    factory_lock: Mutex<()>,
    route_stats: Option<RouteStats>,
    /// Serialises telling routers about connection changes.
    notify: Mutex<()>,
}

/// The routing engine: named connection pools, the router chain that picks
/// one per operation, and transactions pinned to one connection. Cheap to
/// clone; clones share everything.
///
/// Resolution, as in Django: an open transaction pins everything to its
/// connection (a write the router sends elsewhere is refused, see
/// [`TransactionRouting`]); then an explicit [`using`](Routed::using) wins;
/// then the router chain, in order, first opinion wins; then `default`. A
/// name that is not registered is an error, never a silent fallback.
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
            .map(|e| (e.name, e.url.redacted().to_owned()))
            .collect();
        f.debug_struct("Engine")
            .field("connections", &connections)
            .field("default", &registry.default_entry().name)
            .field("routers", &self.router_status())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            connections: Vec::new(),
            default: None,
            second_default: None,
            routers: Vec::new(),
            limits: RouterLimits::default(),
            compiled_cache: None,
            read_failure: ReadFailure::default(),
            transaction_routing: TransactionRouting::default(),
            factory: None,
            health_interval: None,
            route_stats: false,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    // ---- connections ----

    /// A handle on a named connection (`None`: the default). Inside a
    /// transaction it runs in the transaction, and naming another
    /// connection is an error.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConnection`] listing the registered names;
    /// [`Error::CrossConnection`] inside a transaction on another connection.
    pub fn connection(&self, name: Option<&str>) -> Result<Connection> {
        self.check_open()?;
        let registry = self.inner.registry.snapshot();
        let requested = match name {
            Some(name) => Some(ConnectionName::new(name)?),
            None => None,
        };
        if let Some(tx) = transaction::current() {
            if let Some(requested) = requested {
                let same = registry.get(&requested).is_some_and(|e| Arc::ptr_eq(e, &tx.entry));
                if !same {
                    return Err(Error::CrossConnection {
                        transaction: tx.entry.name.to_string(),
                        requested: requested.to_string(),
                    });
                }
            }
            return Ok(Connection::new(tx.entry.clone(), Some(tx)));
        }
        let entry = match requested {
            None => registry.default_entry(),
            Some(name) => registry
                .get(&name)
                .ok_or_else(|| registry.unknown(name, "connection()"))?,
        };
        Ok(Connection::new(entry.clone(), None))
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
        self.inner.registry.snapshot().default_entry().name
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

    /// Tells the active routers the registered names. Serialised, and the
    /// names are read under the lock, so the last call always passes the
    /// latest names whatever order concurrent changes finish in.
    fn connections_changed(&self) {
        let _serial = self
            .inner
            .notify
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = self.connection_names();
        for router in self.inner.routers.load().chain.routers() {
            router.connections_changed(&names);
        }
    }

    /// Closes every pool, waiting for connections in use to come back.
    /// Later operations fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.registry.close_all().await;
    }

    // ---- routers ----

    /// The runtime WebAssembly routers of this engine run in, made on first
    /// use with the engine's [`RouterLimits`] (and its compiled-router
    /// cache, when [`EngineBuilder::compiled_router_cache`] set one).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] (origin "router runtime", the same every call)
    /// when wasmtime cannot be configured with the limits, or the
    /// compiled-router cache's folder cannot be made or is not private.
    pub fn router_runtime(&self) -> Result<&RouterRuntime> {
        self.inner
            .runtime
            .get_or_init(|| {
                let limits = self.inner.limits.clone();
                match &self.inner.compiled_cache {
                    Some(dir) => RouterRuntime::with_compiled_cache(limits, dir),
                    None => RouterRuntime::new(limits),
                }
            })
            .as_ref()
            .map_err(|e| Error::Config {
                origin: "router runtime".into(),
                message: e.to_string(),
            })
    }

    /// Loads a WebAssembly router with this engine's runtime, telling its
    /// `dbroute_init` the registered connection names. It is not activated:
    /// pass it to [`Engine::set_router`].
    ///
    /// # Errors
    ///
    /// [`Error::RouterLoad`] with the reason it was refused.
    pub fn load_router(&self, builder: WasmRouterBuilder, source: RouterSource) -> Result<WasmRouter> {
        let runtime = self.router_runtime()?;
        let builder = builder.connection_names(self.connection_names());
        match source {
            RouterSource::File(path) => builder.load_file(runtime, path),
            RouterSource::Bytes(bytes) => builder.load(runtime, &bytes),
        }
    }

    /// Replaces the active router chain, atomically: decisions in flight
    /// finish with the old chain, new ones use the new chain. Open
    /// transactions are not affected. Returns the new generation.
    pub fn set_router(&self, chain: impl Into<RouterChain>) -> u64 {
        let chain = chain.into();
        let _swap = self.inner.swap.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.inner.routers.load().generation + 1;
        self.inner.routers.store(Arc::new(ActiveRouters { chain, generation }));
        // A router loaded before a connection was added or removed learns
        // the current names now (a no-op when it knows them already).
        self.connections_changed();
        tracing::info!(generation, "router chain swapped");
        generation
    }

    /// Removes every router: everything goes to `default`.
    pub fn clear_router(&self) -> u64 {
        self.set_router(RouterChain::new())
    }

    /// The active routers and the swap generation.
    pub fn router_status(&self) -> RouterStatus {
        let active = self.inner.routers.load();
        RouterStatus {
            generation: active.generation,
            routers: active.chain.routers().iter().map(|r| r.identity()).collect(),
        }
    }

    /// Decisions counted per connection since the engine started.
    pub fn decision_counts(&self) -> Vec<DecisionCount> {
        let registry = self.inner.registry.snapshot();
        registry
            .names()
            .into_iter()
            .filter_map(|name| registry.get(&name).map(|e| (name, e)))
            .map(|(connection, e)| DecisionCount {
                connection,
                reads: e.routed_reads.get(),
                writes: e.routed_writes.get(),
            })
            .collect()
    }

    /// Watches a router file and loads each new version of it; each good
    /// version becomes the whole active chain. Dropping the returned
    /// watcher stops watching (the active router stays).
    ///
    /// - **What counts as a change**: creations, writes, completed writes,
    ///   renames and removals in the file's folder, and in the folder the
    ///   path resolves to through symbolic links (so `cp`, `mv`, editors'
    ///   rename-on-save and Kubernetes ConfigMap updates, which swap a
    ///   `..data` link, are all seen). Opening or reading the file is not a
    ///   change, so neither the watcher's own reads nor a `cat` reload it.
    /// - **When it looks**: once the folder has been quiet for 150 ms. A
    ///   file still growing while it is read is read again later.
    /// - **What is loaded**: only content whose SHA-256 differs from the
    ///   active router's and from the last refused content; a touched or
    ///   re-copied file compiles nothing.
    /// - **A bad file** (broken, half-written, refused by its self-test) is
    ///   refused once per distinct content: one `ERROR` log line,
    ///   [`WatchStatus::failures`](crate::WatchStatus::failures) and
    ///   `last_error`; the active router keeps serving, and the file is
    ///   loaded as soon as it is complete.
    ///
    /// [`RouterWatcher::status`](crate::RouterWatcher::status) counts what
    /// the watcher did: changes seen, load attempts, reloads, failures.
    ///
    /// # Errors
    ///
    /// When the first load fails, or the file cannot be watched.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, WasmRouter};
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let dir = std::env::temp_dir().join(format!("dbroute-watch-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("router.wat");
    /// std::fs::write(&path, r#"(module
    ///   (memory (export "memory") 1)
    ///   (func (export "dbroute_abi_version") (result i32) i32.const 1)
    ///   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
    ///   (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))"#).unwrap();
    /// let watcher = engine.watch_router(WasmRouter::builder("rules"), &path)?;
    /// assert_eq!(watcher.status().reloads, 0);
    /// assert_eq!(engine.router_status().routers[0].name(), "rules");
    /// # drop(watcher);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok(()) }
    /// ```
    pub fn watch_router(&self, builder: WasmRouterBuilder, path: impl AsRef<Path>) -> Result<crate::RouterWatcher> {
        crate::router::watch::RouterWatcher::start(self.clone(), builder, path.as_ref().to_path_buf())
    }

    // ---- decisions ----

    /// The connection for reading `model`, by the resolution order.
    ///
    /// # Errors
    ///
    /// A router's refusal or fault; a router naming an unregistered
    /// connection.
    pub fn db_for_read(&self, model: &ModelInfo, hints: &Hints) -> Result<ConnectionName> {
        self.decide_with(OpKind::Read, model, hints, None, |e| e.name)
    }

    /// The connection for writing `model`, by the resolution order.
    ///
    /// # Errors
    ///
    /// As [`Engine::db_for_read`].
    pub fn db_for_write(&self, model: &ModelInfo, hints: &Hints) -> Result<ConnectionName> {
        self.decide_with(OpKind::Write, model, hints, None, |e| e.name)
    }

    /// May an object of `a` on connection `a_db` be related to one of `b` on
    /// `b_db`? The first router with an opinion decides; without one, only
    /// objects on the same connection may be related.
    ///
    /// # Errors
    ///
    /// A router fault; an unknown connection name.
    pub fn allow_relation(&self, a: (&ModelInfo, &str), b: (&ModelInfo, &str), hints: &Hints) -> Result<bool> {
        let registry = self.inner.registry.snapshot();
        let resolve = |name: &str| -> Result<ConnectionName> {
            let name = ConnectionName::new(name)?;
            registry
                .get(&name)
                .map(|e| e.name)
                .ok_or_else(|| registry.unknown(name, "allow_relation"))
        };
        let (a_db, b_db) = (resolve(a.1)?, resolve(b.1)?);
        let relation = Relation {
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
        let registry = self.inner.registry.snapshot();
        let name = ConnectionName::new(db)?;
        let db = registry
            .get(&name)
            .map(|e| e.name)
            .ok_or_else(|| registry.unknown(name, "allow_migrate"))?;
        let migration = Migration { db, model, hints };
        Ok(self.inner.routers.load().allow_migrate(&migration)?.unwrap_or(true))
    }

    /// Resolves one operation to a registered connection (no transaction).
    pub(crate) fn decide(
        &self,
        kind: OpKind,
        model: &ModelInfo,
        hints: &Hints,
        using: Option<&str>,
    ) -> Result<Arc<ConnectionEntry>> {
        self.decide_with(kind, model, hints, using, Arc::clone)
    }

    /// Resolves one operation and hands the chosen entry to `then` (so
    /// asking for a name alone touches no reference count).
    #[inline]
    fn decide_with<T>(
        &self,
        kind: OpKind,
        model: &ModelInfo,
        hints: &Hints,
        using: Option<&str>,
        then: impl FnOnce(&Arc<ConnectionEntry>) -> T,
    ) -> Result<T> {
        self.check_open()?;
        let registry = self.inner.registry.snapshot();
        let made: Arc<ConnectionEntry>;
        // The chain's generation, for route stats, when the chain decided.
        let mut decided_by = None;
        let entry = if let Some(using) = using {
            let name = ConnectionName::new(using)?;
            match registry.get(&name) {
                Some(entry) => entry,
                None => {
                    made = self.make_connection(name, || "using()".to_owned())?;
                    &made
                }
            }
        } else {
            let routers = self.inner.routers.load();
            decided_by = Some(routers.generation);
            let hints = crate::scope::effective(hints);
            let op = Operation {
                kind,
                model,
                hints: hints.hints(),
            };
            match routers.decide(&op) {
                Ok(ChainAnswer::Use(name, router)) => match registry.get(&name) {
                    Some(entry) => entry,
                    None => {
                        made = self.make_connection(name, || router.identity().to_string())?;
                        &made
                    }
                },
                Ok(ChainAnswer::Default) => registry.default_entry(),
                Err((error, true))
                    if kind == OpKind::Read && self.inner.read_failure == ReadFailure::FallBackToDefault =>
                {
                    tracing::warn!(
                        model = model.name(),
                        "router fault on a read, falling back to default: {error}"
                    );
                    registry.default_entry()
                }
                Err((error, _)) => return Err(error),
            }
        };
        match kind {
            OpKind::Read => entry.routed_reads.increment(),
            OpKind::Write => entry.routed_writes.increment(),
        }
        if entry.from_factory {
            entry.touch();
        }
        if let Some(stats) = &self.inner.route_stats {
            let generation = decided_by.unwrap_or_else(|| self.inner.routers.load().generation);
            stats.record(generation, kind, model.name(), entry.name);
        }
        Ok(then(entry))
    }

    /// A connection for a name that is not registered: made by the
    /// factory, or the unknown-connection error.
    fn make_connection(
        &self,
        name: ConnectionName,
        requested_by: impl FnOnce() -> String,
    ) -> Result<Arc<ConnectionEntry>> {
        let Some(factory) = &self.inner.factory else {
            return Err(self.inner.registry.snapshot().unknown(name, requested_by()));
        };
        let guard = self
            .inner
            .factory_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = self.inner.registry.snapshot().get(&name) {
            return Ok(entry.clone()); // Another request made it meanwhile.
        }
        // `..` is a valid connection name, but not a safe path segment for a
        // URL template: the factory never makes it.
        if name.as_str().contains("..") {
            return Err(self.inner.registry.snapshot().unknown(name, requested_by()));
        }
        let Some(url) = factory.url_for(name) else {
            return Err(self.inner.registry.snapshot().unknown(name, requested_by()));
        };
        let url = ConnectionUrl::parse(name, &url)?;
        let entry = Arc::new(ConnectionEntry::open_lazy(
            name,
            url,
            factory.settings.clone().lazy(true),
        )?);
        let entry = match self.inner.registry.add_or_get(entry.clone()) {
            Ok(()) => entry,
            Err(existing) => existing,
        };
        if let Some(max) = factory.max_connections {
            let snapshot = self.inner.registry.snapshot_full();
            let mut made: Vec<_> = snapshot
                .entries()
                .filter(|e| e.from_factory && e.name != name)
                .collect();
            if made.len() >= max {
                made.sort_by_key(|e| e.last_used.load(std::sync::atomic::Ordering::Relaxed));
                for victim in &made[..=made.len() - max] {
                    self.evict(victim.name);
                }
            }
        }
        drop(guard);
        self.connections_changed();
        Ok(entry)
    }

    /// Unregisters a factory-made connection and closes its pool in the
    /// background (operations in flight finish first).
    fn evict(&self, name: ConnectionName) {
        if let Ok(entry) = self.inner.registry.take(name) {
            tracing::debug!(connection = %name, "factory connection evicted");
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { entry.pool.close().await });
            }
        }
    }

    /// Evicts the factory-made connections no decision chose within the
    /// factory's idle time; returns their names. (Runs in the background
    /// when the factory has an idle time.)
    pub async fn evict_idle(&self) -> Vec<ConnectionName> {
        let Some(idle) = self.inner.factory.as_ref().and_then(|f| f.idle_timeout) else {
            return Vec::new();
        };
        let now = crate::connection::registry::process_millis();
        let idle = idle.as_millis() as u64;
        let snapshot = self.inner.registry.snapshot_full();
        let victims: Vec<ConnectionName> = snapshot
            .entries()
            .filter(|e| {
                e.from_factory && now.saturating_sub(e.last_used.load(std::sync::atomic::Ordering::Relaxed)) >= idle
            })
            .map(|e| e.name)
            .collect();
        for name in &victims {
            if let Ok(entry) = self.inner.registry.take(*name) {
                entry.pool.close().await;
            }
        }
        if !victims.is_empty() {
            self.connections_changed();
        }
        victims
    }

    /// Runs `work` every `interval` in the background while the engine
    /// lives.
    fn every<F, Fut>(&self, interval: Duration, work: F)
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

    /// Decisions counted per route, when the engine was built with
    /// [`EngineBuilder::route_stats`] (empty otherwise).
    pub fn route_stats(&self) -> Vec<RouteCount> {
        self.inner
            .route_stats
            .as_ref()
            .map(RouteStats::snapshot)
            .unwrap_or_default()
    }

    /// A snapshot of every connection: pool, statements, latency, errors,
    /// health, decisions.
    pub fn status(&self) -> Vec<ConnectionStatus> {
        let registry = self.inner.registry.snapshot();
        let default = registry.default_entry().name;
        registry
            .names()
            .into_iter()
            .filter_map(|name| registry.get(&name).cloned())
            .map(|entry| ConnectionStatus::of(&entry, entry.name == default))
            .collect()
    }

    /// Checks every connection now (`SELECT 1`, within `timeout`) and
    /// returns the [`Engine::status`] with the results.
    pub async fn check_health(&self, timeout: Duration) -> Vec<ConnectionStatus> {
        let snapshot = self.inner.registry.snapshot_full();
        let checks = snapshot.entries().map(|entry| {
            let connection = Connection::new(entry.clone(), None);
            async move {
                match tokio::time::timeout(timeout, connection.execute("SELECT 1", &[])).await {
                    Ok(Ok(_)) => entry.stats.set_health(true),
                    Ok(Err(_)) => entry.stats.set_health(false),
                    Err(_) => {
                        entry.stats.set_health(false);
                        let timed_out = Error::PoolTimedOut {
                            connection: entry.name.to_string(),
                            timeout,
                        };
                        entry.stats.record_error(&entry.explain(timed_out).await);
                    }
                }
            }
        });
        for check in checks {
            check.await;
        }
        self.status()
    }

    /// Resolves one operation to a connection handle, honouring an open
    /// transaction.
    pub(crate) fn resolve(
        &self,
        kind: OpKind,
        model: &ModelInfo,
        hints: &Hints,
        using: Option<&str>,
        tx: Option<Arc<transaction::TxCore>>,
    ) -> Result<Connection> {
        let Some(tx) = tx.or_else(transaction::current) else {
            return self
                .decide(kind, model, hints, using)
                .map(|entry| Connection::new(entry, None));
        };
        // Pinned: the router is asked only to check that it agrees.
        let registry = self.inner.registry.snapshot();
        let check = match self.inner.transaction_routing {
            TransactionRouting::CheckWrites => kind == OpKind::Write,
            TransactionRouting::CheckAll => true,
            TransactionRouting::PinAll => false,
        };
        let requested = match using {
            Some(using) => Some(ConnectionName::new(using)?),
            None if check => {
                let routers = self.inner.routers.load();
                let hints = crate::scope::effective(hints);
                match routers.decide(&Operation {
                    kind,
                    model,
                    hints: hints.hints(),
                }) {
                    Ok(ChainAnswer::Use(name, _)) => Some(name),
                    Ok(ChainAnswer::Default) if self.inner.transaction_routing == TransactionRouting::CheckAll => {
                        Some(registry.default_entry().name)
                    }
                    Ok(ChainAnswer::Default) => None,
                    Err((error, _)) => return Err(error),
                }
            }
            None => None,
        };
        if let Some(requested) = requested
            && !registry.get(&requested).is_some_and(|e| Arc::ptr_eq(e, &tx.entry))
        {
            return Err(Error::CrossConnection {
                transaction: tx.entry.name.to_string(),
                requested: requested.to_string(),
            });
        }
        Ok(Connection::new(tx.entry.clone(), Some(tx)))
    }

    // ---- routed operations ----

    /// A read of model `M`, routed by `db_for_read`.
    pub fn read<M: Model>(&self) -> Routed<'_> {
        Routed::new(self, OpKind::Read, M::model_info())
    }

    /// A write of model `M`, routed by `db_for_write`.
    pub fn write<M: Model>(&self) -> Routed<'_> {
        Routed::new(self, OpKind::Write, M::model_info())
    }

    /// A read of a model given by its metadata.
    pub fn read_model<'a>(&'a self, model: &'a ModelInfo) -> Routed<'a> {
        Routed::new(self, OpKind::Read, model)
    }

    /// A write of a model given by its metadata.
    pub fn write_model<'a>(&'a self, model: &'a ModelInfo) -> Routed<'a> {
        Routed::new(self, OpKind::Write, model)
    }

    // ---- transactions ----

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
    /// engine.connection(None)?.execute("CREATE TABLE t (x INTEGER)", &[]).await?;
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

    // ---- schema (for the schema module) ----

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
