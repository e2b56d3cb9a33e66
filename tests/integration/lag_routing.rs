//! Routers see the connections' state (ABI 1.2): the lag router against a
//! real PostgreSQL primary and streaming replica (`replica_server.rs`,
//! replay paused to make lag), and the host's side of the contract with
//! hand-written WAT routers (`tests/fixtures/routers/state_*.wat`): a state
//! is told once per change and before an instance's first decision, never
//! per decision; a change clears the answer cache; a router of ABI 1.1 is
//! never told; a trap in the state call is a router fault like any other.

use std::time::Duration;

use dbroute::router::Fault;
use dbroute::sqlx::AssertSqlSafe;
use dbroute::stats::Health;
use dbroute::wasm::{Compilation, RouterSource, WasmRouter};
use dbroute::{Engine, Error, Hints, ModelInfo, PoolSettings, params};
use dbroute_example_routers as routers;

use crate::replica_server::ReplicaCluster;
use crate::support::{eventually, fixture};

/// The bound of the lag router in these tests.
const MAX_LAG_MS: u64 = 300;
/// Each lag measurement's own timeout.
const MEASURE: Duration = Duration::from_secs(5);

/// Measures the replica's lag (which tells the routers the state if it
/// changed) and returns the lag routers are told, in milliseconds.
async fn measured_lag_ms(engine: &Engine) -> Option<u64> {
    engine.measure_replication(MEASURE).await;
    engine
        .connection_states()
        .get("replica")
        .expect("the replica's state")
        .lag_ms
}

/// Where the engine sends a read of `model` now.
fn read_goes_to(engine: &Engine, model: &ModelInfo) -> String {
    engine
        .db_for_read(model, &Hints::new())
        .expect("a read decision")
        .to_string()
}

/// How many rows with `id` a read of `model` through the engine finds.
async fn routed_count(engine: &Engine, model: &ModelInfo, table: &str, id: i64) -> i64 {
    engine
        .read_model(model)
        .fetch_one(
            AssertSqlSafe(format!("SELECT count(*) AS n FROM {table} WHERE id = $1")),
            &params![id],
        )
        .await
        .expect("a routed read")
        .get("n")
}

/// With replay paused and writes on the primary, once the measured lag is
/// past the router's `max_lag_ms` reads go to the primary (and find the
/// rows the replica has not replayed); after replay resumes, back to the
/// replica. Writes stay on the primary throughout. For every language's
/// lag router (Rust, C), on one cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_leave_a_replica_that_lags_past_the_bound_and_come_back() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let mut ran = Vec::new();
    for &(language, path) in routers::lag_languages() {
        let Some(path) = path else { continue };
        lag_scenario(&cluster, language, path).await;
        ran.push(language);
    }
    assert!(ran.contains(&"rust"), "{ran:?}");
    eprintln!("lag routing on a real replica: {ran:?}");
}

async fn lag_scenario(cluster: &ReplicaCluster, language: &str, path: &str) {
    let table = format!("lag_items_{language}");
    let engine = Engine::builder()
        .connection("primary", cluster.primary_url("postgres"))
        .connection("replica", cluster.replica_url("postgres"))
        .replica_of("replica", "primary")
        // Only the measurements this test makes.
        .replication_check_every(Duration::ZERO)
        .add_wasm_router(
            WasmRouter::named(format!("lag-{language}")).config(serde_json::json!({ "max_lag_ms": MAX_LAG_MS })),
            RouterSource::File(path.into()),
        )
        .build()
        .await
        .unwrap();
    let model = ModelInfo::new("Item");
    let primary = engine.connection("primary").unwrap();
    let replica = engine.connection("replica").unwrap();

    // Not measured yet: the lag is unknown, reads go to the primary.
    assert_eq!(engine.connection_states().get("replica").unwrap().lag_ms, None);
    assert_eq!(read_goes_to(&engine, &model), "primary", "{language}");
    assert_eq!(engine.db_for_write(&model, &Hints::new()).unwrap(), "primary");

    primary
        .execute(
            AssertSqlSafe(format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY)")),
            &[],
        )
        .await
        .unwrap();
    primary
        .execute(AssertSqlSafe(format!("INSERT INTO {table} VALUES (1)")), &[])
        .await
        .unwrap();

    // Caught up: 0 ms behind, reads go to the replica.
    eventually("the replica caught up", || async {
        (measured_lag_ms(&engine).await == Some(0)).then_some(())
    })
    .await;
    assert_eq!(read_goes_to(&engine, &model), "replica", "{language}");
    assert_eq!(routed_count(&engine, &model, &table, 1).await, 1);

    // Replay paused, a write on the primary: the replica falls behind.
    // Each measurement's answer follows the lag it measured, until the lag
    // is past the bound.
    cluster.pause_replay().await;
    engine
        .write_model(&model)
        .execute(AssertSqlSafe(format!("INSERT INTO {table} VALUES (2)")), &[])
        .await
        .unwrap();
    let lagging = eventually("the lag past the bound", || async {
        let lag = measured_lag_ms(&engine).await;
        let expected = if lag.is_some_and(|ms| ms <= MAX_LAG_MS) {
            "replica"
        } else {
            "primary"
        };
        assert_eq!(read_goes_to(&engine, &model), expected, "{language}: lag {lag:?} ms");
        lag.filter(|&ms| ms > MAX_LAG_MS)
    })
    .await;
    // The read goes to the primary: it finds row 2, which the replica has
    // not replayed.
    assert_eq!(read_goes_to(&engine, &model), "primary", "{language}: lag {lagging} ms");
    assert_eq!(routed_count(&engine, &model, &table, 2).await, 1, "{language}");
    let on_replica: i64 = replica
        .fetch_one(
            AssertSqlSafe(format!("SELECT count(*) AS n FROM {table} WHERE id = 2")),
            &[],
        )
        .await
        .unwrap()
        .get("n");
    assert_eq!(on_replica, 0, "the replica is behind");
    assert_eq!(engine.db_for_write(&model, &Hints::new()).unwrap(), "primary");

    // Replay resumed: caught up again, reads back on the replica, which
    // has the row now.
    cluster.resume_replay().await;
    eventually("the replica caught up again", || async {
        (measured_lag_ms(&engine).await == Some(0)).then_some(())
    })
    .await;
    assert_eq!(read_goes_to(&engine, &model), "replica", "{language}");
    assert_eq!(routed_count(&engine, &model, &table, 2).await, 1);
    let decisions = engine.decision_counts();
    assert!(
        decisions.iter().all(|d| d.connection == "primary" || d.writes == 0),
        "{decisions:?}"
    );
    primary
        .execute(AssertSqlSafe(format!("DROP TABLE {table}")), &[])
        .await
        .unwrap();
    engine.close().await;
}

/// An engine on in-memory SQLite with `default`, `odd` and `even`, and the
/// router `file` of `tests/fixtures/routers/` (baseline code only, so no
/// move to optimized code makes new instances during the test).
async fn engine_with(file: &str, answer_cache: bool) -> Engine {
    let mut builder = Engine::builder();
    for name in ["default", "odd", "even"] {
        builder = builder.connection(name, "sqlite::memory:");
    }
    builder
        .add_wasm_router(
            WasmRouter::named(file)
                .compilation(Compilation::Baseline)
                .answer_cache(answer_cache),
            RouterSource::File(fixture(&format!("routers/{file}.wat"))),
        )
        .build()
        .await
        .unwrap()
}

fn reads(engine: &Engine, n: usize) -> Vec<String> {
    let user = ModelInfo::new("User");
    (0..n).map(|_| read_goes_to(engine, &user)).collect()
}

/// A state is told when it changes, and before an instance's first
/// decision; never per decision (with or without the answer cache). A
/// change clears the cache: an answer cached under the earlier state is
/// not served.
#[tokio::test(flavor = "current_thread")]
async fn a_state_is_told_once_per_change_and_clears_the_answer_cache() {
    for answer_cache in [true, false] {
        let engine = engine_with("state_counter", answer_cache).await;
        // Told the state once (when the engine was built): "odd", however
        // many decisions follow.
        assert_eq!(reads(&engine, 20), vec!["odd"; 20], "cache {answer_cache}");
        // A health check flips every connection from unknown to healthy: a
        // new state, told once.
        assert_eq!(engine.connection_states().get("odd").unwrap().health, Health::Unknown);
        engine.check_health(Duration::from_secs(5)).await;
        assert_eq!(engine.connection_states().get("odd").unwrap().health, Health::Healthy);
        assert_eq!(reads(&engine, 20), vec!["even"; 20], "cache {answer_cache}");
        // Checked again, nothing changed: not told again.
        engine.check_health(Duration::from_secs(5)).await;
        assert_eq!(reads(&engine, 5), vec!["even"; 5], "cache {answer_cache}");
        // A connection added: a new state.
        engine
            .add_connection("third", "sqlite::memory:", PoolSettings::default())
            .await
            .unwrap();
        assert_eq!(reads(&engine, 5), vec!["odd"; 5], "cache {answer_cache}");
        engine.close().await;
    }
}

/// A router of ABI 1.1 is never told the state, even with an export named
/// `dbroute_state` (here one that traps): it answers as before.
#[tokio::test(flavor = "current_thread")]
async fn a_router_of_abi_1_1_is_never_told_the_state() {
    let engine = engine_with("state_abi_1_1", true).await;
    let router = engine.router_status();
    assert_eq!(router.routers.len(), 1);
    assert_eq!(reads(&engine, 3), vec!["odd"; 3]);
    engine.check_health(Duration::from_secs(5)).await;
    engine
        .add_connection("third", "sqlite::memory:", PoolSettings::default())
        .await
        .unwrap();
    assert_eq!(reads(&engine, 3), vec!["odd"; 3]);
    let user = ModelInfo::new("User");
    assert_eq!(engine.db_for_write(&user, &Hints::new()).unwrap(), "default");

    // Loaded alone: ABI 1.1, and the export is not taken for the ABI's.
    let runtime = engine.router_runtime().unwrap();
    let loaded = WasmRouter::named("abi-1.1")
        .compilation(Compilation::Baseline)
        .load_file(runtime, fixture("routers/state_abi_1_1.wat"))
        .unwrap();
    assert_eq!(loaded.info().abi_minor, 1);
    assert!(!loaded.info().exports.contains(&"dbroute_state"), "{:?}", loaded.info());
    // The SDK's routers that do not read the state say 1.1 as well.
    let replica = WasmRouter::named("replica")
        .connections(["default", "replica"])
        .load_file(runtime, routers::REPLICA)
        .unwrap();
    assert_eq!(replica.info().abi_minor, 1);
    let lag = WasmRouter::named("lag")
        .config(serde_json::json!({ "max_lag_ms": 1 }))
        .load_file(runtime, routers::LAG)
        .unwrap();
    assert_eq!(lag.info().abi_minor, 2);
    assert!(lag.info().exports.contains(&"dbroute_state"));
    engine.close().await;
}

/// A router that traps in `dbroute_state` faults the decisions that need
/// the state told (each on an instance that is then dropped); the engine
/// stays healthy, and the router answers again once the state no longer
/// makes it trap.
#[tokio::test(flavor = "current_thread")]
async fn a_trap_in_the_state_call_is_a_router_fault_and_the_host_stays_healthy() {
    let mut builder = Engine::builder();
    for name in ["default", "odd"] {
        builder = builder.connection(name, "sqlite::memory:");
    }
    let engine = builder
        .add_wasm_router(
            WasmRouter::named("state-trap").compilation(Compilation::Baseline),
            RouterSource::File(fixture("routers/state_trap.wat")),
        )
        .build()
        .await
        .unwrap();
    let user = ModelInfo::new("User");
    // Two connections: a short state, accepted.
    assert_eq!(reads(&engine, 2), vec!["odd"; 2]);

    // A third connection: a longer state, on which it traps. Every read
    // faults (each new instance is told the state first, and traps).
    engine
        .add_connection("even", "sqlite::memory:", PoolSettings::default())
        .await
        .unwrap();
    for _ in 0..3 {
        match engine.db_for_read(&user, &Hints::new()) {
            Err(Error::RouterFault {
                fault: Fault::Trap(_),
                router,
            }) => assert_eq!(router.name(), "state-trap"),
            other => panic!("expected a trap in the state call, got {other:?}"),
        }
    }
    let failed = engine
        .read_model(&user)
        .fetch_all("SELECT 1 AS one", &[])
        .await
        .unwrap_err();
    assert!(matches!(failed, Error::RouterFault { .. }), "{failed}");

    // The host is healthy: explicit connections work, health checks pass.
    let one: i64 = engine
        .read_model(&user)
        .using("even")
        .fetch_one("SELECT 1 AS one", &[])
        .await
        .unwrap()
        .get("one");
    assert_eq!(one, 1);
    let status = engine.check_health(Duration::from_secs(5)).await;
    assert!(status.iter().all(|s| s.health == Health::Healthy), "{status:?}");

    // Back to two connections: a short state again, and the router answers.
    engine.remove_connection("even").await.unwrap();
    assert_eq!(reads(&engine, 3), vec!["odd"; 3]);
    engine.close().await;
}
