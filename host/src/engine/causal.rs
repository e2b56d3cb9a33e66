//! Read-your-writes and replica failover in the engine: which clusters and
//! replicas there are (planned when the engine is built), where a read the
//! routers sent to a replica really goes, the causal tokens handed out and
//! accepted, and what a lag measurement tells them. The policies, tokens
//! and positions themselves are in `causal/`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::causal::positions;
use crate::causal::tracker::{CausalRole, Cluster, ReplicaNode};
use crate::causal::{self, BadTokens, CausalToken, Kind, Position, ReadYourWrites, ReplicaFailover};
use crate::connection::gtid;
use crate::connection::handle::Connection;
use crate::connection::registry::{ConnectionEntry, process_millis};
use crate::connection::replication::ReplicaLag;
use crate::connection::stats::Health;
use crate::connection::url::Backend;
use crate::error::{Error, Result};
use crate::name::ConnectionName;

use super::Engine;

/// How long a read may wait for a replica (or a primary) to say its
/// position before the read goes to the replica's primary.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest pause between two askings while a read waits.
const MAX_POLL: Duration = Duration::from_millis(10);

/// The engine's read-your-writes and failover state.
pub(crate) struct Consistency {
    pub(crate) read_your_writes: ReadYourWrites,
    pub(crate) failover: ReplicaFailover,
    pub(crate) clusters: Vec<Arc<Cluster>>,
    /// Per replica: since when (process milliseconds, 0: not behind) its
    /// measurements have found it behind.
    behind_since: HashMap<ConnectionName, AtomicU64>,
}

/// The clusters the declared replicas make, and each connection's role in
/// them (replica → primary, by registered name, as checked by
/// `check_declarations`). A lag limit for a connection that is not a
/// declared replica is refused.
pub(crate) fn plan(
    backends: &[(ConnectionName, Backend)],
    replicas: &HashMap<ConnectionName, ConnectionName>,
    max_lags: &[(ConnectionName, Duration)],
    read_your_writes: ReadYourWrites,
    failover: ReplicaFailover,
) -> Result<(Consistency, HashMap<ConnectionName, CausalRole>)> {
    for (name, _) in max_lags {
        if !replicas.contains_key(name) {
            return Err(Error::ReplicaOf {
                replica: name.to_string(),
                primary: "(none)".into(),
                reason: "a lag limit is set for it, but it is not declared a replica; \
                         declare it with replica_of, or remove its limit"
                    .into(),
            });
        }
    }
    let root = |mut name: ConnectionName| {
        while let Some(up) = replicas.get(&name) {
            name = *up;
        }
        name
    };
    let backend = |name: ConnectionName| {
        backends
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Backend::Postgres, |(_, b)| *b)
    };
    let mut clusters: HashMap<ConnectionName, Arc<Cluster>> = HashMap::new();
    let mut roles = HashMap::new();
    // In a stable order, so that clusters are listed the same way each time.
    let mut declared: Vec<_> = replicas.iter().collect();
    declared.sort();
    for (replica, upstream) in declared {
        let primary = root(*replica);
        let cluster = clusters
            .entry(primary)
            .or_insert_with(|| Arc::new(Cluster::new(primary, backend(primary), read_your_writes.is_on())))
            .clone();
        let max_lag = max_lags.iter().rev().find(|(n, _)| n == replica).map(|(_, d)| *d);
        roles.insert(
            *replica,
            CausalRole::Replica(Arc::new(ReplicaNode::new(*upstream, cluster.clone(), max_lag))),
        );
        roles.insert(primary, CausalRole::Primary(cluster));
    }
    let mut clusters: Vec<_> = clusters.into_values().collect();
    clusters.sort_by_key(|c| c.primary);
    let behind_since = replicas.keys().map(|r| (*r, AtomicU64::new(0))).collect();
    Ok((
        Consistency {
            read_your_writes,
            failover,
            clusters,
            behind_since,
        },
        roles,
    ))
}

/// Where reads went, and writes followed, since the engine started: see
/// [`Engine::consistency_counts`].
///
/// A read counts once, where it ran: on a replica (at once, after asking
/// it, after waiting for it), or on a replica's primary (because the
/// replica had not replayed what the read must see, or because it was
/// unavailable). Reads the routers sent elsewhere than a replica are not
/// counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsistencyCounts {
    /// Reads run on a replica, its last known position enough (no round
    /// trip).
    pub replica_at_once: u64,
    /// Reads run on a replica after asking it its position.
    pub replica_after_asking: u64,
    /// Reads run on a replica after waiting for it to replay.
    pub replica_after_waiting: u64,
    /// Reads sent to a replica's primary: the replica had not replayed what
    /// they must see.
    pub primary_not_replayed: u64,
    /// Reads sent to a replica's primary: the replica was down or lagging
    /// past its limit ([`ReplicaFailover::Primary`]).
    pub primary_failover: u64,
    /// Writes whose position (WAL, GTID) was kept.
    pub writes_followed: u64,
    /// Writes whose position could not be read (logged): the primary did
    /// not answer, or (MariaDB) has no binary log, or is MySQL.
    pub writes_lost: u64,
}

impl ConsistencyCounts {
    /// Reads run on a replica.
    pub fn replica_reads(&self) -> u64 {
        self.replica_at_once + self.replica_after_asking + self.replica_after_waiting
    }

    /// Reads sent from a replica to its primary.
    pub fn primary_reads(&self) -> u64 {
        self.primary_not_replayed + self.primary_failover
    }
}

/// Where a read goes after the fast check.
pub(crate) enum Settle {
    /// This connection.
    Ready(Connection),
    /// A replica whose last known position is not enough.
    Pending(Pending),
}

/// A read on a replica that needs the slow check.
pub(crate) struct Pending {
    conn: Connection,
    node: Arc<ReplicaNode>,
    check: Check,
}

/// What the fast check says of a read on a replica.
enum Check {
    /// Run it there.
    Use,
    /// Send it to the replica's primary: the replica is unavailable.
    Failover,
    /// The replica's last known position is behind the read's.
    Behind { own: u64, token: u64 },
    /// The read carries a token, and the replica's cluster's system
    /// identifier is not known yet.
    UnknownSystem,
}

/// Where a read on a replica goes, after the slow check.
enum Verdict {
    AtOnce,
    Asked,
    Waited,
    NotReplayed,
    Failover,
}

impl Engine {
    fn consistency(&self) -> &Consistency {
        &self.inner.consistency
    }

    /// The engine's read-your-writes policy (see
    /// [`EngineBuilder::read_your_writes`](crate::EngineBuilder::read_your_writes)).
    pub fn read_your_writes(&self) -> ReadYourWrites {
        self.consistency().read_your_writes
    }

    /// The engine's replica failover policy (see
    /// [`EngineBuilder::replica_failover`](crate::EngineBuilder::replica_failover)).
    pub fn replica_failover(&self) -> ReplicaFailover {
        self.consistency().failover
    }

    /// Where reads on replicas went and how many writes were followed, over
    /// every replicated cluster.
    pub fn consistency_counts(&self) -> ConsistencyCounts {
        let mut counts = ConsistencyCounts::default();
        for cluster in &self.consistency().clusters {
            let c = &cluster.counters;
            counts.replica_at_once += c.replica_caught_up.get();
            counts.replica_after_asking += c.replica_after_asking.get();
            counts.replica_after_waiting += c.replica_after_waiting.get();
            counts.primary_not_replayed += c.primary_not_replayed.get();
            counts.primary_failover += c.primary_failover.get();
            counts.writes_followed += c.writes_tracked.get();
            counts.writes_lost += c.positions_lost.get();
        }
        counts
    }

    /// The causal token of the current task's writes (and of the tokens of
    /// the [`causal::scope`](crate::causal::scope)s it is in): hand its
    /// text to the client, which sends it back on its next request (see
    /// [`Engine::accept_token`]). `None` before any write on a primary with
    /// replicas, or when read-your-writes is off. Costs no round trip: the
    /// write already read its position.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Model, params};
    ///
    /// #[derive(Model)]
    /// struct Order;
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "postgres://app@127.0.0.1:5432/app")
    ///     .connection("replica", "postgres://app@127.0.0.1:5433/app")
    ///     .replica_of("replica", "default")
    ///     .build()
    ///     .await?;
    /// engine.write::<Order>().execute("INSERT INTO orders (id) VALUES ($1)", &params![7]).await?;
    /// let token = engine.causal_token().expect("a write on a primary with a replica");
    /// // e.g. a response header: `x-read-after: {token}`
    /// println!("{token}");
    /// # Ok(()) }
    /// ```
    pub fn causal_token(&self) -> Option<CausalToken> {
        if !self.read_your_writes().is_on() {
            return None;
        }
        let written: Vec<Position> = self
            .consistency()
            .clusters
            .iter()
            .filter(|c| c.tracks_writes)
            .filter_map(|c| {
                let lsn = c.writes.current();
                let system_id = *c.system_id.get()?;
                (lsn > 0).then_some(Position {
                    kind: c.kind,
                    system_id,
                    lsn,
                })
            })
            .collect();
        let mine = CausalToken::new(written);
        match (mine, causal::carried()) {
            (Some(mine), Some(carried)) => Some(carried.merge(&mine)),
            (mine, carried) => mine.or(carried),
        }
    }

    /// Turns a token's text, as a client sent it back, into a token for
    /// [`causal::scope`](crate::causal::scope), checking that it is whole
    /// and that it names only this engine's replicated clusters (by
    /// their identities: PostgreSQL's system identifier, a MariaDB
    /// primary's GTID domain and server id; read once per cluster, here
    /// when not known yet). `Ok(None)` when read-your-writes is off, or for a bad
    /// token when the engine ignores them ([`BadTokens::Ignore`]).
    ///
    /// # Errors
    ///
    /// [`Error::CausalToken`] (unless bad tokens are ignored): the text is
    /// not a token, is cut short, was altered, is of another format
    /// version, or names a cluster that none of this engine's primaries
    /// is. A database error when no server of a cluster can be asked its
    /// identity (on MariaDB, only its primary can).
    pub async fn accept_token(&self, text: &str) -> Result<Option<CausalToken>> {
        if !self.read_your_writes().is_on() {
            return Ok(None);
        }
        let token = match CausalToken::decode(text) {
            Ok(token) => token,
            Err(malformed) => return self.bad_token(malformed.to_string()),
        };
        let mut known = Vec::new();
        for cluster in self.consistency().clusters.iter().filter(|c| c.tracks_writes) {
            known.push((cluster.primary, cluster.kind, self.system_id_of(cluster).await?));
        }
        for position in token.positions() {
            if !known.iter().any(|(_, kind, id)| (*kind, *id) == position.cluster()) {
                let ours: Vec<String> = known
                    .iter()
                    .map(|(p, kind, id)| format!("`{p}`: {}", identity_text(*kind, *id)))
                    .collect();
                return self.bad_token(format!(
                    "it was issued for another database cluster ({}), \
                     not one of this engine's primaries ({})",
                    identity_text(position.kind, position.system_id),
                    if ours.is_empty() {
                        "none with replicas".to_owned()
                    } else {
                        ours.join(", ")
                    }
                ));
            }
        }
        Ok(Some(token))
    }

    fn bad_token(&self, reason: String) -> Result<Option<CausalToken>> {
        match self.read_your_writes().bad_token_policy() {
            BadTokens::Refuse => Err(Error::CausalToken { reason }),
            BadTokens::Ignore => {
                tracing::warn!("causal token ignored: {reason}");
                Ok(None)
            }
        }
    }

    /// The cluster's identity, read once: from its primary, else (the
    /// primary down; PostgreSQL only, whose replicas share it) from one of
    /// its replicas.
    async fn system_id_of(&self, cluster: &Cluster) -> Result<u64> {
        let id = cluster
            .system_id
            .get_or_try_init(|| async {
                let registry = self.inner.registry.snapshot_full();
                let mut first_error = None;
                let primary = registry.get(&cluster.primary).cloned();
                let replicas = registry.entries().filter(|e| {
                    cluster.kind == Kind::Wal
                        && matches!(e.causal(), Some(CausalRole::Replica(node)) if std::ptr::eq(&*node.cluster, cluster))
                });
                for entry in primary.iter().chain(replicas) {
                    let on = Connection::new(entry.clone(), None);
                    match tokio::time::timeout(ASK_TIMEOUT, positions::system_id(&on, cluster)).await {
                        Ok(Ok(id)) => return Ok(id),
                        Ok(Err(e)) => first_error = first_error.or(Some(e)),
                        Err(_) => {
                            first_error = first_error.or(Some(Error::PoolTimedOut {
                                connection: entry.name().to_string(),
                                timeout: ASK_TIMEOUT,
                            }))
                        }
                    }
                }
                Err(first_error.unwrap_or_else(|| registry.unknown(cluster.primary, "a causal token's check")))
            })
            .await?;
        Ok(*id)
    }

    /// The fast check of a read on replica `entry`: a few atomic loads.
    #[inline]
    fn check(&self, node: &ReplicaNode, entry: &ConnectionEntry) -> Result<Check> {
        let over = node.over_limit();
        if over || entry.stats().health() == Health::Unhealthy {
            match self.consistency().failover {
                ReplicaFailover::Primary => return Ok(Check::Failover),
                ReplicaFailover::Fail if over => {
                    return Err(Error::ReplicaUnavailable {
                        replica: entry.name().to_string(),
                        primary: node.upstream.to_string(),
                        reason: format!("it lags past its limit of {:?}", node.max_lag.unwrap_or_default()),
                    });
                }
                // An unhealthy replica is tried all the same: the read
                // fails if it is still down.
                ReplicaFailover::Fail => {}
            }
        }
        let cluster = &node.cluster;
        if !cluster.tracks_writes {
            return Ok(Check::Use);
        }
        let own = cluster.writes.current();
        let token = match causal::with_carried(|t| cluster.system_id.get().map(|id| t.lsn_for(cluster.kind, *id))) {
            None => 0,
            Some(Some(lsn)) => lsn,
            Some(None) => return Ok(Check::UnknownSystem),
        };
        let need = own.max(token);
        if need == 0 || node.replayed() >= need {
            Ok(Check::Use)
        } else {
            Ok(Check::Behind { own, token })
        }
    }

    /// Where a read resolved to `conn` runs, without waiting (for
    /// [`Routed::connection`](crate::Routed::connection)): a replica whose
    /// last known position is not enough, or that is unavailable (under
    /// [`ReplicaFailover::Primary`]), gives way to its primary.
    pub(crate) fn settle_read_now(&self, conn: Connection) -> Result<Connection> {
        match self.settle(conn, false)? {
            Settle::Ready(conn) => Ok(conn),
            Settle::Pending(pending) => Ok(pending.conn),
        }
    }

    /// Where a read resolved to `conn` runs, as far as the fast check
    /// tells: a connection, or a replica that needs the slow check
    /// ([`Engine::settle_read_slow`]).
    #[inline]
    pub(crate) fn settle_read_fast(&self, conn: Connection) -> Result<Settle> {
        self.settle(conn, true)
    }

    /// Follows a read from replica to primary while the fast check says
    /// so; stops at a connection to use, or (when `slow_ok`) at a replica
    /// whose fast check is not enough.
    #[inline]
    fn settle(&self, mut conn: Connection, slow_ok: bool) -> Result<Settle> {
        loop {
            let Some(CausalRole::Replica(node)) = conn.entry().causal() else {
                return Ok(Settle::Ready(conn));
            };
            let verdict = match self.check(node, conn.entry())? {
                Check::Use => Verdict::AtOnce,
                Check::Failover => Verdict::Failover,
                check @ (Check::Behind { .. } | Check::UnknownSystem) if slow_ok => {
                    let node = node.clone();
                    return Ok(Settle::Pending(Pending { conn, node, check }));
                }
                Check::Behind { .. } | Check::UnknownSystem => Verdict::NotReplayed,
            };
            match self.follow(node, verdict) {
                None => return Ok(Settle::Ready(conn)),
                Some(upstream) => conn = upstream?,
            }
        }
    }

    /// Where a read runs whose replica's last known position is not enough:
    /// the replica once it has replayed what the read must see (asked,
    /// else waited for up to the policy's bound), else the replica's
    /// primary (and so on up a chain of replicas). Only ever a replica's
    /// own primary.
    pub(crate) async fn settle_read_slow(&self, mut pending: Pending) -> Result<Connection> {
        loop {
            let Pending { conn, node, check } = pending;
            let verdict = match check {
                Check::UnknownSystem => match self.system_id_of(&node.cluster).await {
                    // Known now: check again.
                    Ok(_) => None,
                    Err(_) => Some(Verdict::NotReplayed),
                },
                Check::Behind { own, token } => Some(self.catch_up(&node, &conn, own, token).await?),
                Check::Use | Check::Failover => unreachable!("settled by the fast check"),
            };
            let next = match verdict {
                None => conn,
                Some(verdict) => match self.follow(&node, verdict) {
                    None => return Ok(conn),
                    Some(upstream) => upstream?,
                },
            };
            match self.settle(next, true)? {
                Settle::Ready(conn) => return Ok(conn),
                Settle::Pending(next) => pending = next,
            }
        }
    }

    /// [`Engine::settle_read_fast`], then the slow check if needed, for a
    /// read-only transaction the routers send to `entry`.
    pub(crate) async fn settle_read_entry(&self, entry: Arc<ConnectionEntry>) -> Result<Arc<ConnectionEntry>> {
        let conn = match self.settle_read_fast(Connection::new(entry, None))? {
            Settle::Ready(conn) => conn,
            Settle::Pending(pending) => Box::pin(self.settle_read_slow(pending)).await?,
        };
        Ok(conn.entry().clone())
    }

    /// Counts `verdict`; `None` to stay on the replica, else its primary.
    fn follow(&self, node: &ReplicaNode, verdict: Verdict) -> Option<Result<Connection>> {
        let counters = &node.cluster.counters;
        match verdict {
            Verdict::AtOnce => counters.replica_caught_up.increment(),
            Verdict::Asked => counters.replica_after_asking.increment(),
            Verdict::Waited => counters.replica_after_waiting.increment(),
            Verdict::NotReplayed => {
                counters.primary_not_replayed.increment();
                return Some(self.upstream_of(node));
            }
            Verdict::Failover => {
                counters.primary_failover.increment();
                return Some(self.upstream_of(node));
            }
        }
        None
    }

    /// The replica's own primary.
    fn upstream_of(&self, node: &ReplicaNode) -> Result<Connection> {
        let registry = self.inner.registry.snapshot();
        registry
            .get(&node.upstream)
            .map(|entry| Connection::new(entry.clone(), None))
            .ok_or_else(|| registry.unknown(node.upstream, "a read redirected from its replica"))
    }

    /// The slow check: the replica's last known position is behind the
    /// read's (`own`: the task's writes, `token`: its scope's token).
    async fn catch_up(&self, node: &ReplicaNode, replica: &Connection, own: u64, mut token: u64) -> Result<Verdict> {
        let ask = || async {
            match tokio::time::timeout(ASK_TIMEOUT, positions::replayed(replica, &node.cluster)).await {
                Ok(Ok(lsn)) => {
                    node.set_replayed(lsn);
                    Some(lsn)
                }
                // What it has replayed is unknown, so the read cannot go
                // there. Unreachable (or too slow to say): unhealthy, so
                // that the next reads skip it under `ReplicaFailover::Primary`
                // until a measurement reaches it. Another error (it is not
                // a replica after all) is the measurement's to report.
                Ok(Err(error)) => {
                    if error.is_unreachable() {
                        replica.entry().stats().set_health(false);
                    }
                    None
                }
                Err(_) => {
                    replica.entry().stats().set_health(false);
                    None
                }
            }
        };
        let Some(replayed) = ask().await else {
            return Ok(Verdict::NotReplayed);
        };
        if replayed >= own.max(token) {
            return Ok(Verdict::Asked);
        }
        let cluster = &node.cluster;
        if token > replayed && token > cluster.known.load(Ordering::Acquire) {
            // Past every position this engine knows on the primary: ask it.
            // A position it has not reached was never issued by it.
            if let Some(primary) = self.inner.registry.snapshot().get(&cluster.primary).cloned() {
                let primary = Connection::new(primary, None);
                if let Ok(Ok((lsn, _))) =
                    tokio::time::timeout(ASK_TIMEOUT, positions::current(&primary, cluster, false)).await
                {
                    cluster.known.fetch_max(lsn, Ordering::AcqRel);
                }
            }
            let known = cluster.known.load(Ordering::Acquire);
            if token > known && known > 0 {
                let reason = format!(
                    "it names the position {}, which primary `{}` has not reached (it is at {}): \
                     it was not issued by this cluster as it is now (forged, or the cluster was restored from a backup)",
                    position_text(cluster, token),
                    cluster.primary,
                    position_text(cluster, known)
                );
                match self.read_your_writes().bad_token_policy() {
                    BadTokens::Refuse => return Err(Error::CausalToken { reason }),
                    BadTokens::Ignore => {
                        tracing::warn!("causal token ignored: {reason}");
                        token = 0;
                        if replayed >= own {
                            return Ok(Verdict::Asked);
                        }
                    }
                }
            }
        }
        let need = own.max(token);
        let wait = self.read_your_writes().max_wait();
        if wait.is_zero() {
            return Ok(Verdict::NotReplayed);
        }
        if cluster.kind == Kind::Gtid {
            return Ok(self.wait_for_gtid(node, replica, need, wait).await);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep_until((tokio::time::Instant::now() + pause).min(deadline)).await;
            pause = (pause * 2).min(MAX_POLL);
            match ask().await {
                Some(now) if now >= need => return Ok(Verdict::Waited),
                Some(_) => {}
                None => return Ok(Verdict::NotReplayed),
            }
        }
        Ok(Verdict::NotReplayed)
    }

    /// MariaDB: one `MASTER_GTID_WAIT` on the replica, for up to `wait`,
    /// instead of asking it over and over.
    async fn wait_for_gtid(&self, node: &ReplicaNode, replica: &Connection, need: u64, wait: Duration) -> Verdict {
        let id = node.cluster.system_id.get().copied().unwrap_or_default();
        let gtid = format!("{}-{}-{need}", gtid::domain_of(id), gtid::server_of(id));
        match tokio::time::timeout(wait + ASK_TIMEOUT, gtid::wait_for(replica, &gtid, wait)).await {
            Ok(Ok(true)) => {
                node.set_replayed(need);
                Verdict::Waited
            }
            Ok(Ok(false)) => Verdict::NotReplayed,
            Ok(Err(error)) => {
                if error.is_unreachable() {
                    replica.entry().stats().set_health(false);
                }
                Verdict::NotReplayed
            }
            Err(_) => {
                replica.entry().stats().set_health(false);
                Verdict::NotReplayed
            }
        }
    }

    /// Where a read that found replica `conn` unreachable runs again: its
    /// own primary, under [`ReplicaFailover::Primary`]; `None` otherwise
    /// (not a replica, or the policy is to fail).
    pub(crate) fn replica_failover_target(&self, conn: &Connection) -> Option<Result<Connection>> {
        if self.consistency().failover != ReplicaFailover::Primary {
            return None;
        }
        let Some(CausalRole::Replica(node)) = conn.entry().causal() else {
            return None;
        };
        node.cluster.counters.primary_failover.increment();
        Some(self.upstream_of(node))
    }

    /// Takes in a measurement of `replica`: its replayed position, the
    /// primary's, and whether it lags past its limit.
    pub(super) fn observe_replication(&self, replica: &ConnectionEntry, lag: &ReplicaLag) {
        let Some(CausalRole::Replica(node)) = replica.causal() else {
            return;
        };
        if let Some((upstream, replayed)) = lag.positions {
            node.set_replayed(replayed);
            if node.upstream == node.cluster.primary {
                node.cluster.known.fetch_max(upstream, Ordering::AcqRel);
            }
        }
        if !lag.is_known() {
            return;
        }
        let Some(since) = self.consistency().behind_since.get(&replica.name()) else {
            return;
        };
        let behind = lag.has_to_replay() != Some(false);
        let now = process_millis().max(1);
        if !behind {
            since.store(0, Ordering::Relaxed);
        } else if since.load(Ordering::Relaxed) == 0 {
            since.store(now, Ordering::Relaxed);
        }
        let Some(max) = node.max_lag else { return };
        // Behind by more than the limit, and for longer than it: on a
        // primary that was idle, the time since the last replayed
        // transaction is long although the replica is only a write behind.
        let behind_for = Duration::from_millis(now - since.load(Ordering::Relaxed).min(now));
        let time = match lag.time_behind {
            Some(time) => time,
            // Replication stopped (MySQL/MariaDB), or nothing replayed yet.
            None if lag.replay_paused == Some(true) => Duration::MAX,
            None => Duration::ZERO,
        };
        let over = behind && time > max && (lag.has_to_replay().is_none() || behind_for > max);
        if over != node.over_limit() {
            tracing::warn!(
                replica = %replica.name(),
                "replica {} its lag limit of {max:?}",
                if over { "is past" } else { "is back within" }
            );
        }
        node.set_over_limit(over);
    }
}

/// A position as its server writes it: PostgreSQL's WAL position `X/Y`,
/// MariaDB's GTID `domain-server-sequence`.
fn position_text(cluster: &Cluster, position: u64) -> String {
    match cluster.kind {
        Kind::Wal => format!("WAL {:X}/{:X}", position >> 32, position & 0xFFFF_FFFF),
        Kind::Gtid => {
            let id = cluster.system_id.get().copied().unwrap_or_default();
            format!("GTID {}-{}-{position}", gtid::domain_of(id), gtid::server_of(id))
        }
    }
}

/// A cluster's identity in a token, for an error.
fn identity_text(kind: Kind, id: u64) -> String {
    match kind {
        Kind::Wal => format!("PostgreSQL system identifier {id}"),
        Kind::Gtid => format!(
            "MariaDB primary of server id {}, GTID domain {}",
            gtid::server_of(id),
            gtid::domain_of(id)
        ),
    }
}
