//! What the engine knows of each replicated cluster, kept in atomics so
//! that a read's check costs a few loads: the position (PostgreSQL: WAL;
//! MariaDB: GTID sequence number in the primary's domain) each task last
//! wrote at, the highest position known to exist on the primary, and each
//! replica's last known replayed position, lag and state.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::Kind;
use crate::connection::url::Backend;
use crate::metrics::StripedCounter;
use crate::name::ConnectionName;

/// Slots of the table of tasks' last writes. Two tasks that share a slot
/// share its position (the higher one): a read may wait for a write that
/// is not its own, never the other way round.
const TASK_SLOTS: usize = 1024;

/// The highest WAL position written by each task, by task (hashed into
/// [`TASK_SLOTS`] slots; code outside any task shares slot 0).
pub(crate) struct TaskPositions {
    slots: Box<[AtomicU64]>,
}

impl Default for TaskPositions {
    fn default() -> Self {
        TaskPositions {
            slots: (0..TASK_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The current task's slot.
#[inline]
fn task_slot() -> usize {
    match tokio::task::try_id() {
        None => 0,
        Some(id) => {
            let hash = foldhash::fast::FixedState::with_seed(0x0064_6272_6f75_7465).hash_one(id);
            1 + (hash as usize) % (TASK_SLOTS - 1)
        }
    }
}

impl TaskPositions {
    /// The current task wrote at `lsn`.
    pub(crate) fn record(&self, lsn: u64) {
        self.slots[task_slot()].fetch_max(lsn, Ordering::AcqRel);
    }

    /// The highest position the current task wrote at (0: none).
    #[inline]
    pub(crate) fn current(&self) -> u64 {
        self.slots[task_slot()].load(Ordering::Acquire)
    }
}

/// One replicated cluster: a primary (the end of a chain of `replica_of`)
/// and every replica streaming from it, directly or not.
pub(crate) struct Cluster {
    /// The primary's registered name.
    pub(crate) primary: ConnectionName,
    /// Its backend.
    pub(crate) backend: Backend,
    /// What its positions count in.
    pub(crate) kind: Kind,
    /// Whether writes are followed (read-your-writes on).
    pub(crate) tracks_writes: bool,
    /// Set when its primary proved to have no MariaDB GTIDs (a MySQL
    /// server): its writes are no longer followed (said once, in the log).
    pub(crate) no_gtids: AtomicBool,
    /// Its identity in tokens, read once: PostgreSQL's
    /// `pg_control_system().system_identifier`; MariaDB's primary's
    /// `@@gtid_domain_id` (high 32 bits) and `@@server_id` (low ones).
    pub(crate) system_id: OnceCell<u64>,
    /// The highest WAL position known to exist on the primary (its writes
    /// through this engine, its measurements): what a token may name
    /// without the primary being asked.
    pub(crate) known: AtomicU64,
    /// Each task's last write.
    pub(crate) writes: TaskPositions,
    /// Where its replicas' reads went.
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("primary", &self.primary)
            .field("system_id", &self.system_id.get())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub(crate) fn new(primary: ConnectionName, backend: Backend, read_your_writes: bool) -> Self {
        Cluster {
            primary,
            backend,
            kind: if backend == Backend::Postgres {
                Kind::Wal
            } else {
                Kind::Gtid
            },
            tracks_writes: read_your_writes && backend != Backend::Sqlite,
            no_gtids: AtomicBool::new(false),
            system_id: OnceCell::new(),
            known: AtomicU64::new(0),
            writes: TaskPositions::default(),
            counters: Counters::default(),
        }
    }

    /// A write of the current task committed at `lsn`.
    pub(crate) fn record_write(&self, lsn: u64) {
        self.writes.record(lsn);
        self.known.fetch_max(lsn, Ordering::AcqRel);
    }
}

/// A declared replica.
pub(crate) struct ReplicaNode {
    /// The connection it was declared a replica of: where its reads may be
    /// redirected, and nowhere else.
    pub(crate) upstream: ConnectionName,
    pub(crate) cluster: Arc<Cluster>,
    /// Past this lag, reads skip it.
    pub(crate) max_lag: Option<Duration>,
    /// Its last known replayed WAL position (measured, or asked by a read).
    /// Stored, not maximised: a replica rebuilt from an older backup must
    /// not keep a position it no longer has.
    replayed: AtomicU64,
    /// Its last measurement put it beyond `max_lag`.
    over_limit: AtomicBool,
}

impl ReplicaNode {
    pub(crate) fn new(upstream: ConnectionName, cluster: Arc<Cluster>, max_lag: Option<Duration>) -> Self {
        ReplicaNode {
            upstream,
            cluster,
            max_lag,
            replayed: AtomicU64::new(0),
            over_limit: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn replayed(&self) -> u64 {
        self.replayed.load(Ordering::Acquire)
    }

    pub(crate) fn set_replayed(&self, lsn: u64) {
        self.replayed.store(lsn, Ordering::Release);
    }

    #[inline]
    pub(crate) fn over_limit(&self) -> bool {
        self.over_limit.load(Ordering::Relaxed)
    }

    pub(crate) fn set_over_limit(&self, over: bool) {
        self.over_limit.store(over, Ordering::Relaxed);
    }
}

/// What a connection is to read-your-writes and failover.
#[derive(Clone)]
pub(crate) enum CausalRole {
    /// A cluster's primary: its writes are followed.
    Primary(Arc<Cluster>),
    /// A replica: its reads are checked.
    Replica(Arc<ReplicaNode>),
}

/// Where reads went, counted (see [`ConsistencyCounts`](crate::stats::ConsistencyCounts)).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) replica_caught_up: StripedCounter,
    pub(crate) replica_after_asking: StripedCounter,
    pub(crate) replica_after_waiting: StripedCounter,
    pub(crate) primary_not_replayed: StripedCounter,
    pub(crate) primary_failover: StripedCounter,
    pub(crate) writes_tracked: StripedCounter,
    pub(crate) positions_lost: StripedCounter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_keep_their_own_positions() {
        let positions = Arc::new(TaskPositions::default());
        let p = positions.clone();
        tokio::spawn(async move { p.record(100) }).await.unwrap();
        let p = positions.clone();
        let (mine, later) = tokio::spawn(async move {
            let before = p.current();
            p.record(50);
            p.record(40);
            (before, p.current())
        })
        .await
        .unwrap();
        // Another task's write is not this one's (unless they share a slot,
        // and then the higher position is kept).
        assert!(mine == 0 || mine == 100, "{mine}");
        assert!(later >= 50, "{later}");
        // Outside any task: slot 0.
        assert_eq!(task_slot(), 0);
    }
}
