//! The WebAssembly runtime routers run in: one wasmtime engine configured
//! with the limits, and the clock that enforces the time budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::compiled_cache::{CompiledCache, Origin};
use crate::error::{Error, LoadError, Result};

/// Limits every router call runs under.
///
/// | limit | default |
/// |---|---|
/// | time budget per call | 50 ms |
/// | memory ceiling per instance | 16 MiB |
/// | stack ceiling | 512 KiB |
/// | idle instances kept per router | 32 |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dbroute::RouterLimits;
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
}

impl Default for RouterLimits {
    fn default() -> Self {
        RouterLimits {
            time_budget: DEFAULT_BUDGET,
            budget_ticks: ticks(DEFAULT_BUDGET),
            memory_ceiling: 16 << 20,
            stack_ceiling: 512 << 10,
            idle_instances: 32,
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
    /// instance it last used, so that its next decision touches no shared
    /// memory; at most half of this number are kept so).
    pub fn idle_instances(mut self, n: usize) -> Self {
        self.idle_instances = n.max(1);
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
    /// The budget in clock ticks.
    #[inline]
    pub(crate) fn budget_ticks(&self) -> u64 {
        self.budget_ticks
    }
}

/// The runtime WebAssembly routers are compiled for and run in: a wasmtime
/// engine with the [`RouterLimits`], and a clock thread that enforces the
/// time budget. Cheap to clone; routers loaded in one runtime share it.
///
/// # Examples
///
/// ```
/// use dbroute::{RouterLimits, RouterRuntime};
/// let runtime = RouterRuntime::new(RouterLimits::default())?;
/// assert_eq!(runtime.limits(), &RouterLimits::default());
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Clone)]
pub struct RouterRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: wasmtime::Engine,
    limits: RouterLimits,
    compiled_cache: Option<CompiledCache>,
    stop: Arc<AtomicBool>,
    clock: Option<JoinHandle<()>>,
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
    /// wasmtime's version and settings. Loading a router that was compiled
    /// before (by this process or an earlier one) then skips the compiler:
    /// it takes about a millisecond instead of about a hundred.
    ///
    /// The folder's files are run as native code, so it must be private:
    /// it is made with mode 700 when missing, and refused when others may
    /// write to it. A damaged file is compiled again, not run.
    ///
    /// ```
    /// use dbroute::{RouterLimits, RouterRuntime};
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
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.stack_ceiling);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = wasmtime::Engine::new(&config).map_err(|e| Error::RouterLoad {
            router: "(runtime)".into(),
            reason: LoadError::Instantiate(e.to_string()),
        })?;
        let compiled_cache = cache_dir.map(|dir| CompiledCache::open(&engine, dir)).transpose()?;
        let stop = Arc::new(AtomicBool::new(false));
        let clock = {
            let engine = engine.weak();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dbroute-router-clock".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(TICK);
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
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
                engine,
                limits,
                compiled_cache,
                stop,
                clock: Some(clock),
            }),
        })
    }

    /// The limits.
    pub fn limits(&self) -> &RouterLimits {
        &self.inner.limits
    }

    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// Compiles `bytes` (whose SHA-256 is `hash`), or reads them compiled
    /// from the cache when the runtime has one.
    pub(crate) fn module(&self, bytes: &[u8], hash: &[u8; 32]) -> wasmtime::Result<(wasmtime::Module, Origin)> {
        match &self.inner.compiled_cache {
            Some(cache) => cache.module(&self.inner.engine, bytes, hash),
            None => Ok((wasmtime::Module::new(&self.inner.engine, bytes)?, Origin::Compiled)),
        }
    }
}
