//! Reliability: dead and slow databases, pool exhaustion, transactions whose
//! server dies, and a soak under load while routers are swapped and a
//! connection comes and goes.
//!
//! Every step that talks to a database is bounded by `tokio::time::timeout`:
//! a hang fails the test, naming the step. The figures each test measured
//! are printed (`cargo test ... -- --nocapture` shows them); RELIABILITY.md
//! records them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dbroute::router::{Fault, HostRouter, RouteDecision, RouteKind, RouteRequest, RouterIdentity};
use dbroute::wasm::{RouterLimits, RouterSource, WasmRouter};
use dbroute::{ConnectionName, Engine, Error, ModelInfo, PoolSettings, ReadFailure, params};

use crate::pg_server::PgServer;
use crate::support::{STEP, TestDb, within_limit};

/// The acquire timeout of the pools that are made to fail.
const ACQUIRE: Duration = Duration::from_secs(2);
/// Slack on top of a timeout before a step counts as hung: scheduling on a
/// busy 2-core machine, sqlx's connect backoff.
const SLACK: Duration = Duration::from_millis(1500);

const REPLICA: ConnectionName = ConnectionName::from_static("replica");

/// Reads go to `replica`, writes to `default`.
#[derive(Debug)]
struct ReadsFromReplica;

impl HostRouter for ReadsFromReplica {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("reads-from-replica")
    }
    fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::Use(REPLICA))
    }
    fn db_for_write(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::Use(ConnectionName::DEFAULT))
    }
}

fn item() -> ModelInfo {
    ModelInfo::new("Item")
}

/// Creates `items` on a connection.
async fn create_items(engine: &Engine, connection: &str) {
    within_limit(
        STEP,
        "CREATE TABLE",
        engine
            .connection(connection)
            .unwrap()
            .execute("CREATE TABLE items (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)", &[]),
    )
    .await
    .unwrap();
}

/// Rows of `items` with this note, on a connection.
async fn count_notes(engine: &Engine, connection: &str, note: &str) -> i64 {
    within_limit(
        STEP,
        "count",
        engine
            .connection(connection)
            .unwrap()
            .fetch_one("SELECT count(*) AS n FROM items WHERE note = $1", &params![note]),
    )
    .await
    .unwrap()
    .get("n")
}

// ---- a dead replica ----

/// One routed read: the port of the server that answered.
async fn read_port(engine: &Engine) -> Result<i64, Error> {
    let model = item();
    let row = engine
        .read_model(&model)
        .fetch_one("SELECT inet_server_port() AS port", &[])
        .await?;
    Ok(row.get("port"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_fails_reads_fast_keeps_writes_and_recovers_by_itself() {
    let server = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let primary = TestDb::postgres().await;
    let engine = Engine::builder()
        .connection("default", &primary.url)
        .connection_with(
            "replica",
            server.url("postgres"),
            PoolSettings::new().max_connections(4).acquire_timeout(ACQUIRE),
        )
        .add_router(ReadsFromReplica)
        .build()
        .await
        .unwrap();
    create_items(&engine, "default").await;
    create_items(&engine, "replica").await;
    let replica_port = i64::from(server.port());

    // A reader reads all along, through the kill and the restart, every
    // read bounded.
    let stop = Arc::new(AtomicBool::new(false));
    let good = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let (engine, stop, good, bad) = (engine.clone(), stop.clone(), good.clone(), bad.clone());
        async move {
            let mut log = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = within_limit(ACQUIRE + SLACK, "a routed read", read_port(&engine)).await;
                match &result {
                    Ok(_) => good.fetch_add(1, Ordering::Relaxed),
                    Err(_) => bad.fetch_add(1, Ordering::Relaxed),
                };
                log.push((started, started.elapsed(), result));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            log
        }
    });
    let wait_for = |counter: Arc<AtomicU64>, n: u64| async move {
        while counter.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    within_limit(STEP, "reads before the kill", wait_for(good.clone(), 20)).await;

    let killed_at = Instant::now();
    within_limit(STEP, "pg_ctl stop -m immediate", server.kill()).await;
    let down_at = Instant::now();
    // While the replica is down, writes go on to default.
    for i in 0..10 {
        let model = item();
        within_limit(
            STEP,
            "a write while the replica is down",
            engine
                .write_model(&model)
                .execute("INSERT INTO items (note) VALUES ($1)", &params![format!("outage-{i}")]),
        )
        .await
        .unwrap();
    }
    within_limit(STEP, "failed reads", wait_for(bad.clone(), 3)).await;
    let failures_seen = bad.load(Ordering::Relaxed);
    // The operator's view says so too: the killed replica is unhealthy, the
    // primary healthy.
    let status = within_limit(STEP, "a health check", engine.check_health(Duration::from_millis(500))).await;
    let health = |name: &str| status.iter().find(|s| s.name == name).map(|s| s.health);
    assert_eq!(health("replica"), Some(dbroute::stats::Health::Unhealthy), "{status:?}");
    assert_eq!(health("default"), Some(dbroute::stats::Health::Healthy), "{status:?}");

    let restart_began = Instant::now();
    let restart_took = within_limit(STEP, "pg_ctl start", server.restart()).await;
    let good_before = good.load(Ordering::Relaxed);
    within_limit(
        STEP,
        "reads after the restart",
        wait_for(good.clone(), good_before + 20),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let log = within_limit(STEP, "the reader", reader).await.unwrap();

    // Before the kill: every read answered by the replica server.
    let mut before = 0;
    let mut failures = Vec::new();
    let mut first_good_after = None;
    for (started, took, result) in &log {
        match result {
            Ok(port) => {
                assert_eq!(*port, replica_port, "a read was not answered by the replica");
                if *started < killed_at {
                    before += 1;
                } else if *started >= restart_began && first_good_after.is_none() {
                    first_good_after = Some(*started + *took);
                }
                assert!(
                    *started < down_at || *started + *took > restart_began,
                    "a read succeeded while the replica was down"
                );
            }
            Err(e) => {
                assert!(*started + *took >= killed_at, "a read failed before the kill: {e}");
                // Fast: within the acquire timeout (plus slack), naming the
                // connection; while the server refuses connections, saying
                // so (Connect) rather than only that none became free.
                assert!(*took <= ACQUIRE + SLACK, "a failed read took {took:?}: {e}");
                let message = e.to_string();
                assert!(
                    message.contains("`replica`"),
                    "the error does not name the connection: {message}"
                );
                assert!(
                    matches!(
                        e,
                        Error::Connect { .. } | Error::PoolTimedOut { .. } | Error::Query { .. }
                    ),
                    "unexpected error kind: {e:?}"
                );
                failures.push((*took, message));
            }
        }
    }
    assert!(before >= 20, "{before} reads before the kill");
    let recovered_at = first_good_after.expect("reads recovered");
    let slowest_failure = failures.iter().map(|(t, _)| *t).max().unwrap_or_default();
    let kinds: std::collections::BTreeSet<String> = failures
        .iter()
        .map(|(_, m)| m.split(':').nth(1).unwrap_or(m).trim().chars().take(60).collect())
        .collect();

    // The writes of the outage are on default, none on the replica.
    for i in 0..10 {
        let note = format!("outage-{i}");
        assert_eq!(count_notes(&engine, "default", &note).await, 1);
        assert_eq!(count_notes(&engine, "replica", &note).await, 0);
    }
    println!(
        "dead replica: {} reads ({before} before the kill), {} failed reads ({failures_seen} seen while down), \
         slowest failure {slowest_failure:?} (acquire timeout {ACQUIRE:?}); kill took {:?}; 10 writes to default \
         during the outage; pg_ctl start took {restart_took:?}; the first good read completed {:?} after the \
         restart began, without any call to the engine; failures: {kinds:?}",
        log.len(),
        failures.len(),
        down_at - killed_at,
        recovered_at - restart_began,
    );
}

/// With `ReadFailure::FallBackToDefault`, a read that the router sends to a
/// database that cannot be reached is served by `default` (after the
/// acquire timeout); without it, or when the read names the connection
/// with `using`, the read fails naming the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fall_back_to_default_serves_reads_of_a_dead_database() {
    let primary = TestDb::postgres().await;
    // A port nothing listens on.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let acquire = Duration::from_millis(800);
    let build = |policy| {
        Engine::builder()
            .connection("default", &primary.url)
            .connection_with(
                "replica",
                format!("postgres://postgres@127.0.0.1:{dead_port}/none"),
                PoolSettings::new().lazy(true).acquire_timeout(acquire),
            )
            .add_router(ReadsFromReplica)
            .read_failure(policy)
            .build()
    };
    let strict = build(ReadFailure::Fail).await.unwrap();
    let err = within_limit(STEP, "a read of a dead replica", read_port(&strict))
        .await
        .unwrap_err();
    // The server's own answer, not only "no connection became free".
    assert!(
        matches!(&err, Error::Connect { connection, .. } if connection == "replica"),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert!(err.to_string().contains("refused"), "{err}");
    // The status and the health check say the same.
    let status = strict.status();
    let replica = status.iter().find(|c| c.name == "replica").unwrap();
    assert!(
        replica.last_error.as_deref().unwrap_or_default().contains("refused"),
        "{replica:?}"
    );
    let checked = strict.check_health(Duration::from_secs(5)).await;
    let replica = checked.iter().find(|c| c.name == "replica").unwrap();
    assert_eq!(replica.health, dbroute::stats::Health::Unhealthy, "{replica:?}");
    assert!(
        replica.last_error.as_deref().unwrap_or_default().contains("refused"),
        "{replica:?}"
    );

    let lenient = build(ReadFailure::FallBackToDefault).await.unwrap();
    let started = Instant::now();
    let port = within_limit(STEP, "a read falling back", read_port(&lenient))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(port, 5432, "the read was served by default");
    assert!(took <= acquire + SLACK, "took {took:?}");
    // Writes are unaffected, and a read that names its connection with
    // `using` (the router was not asked) fails rather than go elsewhere.
    let model = item();
    within_limit(STEP, "a write", lenient.write_model(&model).execute("SELECT 1", &[]))
        .await
        .unwrap();
    let named = lenient
        .read_model(&model)
        .using("replica")
        .fetch_one("SELECT inet_server_port() AS port", &[]);
    let err = within_limit(STEP, "a read using the dead replica", named)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Connect { connection, .. } if connection == "replica"),
        "{err:?}"
    );
    println!(
        "fallback policy: a read routed to a dead database was served by default after {took:?} (acquire {acquire:?})"
    );
}

// ---- pool exhaustion ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_naming_the_pool_never_hangs() {
    let (primary, replica) = (TestDb::postgres().await, TestDb::postgres().await);
    let acquire = Duration::from_millis(500);
    let engine = Engine::builder()
        .connection("default", &primary.url)
        .connection_with(
            "replica",
            &replica.url,
            PoolSettings::new().max_connections(2).acquire_timeout(acquire),
        )
        .add_router(ReadsFromReplica)
        .build()
        .await
        .unwrap();
    // Two slow reads hold both of the replica's connections.
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let model = item();
                within_limit(
                    STEP,
                    "a slow read",
                    engine.read_model(&model).execute("SELECT pg_sleep(4)", &[]),
                )
                .await
            })
        })
        .collect();
    let pool = engine.connection("replica").unwrap();
    within_limit(STEP, "both connections taken", async {
        while !(pool.pool().size() == 2 && pool.pool().num_idle() == 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // Eight more reads, at once: each times out, naming the pool.
    let started = Instant::now();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = within_limit(STEP, "a read of an exhausted pool", read_port(&engine)).await;
                (started.elapsed(), result)
            })
        })
        .collect();
    // Meanwhile writes go to default at once.
    for _ in 0..5 {
        let model = item();
        within_limit(
            Duration::from_secs(5),
            "a write while the replica is exhausted",
            engine.write_model(&model).execute("SELECT 1", &[]),
        )
        .await
        .unwrap();
    }
    let mut slowest = Duration::ZERO;
    for waiter in waiters {
        let (took, result) = waiter.await.unwrap();
        let err = result.expect_err("the pool is exhausted");
        match &err {
            Error::PoolTimedOut { connection, timeout } => {
                assert_eq!(connection, "replica");
                assert_eq!(*timeout, acquire);
            }
            other => panic!("expected PoolTimedOut, got {other:?}"),
        }
        assert!(err.to_string().contains("`replica`"), "{err}");
        assert!(took >= acquire && took <= acquire + SLACK, "timed out after {took:?}");
        slowest = slowest.max(took);
    }
    let all_failed_after = started.elapsed();
    for holder in holders {
        holder.await.unwrap().unwrap();
    }
    // Free again: reads work.
    within_limit(STEP, "a read after the slow ones", read_port(&engine))
        .await
        .unwrap();
    println!(
        "pool exhaustion: 8 reads on a 2-connection pool held busy all failed with PoolTimedOut naming `replica`, \
         slowest after {slowest:?} (acquire timeout {acquire:?}), all within {all_failed_after:?}; 5 writes to \
         default meanwhile; reads work again once the pool is free"
    );
}

// ---- a transaction whose server dies ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_server_dies_commits_nothing() {
    let server = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let primary = TestDb::postgres().await;
    let engine = Engine::builder()
        .connection("default", &primary.url)
        // The server restarts within a second: its pooled connections,
        // used a moment before, are checked each time they are handed out
        // (by default only those idle for over a second are).
        .connection_with(
            "ledger",
            server.url("postgres"),
            PoolSettings::new()
                .max_connections(4)
                .acquire_timeout(ACQUIRE)
                .test_idle_after(Some(Duration::ZERO)),
        )
        .build()
        .await
        .unwrap();
    create_items(&engine, "ledger").await;
    let ledger = engine.connection("ledger").unwrap();
    within_limit(
        STEP,
        "a committed insert",
        ledger.execute("INSERT INTO items (note) VALUES ('committed')", &[]),
    )
    .await
    .unwrap();

    // 1. An explicit transaction: three inserts, the server dies, then
    //    commit.
    let tx = within_limit(STEP, "begin", engine.transaction().on("ledger").begin())
        .await
        .unwrap();
    for _ in 0..3 {
        within_limit(
            STEP,
            "an insert in the transaction",
            tx.connection()
                .execute("INSERT INTO items (note) VALUES ('tx-commit')", &[]),
        )
        .await
        .unwrap();
    }
    within_limit(STEP, "kill", server.kill()).await;
    let err = within_limit(STEP, "commit on a dead server", tx.commit())
        .await
        .expect_err("a commit on a dead server must fail");
    assert!(err.to_string().contains("`ledger`"), "{err}");
    let commit_error = err.to_string();
    within_limit(STEP, "restart", server.restart()).await;

    // 2. The ambient form: the server dies between two statements; the
    //    work's error comes back and the rollback's failure is only logged.
    let err = within_limit(
        STEP,
        "a transaction that loses its server",
        engine.transaction().on("ledger").run(|conn| {
            let server = &server;
            async move {
                conn.execute("INSERT INTO items (note) VALUES ('tx-ambient')", &[])
                    .await?;
                server.kill().await;
                conn.execute("INSERT INTO items (note) VALUES ('tx-ambient')", &[])
                    .await?;
                Ok::<_, Error>(())
            }
        }),
    )
    .await
    .expect_err("the second insert must fail");
    assert!(err.to_string().contains("`ledger`"), "{err}");
    let statement_error = err.to_string();
    within_limit(STEP, "restart", server.restart()).await;

    // 3. Dropped unfinished while the server is down.
    let tx = within_limit(STEP, "begin", engine.transaction().on("ledger").begin())
        .await
        .unwrap();
    within_limit(
        STEP,
        "an insert",
        tx.connection()
            .execute("INSERT INTO items (note) VALUES ('tx-dropped')", &[]),
    )
    .await
    .unwrap();
    within_limit(STEP, "kill", server.kill()).await;
    drop(tx);
    within_limit(STEP, "restart", server.restart()).await;

    // After the restarts: nothing of the three transactions, the committed
    // row intact, and the pool works again by itself.
    assert_eq!(count_notes(&engine, "ledger", "committed").await, 1);
    for note in ["tx-commit", "tx-ambient", "tx-dropped"] {
        assert_eq!(count_notes(&engine, "ledger", note).await, 0, "{note} was committed");
    }
    let tx = within_limit(STEP, "begin after restart", engine.transaction().on("ledger").begin())
        .await
        .unwrap();
    within_limit(
        STEP,
        "an insert after restart",
        tx.connection()
            .execute("INSERT INTO items (note) VALUES ('after')", &[]),
    )
    .await
    .unwrap();
    within_limit(STEP, "commit after restart", tx.commit()).await.unwrap();
    assert_eq!(count_notes(&engine, "ledger", "after").await, 1);
    println!(
        "dead transactions: commit failed with \"{commit_error}\"; a statement failed with \"{statement_error}\"; \
         after 3 kills and restarts: 0 rows of the 3 transactions, the committed row intact"
    );
}

// ---- soak ----

/// The connections of the soak: `extra` is removed and added all along.
const SOAK_CONNECTIONS: [&str; 3] = ["default", "other", "extra"];
const TASKS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(2);
const SOAK: Duration = Duration::from_secs(8);
/// Generous: RSS also moves with the allocator and other tests running in
/// the same process.
const RSS_GROWTH_LIMIT: u64 = 64 << 20;

/// A WAT router: reads to `read`, writes to `write`.
fn split_router_wat(read: &str, write: &str) -> String {
    let at = |offset: i64, name: &str| (offset << 32) | name.len() as i64;
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{read}")
  (data (i32.const 128) "{write}")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const {r})
  (func (export "db_for_write") (param i32 i32) (result i64) i64.const {w}))"#,
        r = at(16, read),
        w = at(128, write),
    )
}

/// The routers the swapper cycles through, as (read, write) answers:
/// generation `g` activates `ROUTERS[(g - 1) % 4]`.
const ROUTERS: [(&str, &str); 4] = [
    ("default", "default"),
    ("other", "other"),
    ("extra", "extra"),
    ("other", "default"),
];

fn answer_of(generation: u64, kind: RouteKind) -> &'static str {
    let (read, write) = ROUTERS[((generation + 3) % 4) as usize];
    match kind {
        RouteKind::Read => read,
        RouteKind::Write => write,
    }
}

/// What the soak counts.
#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    reads: AtomicU64,
    /// Rows written, per connection of `SOAK_CONNECTIONS`.
    written: [AtomicU64; 3],
    /// `UnknownConnection` for `extra` while it was removed.
    unknown_extra: AtomicU64,
    /// `PoolClosed` on `extra`: resolved just before it was removed.
    closed_extra: AtomicU64,
    unexpected: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn unexpected(&self, what: String) {
        let mut list = self.unexpected.lock().unwrap();
        if list.len() < 20 {
            list.push(what);
        }
    }

    /// Counts an error if it is one of the expected ones; records it as
    /// unexpected otherwise.
    fn error(&self, e: &Error) {
        match e {
            Error::UnknownConnection { name, .. } if name == "extra" => {
                self.unknown_extra.fetch_add(1, Ordering::Relaxed);
            }
            Error::Query {
                connection,
                source: dbroute::sqlx::Error::PoolClosed,
            } if connection == "extra" => {
                self.closed_extra.fetch_add(1, Ordering::Relaxed);
            }
            other => self.unexpected(format!("{other}")),
        }
    }
}

fn index_of(name: &str) -> usize {
    SOAK_CONNECTIONS
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("not a soak connection: {name}"))
}

/// One task of the soak: alternately reads and writes until `deadline`.
/// One operation in eight names its connection with `using`; the others
/// are routed. Each decision is checked against the generations active
/// around it, each write tags its row with the connection it was meant for,
/// each read checks which database answered.
async fn soak_task(engine: Engine, task: usize, deadline: Instant, databases: Arc<[String; 3]>, tally: Arc<Tally>) {
    let model = ModelInfo::new(format!("Soak{task}"));
    let mut seq: u64 = 0;
    while Instant::now() < deadline {
        seq += 1;
        tally.ops.fetch_add(1, Ordering::Relaxed);
        let kind = if seq.is_multiple_of(2) {
            RouteKind::Write
        } else {
            RouteKind::Read
        };
        let using = (seq % 8 == 1).then(|| SOAK_CONNECTIONS[(task + seq as usize) % 3]);
        let routed = match kind {
            RouteKind::Read => engine.read_model(&model),
            RouteKind::Write => engine.write_model(&model),
        };
        let routed = match using {
            Some(name) => routed.using(name),
            None => routed,
        };
        let before = engine.router_status().generation;
        let resolved = routed.connection();
        let after = engine.router_status().generation;
        let conn = match resolved {
            Ok(conn) => conn,
            Err(e) => {
                tally.error(&e);
                // No await on this path: yield, or the swapper and the churn
                // starve.
                tokio::task::yield_now().await;
                continue;
            }
        };
        let name = conn.name();
        let allowed: Vec<&str> = match using {
            Some(requested) => vec![requested],
            None => (before..=after).map(|g| answer_of(g, kind)).collect(),
        };
        if !allowed.contains(&name.as_str()) {
            tally.unexpected(format!(
                "{kind} resolved to {name}, but generations {before}..={after} (using {using:?}) allow {allowed:?}"
            ));
            tokio::task::yield_now().await;
            continue;
        }
        let i = index_of(name.as_str());
        match kind {
            RouteKind::Write => {
                let row = params![task as i64, seq as i64, name.as_str()];
                let insert = conn.execute("INSERT INTO soak (task, seq, meant) VALUES ($1, $2, $3)", &row);
                match tokio::time::timeout(STEP, insert).await {
                    Ok(Ok(_)) => {
                        tally.written[i].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => tally.error(&e),
                    Err(_) => tally.unexpected(format!("a write to {name} hung")),
                }
            }
            RouteKind::Read => {
                let read = conn.fetch_one("SELECT current_database() AS db", &[]);
                match tokio::time::timeout(STEP, read).await {
                    Ok(Ok(row)) => {
                        let db: String = row.get("db");
                        if db != databases[i] {
                            tally.unexpected(format!("a read of {name} was answered by database {db}"));
                        }
                        tally.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => tally.error(&e),
                    Err(_) => tally.unexpected(format!("a read of {name} hung")),
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_64_tasks_while_routers_swap_and_a_connection_comes_and_goes() {
    // It measures the process's memory: alone, not beside the other tests.
    if !crate::support::alone("reliability::soak_64_tasks_while_routers_swap_and_a_connection_comes_and_goes") {
        return;
    }
    let dbs = [
        TestDb::postgres().await,
        TestDb::postgres().await,
        TestDb::postgres().await,
    ];
    let databases: Arc<[String; 3]> = Arc::new(dbs.each_ref().map(|db| db.url.rsplit('/').next().unwrap().to_owned()));
    let settings = || PoolSettings::new().max_connections(8).acquire_timeout(STEP);
    let engine = Engine::builder()
        .connection_with("default", &dbs[0].url, settings())
        .connection_with("other", &dbs[1].url, settings())
        // A generous budget: these are about load, not budgets.
        .router_limits(RouterLimits::new().time_budget(Duration::from_secs(2)))
        .build()
        .await
        .unwrap();
    within_limit(
        STEP,
        "add extra",
        engine.add_connection("extra", &dbs[2].url, settings()),
    )
    .await
    .unwrap();
    for name in SOAK_CONNECTIONS {
        within_limit(
            STEP,
            "CREATE TABLE",
            engine.connection(name).unwrap().execute(
                "CREATE TABLE soak (task BIGINT NOT NULL, seq BIGINT NOT NULL, meant TEXT NOT NULL)",
                &[],
            ),
        )
        .await
        .unwrap();
    }
    let load = |k: usize| {
        let (read, write) = ROUTERS[k];
        engine
            .load_router(
                WasmRouter::named(format!("soak{k}")),
                RouterSource::Bytes(split_router_wat(read, write).into_bytes().into()),
            )
            .unwrap()
    };
    let routers: Vec<WasmRouter> = (0..4).map(load).collect();
    assert_eq!(engine.set_router(routers[0].clone()), 1);

    let started = Instant::now();
    let deadline = started + SOAK;
    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(soak_task(engine.clone(), t, deadline, databases.clone(), tally.clone())))
        .collect();

    // The swapper: a new generation every couple of milliseconds, now and
    // then a freshly compiled router.
    let swapper = tokio::spawn({
        let engine = engine.clone();
        let routers = routers.clone();
        async move {
            let mut swaps = 0u64;
            let mut compiled = 0u64;
            while Instant::now() < deadline {
                let generation = engine.router_status().generation + 1;
                let k = ((generation + 3) % 4) as usize;
                let router = if generation % 200 == 0 {
                    compiled += 1;
                    let (read, write) = ROUTERS[k];
                    engine
                        .load_router(
                            WasmRouter::named(format!("fresh{generation}")),
                            RouterSource::Bytes(split_router_wat(read, write).into_bytes().into()),
                        )
                        .unwrap()
                } else {
                    routers[k].clone()
                };
                assert_eq!(engine.set_router(router), generation);
                swaps += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (swaps, compiled)
        }
    });

    // The churn: `extra` removed and added again, over and over (gone for
    // 10 ms, back for 40 ms).
    let churn = tokio::spawn({
        let engine = engine.clone();
        let url = dbs[2].url.clone();
        async move {
            let mut cycles = 0u64;
            while Instant::now() < deadline {
                within_limit(STEP, "remove extra", engine.remove_connection("extra"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
                within_limit(STEP, "add extra", engine.add_connection("extra", &url, settings()))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(40)).await;
                cycles += 1;
            }
            cycles
        }
    });

    tokio::time::sleep(WARM_UP).await;
    let rss_warm = crate::support::rss_bytes();
    let ops_warm = tally.ops.load(Ordering::Relaxed);
    for task in tasks {
        within_limit(SOAK + STEP, "a soak task", task).await.unwrap();
    }
    let (swaps, compiled) = swapper.await.unwrap();
    let cycles = churn.await.unwrap();
    let elapsed = started.elapsed();
    let rss_end = crate::support::rss_bytes();

    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected errors: {unexpected:#?}");

    // Every row is in the database it was meant for, and every write that
    // succeeded left exactly one row.
    let mut rows_checked = 0;
    for (i, db) in dbs.iter().enumerate() {
        use sqlx::Connection as _;
        let mut conn = within_limit(STEP, "connect to check", sqlx::PgConnection::connect(&db.url))
            .await
            .unwrap();
        let counts: Vec<(String, i64)> = within_limit(
            STEP,
            "count rows",
            sqlx::query_as("SELECT meant, count(*) FROM soak GROUP BY meant").fetch_all(&mut conn),
        )
        .await
        .unwrap();
        let mut total = 0;
        for (meant, n) in &counts {
            assert_eq!(
                meant, SOAK_CONNECTIONS[i],
                "{n} rows meant for {meant} are in {}",
                SOAK_CONNECTIONS[i]
            );
            total += n;
        }
        assert_eq!(
            total as u64,
            tally.written[i].load(Ordering::Relaxed),
            "rows in {} and successful writes differ",
            SOAK_CONNECTIONS[i]
        );
        rows_checked += total;
    }

    let ops = tally.ops.load(Ordering::Relaxed);
    let growth = rss_end.saturating_sub(rss_warm);
    let written: Vec<u64> = tally.written.iter().map(|w| w.load(Ordering::Relaxed)).collect();
    println!(
        "soak: {TASKS} tasks for {elapsed:.1?}: {ops} operations ({:.0}/s), of which {} reads checked against \
         current_database() and {} writes ({written:?} rows to {SOAK_CONNECTIONS:?}); {swaps} router swaps \
         ({compiled} freshly compiled), {cycles} remove/add cycles of `extra`; expected errors: {} \
         UnknownConnection(extra), {} PoolClosed(extra); unexpected errors: 0; rows checked: {rows_checked}, \
         0 in the wrong database; RSS {:.1} MiB after {WARM_UP:?} warm-up ({ops_warm} ops), {:.1} MiB at the \
         end (+{:.1} MiB)",
        ops as f64 / elapsed.as_secs_f64(),
        tally.reads.load(Ordering::Relaxed),
        written.iter().sum::<u64>(),
        tally.unknown_extra.load(Ordering::Relaxed),
        tally.closed_extra.load(Ordering::Relaxed),
        rss_warm as f64 / 1048576.0,
        rss_end as f64 / 1048576.0,
        growth as f64 / 1048576.0,
    );
    assert!(ops > 2_000, "only {ops} operations");
    assert!(swaps > 100, "only {swaps} swaps");
    assert!(cycles > 5, "only {cycles} remove/add cycles");
    assert!(rows_checked > 500, "only {rows_checked} rows");
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "RSS grew by {growth} bytes after the warm-up (limit {RSS_GROWTH_LIMIT})"
    );
}
