//! What each connection has been doing: queries, errors, latency, waiting
//! acquirers, health, and, for a replica, its last measured lag. Exposed in
//! code ([`ConnectionStatus`]) and through the `metrics` crate (so a
//! service can export them to Prometheus): counts are published by the
//! engine (`publish.rs`); statement and acquire times are recorded here,
//! into histograms resolved from the recorder in place when the statement
//! runs (so a recorder installed after the engine was built sees them).

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::replication::{ReplicaLag, Role};
use crate::name::ConnectionName;

/// Latency buckets: four per power of two of microseconds, up to ~2^32 µs.
const BUCKETS: usize = 4 * 32;

/// A latency histogram with lock-free recording.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros < 2 {
        return micros as usize;
    }
    let power = 63 - micros.leading_zeros() as usize;
    // The two bits below the leading one pick the quarter.
    let quarter = ((micros >> power.saturating_sub(2)) & 0b11) as usize;
    (power * 4 + quarter).min(BUCKETS - 1)
}

/// The smallest latency that falls in `bucket`.
fn bucket_floor(bucket: usize) -> u64 {
    if bucket < 2 {
        return bucket as u64;
    }
    let (power, quarter) = (bucket / 4, (bucket % 4) as u64);
    if power < 2 {
        return 1 << power;
    }
    (1u64 << power) + quarter * (1u64 << (power - 2))
}

impl Histogram {
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency below which `quantile` of the samples fall (bucket
    /// resolution: about 19%).
    pub(crate) fn quantile(&self, quantile: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(bucket_floor(bucket + 1).max(1)));
            }
        }
        None
    }
}

/// Whether a connection answered its last health check. Serializes as
/// `"unknown"`, `"healthy"` or `"unhealthy"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// The last check (or statement) succeeded.
    Healthy,
    /// The last check failed.
    Unhealthy,
}

/// Where a connection stands with its factory's
/// [provisioning hook](crate::ConnectionFactory::provision).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::stats::ProvisionState;
/// use dbroute::{ConnectionFactory, Engine, ModelInfo};
///
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection_factory(
///         ConnectionFactory::from_template(format!("sqlite:{}/{{name}}.db", dir.path().display()))
///             .provision(|tenant| async move {
///                 tenant.connection().execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)", &[]).await?;
///                 Ok(())
///             }),
///     )
///     .build()
///     .await?;
/// let state = |name: &str| engine.status().into_iter().find(|s| s.name == name).map(|s| s.provision);
/// assert_eq!(state("default"), Some(ProvisionState::NotNeeded));
/// // Made, not provisioned yet: its hook runs on its first statement.
/// let acme = engine.read_model(&ModelInfo::new("T")).using("acme").connection()?;
/// assert_eq!(state("acme"), Some(ProvisionState::Pending));
/// acme.fetch_all("SELECT x FROM t", &[]).await?;
/// assert_eq!(state("acme"), Some(ProvisionState::Done));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProvisionState {
    /// Nothing to run: a registered connection, or one made by a factory
    /// without a hook.
    NotNeeded,
    /// Its hook has not succeeded yet: it runs on the first statement (or
    /// transaction), and statements wait for it.
    Pending,
    /// Its hook succeeded.
    Done,
    /// Its hook failed: the connection was unregistered and its pool
    /// closed. [`Engine::status`](crate::Engine::status) lists it (unhealthy,
    /// with the hook's message as its last error) until the factory makes
    /// it again.
    Failed,
}

/// The live statistics of one connection.
pub(crate) struct ConnectionStats {
    queries: AtomicU64,
    errors: AtomicU64,
    waiting: AtomicI64,
    latency: Histogram,
    last_error: Mutex<Option<String>>,
    health: AtomicU8,
    /// A replica's last lag measurement (written by the measurement, read
    /// by status: never on the routing path).
    replication: Mutex<Option<ReplicaLag>>,
    /// The `connection` label of its metrics.
    label: metrics::SharedString,
    /// Its histograms in the recorder that was current when they were last
    /// recorded to (resolved again when the recorder changes).
    live: arc_swap::ArcSwapOption<LiveHistograms>,
    /// The counts already handed to the metrics publisher.
    pub(crate) folded: Mutex<crate::publish::ConnectionCounts>,
}

/// A connection's histograms in one recorder.
struct LiveHistograms {
    recorder: usize,
    duration: metrics::Histogram,
    acquire: metrics::Histogram,
}

impl ConnectionStats {
    pub(crate) fn new(name: ConnectionName) -> Self {
        ConnectionStats {
            queries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            waiting: AtomicI64::new(0),
            latency: Histogram::default(),
            last_error: Mutex::new(None),
            health: AtomicU8::new(0),
            replication: Mutex::new(None),
            label: metrics::SharedString::from(Arc::<str>::from(name.as_str())),
            live: arc_swap::ArcSwapOption::empty(),
            folded: Mutex::new(Default::default()),
        }
    }

    /// Runs `record` on this connection's histograms in the current
    /// recorder, resolving them when the recorder changed (or on first use).
    #[inline]
    fn with_histograms(&self, record: impl FnOnce(&LiveHistograms)) {
        let recorder = crate::publish::recorder_key();
        let live = self.live.load();
        match &*live {
            Some(live) if live.recorder == recorder => record(live),
            _ => {
                let fresh = Arc::new(LiveHistograms {
                    recorder,
                    duration: metrics::histogram!(crate::publish::QUERY_DURATION, "connection" => self.label.clone()),
                    acquire: metrics::histogram!(crate::publish::ACQUIRE_DURATION, "connection" => self.label.clone()),
                });
                record(&fresh);
                self.live.store(Some(fresh));
            }
        }
    }

    /// Records how long a statement waited for a pooled connection.
    pub(crate) fn record_acquire(&self, waited: Duration) {
        self.with_histograms(|h| h.acquire.record(waited.as_secs_f64()));
    }

    /// The statements and errors counted so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.queries.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    /// Operations waiting for a pooled connection now.
    pub(crate) fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed).max(0) as u64
    }

    /// Counts one statement, which took `elapsed` and waited `waited` for a
    /// pooled connection (none: it ran in a transaction's): both histograms
    /// recorded in one lookup.
    pub(crate) fn record(&self, elapsed: Duration, waited: Option<Duration>, error: Option<&crate::Error>) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
        self.with_histograms(|h| {
            h.duration.record(elapsed.as_secs_f64());
            if let Some(waited) = waited {
                h.acquire.record(waited.as_secs_f64());
            }
        });
        match error {
            Some(error) => self.record_error(error),
            None => self.health.store(1, Ordering::Relaxed),
        }
    }

    pub(crate) fn record_error(&self, error: &crate::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if error.marks_unhealthy() {
            self.health.store(2, Ordering::Relaxed);
        }
        // Messages never hold credentials (URLs are always redacted).
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
    }

    pub(crate) fn set_health(&self, healthy: bool) {
        self.health.store(if healthy { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Keeps a replica's lag measurement, unless a later one is kept
    /// already (two measurements may overlap).
    pub(crate) fn set_replication(&self, lag: ReplicaLag) {
        let mut kept = self
            .replication
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.as_ref().is_none_or(|k| k.measured_at <= lag.measured_at) {
            *kept = Some(lag);
        }
    }

    pub(crate) fn replication(&self) -> Option<ReplicaLag> {
        self.replication
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn waiting_guard(&self) -> WaitingGuard<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        WaitingGuard(&self.waiting)
    }

    pub(crate) fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            1 => Health::Healthy,
            2 => Health::Unhealthy,
            _ => Health::Unknown,
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            queries: self.queries.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed).max(0) as u64,
            p50: self.latency.quantile(0.50),
            p95: self.latency.quantile(0.95),
            p99: self.latency.quantile(0.99),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            health: self.health(),
        }
    }
}

/// Decrements the waiting gauge when an acquire ends, however it ends.
pub(crate) struct WaitingGuard<'a>(&'a AtomicI64);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) struct StatsSnapshot {
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) waiting: u64,
    pub(crate) p50: Option<Duration>,
    pub(crate) p95: Option<Duration>,
    pub(crate) p99: Option<Duration>,
    pub(crate) last_error: Option<String>,
    pub(crate) health: Health,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_quantiles_close() {
        let mut last = 0;
        for micros in [0, 1, 2, 3, 4, 5, 7, 8, 100, 1000, 10_000, 1 << 40] {
            let b = bucket_of(micros);
            assert!(b >= last, "{micros}");
            assert!(bucket_floor(b) <= micros.max(bucket_floor(b)), "{micros}");
            last = b;
        }
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).unwrap().as_millis() as f64;
        let p99 = h.quantile(0.99).unwrap().as_millis() as f64;
        assert!((40.0..=65.0).contains(&p50), "{p50}");
        assert!((85.0..=130.0).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}

/// A snapshot of one connection, for operators: see
/// [`Engine::status`](crate::Engine::status). Never holds credentials.
///
/// Serializes (for a service's `/status`) with its fields' names; the
/// latencies as milliseconds (`latency_p50_ms`, ...).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// let engine = dbroute::Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// let status = serde_json::to_value(engine.status()).unwrap();
/// assert_eq!(status[0]["name"], "default");
/// assert_eq!(status[0]["backend"], "sqlite");
/// assert_eq!(status[0]["health"], "unknown");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct ConnectionStatus {
    /// The connection's name.
    pub name: ConnectionName,
    /// Its backend.
    pub backend: crate::Backend,
    /// Whether it is the default.
    pub is_default: bool,
    /// Whether the connection factory made it.
    pub made_by_factory: bool,
    /// Database connections open now.
    pub pool_size: u32,
    /// Of those, idle.
    pub idle: usize,
    /// Of those, in use.
    pub in_use: usize,
    /// Operations waiting for a database connection now.
    pub waiting: u64,
    /// Statements run.
    pub queries: u64,
    /// Statements that failed.
    pub errors: u64,
    /// Median statement time.
    #[serde(rename = "latency_p50_ms", serialize_with = "crate::serialize::optional_millis")]
    pub latency_p50: Option<Duration>,
    /// 95th percentile statement time.
    #[serde(rename = "latency_p95_ms", serialize_with = "crate::serialize::optional_millis")]
    pub latency_p95: Option<Duration>,
    /// 99th percentile statement time.
    #[serde(rename = "latency_p99_ms", serialize_with = "crate::serialize::optional_millis")]
    pub latency_p99: Option<Duration>,
    /// The last error, if any (credentials never appear).
    pub last_error: Option<String>,
    /// The result of the last health check or statement.
    pub health: Health,
    /// Reads routers (or overrides) sent here.
    pub routed_reads: u64,
    /// Writes routers (or overrides) sent here.
    pub routed_writes: u64,
    /// A primary, or a replica of which connection (as declared with
    /// [`EngineBuilder::replica_of`](crate::EngineBuilder::replica_of)).
    #[serde(flatten)]
    pub role: Role,
    /// A replica's last lag measurement (`None`: a primary, or not measured
    /// yet). Measured in the background (see
    /// [`EngineBuilder::replication_check_every`](crate::EngineBuilder::replication_check_every))
    /// and by [`Engine::measure_replication`](crate::Engine::measure_replication).
    pub replication: Option<ReplicaLag>,
    /// Where it stands with its factory's provisioning hook.
    pub provision: ProvisionState,
}

impl ConnectionStatus {
    pub(crate) fn of(entry: &crate::connection::registry::ConnectionEntry, is_default: bool) -> Self {
        let stats = entry.stats().snapshot();
        let pool_size = entry.pool().size();
        let idle = entry.pool().num_idle();
        let (routed_reads, routed_writes) = entry.decisions();
        ConnectionStatus {
            name: entry.name(),
            backend: entry.url().backend(),
            is_default,
            made_by_factory: entry.is_from_factory(),
            pool_size,
            idle,
            in_use: (pool_size as usize).saturating_sub(idle),
            waiting: stats.waiting,
            queries: stats.queries,
            errors: stats.errors,
            latency_p50: stats.p50,
            latency_p95: stats.p95,
            latency_p99: stats.p99,
            last_error: stats.last_error,
            health: stats.health,
            routed_reads,
            routed_writes,
            role: entry.replica_of().map_or(Role::Primary, |of| Role::Replica { of }),
            replication: entry.stats().replication(),
            provision: entry.provision().state(),
        }
    }
}
