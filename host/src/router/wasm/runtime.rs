//! The WebAssembly runtime routers run in: wasmtime engines configured
//! with the limits (one per compiler tier), the clock that enforces the
//! time budget, and the thread that optimizes routers in the background.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Module;
use wasmtime::component::Component;

use super::compiled_cache::CompiledCache;
use super::tiers::{Compilation, Optimizer, Tier};
use crate::error::{Error, LoadError, Result};

/// Limits every router call runs under.
///
/// | limit | default |
/// |---|---|
/// | time budget per call | 50 ms |
/// | memory ceiling per instance | 16 MiB |
/// | stack ceiling | 512 KiB |
/// | idle instances kept per router | 32 |
/// | memory ceiling per component instance | 256 MiB |
/// | an instance is replaced after this many calls | never |
/// | an instance is replaced once its memory passes | 64 MiB |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dbroute::wasm::RouterLimits;
///
/// let limits = RouterLimits::new()
///     .time_budget(Duration::from_millis(2))
///     .memory_ceiling(8 << 20);
/// assert_eq!(limits.get_time_budget(), Duration::from_millis(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLimits {
    time_budget: Duration,
    /// `time_budget` in clock ticks, computed once.
    budget_ticks: u64,
    memory_ceiling: usize,
    stack_ceiling: usize,
    idle_instances: usize,
    component_memory_ceiling: usize,
    recycle_after_calls: u64,
    recycle_above_memory: usize,
}

impl Default for RouterLimits {
    fn default() -> Self {
        RouterLimits {
            time_budget: DEFAULT_BUDGET,
            budget_ticks: ticks(DEFAULT_BUDGET),
            memory_ceiling: 16 << 20,
            stack_ceiling: 512 << 10,
            idle_instances: 32,
            component_memory_ceiling: 256 << 20,
            recycle_after_calls: u64::MAX,
            recycle_above_memory: 64 << 20,
        }
    }
}

/// The default time budget. A decision takes about a microsecond; the
/// budget is wall-clock time, so it also absorbs the thread being
/// descheduled on a busy machine (tens of milliseconds), which must not
/// fail a healthy router.
const DEFAULT_BUDGET: Duration = Duration::from_millis(50);

/// How often the budget clock ticks: the budget's granularity.
const TICK: Duration = Duration::from_millis(1);

/// A budget in clock ticks: at least 1, plus one for the partial tick the
/// call starts in.
fn ticks(budget: Duration) -> u64 {
    (budget.as_nanos().div_ceil(TICK.as_nanos()) as u64).max(1) + 1
}

impl RouterLimits {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }
    /// The wall-clock time one call may take before it is interrupted
    /// (enforced at a 1 ms granularity).
    pub fn time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = budget;
        self.budget_ticks = ticks(budget);
        self
    }
    /// The most linear memory one instance may have, in bytes.
    pub fn memory_ceiling(mut self, bytes: usize) -> Self {
        self.memory_ceiling = bytes;
        self
    }
    /// The most native stack one call may use, in bytes.
    pub fn stack_ceiling(mut self, bytes: usize) -> Self {
        self.stack_ceiling = bytes;
        self
    }
    /// How many idle instances each router keeps for reuse (default 32):
    /// in its pool, and kept by the threads that route (each keeps the
    /// instance it last used, so that its next decision writes no shared
    /// memory; at most half of this number are kept so).
    pub fn idle_instances(mut self, n: usize) -> Self {
        self.idle_instances = n.max(1);
        self
    }
    /// The most linear memory one instance of a router component may have,
    /// in bytes, all its memories together (default 256 MiB). A component
    /// carries its language's runtime: a Python router starts at about
    /// 12 MiB, a JavaScript one at about 9 MiB and grows.
    pub fn component_memory_ceiling(mut self, bytes: usize) -> Self {
        self.component_memory_ceiling = bytes;
        self
    }
    /// Replaces an instance with a fresh one after it has taken `calls`
    /// calls (default: never). For routers whose runtime gathers garbage
    /// slowly, JavaScript's heap for one.
    pub fn recycle_after_calls(mut self, calls: u64) -> Self {
        self.recycle_after_calls = calls.max(1);
        self
    }
    /// Replaces an instance with a fresh one once its linear memory is
    /// above `bytes` after a call (default 64 MiB: with the default
    /// ceilings, only components reach it; it applies to core modules too).
    pub fn recycle_above_memory(mut self, bytes: usize) -> Self {
        self.recycle_above_memory = bytes;
        self
    }
    /// The time budget.
    pub fn get_time_budget(&self) -> Duration {
        self.time_budget
    }
    /// The memory ceiling.
    pub fn get_memory_ceiling(&self) -> usize {
        self.memory_ceiling
    }
    /// The stack ceiling.
    pub fn get_stack_ceiling(&self) -> usize {
        self.stack_ceiling
    }
    /// The idle instances kept per router.
    pub fn get_idle_instances(&self) -> usize {
        self.idle_instances
    }
    /// The memory ceiling of a component's instance.
    pub fn get_component_memory_ceiling(&self) -> usize {
        self.component_memory_ceiling
    }
    /// After how many calls an instance is replaced.
    pub fn get_recycle_after_calls(&self) -> u64 {
        self.recycle_after_calls
    }
    /// Above how much linear memory an instance is replaced.
    pub fn get_recycle_above_memory(&self) -> usize {
        self.recycle_above_memory
    }
    /// The budget in clock ticks.
    #[inline]
    pub(crate) fn budget_ticks(&self) -> u64 {
        self.budget_ticks
    }
}

/// The runtime WebAssembly routers are compiled for and run in: a wasmtime
/// engine per compiler [`Tier`] with the [`RouterLimits`], a clock thread
/// that enforces the time budget, and a thread that optimizes routers in
/// the background (started on first use). Cheap to clone; routers loaded
/// in one runtime share it.
///
/// # Examples
///
/// ```
/// use dbroute::wasm::{RouterLimits, RouterRuntime};
/// let runtime = RouterRuntime::new(RouterLimits::default())?;
/// assert_eq!(runtime.limits(), &RouterLimits::default());
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Clone)]
pub struct RouterRuntime {
    inner: Arc<RuntimeInner>,
}

/// A router's compiled code: a core module's or a component's.
#[derive(Clone)]
pub(crate) enum Code {
    Module(Module),
    Component(Component),
}

impl Code {
    /// Compiles `bytes` (binary or text) for `engine`, as a component when
    /// `component`.
    fn compile(engine: &wasmtime::Engine, bytes: &[u8], component: bool) -> wasmtime::Result<Code> {
        if component {
            Component::new(engine, bytes).map(Code::Component)
        } else {
            Module::new(engine, bytes).map(Code::Module)
        }
    }

    /// Whether it is a component's.
    pub(crate) fn is_component(&self) -> bool {
        matches!(self, Code::Component(_))
    }
}

/// A compiled router and the tier that compiled it.
pub(crate) struct Compiled {
    pub(crate) code: Code,
    pub(crate) tier: Tier,
    /// Whether the module was read from the compiled-router cache.
    pub(crate) from_cache: bool,
}

struct RuntimeInner {
    /// Runs optimized (Cranelift) code; the compiled-router cache holds its
    /// modules.
    optimizing: wasmtime::Engine,
    /// Runs baseline (Winch) code. `None` where wasmtime has no baseline
    /// compiler for this machine: routers are then compiled optimized at
    /// once.
    baseline: Option<wasmtime::Engine>,
    limits: RouterLimits,
    compiled_cache: Option<CompiledCache>,
    stop: Arc<AtomicBool>,
    clock: Option<JoinHandle<()>>,
    /// The optimizer thread's queue, started on first use. Dropping it
    /// ends the thread once its queue is empty.
    optimizer: Mutex<Option<Optimizer>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(clock) = self.clock.take() {
            clock.thread().unpark();
            let _ = clock.join();
        }
    }
}

impl std::fmt::Debug for RouterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterRuntime")
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl RouterRuntime {
    /// Makes a runtime with these limits.
    ///
    /// # Errors
    ///
    /// When wasmtime cannot be configured (for example, a stack ceiling it
    /// does not accept).
    pub fn new(limits: RouterLimits) -> Result<Self> {
        Self::make(limits, None)
    }

    /// Makes a runtime with these limits that keeps compiled routers in the
    /// folder `dir`, keyed by the SHA-256 of their bytes and by this
    /// wasmtime's version and settings. Loading a router that was optimized
    /// before (by this process or an earlier one) then compiles nothing and
    /// runs optimized code at once: it takes about a millisecond, against
    /// about ten on baseline code and a hundred on optimized code.
    ///
    /// The folder's files are run as native code, so it must be private:
    /// it is made with mode 700 when missing, and refused when others may
    /// write to it. A damaged file is compiled again, not run. It keeps the
    /// 64 most recently used routers, within 1 GiB: storing one removes
    /// those used least recently past that (a file read back counts as
    /// used), and a router that comes back is compiled again.
    ///
    /// ```
    /// use dbroute::wasm::{RouterLimits, RouterRuntime};
    /// let dir = std::env::temp_dir().join(format!("dbroute-doc-{}", std::process::id()));
    /// let runtime = RouterRuntime::with_compiled_cache(RouterLimits::default(), &dir)?;
    /// # drop(runtime);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), dbroute::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`RouterRuntime::new`]; [`Error::Io`] when the folder cannot be
    /// made; [`Error::Config`] when it is not private.
    pub fn with_compiled_cache(limits: RouterLimits, dir: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::make(limits, Some(dir.as_ref()))
    }

    fn make(limits: RouterLimits, cache_dir: Option<&std::path::Path>) -> Result<Self> {
        let optimizing = new_engine(&limits, wasmtime::Strategy::Cranelift).map_err(|e| Error::RouterLoad {
            router: "(runtime)".into(),
            reason: LoadError::Instantiate(e.to_string()),
        })?;
        let baseline = match new_engine(&limits, wasmtime::Strategy::Winch) {
            Ok(engine) => Some(engine),
            Err(e) => {
                tracing::debug!("no baseline compiler here ({e}): routers are compiled optimized at once");
                None
            }
        };
        let compiled_cache = cache_dir.map(|dir| CompiledCache::open(&optimizing, dir)).transpose()?;
        let stop = Arc::new(AtomicBool::new(false));
        let clock = {
            let engines: Vec<_> = std::iter::once(&optimizing)
                .chain(&baseline)
                .map(|e| e.weak())
                .collect();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dbroute-router-clock".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(TICK);
                        for engine in &engines {
                            match engine.upgrade() {
                                Some(engine) => engine.increment_epoch(),
                                None => return,
                            }
                        }
                    }
                })
                .map_err(|e| Error::Io {
                    path: "(router clock thread)".into(),
                    source: e,
                })?
        };
        Ok(RouterRuntime {
            inner: Arc::new(RuntimeInner {
                optimizing,
                baseline,
                limits,
                compiled_cache,
                stop,
                clock: Some(clock),
                optimizer: Mutex::new(None),
            }),
        })
    }

    /// The limits.
    pub fn limits(&self) -> &RouterLimits {
        &self.inner.limits
    }

    /// Compiles `bytes` (whose SHA-256 is `hash`) as `compilation` says:
    /// read optimized from the compiled-router cache when it holds them,
    /// else with the baseline compiler unless `compilation` is
    /// [`Compilation::Optimized`], else (or when there is no baseline
    /// compiler here, or it refuses the module, e.g. for a proposal it does
    /// not support) with the optimizing one.
    pub(crate) fn compile(
        &self,
        bytes: &[u8],
        hash: &[u8; 32],
        compilation: Compilation,
    ) -> wasmtime::Result<Compiled> {
        if let Some(code) = self.cached(hash) {
            return Ok(Compiled {
                code,
                tier: Tier::Optimized,
                from_cache: true,
            });
        }
        let component = super::component::is_component(bytes);
        let baseline = self.inner.baseline.as_ref();
        if let Some(baseline) = baseline.filter(|_| compilation != Compilation::Optimized) {
            match Code::compile(baseline, bytes, component) {
                Ok(code) => {
                    return Ok(Compiled {
                        code,
                        tier: Tier::Baseline,
                        from_cache: false,
                    });
                }
                // The optimizing compiler says what is wrong, if anything.
                Err(e) => tracing::debug!("the baseline compiler refused a router ({e:#}): optimizing it at once"),
            }
        }
        Ok(Compiled {
            code: self.optimize(bytes, hash)?,
            tier: Tier::Optimized,
            from_cache: false,
        })
    }

    /// The optimized module of the bytes whose SHA-256 is `hash`, when the
    /// compiled-router cache holds it.
    fn cached(&self, hash: &[u8; 32]) -> Option<Code> {
        let cache = self.inner.compiled_cache.as_ref()?;
        cache.lookup(&self.inner.optimizing, hash)
    }

    /// The optimized module of `bytes` (whose SHA-256 is `hash`): from the
    /// compiled-router cache when it holds it (another load of the same
    /// bytes may have put it there), else compiled by the optimizing
    /// compiler and stored in the cache when the runtime has one.
    pub(crate) fn optimize(&self, bytes: &[u8], hash: &[u8; 32]) -> wasmtime::Result<Code> {
        if let Some(code) = self.cached(hash) {
            return Ok(code);
        }
        let code = Code::compile(&self.inner.optimizing, bytes, super::component::is_component(bytes))?;
        if let Some(cache) = &self.inner.compiled_cache {
            cache.store(hash, &code);
        }
        Ok(code)
    }

    /// Queues `job` on the runtime's optimizer thread (see [`Optimizer`]).
    /// False (logged) when the thread cannot be started or has stopped;
    /// the next call then starts another.
    pub(crate) fn queue_optimization(&self, job: impl FnOnce() + Send + 'static) -> bool {
        let mut optimizer = self.inner.optimizer.lock().unwrap_or_else(|e| e.into_inner());
        let queue = match optimizer.take() {
            Some(queue) => queue,
            None => match Optimizer::start() {
                Ok(queue) => queue,
                Err(e) => {
                    tracing::warn!("could not start the router optimizer thread ({e}): routers stay on baseline code");
                    return false;
                }
            },
        };
        if !queue.queue(Box::new(job)) {
            tracing::warn!("the router optimizer thread has stopped: this router stays on baseline code");
            return false;
        }
        *optimizer = Some(queue);
        true
    }
}

/// A wasmtime engine for `strategy`'s compiler, with the limits.
fn new_engine(limits: &RouterLimits, strategy: wasmtime::Strategy) -> wasmtime::Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::new();
    config.strategy(strategy);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits.stack_ceiling);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    wasmtime::Engine::new(&config)
}
