//! Replicas on MariaDB, against a real primary and a replica of it
//! replicating by GTID (`mariadb_replica_server.rs`): lag measured, and
//! read-your-writes, causal tokens and failover by GTID. Lag is made by
//! stopping the replica's SQL thread, never by sleeping; every read says
//! where it ran (`@@server_id` in its own row: 1 the primary, 2 the
//! replica).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dbroute::causal::{self, BadTokens, ReadYourWrites, ReplicaFailover};
use dbroute::router::{Fault, HostRouter, RouteDecision, RouteRequest, RouterIdentity};
use dbroute::{CausalToken, ConnectionName, Engine, Error, ModelInfo, PoolSettings, params};

use crate::mariadb_replica_server::MariaDbPair;
use crate::mixed_load::{MixedLoad, Workload};
use crate::support::TestDb;

/// The replica's lag, measured with its SQL thread stopped: behind by the
/// transactions committed since, applying stopped, shown in
/// `Engine::status()`; then caught up once it applies again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_measured_by_gtid_with_the_sql_thread_stopped() {
    let pair = MariaDbPair::start().await;
    let engine = Engine::builder()
        .connection("primary", pair.primary_url("test"))
        .connection("replica", pair.replica_url("test"))
        .replica_of("replica", "primary")
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let primary = engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    pair.wait_until_caught_up().await;

    let lag = engine.measure_replication(Duration::from_secs(5)).await.remove(0);
    assert!(lag.is_known(), "{lag:?}");
    assert_eq!(lag.transactions_behind, Some(0), "{lag:?}");
    assert_eq!(lag.replay_paused, Some(false), "{lag:?}");
    // Seconds_Behind_Master: 0 when idle and caught up (a loaded machine
    // may show a second or two).
    assert!(lag.time_behind.is_some_and(|t| t <= Duration::from_secs(2)), "{lag:?}");

    pair.stop_applying().await;
    for id in 1..=3 {
        primary
            .execute("INSERT INTO items (id) VALUES (?)", &dbroute::params![id])
            .await
            .unwrap();
    }
    let lag = engine.measure_replication(Duration::from_secs(5)).await.remove(0);
    assert!(lag.is_known(), "{lag:?}");
    assert_eq!(lag.transactions_behind, Some(3), "{lag:?}");
    assert_eq!(lag.replay_paused, Some(true), "{lag:?}");
    // Seconds_Behind_Master is NULL while the SQL thread is stopped.
    assert_eq!(lag.time_behind, None, "{lag:?}");
    let status = engine.status();
    let replica = status.iter().find(|s| s.name == "replica").unwrap();
    assert_eq!(replica.replication.as_ref(), Some(&lag), "{replica:?}");

    pair.start_applying().await;
    pair.wait_until_caught_up().await;
    let lag = engine.measure_replication(Duration::from_secs(5)).await.remove(0);
    assert_eq!(lag.transactions_behind, Some(0), "{lag:?}");
    assert_eq!(lag.replay_paused, Some(false), "{lag:?}");
    engine.close().await;
}

static ITEM: std::sync::LazyLock<ModelInfo> = std::sync::LazyLock::new(|| ModelInfo::new("Item"));

/// A bound on what a test waits for: reached only when it fails.
const WITHIN: Duration = Duration::from_secs(30);

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

/// The pair as seen by one engine: `primary` (the default), `replica`,
/// the router above, lag measured only when asked, and `configure`'s
/// policies.
struct Setup {
    engine: Engine,
    replica_id: i64,
}

async fn engine(
    pair: &MariaDbPair,
    configure: impl FnOnce(dbroute::EngineBuilder) -> dbroute::EngineBuilder,
) -> Arc<Setup> {
    engine_with(pair, PoolSettings::new(), configure).await
}

/// [`engine`], the replica's pool made with `replica_pool`.
async fn engine_with(
    pair: &MariaDbPair,
    replica_pool: PoolSettings,
    configure: impl FnOnce(dbroute::EngineBuilder) -> dbroute::EngineBuilder,
) -> Arc<Setup> {
    let engine = configure(
        Engine::builder()
            .connection("primary", pair.primary_url("test"))
            .connection_with("replica", pair.replica_url("test"), replica_pool)
            .replica_of("replica", "primary")
            .replication_check_every(Duration::ZERO)
            .add_router(ReadsToReplica),
    )
    .build()
    .await
    .unwrap();
    Arc::new(Setup {
        engine,
        replica_id: i64::from(pair.replica_server_id()),
    })
}

impl Setup {
    /// Writes row `id` through the router; where it ran.
    async fn write(&self, id: i64) -> ConnectionName {
        self.engine
            .write_model(&ITEM)
            .execute("INSERT INTO items (id) VALUES (?)", &params![id])
            .await
            .unwrap()
            .connection
    }

    /// Reads row `id` through the router: whether it was there, and
    /// whether the read ran on the replica (by the server id it returns).
    async fn read(&self, id: i64) -> dbroute::Result<(bool, bool)> {
        let row = self
            .engine
            .read_model(&ITEM)
            .fetch_one(
                "SELECT COUNT(*) AS n, CAST(@@server_id AS SIGNED) AS server_id FROM items WHERE id = ?",
                &params![id],
            )
            .await?;
        Ok((
            row.get::<i64, _>("n") == 1,
            row.get::<i64, _>("server_id") == self.replica_id,
        ))
    }
}

/// Runs `work` in a task of its own (a request), and returns its output.
async fn in_task<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(work).await.unwrap()
}

/// A token like `token` (a version 2 token of one MariaDB position), its
/// sequence number moved by `by`, its checksum made right again: what a
/// client forging a token would send (the format is in docs/replicas.md).
fn forged(token: &CausalToken, by: i64) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token.to_string()).unwrap();
    assert_eq!(
        (bytes[0], bytes[1], bytes[2]),
        (2, 1, 2),
        "a version 2 token of one GTID position"
    );
    let sequence = u64::from_be_bytes(bytes[11..19].try_into().unwrap());
    bytes[11..19].copy_from_slice(&sequence.wrapping_add_signed(by).to_be_bytes());
    let body = bytes.len() - 4;
    let sum = bytes[..body]
        .iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    bytes[body..].copy_from_slice(&sum.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Read-your-writes by GTID, in steps, on one pair with the replica's SQL
/// thread stopped: a task's own write, read-your-writes off (the stale
/// read), a token honoured by a second engine, waiting with
/// `MASTER_GTID_WAIT`, and bad tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_their_writes_by_gtid_and_tokens_carry_them_to_another_instance() {
    let pair = MariaDbPair::start().await;
    let a = engine(&pair, |b| b).await;
    let primary = a.engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    a.write(0).await;
    pair.wait_until_caught_up().await;
    let e = a.clone();
    assert_eq!(in_task(async move { e.read(0).await.unwrap() }).await, (true, true));

    // 1. The SQL thread stopped: a write, then a read in the same task,
    //    returns the row, from the primary; the write went to the primary.
    pair.stop_applying().await;
    let e = a.clone();
    let (wrote_on, seen, token) = in_task(async move {
        let wrote_on = e.write(1).await;
        (wrote_on, e.read(1).await.unwrap(), e.engine.causal_token())
    })
    .await;
    assert_eq!(wrote_on, "primary");
    assert_eq!(seen, (true, false), "the write's row, read on the primary");
    let token = token.expect("a token after a write on a primary with a replica");
    // A task that wrote nothing reads the stale replica.
    let e = a.clone();
    assert_eq!(in_task(async move { e.read(1).await.unwrap() }).await, (false, true));
    // A committed transaction is followed as well.
    let e = a.clone();
    let seen = in_task(async move {
        let engine = e.engine.clone();
        e.engine
            .transaction()
            .run(|_| {
                let engine = engine.clone();
                async move {
                    engine
                        .write_model(&ITEM)
                        .execute("INSERT INTO items VALUES (2)", &[])
                        .await
                }
            })
            .await
            .unwrap();
        e.read(2).await.unwrap()
    })
    .await;
    assert_eq!(seen, (true, false));
    let counts = a.engine.consistency_counts();
    assert_eq!(counts.writes_lost, 0, "{counts:?}");
    assert!(counts.writes_followed >= 3, "{counts:?}");

    // 2. Read-your-writes off: the same write then read is stale, from the
    //    replica (so step 1 can fail).
    let off = engine(&pair, |b| b.read_your_writes(ReadYourWrites::off())).await;
    let e = off.clone();
    let (seen, token_off) = in_task(async move {
        e.write(3).await;
        (e.read(3).await.unwrap(), e.engine.causal_token())
    })
    .await;
    assert_eq!(seen, (false, true), "off: the stale read");
    assert_eq!(token_off, None);

    // 3. Another instance honours the token, reading through the same
    //    replica; without it, the stale replica.
    let b = engine(&pair, |b| b).await;
    let text = token.to_string();
    assert!(text.len() <= 40, "{text}");
    let accepted = b.engine.accept_token(&text).await.unwrap().expect("a valid token");
    assert_eq!(accepted, token);
    let e = b.clone();
    let with_token =
        in_task(async move { causal::scope(Some(accepted), async { e.read(1).await.unwrap() }).await }).await;
    assert_eq!(with_token, (true, false), "the token's write, read on the primary");
    let e = b.clone();
    assert_eq!(in_task(async move { e.read(1).await.unwrap() }).await, (false, true));
    // A write in a scope with a token goes where the router says.
    let scoped = b.engine.accept_token(&text).await.unwrap();
    let e = b.clone();
    assert_eq!(
        in_task(async move { causal::scope(scoped, e.write(4)).await }).await,
        "primary"
    );

    // 4. Waiting: an engine that may wait 2 s waits (MASTER_GTID_WAIT),
    //    then reads on the primary; once the replica applies, the token's
    //    reads stay on the replica.
    let waiting = engine(&pair, |b| {
        b.read_your_writes(ReadYourWrites::on().wait(Duration::from_secs(2)))
    })
    .await;
    let scoped = waiting.engine.accept_token(&text).await.unwrap();
    let e = waiting.clone();
    let started = Instant::now();
    let seen = in_task(async move { causal::scope(scoped, async { e.read(1).await.unwrap() }).await }).await;
    assert_eq!(seen, (true, false), "waited, then the primary");
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    pair.start_applying().await;
    pair.wait_until_caught_up().await;
    for engine in [&b, &waiting] {
        let scoped = engine.engine.accept_token(&text).await.unwrap();
        let e = (*engine).clone();
        let caught_up = in_task(async move { causal::scope(scoped, async { e.read(1).await.unwrap() }).await }).await;
        assert_eq!(
            caught_up,
            (true, true),
            "the token's write, read on the caught-up replica"
        );
    }
    // The replica applying while a read waits: the read stays there.
    pair.stop_applying().await;
    let e = waiting.clone();
    let own = in_task(async move {
        e.write(5).await;
        e.engine.causal_token().unwrap()
    })
    .await;
    let scoped = waiting.engine.accept_token(&own.to_string()).await.unwrap();
    let e = waiting.clone();
    let read = tokio::spawn(async move { causal::scope(scoped, async { e.read(5).await.unwrap() }).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    pair.start_applying().await;
    assert_eq!(
        read.await.unwrap(),
        (true, true),
        "waited for, then read on the replica"
    );
    assert!(waiting.engine.consistency_counts().replica_after_waiting >= 1);

    // 5. Bad tokens: a clear error, never a panic.
    let refused = |result: dbroute::Result<Option<CausalToken>>| match result {
        Err(Error::CausalToken { reason }) => reason,
        other => panic!("expected a refused token, got {other:?}"),
    };
    assert!(refused(b.engine.accept_token("").await).contains("empty"));
    assert!(refused(b.engine.accept_token("not a token").await).contains("not a token"));
    assert!(refused(b.engine.accept_token(&text[..text.len() - 3]).await).contains("cut short"));
    // A token of another MariaDB primary (another server id), its checksum
    // right.
    let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
    bytes[10] ^= 0x5a;
    let body = bytes.len() - 4;
    let sum = bytes[..body]
        .iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    bytes[body..].copy_from_slice(&sum.to_be_bytes());
    let reason = refused(b.engine.accept_token(&URL_SAFE_NO_PAD.encode(&bytes)).await);
    assert!(
        reason.contains("another database cluster") && reason.contains("MariaDB primary of server id"),
        "{reason}"
    );
    // The shared test server's: another server id if it has a binary log;
    // if not, its writes have no GTID to follow (counted as lost).
    let other_db = TestDb::mysql().await;
    let other = Engine::builder()
        .connection("default", &other_db.url)
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
            other.causal_token()
        }
    })
    .await;
    match other_token {
        Some(other_token) => {
            let reason = refused(b.engine.accept_token(&other_token.to_string()).await);
            assert!(reason.contains("another database cluster"), "{reason}");
            assert!(reason.contains("MariaDB primary of server id"), "{reason}");
        }
        // The shared server has no binary log: no GTID to follow.
        None => assert!(other.consistency_counts().writes_lost > 0),
    }
    other.close().await;
    // A forged sequence number past the primary's: accepted (its form is
    // right), refused when a read needs it, and never a panic.
    let forged_text = forged(&token, 1 << 40);
    let forged_token = b.engine.accept_token(&forged_text).await.unwrap();
    pair.stop_applying().await;
    let e = b.clone();
    let result = in_task(async move { causal::scope(forged_token, e.read(1)).await }).await;
    let reason = match result {
        Err(Error::CausalToken { reason }) => reason,
        other => panic!("a forged token's read: {other:?}"),
    };
    assert!(
        reason.contains("has not reached") && reason.contains("GTID"),
        "{reason}"
    );
    // Ignored, when the engine says so: the read runs as without a token,
    // writes still go to the primary.
    let lenient = engine(&pair, |b| {
        b.read_your_writes(ReadYourWrites::on().bad_tokens(BadTokens::Ignore))
    })
    .await;
    assert_eq!(lenient.engine.accept_token("not a token").await.unwrap(), None);
    let forged_token = lenient.engine.accept_token(&forged_text).await.unwrap();
    let e = lenient.clone();
    let (seen, wrote_on) =
        in_task(
            async move { causal::scope(forged_token, async { (e.read(1).await.unwrap(), e.write(6).await) }).await },
        )
        .await;
    assert_eq!((seen, wrote_on), ((true, true), "primary".parse().unwrap()));
    pair.start_applying().await;

    for setup in [a, b, off, waiting, lenient] {
        setup.engine.close().await;
    }
}

/// A replica killed under load and started again: under the failover
/// policy no read fails, every write lands on the primary, and the
/// replica serves reads again after its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_skipped_then_used_again_after_its_restart() {
    let pair = MariaDbPair::start().await;
    // A dead replica's new connections are refused; the pool would retry
    // them for this long.
    let replica_pool = PoolSettings::new().acquire_timeout(Duration::from_secs(2));
    let setup = engine_with(&pair, replica_pool, |b| {
        b.replication_check_every(Duration::from_millis(100))
            .replica_failover(ReplicaFailover::Primary)
    })
    .await;
    let primary = setup.engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    setup.write(0).await;
    pair.wait_until_caught_up().await;

    let load = MixedLoad::start(setup.clone());
    let before = load.counts().on_replica();
    load.wait_until("reads on the replica", WITHIN, |c| c.on_replica() > before + 50)
        .await;

    pair.kill_replica();
    let killed_at = load.counts().reads();
    load.wait_until("reads while the replica is down", WITHIN, |c| {
        c.reads() > killed_at + 200
    })
    .await;
    let down = setup.engine.status().into_iter().find(|s| s.name == "replica").unwrap();
    assert_eq!(down.health, dbroute::stats::Health::Unhealthy);

    pair.restart_replica().await;
    let restarted_at = load.counts().on_replica();
    load.wait_until("reads on the replica after its restart", WITHIN, |c| {
        c.on_replica() > restarted_at + 50
    })
    .await;
    let ran = load.stop().await;
    let counts = setup.engine.consistency_counts();
    eprintln!("killed MariaDB replica under load: {ran}; {counts:?}");
    ran.assert_nothing_failed_or_misplaced();
    assert!(counts.primary_failover > 0, "{counts:?}");
    setup.engine.close().await;
}

/// 1,000 write→read pairs, eight at a time, while another task keeps
/// writing on the primary: no read misses its write. Reports where the
/// reads ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_write_read_pairs_under_write_load_see_every_write() {
    let pair = MariaDbPair::start().await;
    let setup = engine(&pair, |b| {
        b.read_your_writes(ReadYourWrites::on().wait(Duration::from_millis(20)))
            .replication_check_every(Duration::from_millis(100))
    })
    .await;
    let primary = setup.engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    primary.execute("CREATE TABLE noise (x BIGINT)", &[]).await.unwrap();
    pair.wait_until_caught_up().await;

    let stop = Arc::new(AtomicBool::new(false));
    let noise = tokio::spawn({
        let (primary, stop) = (primary.clone(), stop.clone());
        async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                primary
                    .execute("INSERT INTO noise VALUES (1), (2), (3), (4), (5)", &[])
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
            let (setup, stale, on_replica) = (setup.clone(), stale.clone(), on_replica.clone());
            tokio::spawn(async move {
                for id in (worker..PAIRS).step_by(8) {
                    // Each pair a request: a task of its own.
                    let s = setup.clone();
                    let (seen, replica) = in_task(async move {
                        s.write(id).await;
                        s.read(id).await.unwrap()
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
    let counts = setup.engine.consistency_counts();
    let on_replica = on_replica.load(Ordering::Relaxed);
    eprintln!(
        "MariaDB: {PAIRS} write→read pairs in {:?} with {noise_writes} other writes meanwhile: \
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
    setup.engine.close().await;
}

impl Workload for Arc<Setup> {
    fn write(&self, id: i64) -> impl Future<Output = ConnectionName> + Send {
        Setup::write(self, id)
    }

    fn read(&self, id: i64) -> impl Future<Output = dbroute::Result<(bool, bool)>> + Send {
        Setup::read(self, id)
    }
}
