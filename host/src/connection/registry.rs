//! The registry of named connections: lock-free lookups, copy-on-write
//! changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::pool::{DbPool, PoolSettings, connect_error};
use super::url::ConnectionUrl;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

use super::stats::ConnectionStats;
use crate::causal::tracker::CausalRole;
use crate::decider::Decider;
use crate::metrics::StripedCounters;
use crate::name::ConnectionName;
use crate::provision::Provision;

/// One registered connection: its name, redacted URL, settings and pool.
pub(crate) struct ConnectionEntry {
    name: ConnectionName,
    url: ConnectionUrl,
    settings: PoolSettings,
    pool: DbPool,
    /// Decisions that chose it, by decider and kind
    /// ([`Decider::counter`]).
    decisions: StripedCounters<{ Decider::COUNTERS }>,
    stats: ConnectionStats,
    /// Made by the connection factory (and so evictable).
    from_factory: bool,
    /// The connection this one was declared a replica of (its registered
    /// name), checked when the engine was built.
    replica_of: Option<ConnectionName>,
    /// When a decision last chose it (factory connections only), in
    /// milliseconds since the process started.
    last_used: AtomicU64,
    /// Whether statements may run yet: the factory's provisioning hook
    /// runs before the first (`provision.rs`).
    provision: Provision,
    /// Its part in read-your-writes and failover: a replicated cluster's
    /// primary, or a replica (set when the engine is built).
    causal: Option<CausalRole>,
}

impl std::fmt::Debug for ConnectionEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionEntry")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("backend", &self.url.backend())
            .field("replica_of", &self.replica_of)
            .finish_non_exhaustive()
    }
}

impl ConnectionEntry {
    pub(crate) async fn open(name: ConnectionName, url: ConnectionUrl, settings: PoolSettings) -> Result<Self> {
        let pool = DbPool::open(name, &url, &settings).await?;
        tracing::debug!(connection = %name, url = %url, "connection registered");
        Ok(Self::with_pool(name, url, settings, pool, false))
    }

    /// A connection whose pool connects on first use: made without waiting.
    pub(crate) fn open_lazy(name: ConnectionName, url: ConnectionUrl, settings: PoolSettings) -> Result<Self> {
        let pool = DbPool::open_lazy(name, &url, &settings)?;
        tracing::debug!(connection = %name, url = %url, "connection made by the factory");
        Ok(Self::with_pool(name, url, settings, pool, true))
    }

    fn with_pool(
        name: ConnectionName,
        url: ConnectionUrl,
        settings: PoolSettings,
        pool: DbPool,
        from_factory: bool,
    ) -> Self {
        let entry = ConnectionEntry {
            name,
            url,
            settings,
            pool,
            decisions: StripedCounters::default(),
            stats: ConnectionStats::new(name),
            from_factory,
            replica_of: None,
            last_used: AtomicU64::new(0),
            provision: Provision::ready(),
            causal: None,
        };
        entry.touch();
        entry
    }

    /// `error`, or, when it is a pool timeout while the pool holds no
    /// connection at all, the reason no connection could be made: one
    /// direct connection attempt names it (connection refused, unknown
    /// host, authentication failed; a database that does not exist is
    /// [`Error::DatabaseMissing`]). Error path only.
    pub(crate) async fn explain(&self, error: Error) -> Error {
        let Error::PoolTimedOut { timeout, .. } = &error else {
            return error;
        };
        if self.pool.size() > 0 {
            return error; // Connections exist: the pool is exhausted.
        }
        let probe = (*timeout).clamp(Duration::from_millis(100), Duration::from_secs(5));
        match tokio::time::timeout(probe, Box::pin(self.pool.connect_once())).await {
            Ok(Err(source)) => connect_error(self.name, &self.url, self.pool.missing_database(&source), source),
            Ok(Ok(())) | Err(_) => error,
        }
    }

    /// The registered name.
    #[inline]
    pub(crate) fn name(&self) -> ConnectionName {
        self.name
    }

    /// The registered name, borrowed (for an operation's origin, which
    /// routers see by reference).
    #[inline]
    pub(crate) fn name_ref(&self) -> &ConnectionName {
        &self.name
    }

    /// The URL (its `Display` and `Debug` are redacted).
    pub(crate) fn url(&self) -> &ConnectionUrl {
        &self.url
    }

    /// The pool's settings.
    pub(crate) fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    /// The typed sqlx pool.
    #[inline]
    pub(crate) fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Statements, errors, latency and health.
    #[inline]
    pub(crate) fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// Counts a decision that chose this connection (and, for one the
    /// factory made, marks it used).
    #[inline]
    pub(crate) fn count_decision(&self, kind: crate::router::RouteKind, by: Decider) {
        self.decisions.increment(by.counter(kind));
        if self.from_factory {
            self.touch();
        }
    }

    /// Decisions that chose it outside transactions: reads and writes.
    pub(crate) fn decisions(&self) -> (u64, u64) {
        let counts = self.decision_counts();
        let (mut reads, mut writes) = (0, 0);
        for by in Decider::ALL.into_iter().filter(|by| *by != Decider::Transaction) {
            reads += counts[by.counter(crate::router::RouteKind::Read)];
            writes += counts[by.counter(crate::router::RouteKind::Write)];
        }
        (reads, writes)
    }

    /// Decisions that chose it, by decider and kind ([`Decider::counter`]).
    pub(crate) fn decision_counts(&self) -> [u64; Decider::COUNTERS] {
        self.decisions.get_all()
    }

    /// Whether the connection factory made it (and may evict it).
    pub(crate) fn is_from_factory(&self) -> bool {
        self.from_factory
    }

    /// The connection it is a replica of, if declared.
    pub(crate) fn replica_of(&self) -> Option<ConnectionName> {
        self.replica_of
    }

    /// Declares it a replica of `primary` (before it is registered).
    pub(crate) fn set_replica_of(&mut self, primary: Option<ConnectionName>) {
        self.replica_of = primary;
    }

    /// Its part in read-your-writes and failover, if any.
    #[inline]
    pub(crate) fn causal(&self) -> Option<&CausalRole> {
        self.causal.as_ref()
    }

    /// Gives it its part in read-your-writes and failover (before it is
    /// registered).
    pub(crate) fn set_causal(&mut self, role: Option<CausalRole>) {
        self.causal = role;
    }

    /// When a decision last chose it, in milliseconds since the process
    /// started (factory connections only).
    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Its provisioning state.
    #[inline]
    pub(crate) fn provision(&self) -> &Provision {
        &self.provision
    }

    /// Gives it a provisioning hook to run before its first statement
    /// (before it is registered).
    pub(crate) fn set_provision(&mut self, provision: Provision) {
        self.provision = provision;
    }

    /// An error met while taking a connection from the pool or beginning a
    /// transaction: [`Error::PoolTimedOut`], [`Error::DatabaseMissing`]
    /// when the server says the database does not exist (only while
    /// connecting: a statement such as `DROP DATABASE absent` fails with
    /// the same code, and is a query error), else [`Error::Query`].
    pub(crate) fn acquire_error(&self, source: sqlx::Error) -> Error {
        let connection = self.name.to_string();
        match source {
            sqlx::Error::PoolTimedOut => Error::PoolTimedOut {
                connection,
                timeout: self.settings.get_acquire_timeout(),
            },
            source => match self.pool.missing_database(&source) {
                Some(database) => Error::DatabaseMissing {
                    connection,
                    database,
                    source,
                },
                None => Error::Query { connection, source },
            },
        }
    }

    /// Marks the connection as just used.
    #[inline]
    pub(crate) fn touch(&self) {
        self.last_used.store(process_millis(), Ordering::Relaxed);
    }
}

/// Milliseconds since the process first asked.
pub(crate) fn process_millis() -> u64 {
    static START: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);
    START.elapsed().as_millis() as u64
}

/// How many unregistered connections wait for their last counts to be
/// published, at most.
const MAX_RETIRED: usize = 1024;

/// Connection names are short and chosen by the operator: a fast hash.
type Hasher = foldhash::fast::RandomState;

/// An immutable snapshot of the registered connections.
#[derive(Debug)]
pub(crate) struct ConnectionMap {
    by_name: HashMap<ConnectionName, Arc<ConnectionEntry>, Hasher>,
    /// The same entries, for a linear search when there are few: cheaper
    /// than hashing the name on every decision.
    few: Vec<Arc<ConnectionEntry>>,
    default: Arc<ConnectionEntry>,
}

/// Up to this many connections, lookups scan instead of hashing.
const FEW: usize = 8;

impl ConnectionMap {
    fn new(by_name: HashMap<ConnectionName, Arc<ConnectionEntry>, Hasher>, default: Arc<ConnectionEntry>) -> Self {
        let few = if by_name.len() <= FEW {
            by_name.values().cloned().collect()
        } else {
            Vec::new()
        };
        ConnectionMap { by_name, few, default }
    }
}

impl ConnectionMap {
    /// The connection registered under `name`; `default` always resolves to
    /// the default connection.
    #[inline]
    pub(crate) fn get(&self, name: &ConnectionName) -> Option<&Arc<ConnectionEntry>> {
        if name.is_default() {
            return Some(&self.default);
        }
        if self.by_name.len() <= FEW {
            return self.few.iter().find(|e| e.name == *name);
        }
        self.by_name.get(name)
    }

    pub(crate) fn default_entry(&self) -> &Arc<ConnectionEntry> {
        &self.default
    }

    /// Registered names, sorted, the default first.
    pub(crate) fn names(&self) -> Vec<ConnectionName> {
        let mut names: Vec<_> = self.by_name.keys().copied().collect();
        names.sort_by_key(|n| (*n != self.default.name, *n));
        names
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Arc<ConnectionEntry>> {
        self.by_name.values()
    }

    pub(crate) fn unknown(&self, name: ConnectionName, requested_by: impl Into<String>) -> Error {
        Error::UnknownConnection {
            name: name.to_string(),
            requested_by: requested_by.into(),
            registered: self.names(),
        }
    }
}

/// The live registry. Reads take a snapshot without locking; writers
/// serialise on a mutex (held only to publish a new snapshot, never across
/// an await) and publish a new snapshot.
#[derive(Debug)]
pub(crate) struct Registry {
    current: ArcSwap<ConnectionMap>,
    writer: std::sync::Mutex<()>,
    /// Connections unregistered since the metrics were last published,
    /// whose last counts are not published yet.
    retired: std::sync::Mutex<Vec<Arc<ConnectionEntry>>>,
}

impl Registry {
    /// A registry from opened entries; `default` names the default.
    pub(crate) fn new(entries: Vec<ConnectionEntry>, default: ConnectionName) -> Result<Self> {
        let mut by_name = HashMap::with_hasher(Hasher::default());
        for entry in entries {
            by_name.insert(entry.name, Arc::new(entry));
        }
        let default = by_name.get(&default).cloned().ok_or(Error::NoConnections)?;
        Ok(Registry {
            current: ArcSwap::from_pointee(ConnectionMap::new(by_name, default)),
            writer: std::sync::Mutex::new(()),
            retired: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The current snapshot.
    #[inline]
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<ConnectionMap>> {
        self.current.load()
    }

    /// A snapshot that can be kept.
    pub(crate) fn snapshot_full(&self) -> Arc<ConnectionMap> {
        self.current.load_full()
    }

    /// The connections unregistered since the last call.
    pub(crate) fn take_retired(&self) -> Vec<Arc<ConnectionEntry>> {
        std::mem::take(&mut *self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Keeps an unregistered connection until its last counts are
    /// published (at most [`MAX_RETIRED`]: an engine whose metrics are
    /// never published forgets the oldest).
    fn retire(&self, entry: &Arc<ConnectionEntry>) {
        let mut retired = self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if retired.len() >= MAX_RETIRED {
            retired.remove(0);
        }
        retired.push(entry.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers an opened connection. When the name is taken, returns the
    /// registered entry instead (the caller closes its own pool).
    pub(crate) fn add_or_get(&self, entry: Arc<ConnectionEntry>) -> std::result::Result<(), Arc<ConnectionEntry>> {
        let _writer = self.lock();
        let current = self.current.load_full();
        if let Some(existing) = current.get(&entry.name) {
            return Err(existing.clone());
        }
        let mut by_name = current.by_name.clone();
        by_name.insert(entry.name, entry.clone());
        self.current
            .store(Arc::new(ConnectionMap::new(by_name, current.default.clone())));
        Ok(())
    }

    /// Registers a connection that was opened by the caller.
    pub(crate) async fn add(&self, entry: ConnectionEntry) -> Result<()> {
        let entry = Arc::new(entry);
        match self.add_or_get(entry.clone()) {
            Ok(()) => Ok(()),
            Err(_) => {
                entry.pool.close().await;
                Err(Error::DuplicateConnection {
                    name: entry.name.to_string(),
                })
            }
        }
    }

    /// Unregisters a connection and returns it; the caller closes its pool
    /// (operations in flight finish first).
    pub(crate) fn take(&self, name: ConnectionName) -> Result<Arc<ConnectionEntry>> {
        let _writer = self.lock();
        let current = self.current.load_full();
        let Some(entry) = current.get(&name).cloned() else {
            return Err(current.unknown(name, "remove_connection"));
        };
        if Arc::ptr_eq(&entry, &current.default) {
            let others: Vec<_> = current.names().into_iter().filter(|n| *n != entry.name).collect();
            if !others.is_empty() {
                return Err(Error::RemoveDefault {
                    name: entry.name.to_string(),
                    others,
                });
            }
            // The last connection: removing it is closing.
            return Ok(entry);
        }
        let mut by_name = current.by_name.clone();
        by_name.remove(&entry.name);
        self.current
            .store(Arc::new(ConnectionMap::new(by_name, current.default.clone())));
        self.retire(&entry);
        Ok(entry)
    }

    /// Unregisters `entry` if it is the one registered under its name (not
    /// one made again since, nor the default); whether it was.
    pub(crate) fn take_entry(&self, entry: &Arc<ConnectionEntry>) -> bool {
        let _writer = self.lock();
        let current = self.current.load_full();
        let registered = current.by_name.get(&entry.name);
        if !registered.is_some_and(|e| Arc::ptr_eq(e, entry)) || Arc::ptr_eq(entry, &current.default) {
            return false;
        }
        let mut by_name = current.by_name.clone();
        by_name.remove(&entry.name);
        self.current
            .store(Arc::new(ConnectionMap::new(by_name, current.default.clone())));
        self.retire(entry);
        true
    }

    /// Unregisters a connection; its pool drains (operations in flight
    /// finish) and closes.
    pub(crate) async fn remove(&self, name: ConnectionName) -> Result<()> {
        let entry = self.take(name)?;
        entry.pool.close().await;
        tracing::debug!(connection = %entry.name, "connection removed");
        Ok(())
    }

    /// Closes every pool, waiting for them to drain.
    pub(crate) async fn close_all(&self) {
        let current = self.current.load_full();
        for entry in current.by_name.values() {
            entry.pool.close().await;
        }
    }
}
