//! A mixed load on a primary and its replica, for the failover tests of
//! every backend: one task writing, three reading, each statement counted
//! by where it ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dbroute::ConnectionName;

/// What the load runs: a routed write of row `id` (where it ran), and a
/// routed read of row `id` (whether it was there, whether it ran on the
/// replica).
pub(crate) trait Workload: Clone + Send + Sync + 'static {
    fn write(&self, id: i64) -> impl Future<Output = ConnectionName> + Send;
    fn read(&self, id: i64) -> impl Future<Output = dbroute::Result<(bool, bool)>> + Send;
}

/// The statements the load ran so far.
#[derive(Default)]
pub(crate) struct Counts {
    reads: AtomicU64,
    failed_reads: AtomicU64,
    on_replica: AtomicU64,
    writes: AtomicU64,
    writes_elsewhere: AtomicU64,
}

impl Counts {
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub(crate) fn on_replica(&self) -> u64 {
        self.on_replica.load(Ordering::Relaxed)
    }

    /// Every read answered and every write ran on the primary, and the
    /// writer wrote.
    pub(crate) fn assert_nothing_failed_or_misplaced(&self) {
        assert_eq!(self.failed_reads.load(Ordering::Relaxed), 0, "failed reads");
        assert_eq!(
            self.writes_elsewhere.load(Ordering::Relaxed),
            0,
            "writes not on the primary"
        );
        assert!(self.writes.load(Ordering::Relaxed) > 0, "no write ran");
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reads ({} on the replica), {} failed; {} writes, {} not on the primary",
            self.reads(),
            self.on_replica(),
            self.failed_reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
            self.writes_elsewhere.load(Ordering::Relaxed),
        )
    }
}

/// The running load.
pub(crate) struct MixedLoad {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MixedLoad {
    /// Starts one writer (new rows, on the primary always) and three
    /// readers (of row 0) on `work`.
    pub(crate) fn start(work: impl Workload) -> Self {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..4)
            .map(|worker| {
                let (work, counts, stop) = (work.clone(), counts.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut id = 1_000_001 + worker;
                    while !stop.load(Ordering::Relaxed) {
                        if worker == 0 {
                            let wrote_on = work.write(id).await;
                            counts.writes.fetch_add(1, Ordering::Relaxed);
                            if wrote_on != "primary" {
                                counts.writes_elsewhere.fetch_add(1, Ordering::Relaxed);
                            }
                            id += 1;
                            continue;
                        }
                        match work.read(0).await {
                            Ok((_, replica)) => {
                                counts.reads.fetch_add(1, Ordering::Relaxed);
                                if replica {
                                    counts.on_replica.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(error) => {
                                eprintln!("a read failed: {error}");
                                counts.failed_reads.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        MixedLoad { counts, stop, tasks }
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Waits until `done` holds of the counts; fails the test, saying
    /// `what`, if it does not within `within`.
    pub(crate) async fn wait_until(&self, what: &str, within: Duration, done: impl Fn(&Counts) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.counts) {
            assert!(Instant::now() < deadline, "{what}: not within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the load; what it ran.
    pub(crate) async fn stop(self) -> Arc<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.counts
    }
}
