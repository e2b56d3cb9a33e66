//! Publishing the engine's counts to the `metrics` crate's recorder (and
//! so to Prometheus, through an exporter such as
//! `metrics-exporter-prometheus`). Every metric's name is here; they are
//! documented in `docs/embedding.md`.
//!
//! The hot path never touches the recorder: decisions and router answers
//! are counted in the engine's striped counters, statements and errors in
//! each connection's atomics. [`Engine::publish_metrics`] (run on the
//! engine's timer, and by a service right before it renders its metrics)
//! folds what was counted since its last run into totals kept per
//! connection name and router name, and hands the recorder what it has not
//! seen of them. When the recorder changes (installed after the engine was
//! built, say), the totals since the engine started are published to it in
//! full: the counts do not depend on the order in which a service installs
//! its recorder and builds its engine. Only statement and acquire times
//! are histograms of samples, recorded when the statement runs (see
//! `connection/stats.rs`).
//!
//! Totals outlive connections and chains: a tenant's connection evicted
//! and made again continues its series, and so does a router reloaded
//! under the same name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge, SharedString, Unit};

use crate::connection::registry::ConnectionEntry;
use crate::connection::stats::Health;
use crate::decider::Decider;
use crate::engine::Engine;
use crate::name::ConnectionName;
use crate::router::RouteKind;
use crate::router::chain::{ActiveRouters, Answer};

/// Statement time, seconds (histogram; `connection`).
pub(crate) const QUERY_DURATION: &str = "dbroute_query_duration_seconds";
/// Time a statement waited for a pooled connection, seconds (histogram;
/// `connection`).
pub(crate) const ACQUIRE_DURATION: &str = "dbroute_pool_acquire_seconds";
const QUERIES: &str = "dbroute_queries_total";
const QUERY_ERRORS: &str = "dbroute_query_errors_total";
const DECISIONS: &str = "dbroute_decisions_total";
const ROUTER_ANSWERS: &str = "dbroute_router_answers_total";
const ROUTER_SWAPS: &str = "dbroute_router_swaps_total";
const ROUTER_RELOADS: &str = "dbroute_router_reloads_total";
const FACTORY_MADE: &str = "dbroute_factory_connections_made_total";
const FACTORY_EVICTIONS: &str = "dbroute_factory_evictions_total";
const PROVISION_FAILURES: &str = "dbroute_provision_failures_total";
const POOL_CONNECTIONS: &str = "dbroute_pool_connections";
const POOL_WAITING: &str = "dbroute_pool_waiting";
const CONNECTION_UP: &str = "dbroute_connection_up";
const REPLICA_LAG_SECONDS: &str = "dbroute_replica_lag_seconds";
const REPLICA_LAG_BYTES: &str = "dbroute_replica_lag_bytes";

/// Which recorder the `metrics` macros reach from this thread now (a local
/// one, else the global one, else the no-op one): its address. Handles
/// resolved from one recorder are kept until this changes.
#[inline]
pub(crate) fn recorder_key() -> usize {
    metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>() as usize)
}

/// A connection's counts: statements, errors, then decisions by decider and
/// kind ([`Decider::counter`]).
pub(crate) type ConnectionCounts = [u64; CONNECTION_COUNTS];
const CONNECTION_COUNTS: usize = 2 + Decider::COUNTERS;

fn connection_counts(entry: &ConnectionEntry) -> ConnectionCounts {
    let mut counts = [0; CONNECTION_COUNTS];
    (counts[0], counts[1]) = entry.stats().counts();
    counts[2..].copy_from_slice(&entry.decision_counts());
    counts
}

/// How many swapped-out chains wait for their last answers to be
/// published, at most.
const MAX_RETIRED_CHAINS: usize = 256;

/// The engine's own counts: swaps, reloads, refused reloads, connections
/// made, evicted (idle, over the limit), failed provisionings.
const ENGINE_COUNTS: usize = 7;

/// What the engine keeps for publishing: the counters that are not on a
/// hot path, the chains swapped out since the last publication, and the
/// totals and handles.
#[derive(Default)]
pub(crate) struct Telemetry {
    /// Router files reloaded by a watcher.
    pub(crate) reloads: AtomicU64,
    /// Router file contents a watcher refused.
    pub(crate) refused_reloads: AtomicU64,
    /// Provisioning hooks that failed.
    pub(crate) provision_failures: AtomicU64,
    /// Chains swapped out, whose last answers are not folded yet.
    retired_chains: Mutex<Vec<Arc<ActiveRouters>>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Keeps a chain that was swapped out until its answers are folded
    /// (at most [`MAX_RETIRED_CHAINS`]: an engine whose metrics are never
    /// published forgets the oldest).
    pub(crate) fn retire_chain(&self, chain: Arc<ActiveRouters>) {
        if chain.chain.is_empty() {
            return;
        }
        let mut retired = self.retired_chains.lock().unwrap_or_else(PoisonError::into_inner);
        if retired.len() >= MAX_RETIRED_CHAINS {
            retired.remove(0);
        }
        retired.push(chain);
    }
}

#[derive(Default)]
struct State {
    /// The recorder the handles below belong to.
    recorder: Option<usize>,
    connections: HashMap<ConnectionName, ConnectionSeries>,
    routers: HashMap<Box<str>, Series<{ Answer::COUNTERS }>>,
    engine: Series<ENGINE_COUNTS>,
}

/// Monotonic totals, what the current recorder has seen of them, and their
/// handles (resolved when a total first moves: series that never counted
/// are not shown).
struct Series<const N: usize> {
    totals: [u64; N],
    published: [u64; N],
    handles: [Option<Counter>; N],
}

impl<const N: usize> Default for Series<N> {
    fn default() -> Self {
        Series {
            totals: [0; N],
            published: [0; N],
            handles: std::array::from_fn(|_| None),
        }
    }
}

impl<const N: usize> Series<N> {
    /// Hands the recorder what it has not seen; `counter(i)` resolves the
    /// handle of total `i`.
    fn publish(&mut self, counter: impl Fn(usize) -> Counter) {
        for i in 0..N {
            let delta = self.totals[i] - self.published[i];
            if delta > 0 {
                self.handles[i].get_or_insert_with(|| counter(i)).increment(delta);
                self.published[i] = self.totals[i];
            }
        }
    }

    /// A new recorder has seen nothing.
    fn forget_recorder(&mut self) {
        self.published = [0; N];
        self.handles = std::array::from_fn(|_| None);
    }
}

#[derive(Default)]
struct ConnectionSeries {
    label: SharedString,
    counts: Series<CONNECTION_COUNTS>,
    gauges: Option<ConnectionGauges>,
}

struct ConnectionGauges {
    idle: Gauge,
    in_use: Gauge,
    waiting: Gauge,
    up: Gauge,
    lag_seconds: Gauge,
    lag_bytes: Gauge,
}

impl ConnectionGauges {
    fn new(label: &SharedString) -> Self {
        let connection = || label.clone();
        ConnectionGauges {
            idle: metrics::gauge!(POOL_CONNECTIONS, "connection" => connection(), "state" => "idle"),
            in_use: metrics::gauge!(POOL_CONNECTIONS, "connection" => connection(), "state" => "in_use"),
            waiting: metrics::gauge!(POOL_WAITING, "connection" => connection()),
            up: metrics::gauge!(CONNECTION_UP, "connection" => connection()),
            lag_seconds: metrics::gauge!(REPLICA_LAG_SECONDS, "connection" => connection()),
            lag_bytes: metrics::gauge!(REPLICA_LAG_BYTES, "connection" => connection()),
        }
    }
}

impl State {
    fn forget_recorder(&mut self, recorder: usize) {
        self.recorder = Some(recorder);
        for series in self.connections.values_mut() {
            series.counts.forget_recorder();
            series.gauges = None;
        }
        for series in self.routers.values_mut() {
            series.forget_recorder();
        }
        self.engine.forget_recorder();
        describe();
    }

    fn connection(&mut self, name: ConnectionName) -> &mut ConnectionSeries {
        self.connections.entry(name).or_insert_with(|| ConnectionSeries {
            label: SharedString::from(name.to_string()),
            ..ConnectionSeries::default()
        })
    }

    /// Adds what `entry` counted since it was last folded.
    fn fold_connection(&mut self, entry: &ConnectionEntry) {
        let now = connection_counts(entry);
        let mut folded = entry.stats().folded.lock().unwrap_or_else(PoisonError::into_inner);
        let series = self.connection(entry.name());
        for ((total, now), folded) in series.counts.totals.iter_mut().zip(now).zip(folded.iter()) {
            *total += now - folded;
        }
        *folded = now;
    }

    /// Sets the gauges of a registered connection (`Some`) or of one no
    /// longer registered (`None`: zero).
    fn set_gauges(&mut self, name: ConnectionName, entry: Option<&ConnectionEntry>) {
        let series = self.connection(name);
        let gauges = series
            .gauges
            .get_or_insert_with(|| ConnectionGauges::new(&series.label));
        let Some(entry) = entry else {
            for gauge in [&gauges.idle, &gauges.in_use, &gauges.waiting, &gauges.up] {
                gauge.set(0.0);
            }
            return;
        };
        let (size, idle) = (entry.pool().size() as usize, entry.pool().num_idle());
        gauges.idle.set(idle as f64);
        gauges.in_use.set(size.saturating_sub(idle) as f64);
        gauges.waiting.set(entry.stats().waiting() as f64);
        gauges.up.set(if entry.stats().health() == Health::Healthy {
            1.0
        } else {
            0.0
        });
        if let Some(lag) = entry.stats().replication() {
            if let Some(time) = lag.time_behind {
                gauges.lag_seconds.set(time.as_secs_f64());
            }
            if let Some(bytes) = lag.bytes_behind {
                gauges.lag_bytes.set(bytes as f64);
            }
        }
    }

    /// Adds what each router of `chain` answered since it was last folded.
    fn fold_routers(&mut self, chain: &ActiveRouters) {
        let mut folded = chain.folded.lock().unwrap_or_else(PoisonError::into_inner);
        for ((router, now), folded) in chain.answers().zip(folded.iter_mut()) {
            let identity = router.identity();
            let series = match self.routers.get_mut(identity.name()) {
                Some(series) => series,
                None => self.routers.entry(identity.name().into()).or_default(),
            };
            for ((total, now), folded) in series.totals.iter_mut().zip(now).zip(folded.iter()) {
                *total += now - folded;
            }
            *folded = now;
        }
    }

    fn publish(&mut self) {
        for series in self.connections.values_mut() {
            let label = &series.label;
            series.counts.publish(|i| connection_counter(label, i));
        }
        for (name, series) in &mut self.routers {
            let router = SharedString::from(name.to_string());
            series.publish(|i| router_counter(&router, i));
        }
        self.engine.publish(engine_counter);
    }
}

fn connection_counter(connection: &SharedString, i: usize) -> Counter {
    let connection = connection.clone();
    match i {
        0 => metrics::counter!(QUERIES, "connection" => connection),
        1 => metrics::counter!(QUERY_ERRORS, "connection" => connection),
        _ => {
            let (by, kind) = decision_of(i - 2);
            metrics::counter!(DECISIONS, "connection" => connection, "operation" => kind.as_str(), "decided_by" => by.as_str())
        }
    }
}

/// The decider and kind of decision counter `i`.
fn decision_of(i: usize) -> (Decider, RouteKind) {
    let kind = if i.is_multiple_of(2) {
        RouteKind::Read
    } else {
        RouteKind::Write
    };
    (Decider::ALL[i / 2], kind)
}

fn router_counter(router: &SharedString, i: usize) -> Counter {
    let kind = if i.is_multiple_of(2) {
        RouteKind::Read
    } else {
        RouteKind::Write
    };
    let answer = Answer::ALL[i / 2];
    metrics::counter!(ROUTER_ANSWERS, "router" => router.clone(), "operation" => kind.as_str(), "answer" => answer.as_str())
}

fn engine_counter(i: usize) -> Counter {
    match i {
        0 => metrics::counter!(ROUTER_SWAPS),
        1 => metrics::counter!(ROUTER_RELOADS, "result" => "loaded"),
        2 => metrics::counter!(ROUTER_RELOADS, "result" => "refused"),
        3 => metrics::counter!(FACTORY_MADE),
        4 => metrics::counter!(FACTORY_EVICTIONS, "reason" => "idle"),
        5 => metrics::counter!(FACTORY_EVICTIONS, "reason" => "limit"),
        _ => metrics::counter!(PROVISION_FAILURES),
    }
}

/// Describes every metric to the current recorder (its `# HELP` lines).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(QUERIES, "Statements run, per connection.");
    describe_counter!(QUERY_ERRORS, "Statements that failed, per connection.");
    describe_histogram!(QUERY_DURATION, Unit::Seconds, "Statement time, per connection.");
    describe_histogram!(
        ACQUIRE_DURATION,
        Unit::Seconds,
        "Time a statement waited for a pooled connection, per connection."
    );
    describe_counter!(
        DECISIONS,
        "Operations resolved to a connection, by operation and by who decided (router, using, transaction, origin, default, fallback)."
    );
    describe_counter!(
        ROUTER_ANSWERS,
        "Router answers, per router name and operation: a connection, a refusal or a fault."
    );
    describe_counter!(ROUTER_SWAPS, "Router chain swaps.");
    describe_counter!(ROUTER_RELOADS, "Router file contents a watcher loaded or refused.");
    describe_counter!(FACTORY_MADE, "Connections the connection factory made.");
    describe_counter!(
        FACTORY_EVICTIONS,
        "Connections the connection factory evicted, idle or over its limit."
    );
    describe_counter!(PROVISION_FAILURES, "Provisioning hooks that failed.");
    describe_gauge!(
        POOL_CONNECTIONS,
        "Pooled database connections open now, idle or in use."
    );
    describe_gauge!(POOL_WAITING, "Operations waiting for a pooled connection now.");
    describe_gauge!(
        CONNECTION_UP,
        "1 when the connection's last statement or health check succeeded, else 0."
    );
    describe_gauge!(
        REPLICA_LAG_SECONDS,
        Unit::Seconds,
        "A replica's last measured lag behind its primary."
    );
    describe_gauge!(
        REPLICA_LAG_BYTES,
        Unit::Bytes,
        "A replica's last measured lag behind its primary, in WAL bytes."
    );
}

impl Engine {
    /// Publishes the engine's counts to the `metrics` crate's current
    /// recorder: statements, errors, decisions (per connection, operation
    /// and who decided), router answers (per router), swaps and reloads,
    /// the connection factory's connections made and evicted, and the
    /// gauges of each pool. `docs/embedding.md` names every metric.
    ///
    /// The engine runs this on its timer (every second by default, see
    /// [`EngineBuilder::publish_metrics_every`](crate::EngineBuilder::publish_metrics_every));
    /// a service calls it right before rendering its metrics so that they
    /// are exact. The counts are those since the engine was built, whenever
    /// the recorder was installed. Cheap: a lock, and a few atomic loads per
    /// connection and router.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, ModelInfo};
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// engine.read_model(&ModelInfo::new("User")).fetch_all("SELECT 1", &[]).await?;
    /// // Whenever the service installed its recorder (before or after the
    /// // engine was built), this hands it every count so far.
    /// engine.publish_metrics();
    /// # Ok(()) }
    /// ```
    pub fn publish_metrics(&self) {
        let telemetry = self.telemetry();
        let mut state = telemetry.state.lock().unwrap_or_else(PoisonError::into_inner);
        let recorder = recorder_key();
        if state.recorder != Some(recorder) {
            state.forget_recorder(recorder);
        }
        let registry = self.registry().snapshot_full();
        for entry in registry.entries() {
            state.fold_connection(entry);
            state.set_gauges(entry.name(), Some(entry));
        }
        for entry in self.registry().take_retired() {
            state.fold_connection(&entry);
            if registry.get(&entry.name()).is_none() {
                state.set_gauges(entry.name(), None);
            }
        }
        let retired = std::mem::take(&mut *telemetry.retired_chains.lock().unwrap_or_else(PoisonError::into_inner));
        for chain in &retired {
            state.fold_routers(chain);
        }
        let active = self.active_routers();
        state.fold_routers(&active);
        let (made, evicted_idle, evicted_limit) = self.factory_counts();
        state.engine.totals = [
            active.generation,
            telemetry.reloads.load(Ordering::Relaxed),
            telemetry.refused_reloads.load(Ordering::Relaxed),
            made,
            evicted_idle,
            evicted_limit,
            telemetry.provision_failures.load(Ordering::Relaxed),
        ];
        state.publish();
    }
}
