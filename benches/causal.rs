//! What read-your-writes costs: a write with its WAL position read (and
//! its token made) against a plain write; the check of a read that carries
//! a token when the replica has caught up (no round trip); and the share
//! of reads kept on the replica under a steady write load, tokens on.
//!
//! Run: `cargo bench -p dbroute --bench causal` (PostgreSQL on
//! 127.0.0.1:5432, and PostgreSQL's server binaries to start a primary
//! and a streaming replica of the bench's own; without them the replica
//! cases are skipped). Results go in BENCHMARKS.md.

// The test servers' helpers, shared with the integration tests.
#[allow(dead_code)]
#[path = "../tests/integration/pg_server.rs"]
mod pg_server;
#[allow(dead_code)]
#[path = "../tests/integration/replica_server.rs"]
mod replica_server;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dbroute::causal::{self, ReadYourWrites};
use dbroute::router::{Fault, HostRouter, RouteDecision, RouteRequest, RouterIdentity};
use dbroute::{ConnectionName, Engine, ModelInfo, PoolSettings, params};
use tokio::runtime::Runtime;

const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/test";

static ITEM: std::sync::LazyLock<ModelInfo> = std::sync::LazyLock::new(|| ModelInfo::new("Item"));

/// Reads to `replica`, writes to the default connection.
#[derive(Debug)]
struct ReadsToReplica;

impl HostRouter for ReadsToReplica {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("reads-to-replica")
    }
    fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::Use(ConnectionName::from_static("replica")))
    }
    fn db_for_write(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::Use(ConnectionName::DEFAULT))
    }
}

/// The cost of a write on a primary with a replica, read-your-writes off
/// and on (its position read: one more round trip), and of making the
/// token afterwards. The "replica" is declared but never used: the
/// local server alone.
fn token_after_commit(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let table = format!("causal_bench_{}", std::process::id());
    let engine = |policy: ReadYourWrites| {
        rt.block_on(
            Engine::builder()
                .connection("default", LOCAL)
                .connection_with("replica", LOCAL, PoolSettings::new().lazy(true))
                .replica_of("replica", "default")
                .replication_check_every(Duration::ZERO)
                .read_your_writes(policy)
                .build(),
        )
        .expect("PostgreSQL on 127.0.0.1:5432")
    };
    let (off, on) = (engine(ReadYourWrites::off()), engine(ReadYourWrites::on()));
    let sql = dbroute::sqlx::AssertSqlSafe(format!("CREATE UNLOGGED TABLE IF NOT EXISTS {table} (x BIGINT)"));
    rt.block_on(off.connection("default").unwrap().execute(sql, &[]))
        .unwrap();
    // A `&'static str` is safe SQL to sqlx; the table's name is the bench's.
    let insert: &'static str = Box::leak(format!("INSERT INTO {table} VALUES ($1)").into_boxed_str());
    // One write, so that a token exists whichever benchmarks a filter runs.
    rt.block_on(on.write_model(&ITEM).execute(insert, &params![1])).unwrap();
    let mut group = c.benchmark_group("causal/write");
    group.bench_function("ryw_off", |b| {
        b.to_async(&rt)
            .iter(|| async { off.write_model(&ITEM).execute(insert, &params![1]).await.unwrap() })
    });
    group.bench_function("ryw_on_with_token", |b| {
        b.to_async(&rt).iter(|| async {
            on.write_model(&ITEM).execute(insert, &params![1]).await.unwrap();
            black_box(on.causal_token().unwrap())
        })
    });
    group.finish();
    // Making the token alone, after a write (no round trip).
    c.bench_function("causal/token/make", |b| {
        b.iter(|| black_box(on.causal_token().unwrap()))
    });
    let token = on.causal_token().unwrap().to_string();
    c.bench_function("causal/token/accept", |b| {
        b.to_async(&rt)
            .iter(|| async { on.accept_token(black_box(&token)).await.unwrap() })
    });
    let drop = dbroute::sqlx::AssertSqlSafe(format!("DROP TABLE {table}"));
    rt.block_on(off.connection("default").unwrap().execute(drop, &[]))
        .unwrap();
    rt.block_on(async {
        off.close().await;
        on.close().await;
    });
}

/// An engine on the bench's own primary and replica.
fn replica_engine(rt: &Runtime, cluster: &replica_server::ReplicaCluster, policy: ReadYourWrites) -> Engine {
    rt.block_on(
        Engine::builder()
            .connection("primary", cluster.primary_url("postgres"))
            .connection("replica", cluster.replica_url("postgres"))
            .replica_of("replica", "primary")
            .read_your_writes(policy)
            .add_router(ReadsToReplica)
            .build(),
    )
    .unwrap()
}

/// Against a real replica: the check of a read carrying a token the
/// replica has replayed (resolution alone: no statement, no round trip),
/// against the same read without a token and with read-your-writes off;
/// then the share of token-carrying reads kept on the replica while
/// another task writes steadily.
fn against_a_replica(c: &mut Criterion) {
    if std::env::var_os("DBROUTE_PG_BIN").is_none() && !std::path::Path::new("/usr/lib/postgresql").is_dir() {
        eprintln!("causal/check: skipped (no PostgreSQL server binaries to start a replica)");
        return;
    }
    let rt = Runtime::new().unwrap();
    let cluster = replica_server::ReplicaCluster::start();
    rt.block_on(cluster.wait_until_streaming());
    let on = replica_engine(&rt, &cluster, ReadYourWrites::on());
    let off = replica_engine(&rt, &cluster, ReadYourWrites::off());
    let primary = on.connection("primary").unwrap();
    rt.block_on(primary.execute("CREATE TABLE items (id BIGINT)", &[]))
        .unwrap();
    // A token from a write in a task, then the replica measured past it.
    let token = rt.block_on(async {
        let writer = on.clone();
        tokio::spawn(async move {
            writer
                .write_model(&ITEM)
                .execute("INSERT INTO items VALUES (1)", &[])
                .await
                .unwrap();
            writer.causal_token().unwrap()
        })
        .await
        .unwrap()
    });
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while on.measure_replication(Duration::from_secs(2)).await[0].bytes_behind != Some(0) {
            assert!(Instant::now() < deadline, "the replica did not catch up");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut group = c.benchmark_group("causal/check");
    let read = |engine: &Engine| engine.read_model(&ITEM).connection().unwrap();
    rt.block_on(causal::scope(Some(token.clone()), async {
        assert_eq!(read(&on).name(), "replica", "a caught-up replica keeps the read");
        group.bench_function("token_caught_up", |b| b.iter(|| black_box(read(&on))));
    }));
    group.bench_function("no_token", |b| b.iter(|| black_box(read(&on))));
    group.bench_function("ryw_off", |b| b.iter(|| black_box(read(&off))));
    group.finish();

    // The share kept on the replica: a writer task writes steadily and
    // hands out its latest token; readers (another instance) read with it.
    for wait in [Duration::ZERO, Duration::from_millis(5)] {
        let writer = replica_engine(&rt, &cluster, ReadYourWrites::on());
        let reader = replica_engine(&rt, &cluster, ReadYourWrites::on().wait(wait));
        let latest = Arc::new(std::sync::Mutex::new(token.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let load = rt.spawn({
            let (writer, latest, stop) = (writer.clone(), latest.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    writer
                        .write_model(&ITEM)
                        .execute("INSERT INTO items VALUES (2)", &[])
                        .await
                        .unwrap();
                    *latest.lock().unwrap() = writer.causal_token().unwrap();
                }
            }
        });
        let before = reader.consistency_counts();
        let name = format!("token_read_under_writes/wait_{}ms", wait.as_millis());
        c.bench_function(&format!("causal/share/{name}"), |b| {
            b.to_async(&rt).iter(|| {
                let token = latest.lock().unwrap().clone();
                let reader = reader.clone();
                // Each read a request of its own, on another instance.
                causal::scope(Some(token), async move {
                    reader
                        .read_model(&ITEM)
                        .fetch_one("SELECT 1 AS one", &[])
                        .await
                        .unwrap()
                })
            })
        });
        stop.store(true, Ordering::Relaxed);
        rt.block_on(load).unwrap();
        let after = reader.consistency_counts();
        let (replica, primary) = (
            after.replica_reads() - before.replica_reads(),
            after.primary_reads() - before.primary_reads(),
        );
        eprintln!(
            "causal/share/{name}: {replica} reads on the replica, {primary} on the primary: {:.1}% kept on the replica",
            100.0 * replica as f64 / (replica + primary).max(1) as f64
        );
        rt.block_on(async {
            writer.close().await;
            reader.close().await;
        });
    }
    rt.block_on(async {
        on.close().await;
        off.close().await;
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = token_after_commit, against_a_replica
}
criterion_main!(benches);
