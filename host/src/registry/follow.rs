//! An engine following the registry: the version its instance should run
//! loaded at start, then a background task that `LISTEN`s for changes,
//! loads each new version through the engine's own loading path, swaps it
//! in, and reports. The registry being down only delays changes: the task
//! reconnects with backoff and re-reads the whole state (a `NOTIFY` sent
//! meanwhile is lost); routing never waits for it.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::client::{check_name, end_latest_rollout, fetch, latest_rollout};
use super::error::RegistryError;
use super::plan::{RolloutState, canary_bucket};
use super::report;
use super::{RouterRegistry, schema};
use crate::engine::{Engine, WeakEngine};
use crate::error::{Error, Result};
use crate::router::RouterChain;
use crate::router::wasm::WasmRouter;

/// The longest wait between two attempts to reach the registry.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The first wait after the registry was lost.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often the fault guard reads the running version's counters.
const GUARD_CHECK: Duration = Duration::from_millis(100);

/// What an instance following a registry runs, and how its link to the
/// registry is ([`Engine::registry_status`](crate::Engine::registry_status)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryStatus {
    /// This instance's id.
    pub instance_id: String,
    /// Its service.
    pub service: String,
    /// The router it follows.
    pub router: String,
    /// Its canary bucket (0 to 99).
    pub canary_bucket: u8,
    /// The version it runs from the registry (`None`: none yet, the
    /// builder's routers serve).
    pub version: Option<i32>,
    /// That module's SHA-256.
    pub sha256: Option<String>,
    /// Whether it is listening to the registry now.
    pub connected: bool,
    /// The last module it refused or the last registry error, until the
    /// next good load or state read.
    pub last_error: Option<String>,
}

pub(crate) struct Running {
    pub(crate) version: i32,
    pub(crate) sha256: String,
    pub(crate) router: WasmRouter,
    /// The engine's decisions when it was loaded (or swapped in again).
    pub(crate) decisions_at_load: u64,
    /// The router's faults then.
    pub(crate) faults_at_load: u64,
}

impl Running {
    /// The router's faults since it was (last) swapped in.
    pub(crate) fn faults(&self) -> u64 {
        self.router.faults().saturating_sub(self.faults_at_load)
    }

    /// Swaps this version in (again), its counts starting from now.
    fn swap_in(mut self, engine: &Engine) -> Running {
        engine.set_router(RouterChain::new().then(self.router.clone()));
        self.decisions_at_load = report::total_decisions(engine);
        self.faults_at_load = self.router.faults();
        self
    }
}

#[derive(Default)]
pub(crate) struct FollowState {
    pub(crate) running: Option<Running>,
    /// The version that ran before, kept loaded: going back to it (a
    /// rollback, the fault guard) needs neither the registry nor a compile.
    previous: Option<Running>,
    /// A rollout the fault guard could not mark failed (the registry was
    /// unreachable): the version and why, marked at the next sync.
    unreported_failure: Option<(i32, String)>,
    /// The version refused here: the version before it runs instead.
    refused: Option<Refusal>,
    pub(crate) last_error: Option<String>,
    connected: bool,
    pub(crate) rollout_state: Option<RolloutState>,
}

impl FollowState {
    /// `running` was swapped in: the version before it is kept loaded, a
    /// refusal of this version is over, and so is the last error.
    fn now_running(&mut self, running: Running) {
        if self.refused.is_some_and(|r| r.version == running.version) {
            self.refused = None;
        }
        self.previous = self.running.replace(running);
        self.last_error = None;
    }
}

/// A running version's faults over the guard rail's rate.
struct Tripped {
    version: i32,
    faults: u64,
    calls: u64,
    rate: f64,
    max_rate: f64,
}

/// A version an instance refused.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    version: i32,
    /// When it was refused.
    at: std::time::Instant,
    /// Given up by the fault guard: never tried again. Otherwise (it did
    /// not load, which a machine too busy for a call's time budget can
    /// cause too) it is tried again after ten heartbeats.
    for_good: bool,
}

/// One engine's link to the registry.
pub(crate) struct Follower {
    pub(crate) settings: RouterRegistry,
    pub(crate) instance_id: String,
    pub(crate) host: String,
    bucket: u8,
    pub(crate) pool: PgPool,
    channel: String,
    /// The builder's routers: what serves when the registry names no
    /// version.
    base: RouterChain,
    pub(crate) state: Mutex<FollowState>,
    /// The labels of the `dbroute_router_info` gauge set to 1 now.
    pub(crate) gauge_labels: Mutex<Option<Vec<metrics::Label>>>,
}

impl Follower {
    pub(crate) fn status(&self) -> RegistryStatus {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        RegistryStatus {
            instance_id: self.instance_id.clone(),
            service: self.settings.service.clone(),
            router: self.settings.router_name().to_owned(),
            canary_bucket: self.bucket,
            version: state.running.as_ref().map(|r| r.version),
            sha256: state.running.as_ref().map(|r| r.sha256.clone()),
            connected: state.connected,
            last_error: state.last_error.clone(),
        }
    }

    fn set_error(&self, error: Option<String>) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).last_error = error;
    }

    /// Reads the router's latest rollout and, when this instance should run
    /// another version, loads it and swaps it in. A module that does not
    /// load is refused (the current router keeps serving) and recorded.
    async fn sync(&self, engine: &Engine) -> Result<(), RegistryError> {
        let router = self.settings.router_name();
        let latest = latest_rollout(&self.pool, router).await?;
        let mut desired = latest.as_ref().and_then(|r| r.latest().version_for(self.bucket));
        let (running, refused) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.rollout_state = latest.as_ref().map(|r| r.state);
            let retry_after = self.settings.heartbeat * 10;
            let refused = state
                .refused
                .filter(|r| r.for_good || r.at.elapsed() < retry_after)
                .map(|r| r.version);
            (state.running.as_ref().map(|r| r.version), refused)
        };
        if desired.is_some() && desired == refused {
            // A version refused here (it did not load, or its faults
            // tripped the guard): the version before it.
            desired = latest.as_ref().and_then(|r| r.previous_version);
            if desired == refused {
                return Ok(());
            }
        }
        if desired == running {
            return Ok(());
        }
        let Some(version) = desired else {
            // Rolled back past the first version: the builder's routers.
            engine.set_router(self.base.clone());
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.previous = state.running.take();
            state.refused = None;
            tracing::info!(router, "registry names no version: back to the builder's routers");
            return Ok(());
        };
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(previous) = state.previous.take_if(|p| p.version == version) {
                tracing::info!(
                    router,
                    version,
                    "router from the registry swapped back in (kept loaded)"
                );
                state.now_running(previous.swap_in(engine));
                return Ok(());
            }
        }
        let loaded = match fetch(&self.pool, router, version).await {
            Ok(published) => {
                // Compiling takes milliseconds for a core module and seconds
                // for a component: off the runtime's workers, which keep
                // routing on the current router meanwhile.
                let builder = WasmRouter::named(router)
                    .config(published.config.clone())
                    .compilation(self.settings.compilation);
                let loading = engine.clone();
                let sha256 = published.sha256;
                match tokio::task::spawn_blocking(move || loading.load_router(builder, published.module)).await {
                    Ok(loaded) => loaded.map(|r| (r, sha256)),
                    Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                    // The runtime is shutting down: nothing to swap.
                    Err(_) => return Ok(()),
                }
            }
            Err(e @ (RegistryError::ChecksumMismatch { .. } | RegistryError::UnknownVersion { .. })) => {
                Err(Error::Registry(e))
            }
            Err(other) => return Err(other),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match loaded {
            Ok((wasm, sha256)) => {
                let generation = engine.set_router(RouterChain::new().then(wasm.clone()));
                tracing::info!(router, version, %sha256, generation, "router from the registry swapped in");
                let faults_at_load = wasm.faults();
                state.now_running(Running {
                    version,
                    sha256,
                    router: wasm,
                    decisions_at_load: report::total_decisions(engine),
                    faults_at_load,
                });
            }
            Err(e) => {
                let message = format!("version {version} refused: {e}");
                tracing::error!(router, version, error = %e, "router from the registry refused; the current one keeps serving");
                state.refused = Some(Refusal {
                    version,
                    at: std::time::Instant::now(),
                    for_good: false,
                });
                state.last_error = Some(message);
            }
        }
        Ok(())
    }

    /// Whether the version running here trips the guard rail
    /// ([`RouterRegistry::fault_guard`]): counters only, no registry.
    fn tripped(&self, engine: &Engine) -> Option<Tripped> {
        let guard = self.settings.fault_guard?;
        let (version, faults, calls) = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let running = state.running.as_ref()?;
            if state
                .refused
                .is_some_and(|r| r.for_good && r.version == running.version)
            {
                // Given up already: the sync going back is under way.
                return None;
            }
            let faults = running.faults();
            // A faulted call is not counted as a decision.
            let decided = report::total_decisions(engine).saturating_sub(running.decisions_at_load);
            (running.version, faults, faults + decided)
        };
        #[allow(clippy::cast_precision_loss)]
        let rate = faults as f64 / calls.max(1) as f64;
        (calls >= guard.min_calls && rate > guard.max_rate).then_some(Tripped {
            version,
            faults,
            calls,
            rate,
            max_rate: guard.max_rate,
        })
    }

    /// The guard rail ([`RouterRegistry::fault_guard`]): when the version
    /// running here came from a rollout and faults too often, it is refused
    /// here, the version it ran before is swapped back in at once (kept
    /// loaded: no registry needed; else the next sync loads the rollout's
    /// previous version), and the rollout is marked failed (at the next
    /// sync when the registry cannot be reached now). Returns why, when it
    /// tripped.
    async fn guard(&self, engine: &Engine) -> Option<String> {
        let Tripped {
            version,
            faults,
            calls,
            rate,
            max_rate,
        } = self.tripped(engine)?;
        let router = self.settings.router_name();
        let reason = format!(
            "instance {} gave version {version} up: {faults} of {calls} calls faulted ({:.1}%, above the {:.1}% allowed)",
            self.instance_id,
            rate * 100.0,
            max_rate * 100.0
        );
        tracing::error!(router, version, faults, calls, "{reason}");
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.refused = Some(Refusal {
                version,
                at: std::time::Instant::now(),
                for_good: true,
            });
            state.last_error = Some(reason.clone());
            if let Some(previous) = state.previous.take() {
                let previous = previous.swap_in(engine);
                tracing::warn!(
                    router,
                    from = version,
                    to = previous.version,
                    "router from the registry swapped back"
                );
                // The version given up is never run again here.
                state.running = Some(previous);
            }
            state.unreported_failure = Some((version, reason.clone()));
        }
        self.report_failure().await;
        Some(reason)
    }

    /// Marks failed the rollout the fault guard gave up, once the registry
    /// can be reached.
    async fn report_failure(&self) {
        let Some((version, reason)) = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unreported_failure
            .clone()
        else {
            return;
        };
        let router = self.settings.router_name();
        match end_latest_rollout(&self.pool, router, RolloutState::Failed, &reason, Some(version)).await {
            Ok(_) | Err(RegistryError::NothingToRollBack { .. }) => {
                self.state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .unreported_failure = None;
            }
            Err(e) => tracing::error!(router, version, error = %e, "could not mark the rollout failed yet"),
        }
    }

    /// Syncs, then reports; a registry error is recorded (and returned).
    async fn sync_and_report(&self, engine: &Engine) -> Result<(), RegistryError> {
        let tripped = self.guard(engine).await;
        if tripped.is_none() {
            // A failure the guard could not report before (it reports its own).
            self.report_failure().await;
        }
        let synced = self.sync(engine).await;
        if let Some(reason) = tripped {
            // Going back loaded a good version, which clears the error:
            // the reason stays until the next version is loaded.
            self.set_error(Some(reason));
        }
        if let Err(e) = &synced {
            self.set_error(Some(e.to_string()));
        }
        report::refresh_gauge(self);
        report::heartbeat(self, engine).await?;
        synced
    }

    /// The fault guard while the registry cannot be reached: it needs no
    /// registry to go back, so it keeps checking (every [`GUARD_CHECK`])
    /// until the caller stops waiting for the registry. Never returns.
    async fn guard_meanwhile(&self, weak: &WeakEngine) {
        if self.settings.fault_guard.is_none() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(GUARD_CHECK).await;
            let Some(engine) = weak.upgrade().filter(|e| !e.is_closed()) else {
                continue;
            };
            if self.tripped(&engine).is_some() {
                self.guard(&engine).await;
                report::refresh_gauge(self);
            }
        }
    }
}

/// A random-enough instance id: host, process id, a random suffix.
fn default_instance_id(host: &str) -> String {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{host}-{}-{:06x}", std::process::id(), random & 0xff_ffff)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Connects the engine to the registry, checks the registry's version,
/// loads the version this instance should run and reports it, then starts
/// following. Returns the follower the engine keeps.
///
/// A registry that cannot be reached, is not initialised or is newer than
/// this build fails the start; a module refused here does not (the
/// builder's routers serve, and the refusal is reported).
pub(crate) async fn start(engine: &Engine, settings: RouterRegistry) -> Result<Arc<Follower>> {
    check_name("service name", &settings.service)?;
    check_name("router name", settings.router_name())?;
    let host = host_name();
    let instance_id = settings
        .instance_id
        .clone()
        .unwrap_or_else(|| default_instance_id(&host));
    if instance_id.is_empty() || instance_id.len() > 200 {
        return Err(RegistryError::InvalidName {
            what: "instance id",
            name: instance_id.chars().take(64).collect(),
            reason: "use 1 to 200 characters",
        }
        .into());
    }
    let pool = schema::connect(&settings.url, &settings.schema, 2).await?;
    schema::check(&pool, &settings.schema).await?;
    let follower = Arc::new(Follower {
        bucket: canary_bucket(&instance_id),
        channel: format!("{}_changes", settings.schema),
        base: engine.active_chain(),
        settings,
        instance_id,
        host,
        pool,
        state: Mutex::new(FollowState::default()),
        gauge_labels: Mutex::new(None),
    });
    let listener = listen(&follower).await?;
    follower.state.lock().unwrap_or_else(PoisonError::into_inner).connected = true;
    follower.sync_and_report(engine).await?;
    let task = Arc::clone(&follower);
    let weak = engine.downgrade();
    tokio::spawn(async move {
        follow(task, weak, listener).await;
    });
    Ok(follower)
}

async fn listen(follower: &Follower) -> Result<PgListener, RegistryError> {
    let mut listener = PgListener::connect_with(&follower.pool)
        .await
        .map_err(|e| RegistryError::query("listen for changes", e))?;
    listener
        .listen(&follower.channel)
        .await
        .map_err(|e| RegistryError::query("listen for changes", e))?;
    Ok(listener)
}

/// What the listening task tells the loop.
enum Heard {
    Change,
    Lost,
}

/// Receives notifications in a task of its own (a receive is never
/// cancelled half-way), until the connection is lost or the loop is gone.
fn spawn_listener(mut listener: PgListener) -> tokio::sync::mpsc::Receiver<Heard> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let heard = tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => Heard::Change,
                    Ok(None) | Err(_) => Heard::Lost,
                },
                () = tx.closed() => return,
            };
            match heard {
                // A full channel already holds a change to act on.
                Heard::Change => {
                    let _ = tx.try_send(Heard::Change);
                }
                Heard::Lost => {
                    let _ = tx.send(Heard::Lost).await;
                    return;
                }
            }
        }
    });
    rx
}

/// The background loop: each notification and each heartbeat re-reads the
/// state; a lost connection is re-made with backoff, then the whole state
/// is read again. Ends when the engine is dropped or closed.
async fn follow(follower: Arc<Follower>, weak: WeakEngine, first: PgListener) {
    let mut heard = Some(spawn_listener(first));
    let mut backoff = FIRST_BACKOFF;
    let mut ticks = tokio::time::interval(follower.settings.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    // The fault guard reads the counters more often than the heartbeat
    // (they are local), and acts on the registry only when it trips.
    let guarded = follower.settings.fault_guard.is_some();
    let mut guard_checks = tokio::time::interval(GUARD_CHECK.min(follower.settings.heartbeat));
    guard_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(rx) = heard.as_mut() else {
            // Reconnecting can take seconds (the pool's acquire timeout):
            // the fault guard goes on meanwhile.
            let made = tokio::select! {
                made = listen(&follower) => made,
                () = follower.guard_meanwhile(&weak) => unreachable!("the guard never stops"),
            };
            match made {
                Ok(made) => {
                    backoff = FIRST_BACKOFF;
                    {
                        let mut state = follower.state.lock().unwrap_or_else(PoisonError::into_inner);
                        state.connected = true;
                    }
                    tracing::info!(router = follower.settings.router_name(), "router registry reconnected");
                    heard = Some(spawn_listener(made));
                    let Some(engine) = weak.upgrade().filter(|e| !e.is_closed()) else {
                        return;
                    };
                    let _ = follower.sync_and_report(&engine).await;
                }
                Err(e) => {
                    follower.set_error(Some(e.to_string()));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = follower.guard_meanwhile(&weak) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    if weak.upgrade().is_none_or(|e| e.is_closed()) {
                        return;
                    }
                }
            }
            continue;
        };
        let (lost, guard_check) = tokio::select! {
            message = rx.recv() => (matches!(message, Some(Heard::Lost) | None), false),
            _ = ticks.tick() => (false, false),
            _ = guard_checks.tick(), if guarded => (false, true),
        };
        let Some(engine) = weak.upgrade().filter(|e| !e.is_closed()) else {
            return;
        };
        if guard_check && follower.tripped(&engine).is_none() {
            continue;
        }
        // A failed read or heartbeat also counts as the registry lost: the
        // listener may not have noticed yet (it notices a dead server only
        // when it next reads), and its connection is re-made anyway.
        let lost = lost
            || matches!(
                follower.sync_and_report(&engine).await,
                Err(RegistryError::Query { .. } | RegistryError::Connect { .. })
            );
        if lost {
            tracing::warn!(
                router = follower.settings.router_name(),
                "router registry connection lost; the current router keeps serving"
            );
            follower.state.lock().unwrap_or_else(PoisonError::into_inner).connected = false;
            heard = None;
        }
    }
}
