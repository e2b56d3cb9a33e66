//! Read-your-writes, causal tokens and replica failover, against a real
//! PostgreSQL primary and streaming replica (`replica_server.rs`). Lag is
//! made by pausing the replica's replay, never by sleeping; every read
//! says where it ran (`pg_is_in_recovery()` in its own row).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dbroute::causal::{self, BadTokens, ReadYourWrites, ReplicaFailover};
use dbroute::router::{Fault, HostRouter, RouteDecision, RouteRequest, RouterIdentity};
use dbroute::{CausalToken, ConnectionName, Engine, Error, ModelInfo, PoolSettings, params};

use crate::mixed_load::{MixedLoad, Workload};
use crate::replica_server::ReplicaCluster;
use crate::support::TestDb;

/// A bound on what a test waits for: reached only when it fails.
const WITHIN: Duration = Duration::from_secs(30);

static ITEM: std::sync::LazyLock<ModelInfo> = std::sync::LazyLock::new(|| ModelInfo::new("Item"));

/// Reads to `replica`, writes to the default connection: the router every
/// replica setup has.
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

/// An engine on the cluster: `primary` (the default), `replica`, the
/// router above, lag measured only when asked, and `configure`'s policies.
async fn engine(
    cluster: &ReplicaCluster,
    configure: impl FnOnce(dbroute::EngineBuilder) -> dbroute::EngineBuilder,
) -> Engine {
    configure(
        Engine::builder()
            .connection("primary", cluster.primary_url("postgres"))
            .connection("replica", cluster.replica_url("postgres"))
            .replica_of("replica", "primary")
            .replication_check_every(Duration::ZERO)
            .add_router(ReadsToReplica),
    )
    .build()
    .await
    .unwrap()
}

/// Writes row `id` through the router; where it ran.
async fn write(engine: &Engine, id: i64) -> ConnectionName {
    engine
        .write_model(&ITEM)
        .execute("INSERT INTO items (id) VALUES ($1)", &params![id])
        .await
        .unwrap()
        .connection
}

/// Reads row `id` through the router: whether it was there, and whether
/// the read ran on the replica.
async fn read(engine: &Engine, id: i64) -> dbroute::Result<(bool, bool)> {
    let row = engine
        .read_model(&ITEM)
        .fetch_one(
            "SELECT count(*) AS n, pg_is_in_recovery() AS on_replica FROM items WHERE id = $1",
            &params![id],
        )
        .await?;
    Ok((row.get::<i64, _>("n") == 1, row.get("on_replica")))
}

/// Runs `work` in a task of its own (a request), and returns its output.
async fn in_task<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(work).await.unwrap()
}

/// Waits until the replica shows row `id` (read there directly).
async fn replicated(engine: &Engine, id: i64) {
    let replica = engine.connection("replica").unwrap();
    let deadline = Instant::now() + WITHIN;
    loop {
        let n: i64 = replica
            .fetch_one("SELECT count(*) AS n FROM items WHERE id = $1", &params![id])
            .await
            .map(|r| r.get("n"))
            .unwrap_or(0);
        if n == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "row {id} not on the replica within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A token like `token`, its first WAL position moved by `by`, its checksum
/// made right again: what a client forging a token would send (the format
/// is documented in docs/replicas.md).
fn forged(token: &CausalToken, by: i64) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token.to_string()).unwrap();
    let lsn = u64::from_be_bytes(bytes[10..18].try_into().unwrap());
    bytes[10..18].copy_from_slice(&lsn.wrapping_add_signed(by).to_be_bytes());
    let body = bytes.len() - 4;
    let sum = bytes[..body]
        .iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    bytes[body..].copy_from_slice(&sum.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The whole story of read-your-writes on one cluster, in steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_their_writes_and_tokens_carry_them_to_another_instance() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let a = Arc::new(engine(&cluster, |b| b).await);
    let primary = a.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    write(&a, 0).await;
    replicated(&a, 0).await;

    // 1. Replay paused: a write, then a read in the same task, returns the
    //    row, from the primary; the write went to the primary.
    cluster.pause_replay().await;
    let e = a.clone();
    let (wrote_on, seen, token) = in_task(async move {
        let wrote_on = write(&e, 1).await;
        (wrote_on, read(&e, 1).await.unwrap(), e.causal_token())
    })
    .await;
    assert_eq!(wrote_on, "primary");
    assert_eq!(seen, (true, false), "the write's row, read on the primary");
    let token = token.expect("a token after a write on a primary with a replica");
    // A task that wrote nothing reads from the replica, and does not see
    // the row: read-your-writes is per task, not "everything to the primary".
    let e = a.clone();
    assert_eq!(in_task(async move { read(&e, 1).await.unwrap() }).await, (false, true));
    // The same inside a committed transaction.
    let e = a.clone();
    let seen = in_task(async move {
        e.transaction()
            .run(|_| {
                let e = e.clone();
                async move { e.write_model(&ITEM).execute("INSERT INTO items VALUES (2)", &[]).await }
            })
            .await
            .unwrap();
        let read_only = e.transaction().for_read_model(&ITEM).begin().await.unwrap();
        let in_tx = read_only
            .connection()
            .fetch_one("SELECT count(*) AS n FROM items WHERE id = 2", &[])
            .await
            .unwrap()
            .get::<i64, _>("n");
        read_only.rollback().await.unwrap();
        (read(&e, 2).await.unwrap(), in_tx)
    })
    .await;
    // A read, and a read-only transaction the router sends to the replica.
    assert_eq!(seen, ((true, false), 1));

    // 2. Read-your-writes off: the same write then read is stale, from the
    //    replica (so step 1 can fail).
    let off = Arc::new(engine(&cluster, |b| b.read_your_writes(ReadYourWrites::off())).await);
    let e = off.clone();
    let (seen, token_off) = in_task(async move {
        write(&e, 3).await;
        (read(&e, 3).await.unwrap(), e.causal_token())
    })
    .await;
    assert_eq!(seen, (false, true), "off: the stale read");
    assert_eq!(token_off, None);
    assert_eq!(off.accept_token(&token.to_string()).await.unwrap(), None);

    // 3. Another instance: a second engine honours the token, reading
    //    through the same replica. Without it, the stale replica.
    let b = Arc::new(engine(&cluster, |b| b).await);
    let text = token.to_string();
    assert!(text.len() <= 40, "{text}");
    let accepted = b.accept_token(&text).await.unwrap().expect("a valid token");
    assert_eq!(accepted, token);
    let e = b.clone();
    let with_token =
        in_task(async move { causal::scope(Some(accepted), async { read(&e, 1).await.unwrap() }).await }).await;
    assert_eq!(with_token, (true, false), "the token's write, read on the primary");
    let e = b.clone();
    assert_eq!(in_task(async move { read(&e, 1).await.unwrap() }).await, (false, true));
    // A write in a scope with a token goes where the router says.
    let e = b.clone();
    let scoped = b.accept_token(&text).await.unwrap();
    let wrote_on = in_task(async move { causal::scope(scoped, write(&e, 4)).await }).await;
    assert_eq!(wrote_on, "primary");

    // 4. Replay resumed: once the replica has replayed the token's
    //    position, the token's reads stay on the replica.
    cluster.resume_replay().await;
    replicated(&b, 4).await;
    let e = b.clone();
    let scoped = b.accept_token(&text).await.unwrap();
    let caught_up = in_task(async move { causal::scope(scoped, async { read(&e, 1).await.unwrap() }).await }).await;
    assert_eq!(
        caught_up,
        (true, true),
        "the token's write, read on the caught-up replica"
    );
    let counts = b.consistency_counts();
    assert!(
        counts.primary_not_replayed >= 1 && counts.replica_reads() >= 1,
        "{counts:?}"
    );

    // 5. Bad tokens: a clear error, never a panic.
    let refused = |result: dbroute::Result<Option<CausalToken>>| match result {
        Err(Error::CausalToken { reason }) => reason,
        other => panic!("expected a refused token, got {other:?}"),
    };
    assert!(refused(b.accept_token("").await).contains("empty"));
    assert!(refused(b.accept_token("not a token").await).contains("not a token"));
    assert!(refused(b.accept_token(&text[..text.len() - 3]).await).contains("cut short"));
    let mut altered = text.clone().into_bytes();
    altered[8] = if altered[8] == b'x' { b'y' } else { b'x' };
    let altered = String::from_utf8(altered).unwrap();
    let reason = refused(b.accept_token(&altered).await);
    assert!(
        reason.contains("damaged or altered") || reason.contains("cut short"),
        "{reason}"
    );
    let message = b.accept_token("not a token").await.unwrap_err().to_string();
    assert!(message.contains("send back, unchanged"), "{message}");
    // A token of another cluster: the shared test server's.
    let other_db = TestDb::postgres().await;
    let other = Engine::builder()
        .connection("default", &other_db.url)
        // Never connected to: declared so that writes on `default` are followed.
        .connection_with("copy", &other_db.url, PoolSettings::new().lazy(true))
        .replica_of("copy", "default")
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let other_token = in_task({
        let other = other.clone();
        async move {
            other
                .write_model(&ITEM)
                .execute("CREATE TABLE t (x INT)", &[])
                .await
                .unwrap();
            other.causal_token().unwrap()
        }
    })
    .await;
    let reason = refused(b.accept_token(&other_token.to_string()).await);
    assert!(reason.contains("another database cluster"), "{reason}");
    other.close().await;
    // A forged position, past what the primary has written: accepted (its
    // form is right), refused when a read needs it, and never a panic.
    let forged_text = forged(&token, 1 << 40);
    let forged_token = b.accept_token(&forged_text).await.unwrap();
    let e = b.clone();
    let result = in_task(async move { causal::scope(forged_token, read(&e, 1)).await }).await;
    let reason = match result {
        Err(Error::CausalToken { reason }) => reason,
        other => panic!("a forged token's read: {other:?}"),
    };
    assert!(reason.contains("has not reached"), "{reason}");
    // A position moved back is harmless: as an older token.
    let older = b.accept_token(&forged(&token, -1)).await.unwrap();
    let e = b.clone();
    assert!(
        in_task(async move { causal::scope(older, read(&e, 1)).await })
            .await
            .unwrap()
            .0
    );

    // 6. Bad tokens ignored, when the engine says so: the read runs as
    //    without a token, and writes still go to the primary.
    let lenient = Arc::new(
        engine(&cluster, |b| {
            b.read_your_writes(ReadYourWrites::on().bad_tokens(BadTokens::Ignore))
        })
        .await,
    );
    assert_eq!(lenient.accept_token("not a token").await.unwrap(), None);
    assert_eq!(lenient.accept_token(&other_token.to_string()).await.unwrap(), None);
    let forged_token = lenient.accept_token(&forged_text).await.unwrap();
    let e = lenient.clone();
    let (seen, wrote_on) = in_task(async move {
        causal::scope(forged_token, async { (read(&e, 1).await.unwrap(), write(&e, 5).await) }).await
    })
    .await;
    assert_eq!((seen, wrote_on), ((true, true), "primary".parse().unwrap()));

    for engine in [a, b, off, lenient] {
        engine.close().await;
    }
}

/// 1,000 write→read pairs, eight at a time, while another task keeps
/// writing on the primary: no read misses its write. Reports where the
/// reads ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_write_read_pairs_under_write_load_see_every_write() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let engine = Arc::new(
        engine(&cluster, |b| {
            b.read_your_writes(ReadYourWrites::on().wait(Duration::from_millis(20)))
                .replication_check_every(Duration::from_millis(100))
        })
        .await,
    );
    let primary = engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    primary.execute("CREATE TABLE noise (x BIGINT)", &[]).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let noise = tokio::spawn({
        let (primary, stop) = (primary.clone(), stop.clone());
        async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                primary
                    .execute("INSERT INTO noise SELECT generate_series(1, 20)", &[])
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }
    });

    const PAIRS: i64 = 1000;
    let (stale, on_replica) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (engine, stale, on_replica) = (engine.clone(), stale.clone(), on_replica.clone());
            tokio::spawn(async move {
                for id in (worker..PAIRS).step_by(8) {
                    // Each pair a request: a task of its own.
                    let e = engine.clone();
                    let (seen, replica) = in_task(async move {
                        write(&e, id).await;
                        read(&e, id).await.unwrap()
                    })
                    .await;
                    if !seen {
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                    if replica {
                        on_replica.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let noise_writes = noise.await.unwrap();
    let counts = engine.consistency_counts();
    let on_replica = on_replica.load(Ordering::Relaxed);
    eprintln!(
        "{PAIRS} write→read pairs in {:?} with {noise_writes} other writes meanwhile: \
         {} stale, {on_replica} reads served by the replica, {} by the primary; {counts:?}",
        started.elapsed(),
        stale.load(Ordering::Relaxed),
        PAIRS as u64 - on_replica,
    );
    assert_eq!(stale.load(Ordering::Relaxed), 0);
    assert_eq!(
        counts.replica_reads() + counts.primary_reads(),
        PAIRS as u64,
        "{counts:?}"
    );
    assert_eq!(counts.replica_reads(), on_replica, "{counts:?}");
    assert_eq!(counts.writes_followed, PAIRS as u64, "{counts:?}");
    engine.close().await;
}

/// A replica killed under load and started again: under the failover
/// policy no read fails, every write lands on the primary, and the
/// replica serves reads again after its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_skipped_then_used_again_after_its_restart() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let engine = Arc::new(
        Engine::builder()
            .connection("primary", cluster.primary_url("postgres"))
            .connection_with(
                "replica",
                cluster.replica_url("postgres"),
                // A dead replica's new connections are refused; the pool
                // would retry them for this long.
                PoolSettings::new().acquire_timeout(Duration::from_secs(2)),
            )
            .replica_of("replica", "primary")
            .replication_check_every(Duration::from_millis(100))
            .replica_failover(ReplicaFailover::Primary)
            .add_router(ReadsToReplica)
            .build()
            .await
            .unwrap(),
    );
    let primary = engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    write(&engine, 0).await;
    replicated(&engine, 0).await;

    let load = MixedLoad::start(engine.clone());
    let before = load.counts().on_replica();
    load.wait_until("reads on the replica", WITHIN, |c| c.on_replica() > before + 50)
        .await;

    cluster.kill_replica();
    // Reads go on, on the primary.
    let killed_at = load.counts().reads();
    load.wait_until("reads while the replica is down", WITHIN, |c| {
        c.reads() > killed_at + 200
    })
    .await;
    let down = engine.status().into_iter().find(|s| s.name == "replica").unwrap();
    assert_eq!(down.health, dbroute::stats::Health::Unhealthy);

    cluster.restart_replica();
    let restarted_at = load.counts().on_replica();
    load.wait_until("reads on the replica after its restart", WITHIN, |c| {
        c.on_replica() > restarted_at + 50
    })
    .await;
    let ran = load.stop().await;
    let counts = engine.consistency_counts();
    eprintln!("killed replica under load: {ran}; {counts:?}");
    ran.assert_nothing_failed_or_misplaced();
    assert!(counts.primary_failover > 0, "{counts:?}");
    engine.close().await;
}

/// The primary down: once the engine knows it (a lag measurement could
/// not reach it), a write fails fast, naming the connection, and is never
/// sent to the replica; reads go on from the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_fast_when_the_primary_is_down_and_go_nowhere_else() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let engine = Arc::new(
        engine(&cluster, |b| {
            b.replica_failover(ReplicaFailover::Primary)
                .replication_check_every(Duration::from_millis(100))
        })
        .await,
    );
    let primary = engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    write(&engine, 1).await;
    replicated(&engine, 1).await;
    cluster.kill_primary();
    let deadline = Instant::now() + WITHIN;
    while engine.status()[0].health != dbroute::stats::Health::Unhealthy {
        assert!(
            Instant::now() < deadline,
            "the primary not found down within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each write fails at once (no waiting for the pool's 10 s acquire
    // timeout), naming the connection.
    for id in 2..5 {
        let attempt = Instant::now();
        let error = write_error(&engine, id).await;
        assert!(error.contains("`primary`"), "{error}");
        assert!(
            attempt.elapsed() < Duration::from_secs(3),
            "{:?}: {error}",
            attempt.elapsed()
        );
    }
    let attempt = Instant::now();
    let tx = engine.transaction().begin().await.unwrap_err().to_string();
    assert!(tx.contains("`primary`"), "{tx}");
    assert!(
        attempt.elapsed() < Duration::from_secs(3),
        "{:?}: {tx}",
        attempt.elapsed()
    );
    // Reads, in another task, go on from the replica.
    let e = engine.clone();
    assert_eq!(in_task(async move { read(&e, 1).await.unwrap() }).await, (true, true));
    engine.close().await;
}

async fn write_error(engine: &Engine, id: i64) -> String {
    engine
        .write_model(&ITEM)
        .execute("INSERT INTO items (id) VALUES ($1)", &params![id])
        .await
        .unwrap_err()
        .to_string()
}

/// A replica past its lag limit is skipped for reads (to its primary, or
/// an error, as the policy says), and used again once a measurement finds
/// it back within the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_past_its_lag_limit_is_skipped_until_it_catches_up() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    const LIMIT: Duration = Duration::from_millis(200);
    let limited =
        |policy| move |b: dbroute::EngineBuilder| b.replica_max_lag("replica", LIMIT).replica_failover(policy);
    let to_primary = Arc::new(engine(&cluster, limited(ReplicaFailover::Primary)).await);
    let failing = Arc::new(engine(&cluster, limited(ReplicaFailover::Fail)).await);
    let primary = to_primary.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    write(&to_primary, 1).await;
    replicated(&to_primary, 1).await;
    // Reads in tasks that wrote nothing: only the lag limit can move them.
    let reads = |engine: &Arc<Engine>| {
        let e = engine.clone();
        in_task(async move { read(&e, 2).await })
    };
    let measure = |engine: &Arc<Engine>| {
        let e = engine.clone();
        async move { e.measure_replication(Duration::from_secs(5)).await.remove(0) }
    };

    // Behind, but not for longer than the limit yet: still used.
    cluster.pause_replay().await;
    write(&to_primary, 2).await;
    for engine in [&to_primary, &failing] {
        let lag = measure(engine).await;
        assert!(lag.bytes_behind.unwrap() > 0, "{lag:?}");
        assert_eq!(reads(engine).await.unwrap(), (false, true));
    }
    // Behind for longer than the limit: skipped.
    tokio::time::sleep(LIMIT * 2).await;
    for engine in [&to_primary, &failing] {
        let lag = measure(engine).await;
        assert!(lag.time_behind.unwrap() > LIMIT, "{lag:?}");
    }
    assert_eq!(reads(&to_primary).await.unwrap(), (true, false), "on the primary");
    assert!(to_primary.consistency_counts().primary_failover >= 1);
    match reads(&failing).await {
        Err(Error::ReplicaUnavailable {
            replica,
            primary,
            reason,
        }) => {
            assert_eq!((replica.as_str(), primary.as_str()), ("replica", "primary"));
            assert!(reason.contains("lags past its limit of 200ms"), "{reason}");
        }
        other => panic!("expected the replica refused, got {other:?}"),
    }
    // Caught up: used again, without a restart.
    cluster.resume_replay().await;
    replicated(&to_primary, 2).await;
    for engine in [&to_primary, &failing] {
        let lag = measure(engine).await;
        assert_eq!(lag.bytes_behind, Some(0), "{lag:?}");
        assert_eq!(reads(engine).await.unwrap(), (true, true), "back on the replica");
    }
    to_primary.close().await;
    failing.close().await;
}

impl Workload for Arc<Engine> {
    fn write(&self, id: i64) -> impl Future<Output = ConnectionName> + Send {
        write(self, id)
    }

    fn read(&self, id: i64) -> impl Future<Output = dbroute::Result<(bool, bool)>> + Send {
        read(self, id)
    }
}
