//! WebAssembly routers: load, validate, run under limits, swap instance
//! pools when connections change or optimized code is ready.

pub(crate) mod abi;
mod cache;
mod compiled_cache;
pub(crate) mod component;
pub(crate) mod instance;
mod kept;
pub(crate) mod runtime;
pub(crate) mod tiers;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use wasmtime::Module;

use self::cache::{CacheKey, DecisionCache};
use self::instance::{Init, InstanceFactory, InstancePool, classify, linker, new_store};
use self::runtime::{Code, Compiled, RouterRuntime};
use self::tiers::{Compilation, Tier, TierState};
use crate::error::{Error, Fault, LoadError, Result};
use crate::model::{Hints, ModelInfo};
use crate::name::ConnectionName;
use crate::router::{
    ConnectionStates, HostRouter, MigrateRequest, RelationRequest, RouteDecision, RouteKind, RouteRequest,
    RouterIdentity,
};

/// The largest core-module router accepted: 16 MiB.
pub const MAX_ROUTER_SIZE: usize = 16 << 20;

/// The largest router component accepted: 64 MiB (a component carries its
/// language's runtime: a Python router is about 18 MB).
pub const MAX_COMPONENT_SIZE: usize = 64 << 20;

/// The minor version of the core-module ABI a router component's contract
/// (`wit/router.wit`, `dbroute:router@1.0.0`) matches: 1.2, connection
/// state included.
const COMPONENT_ABI_MINOR: i32 = 2;

/// One expected decision, checked before a router is activated.
///
/// # Examples
///
/// ```
/// use dbroute::Hints;
/// use dbroute::wasm::Expectation;
/// let cases = [
///     Expectation::read("User").answers("replica"),
///     Expectation::write("User").answers("default"),
///     Expectation::read("Event").hints(Hints::new().with("tenant", "acme")).has_no_opinion(),
///     Expectation::write("Archive").is_refused(),
/// ];
/// # let _ = cases;
/// ```
#[derive(Debug, Clone)]
pub struct Expectation {
    kind: RouteKind,
    model: ModelInfo,
    hints: Hints,
    expected: Expected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Connection(String),
    NoOpinion,
    Refused,
}

impl Expectation {
    /// An expectation for reading `model`.
    pub fn read(model: impl Into<String>) -> ExpectationBuilder {
        ExpectationBuilder {
            kind: RouteKind::Read,
            model: ModelInfo::new(model),
            hints: Hints::new(),
        }
    }
    /// An expectation for writing `model`.
    pub fn write(model: impl Into<String>) -> ExpectationBuilder {
        ExpectationBuilder {
            kind: RouteKind::Write,
            model: ModelInfo::new(model),
            hints: Hints::new(),
        }
    }
}

/// Builds an [`Expectation`]: the operation, then the answer.
#[derive(Debug, Clone)]
pub struct ExpectationBuilder {
    kind: RouteKind,
    model: ModelInfo,
    hints: Hints,
}

impl ExpectationBuilder {
    /// Uses this model metadata (table, app, tags) instead of a bare name.
    pub fn model(mut self, model: ModelInfo) -> Self {
        self.model = model;
        self
    }
    /// Passes these hints.
    pub fn hints(mut self, hints: Hints) -> Self {
        self.hints = hints;
        self
    }
    /// Expects the router to answer `connection`.
    pub fn answers(self, connection: impl Into<String>) -> Expectation {
        self.expect(Expected::Connection(connection.into()))
    }
    /// Expects no opinion.
    pub fn has_no_opinion(self) -> Expectation {
        self.expect(Expected::NoOpinion)
    }
    /// Expects a refusal.
    pub fn is_refused(self) -> Expectation {
        self.expect(Expected::Refused)
    }
    fn expect(self, expected: Expected) -> Expectation {
        Expectation {
            kind: self.kind,
            model: self.model,
            hints: self.hints,
            expected,
        }
    }
}

/// Loads a WebAssembly router: its name, its JSON config, the connection
/// names its `dbroute_init` is told about, and a self-test.
///
/// # Examples
///
/// ```
/// use dbroute::router::HostRouter;
/// use dbroute::wasm::{Expectation, RouterLimits, RouterRuntime, WasmRouter};
///
/// // The simplest router, in WebAssembly text: reads go to "replica".
/// let wat = r#"(module
///   (memory (export "memory") 1)
///   (data (i32.const 16) "replica")
///   (func (export "dbroute_abi_version") (result i32) i32.const 1)
///   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
///   (func (export "db_for_read") (param i32 i32) (result i64)
///     i64.const 0x0000001000000007))"#;
/// let runtime = RouterRuntime::new(RouterLimits::default())?;
/// let router = WasmRouter::named("replica")
///     .connections(["default", "replica"])
///     .expect(Expectation::read("User").answers("replica"))
///     .load(&runtime, wat.as_bytes())?;
/// assert_eq!(router.identity().name(), "replica");
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WasmRouterBuilder {
    name: String,
    config: serde_json::Value,
    connections: Vec<String>,
    expectations: Vec<Expectation>,
    answer_cache: bool,
    compilation: Compilation,
}

impl WasmRouterBuilder {
    /// Whether to cache the answers of a router that declares itself
    /// deterministic (default: yes). Routers that do not declare it are
    /// never cached.
    pub fn answer_cache(mut self, enabled: bool) -> Self {
        self.answer_cache = enabled;
        self
    }

    /// How to compile the router's bytes (default: [`Compilation::Tiered`],
    /// baseline code at once and optimized code from the background).
    pub fn compilation(mut self, compilation: Compilation) -> Self {
        self.compilation = compilation;
        self
    }

    /// The router's configuration, handed to `dbroute_init`.
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// The connection names `dbroute_init` is told about. (The engine fills
    /// these in when it loads a router.) An invalid name makes the load fail
    /// with [`Error::InvalidName`].
    pub fn connections<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.connections = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
        self
    }

    pub(crate) fn connection_names(mut self, names: Vec<ConnectionName>) -> Self {
        self.connections = names.iter().map(ConnectionName::to_string).collect();
        self
    }

    /// Adds an expected decision; the router is refused unless it holds.
    pub fn expect(mut self, expectation: Expectation) -> Self {
        self.expectations.push(expectation);
        self
    }

    /// The router's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn refuse(&self, reason: LoadError) -> Error {
        Error::RouterLoad {
            router: self.name.clone(),
            reason,
        }
    }

    /// Reads a `.wasm` or `.wat` file (a core module or a component) and
    /// loads it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::RouterLoad`]
    /// when it is not a regular file, is larger than [`MAX_ROUTER_SIZE`] (a
    /// core module) or [`MAX_COMPONENT_SIZE`] (a component), or is refused
    /// as [`WasmRouterBuilder::load`] says.
    pub fn load_file(self, runtime: &RouterRuntime, path: impl AsRef<Path>) -> Result<WasmRouter> {
        let bytes = read_router_file(path.as_ref()).map_err(|e| match e {
            Error::RouterLoad { reason, .. } => self.refuse(reason),
            other => other,
        })?;
        self.load(runtime, &bytes)
    }

    /// Compiles and validates `bytes` (binary WebAssembly or WAT text), then
    /// makes a first instance and runs its `dbroute_init` and the
    /// self-test.
    ///
    /// The bytes may be a core module speaking the ABI of `docs/ABI.md`, or
    /// a component built against `wit/router.wit` (Python, JavaScript, Rust
    /// with wit-bindgen): the bytes say which. A component runs in the
    /// same pools, under the same limits (its memory ceiling is
    /// [`RouterLimits::component_memory_ceiling`][ceiling]), with WASI
    /// functions that grant nothing (docs/ABI.md, "Components").
    ///
    /// [ceiling]: runtime::RouterLimits::component_memory_ceiling
    ///
    /// Unless the runtime's compiled-router cache holds these bytes
    /// optimized, they are compiled by the baseline compiler, several times
    /// faster, and the router returned runs that code; the optimizing
    /// compiler then runs in the background and the router moves to its
    /// code when it is done (see [`WasmRouter::tier`], and
    /// [`WasmRouterBuilder::compilation`] for the other choices).
    ///
    /// # Errors
    ///
    /// [`Error::RouterLoad`] with the reason: not WebAssembly, not a router,
    /// another ABI version, a forbidden import, a missing or mistyped
    /// export, an init that refused or failed, a self-test that did not
    /// hold.
    pub fn load(self, runtime: &RouterRuntime, bytes: &[u8]) -> Result<WasmRouter> {
        let started = Instant::now();
        let (kind, limit) = if component::is_component(bytes) {
            ("component", MAX_COMPONENT_SIZE)
        } else {
            ("module", MAX_ROUTER_SIZE)
        };
        if bytes.len() > limit {
            return Err(self.refuse(LoadError::File(format!(
                "it is a {kind} of {} bytes, more than the {limit}-byte maximum",
                bytes.len()
            ))));
        }
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let compiled = runtime
            .compile(bytes, &hash, self.compilation)
            .map_err(|e| self.refuse(LoadError::Compile(root_cause(&e))))?;
        let compile_time = started.elapsed();
        let optimize_later = compiled.tier == Tier::Baseline && self.compilation == Compilation::Tiered;
        let expectations = if optimize_later {
            self.expectations.clone()
        } else {
            Vec::new()
        };
        let router = self.load_compiled(runtime, compiled, hash, bytes.len(), compile_time)?;
        if optimize_later {
            optimize_in_background(runtime, &router, bytes.into(), hash, expectations);
        }
        Ok(router)
    }

    fn load_compiled(
        self,
        runtime: &RouterRuntime,
        compiled: Compiled,
        hash: [u8; 32],
        size: usize,
        compile_time: Duration,
    ) -> Result<WasmRouter> {
        let Compiled { code, tier, from_cache } = compiled;
        let (probed, exports, export_names) = match &code {
            Code::Module(module) => {
                abi::check_has_version(module).map_err(|e| self.refuse(e))?;
                let probed = probe(runtime, module, &self.name).map_err(|e| self.refuse(e))?;
                abi::check_imports(module).map_err(|e| self.refuse(e))?;
                let exports = abi::check_exports(module, probed.abi_minor).map_err(|e| self.refuse(e))?;
                (probed, exports, exports.names())
            }
            // A component has every function of the contract (its imports
            // and exports are checked when its factory is made), and says
            // whether it is deterministic once its first instance is up.
            Code::Component(_) => (
                Probed {
                    deterministic: false,
                    abi_minor: COMPONENT_ABI_MINOR,
                },
                abi::Exports::all(),
                component::FUNCTIONS.to_vec(),
            ),
        };
        let abi_minor = probed.abi_minor;
        let identity = RouterIdentity::wasm(self.name.as_str(), hash);
        let connections = self
            .connections
            .iter()
            .map(|n| ConnectionName::new(n))
            .collect::<Result<Vec<_>>>()?;
        let init = Init::new(&self.config, &connections);
        let factory = InstanceFactory::new(runtime, &code, identity.clone(), init).map_err(|e| self.refuse(e))?;
        let mut first = factory.instantiate().map_err(|e| self.refuse(e))?;
        let deterministic = match first.component_deterministic() {
            Some(answer) => answer.map_err(|fault| self.refuse(LoadError::InitFault(fault)))?,
            None => probed.deterministic,
        };
        for case in &self.expectations {
            self_test(&mut first, case).map_err(|e| self.refuse(LoadError::SelfTest(e)))?;
        }
        let pool = InstancePool::new(factory);
        pool.offer(Box::new(first));
        if code.is_component() {
            // A component's instance takes about a millisecond to make:
            // one per core is made now, so that the first decisions after
            // the swap do not wait for one.
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            while pool.idle() < cores.min(pool.limit()) {
                let instance = pool.factory.instantiate().map_err(|e| self.refuse(e))?;
                pool.offer(Box::new(instance));
            }
        }
        let router = WasmRouter {
            inner: Arc::new(Inner {
                identity,
                config: self.config.clone(),
                pool_id: AtomicU64::new(pool.id()),
                pool: ArcSwap::from_pointee(pool),
                exports,
                cache: (deterministic && self.answer_cache).then(DecisionCache::new),
                replacing_pool: Mutex::new(()),
                state: ArcSwap::from_pointee(Told::default()),
                state_generation: AtomicU64::new(0),
                telling: Mutex::new(()),
                tier: TierState::new(tier),
                info: RouterInfo {
                    size,
                    compile_time,
                    compiled_from_cache: from_cache,
                    compiled_by: tier,
                    deterministic,
                    abi_minor,
                    exports: export_names,
                    component: code.is_component(),
                },
                faults: AtomicU64::new(0),
                limits: runtime.limits().clone(),
            }),
        };
        tracing::info!(router = %router.identity(), "router loaded");
        Ok(router)
    }
}

/// Has the runtime's optimizer thread compile `bytes` (whose SHA-256 is
/// `hash`) with the optimizing compiler, then move `router` to that code
/// if it passes the router's self-test (`expectations`) too, unless the
/// router is gone by then: a router swapped out before its turn costs only
/// its queued bytes.
fn optimize_in_background(
    runtime: &RouterRuntime,
    router: &WasmRouter,
    bytes: Arc<[u8]>,
    hash: [u8; 32],
    expectations: Vec<Expectation>,
) {
    // What the router's instances were told at load: what its self-test
    // was written for.
    let as_loaded = router.inner.pool.load().factory.init.clone();
    let weak: Weak<Inner> = Arc::downgrade(&router.inner);
    router.inner.tier.start();
    let optimizer = runtime.clone();
    let queued = runtime.queue_optimization(move || {
        // However the job ends (a panic included), the router's tier is
        // settled, so that nobody waits for it in vain.
        let mut end = OptimizationEnd {
            router: weak.clone(),
            tier: Tier::Baseline,
        };
        if weak.strong_count() == 0 {
            return;
        }
        let started = Instant::now();
        let optimized = optimizer.optimize(&bytes, &hash);
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let router = WasmRouter { inner };
        let moved = optimized
            .map_err(|e| LoadError::Compile(root_cause(&e)))
            .and_then(|code| router.move_to_code(&code, &as_loaded, &expectations));
        match moved {
            Ok(()) => {
                end.tier = Tier::Optimized;
                tracing::info!(router = %router.identity(), took = ?started.elapsed(), "router optimized");
            }
            Err(e) => {
                tracing::warn!(router = %router.identity(), "could not optimize the router, it stays on baseline code: {e}")
            }
        }
    });
    if !queued {
        router.inner.tier.finish(Tier::Baseline);
    }
}

/// Settles a router's tier when its optimization job ends, however it
/// ends.
struct OptimizationEnd {
    router: Weak<Inner>,
    tier: Tier,
}

impl Drop for OptimizationEnd {
    fn drop(&mut self) {
        if let Some(inner) = self.router.upgrade() {
            inner.tier.finish(self.tier);
        }
    }
}

fn root_cause(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    crate::router::wasm::abi::cut(&text, 1000)
}

/// Reads a router file, refusing anything that is not a regular file of at
/// most [`MAX_COMPONENT_SIZE`] bytes (a core module's smaller maximum is
/// checked when its bytes are loaded).
pub(crate) fn read_router_file(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let refuse = |msg: String| Error::RouterLoad {
        router: shown.clone(),
        reason: LoadError::File(msg),
    };
    if !meta.is_file() {
        return Err(refuse(format!("{shown} is not a regular file")));
    }
    if meta.len() > MAX_COMPONENT_SIZE as u64 {
        return Err(refuse(format!(
            "{shown} is {} bytes, more than the {MAX_COMPONENT_SIZE}-byte maximum of a component",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|source| Error::Io { path: shown, source })
}

/// What [`probe`] read from a module.
struct Probed {
    deterministic: bool,
    abi_minor: i32,
}

/// Instantiates the module once with every unknown import trapping, to read
/// `dbroute_abi_version` before anything else, then `dbroute_deterministic`
/// and `dbroute_abi_minor`.
fn probe(runtime: &RouterRuntime, module: &Module, name: &str) -> std::result::Result<Probed, LoadError> {
    let mut linker = linker(module.engine());
    linker
        .define_unknown_imports_as_traps(module)
        .map_err(|e| LoadError::Instantiate(e.to_string()))?;
    let mut store = new_store(runtime, module, Arc::from(name));
    let instance = match linker.instantiate(&mut store, module) {
        Ok(instance) => instance,
        Err(e) => {
            // A start function that calls a forbidden import traps here:
            // report the import, it is the actionable problem.
            abi::check_imports(module)?;
            return Err(LoadError::Instantiate(classify(&e, store.data()).to_string()));
        }
    };
    let call_i32 = |store: &mut wasmtime::Store<_>, export: &str| -> std::result::Result<Option<i32>, LoadError> {
        let Ok(func) = instance.get_typed_func::<(), i32>(&mut *store, export) else {
            return Ok(None);
        };
        func.call(&mut *store, ())
            .map(Some)
            .map_err(|e| LoadError::Instantiate(format!("`{export}` failed: {}", classify(&e, store.data()))))
    };
    let version = call_i32(&mut store, abi::VERSION)?.ok_or(LoadError::NotARouter)?;
    abi::check_version(version)?;
    Ok(Probed {
        deterministic: call_i32(&mut store, abi::DETERMINISTIC)?.is_some_and(abi::decode_deterministic),
        abi_minor: call_i32(&mut store, abi::MINOR)?.unwrap_or(0),
    })
}

/// Checks `case` against `instance` (before it joins a pool: the code
/// itself answers, not the answer cache).
fn self_test(instance: &mut instance::RouterInstance, case: &Expectation) -> std::result::Result<(), String> {
    let got = instance.decide(&RouteRequest {
        kind: case.kind,
        model: &case.model,
        hints: &case.hints,
        origin: None,
    });
    let described = format!("{} of `{}`", case.kind, case.model.name());
    let got = match got {
        Ok(RouteDecision::Use(name)) => Expected::Connection(name.to_string()),
        Ok(RouteDecision::NoOpinion) => Expected::NoOpinion,
        Ok(RouteDecision::Refuse(_)) => Expected::Refused,
        Err(fault) => return Err(format!("{described}: {fault}")),
    };
    if got == case.expected {
        Ok(())
    } else {
        Err(format!("{described}: expected {:?}, got {got:?}", case.expected))
    }
}

/// Facts about a loaded router, for reports (`dbroute check`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterInfo {
    /// The module's size in bytes.
    pub size: usize,
    /// How long compiling took (or reading the compiled module from the
    /// runtime's compiled-router cache).
    pub compile_time: Duration,
    /// Whether the compiled module came from the runtime's compiled-router
    /// cache (see [`RouterRuntime::with_compiled_cache`]).
    pub compiled_from_cache: bool,
    /// The compiler whose code it was loaded with; [`WasmRouter::tier`]
    /// says which code it runs now.
    pub compiled_by: Tier,
    /// Whether it declared `dbroute_deterministic() == 1`.
    pub deterministic: bool,
    /// What its `dbroute_abi_minor` returned (0 without that export): 1 or
    /// more for a router that reads the inputs ABI 1.1 added, 2 or more
    /// for one that may be told the connections' state (ABI 1.2, when it
    /// exports `dbroute_state`; see
    /// [`ABI_MINOR`](crate::wasm::ABI_MINOR)). A component reports 2: its
    /// contract (`wit/router.wit`) gives it every input ABI 1.2 gives a
    /// core module, the connections' state included.
    ///
    /// ```
    /// # use dbroute::wasm::{RouterLimits, RouterRuntime, WasmRouter};
    /// # let runtime = RouterRuntime::new(RouterLimits::default())?;
    /// let wat = r#"(module (memory (export "memory") 1)
    ///   (func (export "dbroute_abi_version") (result i32) i32.const 1)
    ///   (func (export "dbroute_abi_minor") (result i32) i32.const 1)
    ///   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
    ///   (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))"#;
    /// let router = WasmRouter::named("reads-1.1").load(&runtime, wat.as_bytes())?;
    /// assert_eq!(router.info().abi_minor, 1);
    /// # Ok::<(), dbroute::Error>(())
    /// ```
    pub abi_minor: i32,
    /// The ABI exports it has (for a component: the functions of
    /// `wit/router.wit`'s `router` interface, all of which it has).
    pub exports: Vec<&'static str>,
    /// Whether it is a component (`wit/router.wit`) rather than a core
    /// module (`docs/ABI.md`).
    pub component: bool,
}

/// A loaded WebAssembly router: compiled (and, from baseline code, moved to
/// optimized code when it is ready), run in a pool of sandboxed
/// instances. Cheap to clone.
#[derive(Clone)]
pub struct WasmRouter {
    inner: Arc<Inner>,
}

struct Inner {
    identity: RouterIdentity,
    config: serde_json::Value,
    /// The id of `pool`'s current value: what a thread's kept instance must
    /// match (reading it needs no `ArcSwap` load).
    pool_id: AtomicU64,
    pool: ArcSwap<InstancePool>,
    /// Which optional exports the module has (the same in every pool).
    exports: abi::Exports,
    /// Present when the router declared itself deterministic.
    cache: Option<DecisionCache>,
    /// Held while `pool` is replaced (new connections, optimized code), so
    /// that one replacement does not undo the other.
    replacing_pool: Mutex<()>,
    /// The connections' state instances are told before their next call
    /// (ABI 1.2; only for a router that exports `dbroute_state`).
    state: ArcSwap<Told>,
    /// `state`'s generation, what an instance's told generation is
    /// compared with before each call (reading it needs no `ArcSwap`
    /// load).
    state_generation: AtomicU64,
    /// Held while `state` is replaced.
    telling: Mutex<()>,
    tier: TierState,
    info: RouterInfo,
    /// Calls that faulted since the router was loaded.
    faults: AtomicU64,
    /// The runtime's limits (when an instance is worn out).
    limits: runtime::RouterLimits,
}

/// A state of the connections, and its generation (counted per router,
/// from 1; 0 is "none", what a new instance was told).
#[derive(Default)]
struct Told {
    generation: u64,
    states: Option<ConnectionStates>,
}

impl fmt::Debug for WasmRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmRouter")
            .field("identity", &self.inner.identity)
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

impl WasmRouter {
    /// Starts loading a router, called `name` in logs, errors and status
    /// (the router's own name, not a connection's).
    pub fn named(name: impl Into<String>) -> WasmRouterBuilder {
        WasmRouterBuilder {
            name: name.into(),
            config: serde_json::Value::Null,
            connections: Vec::new(),
            expectations: Vec::new(),
            answer_cache: true,
            compilation: Compilation::Tiered,
        }
    }

    /// Facts about the module.
    pub fn info(&self) -> &RouterInfo {
        &self.inner.info
    }

    /// Which compiler's code the router runs now: [`Tier::Baseline`] until
    /// the optimizing compiler, run in the background after a load from
    /// bytes, has finished (see [`WasmRouterBuilder::load`]).
    pub fn tier(&self) -> Tier {
        self.inner.tier.tier()
    }

    /// Waits, at most `timeout`, until the router's optimization in the
    /// background is over, and returns the tier it runs then: at once when
    /// none is under way (it was loaded on optimized code, or with
    /// [`Compilation::Baseline`], or its optimization is over); after it,
    /// [`Tier::Baseline`] when it failed (logged; the router keeps its
    /// baseline code).
    ///
    /// ```
    /// # use dbroute::wasm::{RouterLimits, RouterRuntime, Tier, WasmRouter};
    /// # use std::time::Duration;
    /// # let runtime = RouterRuntime::new(RouterLimits::default())?;
    /// let wat = r#"(module (memory (export "memory") 1)
    ///   (func (export "dbroute_abi_version") (result i32) i32.const 1)
    ///   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
    ///   (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))"#;
    /// let router = WasmRouter::named("none").load(&runtime, wat.as_bytes())?;
    /// assert_eq!(router.wait_until_optimized(Duration::from_secs(60)), Tier::Optimized);
    /// # Ok::<(), dbroute::Error>(())
    /// ```
    pub fn wait_until_optimized(&self, timeout: Duration) -> Tier {
        self.inner.tier.wait(timeout)
    }

    /// Idle instances now: in the pool's shards, and kept by the threads
    /// that route (each can use only the one it keeps).
    pub fn idle_instances(&self) -> usize {
        self.inner.pool.load().idle()
    }

    /// Makes instances until `n` are idle (at most the runtime's idle
    /// limit), so that the first decisions after a swap do not wait for one
    /// to be made (tens of microseconds each). Returns how many are idle.
    /// The move to optimized code makes as many of its own.
    ///
    /// ```
    /// # use dbroute::wasm::{RouterLimits, RouterRuntime, WasmRouter};
    /// # let runtime = RouterRuntime::new(RouterLimits::default())?;
    /// let wat = r#"(module (memory (export "memory") 1)
    ///   (func (export "dbroute_abi_version") (result i32) i32.const 1)
    ///   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
    ///   (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))"#;
    /// let router = WasmRouter::named("none").load(&runtime, wat.as_bytes())?;
    /// assert_eq!(router.prepare_instances(4)?, 4);
    /// # Ok::<(), dbroute::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::RouterLoad`] when an instance cannot be made.
    pub fn prepare_instances(&self, n: usize) -> Result<usize> {
        let pool = self.inner.pool.load();
        while pool.idle() < n.min(pool.limit()) {
            let instance = pool.factory.instantiate().map_err(|reason| Error::RouterLoad {
                router: self.inner.identity.to_string(),
                reason,
            })?;
            pool.offer(Box::new(instance));
        }
        Ok(pool.idle())
    }

    /// One decision: from the cache when the router is deterministic and
    /// has answered this exact input before, else from an instance.
    #[inline]
    fn decide(&self, kind: RouteKind, op: &RouteRequest<'_>) -> std::result::Result<RouteDecision, Fault> {
        let exported = match kind {
            RouteKind::Read => self.inner.exports.db_for_read,
            RouteKind::Write => self.inner.exports.db_for_write,
        };
        if !exported {
            return Ok(RouteDecision::NoOpinion);
        }
        let Some(cache) = &self.inner.cache else {
            return self.call(op);
        };
        let key = CacheKey::new(kind, op.model, op.hints, op.origin);
        let miss = match cache.get(&key) {
            Ok(decision) => return Ok(decision),
            Err(miss) => miss,
        };
        let decision = self.call(op)?;
        cache.put(&key, miss, &decision);
        Ok(decision)
    }

    /// One decision from an instance of the router.
    #[inline]
    fn call(&self, op: &RouteRequest<'_>) -> std::result::Result<RouteDecision, Fault> {
        self.with_instance(|instance| instance.decide(op))
    }

    /// Runs `call` on the instance this thread keeps when it has one, else
    /// on one from the pool. An instance that faulted is dropped.
    #[inline]
    fn with_instance<T>(
        &self,
        call: impl FnOnce(&mut instance::RouterInstance) -> std::result::Result<T, Fault>,
    ) -> std::result::Result<T, Fault> {
        // An instance behind the connections' state is told it first (one
        // relaxed load and compare per call; 0 for a router that is never
        // told any). A read of the answer cache before this load sees a
        // clear made after the state changed, and so this state too.
        let wanted = self.inner.state_generation.load(Ordering::Relaxed);
        let call = |instance: &mut instance::RouterInstance| {
            if instance.told() != wanted {
                self.tell_state(instance)?;
            }
            call(instance)
        };
        if let Some(mut kept) = kept::take(self.inner.pool_id.load(Ordering::Acquire)) {
            let result = call(kept.instance());
            if result.is_err() {
                kept.discard();
                self.count_fault();
            } else if kept.instance().worn_out(&self.inner.limits) {
                kept.discard();
            } else {
                kept::put_back(kept);
            }
            return result;
        }
        let result = self.inner.pool.load().with_instance(call);
        if result.is_err() {
            self.count_fault();
        }
        result
    }

    #[cold]
    #[inline(never)]
    fn count_fault(&self) {
        self.inner.faults.fetch_add(1, Ordering::Relaxed);
    }

    /// How many calls of this router faulted (trapped, ran past a limit,
    /// answered something malformed) since it was loaded.
    pub fn faults(&self) -> u64 {
        self.inner.faults.load(Ordering::Relaxed)
    }

    /// Tells `instance` the connections' state it has not been told yet.
    #[cold]
    #[inline(never)]
    fn tell_state(&self, instance: &mut instance::RouterInstance) -> std::result::Result<(), Fault> {
        let told = self.inner.state.load();
        match &told.states {
            Some(states) => instance.tell_state(told.generation, states),
            None => Ok(()),
        }
    }

    /// Moves the router to `code` (the same bytes, compiled again).
    ///
    /// Outside the lock (wasm runs here, under the limits): an instance
    /// made for the connections the router was loaded with (`as_loaded`)
    /// must pass the self-test `expectations`; then as many instances as
    /// are idle now (at least one) are made for the current connections.
    /// Under the lock, the new pool replaces the current one; if the
    /// connections changed meanwhile, it is made for the new ones instead,
    /// its instances made on demand. Answers stay cached: the code is
    /// another compiler's, the router the same.
    fn move_to_code(
        &self,
        code: &Code,
        as_loaded: &Init,
        expectations: &[Expectation],
    ) -> std::result::Result<(), LoadError> {
        let current = self.inner.pool.load_full();
        let (runtime, identity) = (&current.factory.runtime, &current.factory.identity);
        let factory = InstanceFactory::new(runtime, code, identity.clone(), current.factory.init.clone())?;
        let mut instances = Vec::new();
        if !expectations.is_empty() {
            let mut tested = if factory.init == *as_loaded {
                factory.instantiate()?
            } else {
                InstanceFactory::new(runtime, code, identity.clone(), as_loaded.clone())?.instantiate()?
            };
            for case in expectations {
                self_test(&mut tested, case).map_err(LoadError::SelfTest)?;
            }
            if factory.init == *as_loaded {
                instances.push(tested);
            }
        }
        while instances.len() < current.idle().clamp(1, current.limit()) {
            instances.push(factory.instantiate()?);
        }
        let mut pool = InstancePool::new(factory);
        pool.offer_spread(instances);

        let _replacing = self.inner.replacing_pool.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.inner.pool.load();
        if now.factory.init != pool.factory.init {
            let init = now.factory.init.clone();
            pool = InstancePool::new(InstanceFactory::new(runtime, code, identity.clone(), init)?);
        }
        self.replace_pool(pool);
        Ok(())
    }

    /// Makes `pool` the one decisions use; threads drop the instances they
    /// keep of the one before. The caller holds `replacing_pool`.
    fn replace_pool(&self, pool: InstancePool) {
        let id = pool.id();
        self.inner.pool.store(Arc::new(pool));
        self.inner.pool_id.store(id, Ordering::Release);
    }
}

impl HostRouter for WasmRouter {
    fn identity(&self) -> RouterIdentity {
        self.inner.identity.clone()
    }

    #[inline]
    fn db_for_read(&self, op: &RouteRequest<'_>) -> std::result::Result<RouteDecision, Fault> {
        self.decide(RouteKind::Read, op)
    }

    #[inline]
    fn db_for_write(&self, op: &RouteRequest<'_>) -> std::result::Result<RouteDecision, Fault> {
        self.decide(RouteKind::Write, op)
    }

    fn allow_relation(&self, relation: &RelationRequest<'_>) -> std::result::Result<Option<bool>, Fault> {
        if !self.inner.exports.allow_relation
            || (abi::relation_needs_1_1(relation.a.db, relation.b.db)
                && !abi::understands_1_1(self.inner.info.abi_minor))
        {
            return Ok(None);
        }
        self.with_instance(|instance| instance.allow_relation(relation))
    }

    fn allow_migrate(&self, migration: &MigrateRequest<'_>) -> std::result::Result<Option<bool>, Fault> {
        if !self.inner.exports.allow_migrate
            || (abi::migrate_needs_1_1(migration.target) && !abi::understands_1_1(self.inner.info.abi_minor))
        {
            return Ok(None);
        }
        self.with_instance(|instance| instance.allow_migrate(migration))
    }

    fn connections_changed(&self, names: &[ConnectionName]) {
        let _replacing = self.inner.replacing_pool.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.inner.pool.load();
        let factory = &current.factory;
        let init = Init::new(&self.inner.config, names);
        if init == factory.init {
            return; // Its instances already know these connections.
        }
        match InstanceFactory::new(&factory.runtime, &factory.code(), factory.identity.clone(), init) {
            Ok(factory) => {
                self.replace_pool(InstancePool::new(factory));
                // Answers may depend on the connections init was told about.
                if let Some(cache) = &self.inner.cache {
                    cache.clear();
                }
            }
            Err(e) => {
                tracing::error!(router = %self.inner.identity, "could not re-initialise for new connections: {e}")
            }
        }
    }

    /// For a router of ABI 1.2 that exports `dbroute_state`: a state unlike
    /// the last one becomes the one every instance is told before its next
    /// call, and the cached answers are forgotten (they may depend on the
    /// state). No router code runs here. Other routers are never told.
    fn state_changed(&self, state: &ConnectionStates) {
        if !self.inner.exports.state {
            return;
        }
        let _telling = self.inner.telling.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.inner.state.load();
        if current.states.as_ref() == Some(state) {
            return;
        }
        let generation = current.generation + 1;
        self.inner.state.store(Arc::new(Told {
            generation,
            states: Some(state.clone()),
        }));
        self.inner.state_generation.store(generation, Ordering::Release);
        // After the new generation: a decision that reads the cache after
        // this clear also reads the new generation (see `with_instance`).
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
        tracing::debug!(router = %self.inner.identity, generation, "connection state changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::wasm::runtime::RouterLimits;
    use std::sync::mpsc;

    /// A router whose reads go to `replica`; `salt` makes its bytes (and so
    /// its compiled-cache file) its own.
    fn router_wat(salt: u32) -> String {
        format!(
            r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (global $salt i32 (i32.const {salt}))
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000007))"#
        )
    }

    fn compiled_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
            .count()
    }

    // Where there is a baseline compiler: elsewhere every router is
    // optimized before its load returns.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn routers_dropped_before_their_turn_are_not_optimized() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = RouterRuntime::with_compiled_cache(RouterLimits::default(), dir.path()).unwrap();
        let load = |salt| {
            WasmRouter::named("r")
                .load(&runtime, router_wat(salt).as_bytes())
                .unwrap()
        };
        // The optimizer thread is busy until the twenty routers are gone.
        let (release, held) = mpsc::channel::<()>();
        assert!(runtime.queue_optimization(move || {
            let _ = held.recv();
        }));
        for salt in 0..20 {
            drop(load(salt));
        }
        let kept = load(20);
        release.send(()).unwrap();
        assert_eq!(kept.wait_until_optimized(Duration::from_secs(60)), Tier::Optimized);
        // Each router optimized is stored in the cache: only the one kept.
        assert_eq!(compiled_files(dir.path()), 1);
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn optimized_code_is_self_tested_as_loaded_and_runs_with_the_connections_of_now() {
        // The `app` router sends a model to the connection named after its
        // app when its init was told that connection exists. Its self-test
        // holds for the connections it was loaded with (no `billing`).
        let runtime = RouterRuntime::new(RouterLimits::default()).unwrap();
        let invoice = ModelInfo::new("Invoice").with_app("billing");
        let (release, held) = mpsc::channel::<()>();
        assert!(runtime.queue_optimization(move || {
            let _ = held.recv();
        }));
        let router = WasmRouter::named("app")
            .connections(["default"])
            .expect(Expectation::read("Invoice").model(invoice.clone()).has_no_opinion())
            .load_file(&runtime, dbroute_example_routers::APP)
            .unwrap();
        assert_eq!(router.tier(), Tier::Baseline);
        // New connections before the optimizer gets to it.
        let names = ["default", "billing"].map(|n| ConnectionName::new(n).unwrap());
        router.connections_changed(&names);
        release.send(()).unwrap();
        // Self-tested with the old connections, it passes; run with the new
        // ones, it routes to `billing`.
        assert_eq!(router.wait_until_optimized(Duration::from_secs(60)), Tier::Optimized);
        let op = RouteRequest {
            kind: RouteKind::Read,
            model: &invoice,
            hints: &Hints::new(),
            origin: None,
        };
        assert_eq!(
            router.db_for_read(&op),
            Ok(RouteDecision::Use(ConnectionName::new("billing").unwrap()))
        );
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn optimized_code_that_fails_the_self_test_is_not_used() {
        let runtime = RouterRuntime::new(RouterLimits::default()).unwrap();
        let wat = router_wat(0);
        let router = WasmRouter::named("r")
            .connections(["default", "replica"])
            .compilation(Compilation::Baseline)
            .load(&runtime, wat.as_bytes())
            .unwrap();
        // A self-test its code does not pass (the load's own would have
        // refused it): the optimized code is not used, and waiting ends.
        let wrong = Expectation::read("User").answers("default");
        let hash: [u8; 32] = Sha256::digest(wat.as_bytes()).into();
        optimize_in_background(&runtime, &router, wat.as_bytes().into(), hash, vec![wrong]);
        let started = Instant::now();
        assert_eq!(router.wait_until_optimized(Duration::from_secs(60)), Tier::Baseline);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited {:?}",
            started.elapsed()
        );
        assert_eq!(router.tier(), Tier::Baseline);
        let op = RouteRequest {
            kind: RouteKind::Read,
            model: &ModelInfo::new("User"),
            hints: &Hints::new(),
            origin: None,
        };
        assert_eq!(
            router.db_for_read(&op),
            Ok(RouteDecision::Use(ConnectionName::new("replica").unwrap()))
        );
    }
}
