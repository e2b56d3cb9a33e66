//! Compiler tiers: which compiler's code a router runs ([`Tier`]), how a
//! load chooses ([`Compilation`]), the state a caller can wait on
//! ([`TierState`]), and the thread that optimizes routers loaded on
//! baseline code ([`Optimizer`]).
//!
//! A router loaded from bytes not in the compiled-router cache runs Winch's
//! baseline code at once (unless the load asked for optimized code, Winch
//! refuses the module, or the platform has no Winch: then Cranelift's code
//! from the start). The runtime's optimizer thread compiles it with
//! Cranelift, one router at a time on one core; once an instance of the
//! optimized code, made for the load's connections, passes the router's
//! self-test, the router swaps its instance pool for one on that code,
//! initialised with the current connections (a lock orders the replacement
//! with `connections_changed`; no wasm runs under it). Identity and answer
//! cache stay: the bytes are the same. A router dropped before its turn is
//! skipped. Both tiers run under the same limits.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Which compiler made the code a router runs.
///
/// A router loaded from bytes that the compiled-router cache does not hold
/// starts on the [`Tier::Baseline`] code, which compiles several times
/// faster, and moves to the [`Tier::Optimized`] code when the optimizing
/// compiler, run in the background, has finished (see
/// [`WasmRouter::wait_until_optimized`](crate::wasm::WasmRouter::wait_until_optimized)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// wasmtime's baseline compiler (Winch): one pass, no optimizations.
    Baseline,
    /// wasmtime's optimizing compiler (Cranelift).
    Optimized,
}

/// How a router loaded from bytes is compiled (see
/// [`WasmRouterBuilder::compilation`](crate::wasm::WasmRouterBuilder::compilation)).
///
/// Whatever the choice, bytes the compiled-router cache holds are read
/// optimized, and a module the baseline compiler cannot take (one using
/// tail calls, exceptions, GC or relaxed SIMD), or any module on a machine
/// it does not support (it supports x86-64 and AArch64), is compiled by
/// the optimizing compiler before the load returns.
///
/// # Examples
///
/// ```
/// use dbroute::wasm::{Compilation, WasmRouter};
/// // A one-off check compiles fast and is not optimized afterwards.
/// let builder = WasmRouter::named("tenant").compilation(Compilation::Baseline);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compilation {
    /// Baseline code at once, optimized code when the optimizing compiler,
    /// run in the background, is done: the fastest swap (the default).
    #[default]
    Tiered,
    /// Optimized code before the load returns: a slower load, and no
    /// period on slower code.
    Optimized,
    /// Baseline code, not optimized afterwards: for a router that makes
    /// few decisions (a check, a test).
    Baseline,
}

/// Which tier a router runs, and whether its optimization is under way;
/// a condition variable to wait for it.
pub(crate) struct TierState {
    now: Mutex<TierNow>,
    changed: Condvar,
}

#[derive(Clone, Copy)]
struct TierNow {
    tier: Tier,
    /// Whether the optimizer thread has yet to finish with the router.
    optimizing: bool,
}

impl TierState {
    pub(crate) fn new(tier: Tier) -> Self {
        TierState {
            now: Mutex::new(TierNow {
                tier,
                optimizing: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TierNow> {
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tier now.
    pub(crate) fn tier(&self) -> Tier {
        self.lock().tier
    }

    /// The router's optimization is queued.
    pub(crate) fn start(&self) {
        self.lock().optimizing = true;
    }

    /// The router's optimization is over: it runs `tier` now.
    pub(crate) fn finish(&self, tier: Tier) {
        *self.lock() = TierNow {
            tier,
            optimizing: false,
        };
        self.changed.notify_all();
    }

    /// Waits, at most `timeout`, until the optimization is over; the tier
    /// then.
    pub(crate) fn wait(&self, timeout: Duration) -> Tier {
        let now = self.lock();
        let (now, _) = self
            .changed
            .wait_timeout_while(now, timeout, |now| now.optimizing)
            .unwrap_or_else(|e| e.into_inner());
        now.tier
    }
}

/// Work for the optimizer thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The queue of the optimizer thread, which runs its jobs one at a time, in
/// order (so that routers loaded in a burst do not all compile at once,
/// and the compiler takes one core). A job that panics is logged and does
/// not stop the thread. The thread ends when the queue is dropped and
/// empty.
pub(crate) struct Optimizer {
    jobs: mpsc::Sender<Job>,
}

impl Optimizer {
    /// Starts the thread.
    pub(crate) fn start() -> std::io::Result<Self> {
        let (jobs, queued) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("dbroute-router-optimizer".into())
            .spawn(move || {
                for job in queued {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("optimizing a router panicked: it stays on baseline code");
                    }
                }
            })?;
        Ok(Optimizer { jobs })
    }

    /// Queues `job`; false when the thread has stopped.
    pub(crate) fn queue(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn jobs_run_in_order_and_a_panic_does_not_stop_the_thread() {
        let optimizer = Optimizer::start().unwrap();
        let (done, finished) = mpsc::channel();
        let first = done.clone();
        assert!(optimizer.queue(Box::new(move || first.send(1).unwrap())));
        assert!(optimizer.queue(Box::new(|| panic!("a job that panics"))));
        assert!(optimizer.queue(Box::new(move || done.send(2).unwrap())));
        let order: Vec<i32> = finished.iter().take(2).collect();
        assert_eq!(order, [1, 2]);
    }

    #[test]
    fn waiting_ends_when_the_optimization_is_over_whatever_its_outcome() {
        // Each wait must end well before its timeout: a missed wake-up, or
        // an optimization never marked over, would wait the whole minute.
        let prompt = |state: &TierState| {
            let started = std::time::Instant::now();
            let tier = state.wait(Duration::from_secs(60));
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited {:?}",
                started.elapsed()
            );
            tier
        };
        // Nothing under way: no wait.
        assert_eq!(prompt(&TierState::new(Tier::Baseline)), Tier::Baseline);
        for outcome in [Tier::Optimized, Tier::Baseline] {
            let state = Arc::new(TierState::new(Tier::Baseline));
            state.start();
            let finisher = {
                let state = state.clone();
                std::thread::spawn(move || {
                    // Finish once the waiter is likely waiting.
                    std::thread::sleep(Duration::from_millis(20));
                    state.finish(outcome)
                })
            };
            assert_eq!(prompt(&state), outcome);
            finisher.join().unwrap();
            assert_eq!(state.tier(), outcome);
        }
    }
}
