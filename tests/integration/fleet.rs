//! A fleet following a router registry on real PostgreSQL: engines
//! converge on a rollout, a canary reaches the instances its hash selects,
//! bad input changes nothing, and the registry's server dying mid-rollout
//! fails no decision. Each test has a registry database of its own.

use std::time::{Duration, Instant};

use dbroute::registry::{Publication, RegistryClient, RegistryError, RolloutState, RouterRegistry};
use dbroute::wasm::RouterLimits;
use dbroute::{Engine, Error, Hints, ModelInfo};
use sha2::{Digest, Sha256};

use crate::pg_server::PgServer;
use crate::support::{TestDb, within};

const SCHEMA: &str = "dbroute_registry";

fn module(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("example router built")
}

/// Version 1: reads go to `replica`. Version 2: `User` has no opinion
/// (`default`), `Event` goes to `analytics`.
fn replica_router() -> Vec<u8> {
    module(dbroute_example_routers::REPLICA)
}

fn analytics_router() -> Vec<u8> {
    module(dbroute_example_routers::ANALYTICS)
}

fn user() -> ModelInfo {
    ModelInfo::new("User")
}

/// The connection a `User` read goes to: which version routes.
fn user_read(engine: &Engine) -> String {
    engine
        .db_for_read(&user(), &Hints::default())
        .unwrap_or_else(|e| panic!("a decision failed: {e}"))
        .to_string()
}

/// The canary bucket, computed here from its documented rule (SHA-256 of
/// the id, first 8 bytes big-endian, modulo 100), not by the library.
fn bucket(id: &str) -> u8 {
    let digest = Sha256::digest(id.as_bytes());
    (u64::from_be_bytes(digest[..8].try_into().unwrap()) % 100) as u8
}

async fn registry(url: &str) -> RegistryClient {
    let client = RegistryClient::connect(url, SCHEMA).await.expect("registry");
    client.init().await.expect("init");
    client
}

async fn publish(client: &RegistryClient, name: &str, bytes: Vec<u8>) -> i32 {
    client
        .publish(Publication::new(name, bytes).connections(["default", "replica", "analytics"]))
        .await
        .expect("publish")
}

/// An engine following the registry. Its routers' time budget is a second:
/// on this busy shared machine a call can be descheduled past the default
/// 50 ms, which is not what these tests are about.
async fn instance(url: &str, service: &str, id: &str) -> Engine {
    Engine::builder()
        .router_limits(RouterLimits::new().time_budget(Duration::from_secs(1)))
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .connection("analytics", "sqlite::memory:")
        .router_registry_with(
            RouterRegistry::new(url, service)
                .instance_id(id)
                .heartbeat_every(Duration::from_millis(200)),
        )
        .build()
        .await
        .expect("engine following the registry")
}

/// Waits until every engine runs `version`; returns how long it took.
async fn converged(engines: &[Engine], version: i32) -> Duration {
    let started = Instant::now();
    while !engines
        .iter()
        .all(|e| e.registry_status().and_then(|s| s.version) == Some(version))
    {
        if started.elapsed() > crate::support::STEP {
            let statuses: Vec<_> = engines.iter().map(Engine::registry_status).collect();
            panic!(
                "not all at version {version} after {:?}: {statuses:#?}",
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_engines_converge_on_each_rollout() {
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let v1 = publish(&client, "checkout", replica_router()).await;
    let v2 = publish(&client, "checkout", analytics_router()).await;
    assert_eq!((v1, v2), (1, 2));
    client.rollout("checkout", v1, 100).await.unwrap();
    let mut engines = Vec::new();
    for i in 0..8 {
        engines.push(instance(&db.url, "checkout", &format!("converge-{i}")).await);
    }
    // At start each loads the version it should run.
    for engine in &engines {
        assert_eq!(engine.registry_status().unwrap().version, Some(v1));
        assert_eq!(user_read(engine), "replica");
    }
    let mut times = Vec::new();
    for round in 0..10 {
        let version = if round % 2 == 0 { v2 } else { v1 };
        let started = Instant::now();
        client.rollout("checkout", version, 100).await.unwrap();
        converged(&engines, version).await;
        times.push(started.elapsed());
    }
    for engine in &engines {
        assert_eq!(user_read(engine), "replica", "version 1 routes again");
    }
    times.sort();
    println!(
        "rollout → all 8 instances running it: p50 {:?}, p99 {:?}, max {:?} over {} rollouts",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap(),
        times.len()
    );
    // Every instance reported itself, with the version it runs.
    within("heartbeats", async {
        loop {
            let fleet = client.fleet().await.unwrap();
            if fleet.instances.len() == 8 && fleet.instances.iter().all(|i| i.version == Some(v1)) {
                assert!(fleet.instances.iter().all(|i| i.last_error.is_none()));
                assert_eq!(fleet.rollouts[0].state, RolloutState::Complete);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_reaches_exactly_the_instances_the_hash_selects() {
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let v1 = publish(&client, "orders", replica_router()).await;
    let v2 = publish(&client, "orders", analytics_router()).await;
    client.rollout("orders", v1, 100).await.unwrap();
    let ids: Vec<String> = (0..12).map(|i| format!("orders-{i}")).collect();
    let chosen: Vec<bool> = ids.iter().map(|id| bucket(id) < 25).collect();
    // The test means something only with instances on both sides.
    assert!(chosen.iter().any(|c| *c) && chosen.iter().any(|c| !*c), "{chosen:?}");
    let mut engines = Vec::new();
    for id in &ids {
        engines.push(instance(&db.url, "orders", id).await);
    }
    let rollout = client.rollout("orders", v2, 25).await.unwrap();
    assert_eq!(rollout.state, RolloutState::Rolling);
    assert_eq!(rollout.previous_version, Some(v1));
    let canary: Vec<Engine> = engines
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| **c)
        .map(|(e, _)| e.clone())
        .collect();
    converged(&canary, v2).await;
    // Several heartbeats later (each re-reads the state), the others still
    // run version 1.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for ((engine, id), chosen) in engines.iter().zip(&ids).zip(&chosen) {
        let status = engine.registry_status().unwrap();
        assert_eq!(status.canary_bucket, bucket(id));
        let expected = if *chosen { v2 } else { v1 };
        assert_eq!(status.version, Some(expected), "{id} (bucket {})", bucket(id));
        assert_eq!(user_read(engine), if *chosen { "default" } else { "replica" });
    }
    // A rollback sends the canary back.
    let rolled = client.rollback("orders", "canary looked wrong").await.unwrap();
    assert_eq!(rolled.state, RolloutState::RolledBack);
    converged(&engines, v1).await;
    let fleet = client.fleet().await.unwrap();
    assert_eq!(fleet.rollouts[0].reason.as_deref(), Some("canary looked wrong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_and_changes_nothing() {
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let v1 = publish(&client, "billing", replica_router()).await;
    client.rollout("billing", v1, 100).await.unwrap();
    let engine = instance(&db.url, "billing", "billing-1").await;
    assert_eq!(engine.registry_status().unwrap().version, Some(v1));
    let latest = client.latest_rollout("billing").await.unwrap();

    for percent in [-1, 101] {
        let e = client.rollout("billing", v1, percent).await.unwrap_err();
        assert!(matches!(e, Error::Registry(RegistryError::Percent { .. })), "{e}");
        assert!(e.to_string().contains("0 to 100"), "{e}");
    }
    let e = client.rollout("billing", 7, 50).await.unwrap_err();
    assert!(
        matches!(&e, Error::Registry(RegistryError::UnknownVersion { version: 7, known, .. }) if known == &[1]),
        "{e}"
    );
    let e = client.rollout("nobody", 1, 50).await.unwrap_err();
    assert!(matches!(e, Error::Registry(RegistryError::UnknownRouter { .. })), "{e}");
    // A configuration the router refuses: nothing is published.
    let e = client
        .publish(
            Publication::new("billing", module(dbroute_example_routers::REFERENCE))
                .config(serde_json::json!({"tenants": "not a map"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RouterLoad { .. }), "{e}");
    let e = client
        .publish(Publication::new("billing", b"not wasm".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RouterLoad { .. }), "{e}");
    let e = client.fetch("billing", 2).await.unwrap_err();
    assert!(
        matches!(e, Error::Registry(RegistryError::UnknownVersion { .. })),
        "{e}"
    );
    assert_eq!(client.latest_rollout("billing").await.unwrap(), latest);

    // Bytes changed behind the registry's back: the instance refuses them,
    // reports why, and keeps routing with version 1.
    let v2 = publish(&client, "billing", analytics_router()).await;
    registry_execute(
        &db.url,
        "UPDATE routers SET module = module || '\\x00'::bytea WHERE version = 2",
    )
    .await;
    let e = client.fetch("billing", v2).await.unwrap_err();
    assert!(
        matches!(e, Error::Registry(RegistryError::ChecksumMismatch { .. })),
        "{e}"
    );
    client.rollout("billing", v2, 100).await.unwrap();
    let status = within("the refusal", async {
        loop {
            let status = engine.registry_status().unwrap();
            if status.last_error.is_some() {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(status.version, Some(v1));
    let error = status.last_error.unwrap();
    assert!(
        error.contains("version 2 refused") && error.contains("damaged"),
        "{error}"
    );
    assert_eq!(user_read(&engine), "replica");
    within("the refusal in the registry", async {
        while client.fleet().await.unwrap().instances[0].last_error.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Nothing to roll back twice.
    client.rollback("billing", "bad bytes").await.unwrap();
    let e = client.rollback("billing", "again").await.unwrap_err();
    assert!(
        matches!(e, Error::Registry(RegistryError::NothingToRollBack { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn a_registry_newer_than_the_engine_or_missing_is_refused_at_build() {
    let db = TestDb::postgres().await;
    let built = Engine::builder()
        .connection("default", "sqlite::memory:")
        .router_registry(&db.url, "svc")
        .build()
        .await;
    match built {
        Err(Error::Registry(RegistryError::NotInitialised { schema })) => assert_eq!(schema, SCHEMA),
        other => panic!("{other:?}"),
    }
    let client = registry(&db.url).await;
    assert_eq!(client.init().await.unwrap(), 1, "init twice is a no-op");
    registry_execute(
        &db.url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99, 'from the future', true, '\\x00'::bytea, 0)",
    )
    .await;
    let built = Engine::builder()
        .connection("default", "sqlite::memory:")
        .router_registry(&db.url, "svc")
        .build()
        .await;
    let e = built.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Registry(RegistryError::NewerSchema {
                found: 99,
                known: 1,
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade dbroute"), "{e}");
    assert!(matches!(
        client.init().await.unwrap_err(),
        Error::Registry(RegistryError::NewerSchema { .. })
    ));
    // A password in the URL never shows in an error.
    let e = Engine::builder()
        .connection("default", "sqlite::memory:")
        .router_registry("postgres://svc:hunter2@127.0.0.1:1/ops", "svc")
        .build()
        .await
        .unwrap_err();
    assert!(
        !e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"),
        "{e}"
    );
    let settings = RouterRegistry::new("postgres://svc:hunter2@127.0.0.1/ops", "svc");
    assert!(!format!("{settings:?} {client:?}").contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_killed_mid_rollout_fails_no_decision_and_the_fleet_converges_after() {
    let server = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let url = server.url("postgres");
    let client = registry(&url).await;
    let v1 = publish(&client, "search", replica_router()).await;
    let v2 = publish(&client, "search", analytics_router()).await;
    client.rollout("search", v1, 100).await.unwrap();
    let mut engines = Vec::new();
    for i in 0..4 {
        engines.push(instance(&url, "search", &format!("search-{i}")).await);
    }
    client.rollout("search", v2, 25).await.unwrap();
    // Decisions and queries all along, none may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = engines
        .iter()
        .cloned()
        .map(|engine| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = user_read(&engine);
                    assert!(name == "replica" || name == "default", "{name}");
                    engine
                        .read_model(&user())
                        .fetch_all("SELECT 1", &[])
                        .await
                        .expect("a query while the registry is down");
                    done += 1;
                    tokio::task::yield_now().await;
                }
                done
            })
        })
        .collect();
    server.kill().await;
    within("the instances seeing the registry gone", async {
        while engines.iter().any(|e| e.registry_status().unwrap().connected) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    // Completed at once: instances still reconnecting miss its NOTIFY and
    // must read the state again.
    let client = RegistryClient::connect(&url, SCHEMA).await.unwrap();
    client.rollout("search", v2, 100).await.unwrap();
    let took = converged(&engines, v2).await;
    println!("after the registry's restart, converged in {took:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        assert!(worker.await.expect("no failed decision or query") > 0);
    }
    for engine in &engines {
        let status = engine.registry_status().unwrap();
        assert!(status.connected, "{status:?}");
        assert_eq!(user_read(engine), "default");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_faults_is_given_up_and_its_rollout_marked_failed() {
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let v1 = publish(&client, "ledger", replica_router()).await;
    let faulty = std::fs::read(crate::support::fixture("routers/fault_trap.wat")).unwrap();
    let v2 = publish(&client, "ledger", faulty).await;
    client.rollout("ledger", v1, 100).await.unwrap();
    let mut engines = Vec::new();
    for i in 0..3 {
        let engine = Engine::builder()
            .router_limits(RouterLimits::new().time_budget(Duration::from_secs(1)))
            .connection("default", "sqlite::memory:")
            .connection("replica", "sqlite::memory:")
            .router_registry_with(
                // A heartbeat far longer than the test: the guard acts on
                // its own checks, and the fleet on the registry's NOTIFY.
                RouterRegistry::new(&db.url, "ledger")
                    .instance_id(format!("ledger-{i}"))
                    .heartbeat_every(Duration::from_secs(120))
                    .fault_guard(0.2, 10),
            )
            .build()
            .await
            .unwrap();
        engines.push(engine);
    }
    client.rollout("ledger", v2, 100).await.unwrap();
    converged(&engines, v2).await;
    // Version 2 answers most models, but traps on `Fault...`: on one
    // instance, 5 faults in 20 calls, above the 20% allowed.
    let faulty = ModelInfo::new("FaultyModel");
    for _ in 0..15 {
        assert_eq!(user_read(&engines[0]), "replica");
    }
    for _ in 0..5 {
        assert!(engines[0].db_for_read(&faulty, &Hints::default()).is_err());
    }
    // That instance gives it up, the rollout fails, the fleet goes back:
    // long before a heartbeat.
    let back = converged(&engines, v1).await;
    assert!(back < Duration::from_secs(10), "back after {back:?}");
    let rollout = client.latest_rollout("ledger").await.unwrap().unwrap();
    assert_eq!(rollout.state, RolloutState::Failed);
    let reason = rollout.reason.unwrap();
    assert!(
        reason.contains("ledger-0") && reason.contains("calls faulted"),
        "{reason}"
    );
    let status = engines[0].registry_status().unwrap();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("gave version 2 up")),
        "{status:?}"
    );
    // Below the rate, nothing happens: the others never faulted.
    assert!(engines[1].registry_status().unwrap().last_error.is_none());
    // The registry shows who gave it up and why.
    within("the reason in the registry", async {
        loop {
            let fleet = client.fleet().await.unwrap();
            let first = fleet.instances.iter().find(|i| i.instance_id == "ledger-0").unwrap();
            if first.version == Some(v1) && first.last_error.as_deref().is_some_and(|e| e.contains("faulted")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_services_read_only_role_follows_but_cannot_publish() {
    let role = Role::new();
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let v1 = publish(&client, "catalog", replica_router()).await;
    client.rollout("catalog", v1, 100).await.unwrap();
    let r = &role.0;
    for grant in [
        format!("GRANT USAGE ON SCHEMA {SCHEMA} TO {r}"),
        format!("GRANT SELECT ON routers, rollouts, _sqlx_migrations TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE ON instances TO {r}"),
        format!("GRANT UPDATE (state, reason, updated_at) ON rollouts TO {r}"),
    ] {
        registry_execute(&db.url, &grant).await;
    }
    let service_url = db.url.replace("postgres://postgres@", &format!("postgres://{r}@"));
    let engine = instance(&service_url, "catalog", "catalog-1").await;
    assert_eq!(engine.registry_status().unwrap().version, Some(v1));
    let service = RegistryClient::connect(&service_url, SCHEMA).await.unwrap();
    assert_eq!(service.fleet().await.unwrap().instances.len(), 1);
    let e = service
        .publish(Publication::new("catalog", replica_router()).connections(["default", "replica"]))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Registry(RegistryError::PermissionDenied { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("publisher role"), "{e}");
    let e = service.rollout("catalog", v1, 50).await.unwrap_err();
    assert!(
        matches!(e, Error::Registry(RegistryError::PermissionDenied { .. })),
        "{e}"
    );
    assert_eq!(client.latest_rollout("catalog").await.unwrap().unwrap().percent, 100);
    drop(engine);
}

/// A login role of this test's own, dropped afterwards (declare it before
/// the database it is granted on: that is dropped first).
struct Role(String);

impl Role {
    fn new() -> Role {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("fleet_svc_{}_{nanos}", std::process::id());
        let sql = format!("CREATE ROLE {name} LOGIN");
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(crate::support::admin_execute(dbroute::Backend::Postgres, &sql));
        })
        .join()
        .unwrap();
        Role(name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let sql = format!("DROP ROLE IF EXISTS {}", self.0);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(crate::support::admin_execute(dbroute::Backend::Postgres, &sql));
        })
        .join();
    }
}

/// Runs one statement in the registry's schema.
async fn registry_execute(url: &str, sql: &str) {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url).await.expect("registry");
    sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {SCHEMA}")))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .expect("registry statement");
}

/// The `dbroute_router_info` samples of a Prometheus page: labels → value.
fn router_info(page: &str) -> Vec<(std::collections::BTreeMap<String, String>, f64)> {
    page.lines()
        .filter_map(|line| line.strip_prefix("dbroute_router_info{"))
        .map(|rest| {
            let (labels, value) = rest.rsplit_once("} ").expect("a sample");
            let labels = labels
                .split(',')
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            (labels, value.parse().expect("a number"))
        })
        .collect()
}

/// The dashboards' view of a rollout: the info gauge is 1 for the version
/// an instance runs (its SHA-256 and rollout state as labels) and 0 for the
/// one it ran before. The recorder is this thread's (a current-thread
/// runtime: the follower's task runs here too).
#[tokio::test(flavor = "current_thread")]
async fn the_info_gauge_shows_what_each_instance_runs_and_ran() {
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let (first, second) = (replica_router(), analytics_router());
    let sha = |bytes: &[u8]| format!("{:x}", Sha256::digest(bytes));
    let (sha1, sha2) = (sha(&first), sha(&second));
    let v1 = publish(&client, "gauged", first).await;
    let v2 = publish(&client, "gauged", second).await;
    client.rollout("gauged", v1, 100).await.unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let page = recorder.handle();
    let _installed = metrics::set_default_local_recorder(&recorder);
    let engine = instance(&db.url, "gauged", "gauged-1").await;

    let expected = |version: i32, sha256: &str, state: &str| {
        [
            ("instance", "gauged-1"),
            ("rollout_state", state),
            ("router", "gauged"),
            ("service", "gauged"),
            ("sha256", sha256),
            ("version", &version.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(router_info(&page.render()), [(expected(v1, &sha1, "complete"), 1.0)]);

    client.rollout("gauged", v2, 100).await.unwrap();
    converged(std::slice::from_ref(&engine), v2).await;
    let mut samples = router_info(&page.render());
    samples.sort_by(|a, b| a.0["version"].cmp(&b.0["version"]));
    assert_eq!(
        samples,
        [
            (expected(v1, &sha1, "complete"), 0.0),
            (expected(v2, &sha2, "complete"), 1.0),
        ]
    );

    // Rolled back: the state shows it, on the version it went back to.
    client.rollback("gauged", "dashboards test").await.unwrap();
    converged(std::slice::from_ref(&engine), v1).await;
    let now: Vec<_> = router_info(&page.render())
        .into_iter()
        .filter(|(_, value)| *value == 1.0)
        .collect();
    assert_eq!(now, [(expected(v1, &sha1, "rolled_back"), 1.0)]);
    engine.close().await;
}

/// A version an instance refused to load (its `dbroute_init` wants a
/// connection the instance lacks) is tried again after ten heartbeats, not
/// at every one: once the connection exists, the instance takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_version_is_tried_again_after_ten_heartbeats() {
    let db = TestDb::postgres().await;
    let client = registry(&db.url).await;
    let v1 = publish(&client, "retry", analytics_router()).await;
    let v2 = client
        .publish(
            Publication::new("retry", module(dbroute_example_routers::ROUND_ROBIN))
                .config(serde_json::json!({"replicas": ["replica1"]}))
                .connections(["default", "replica1"]),
        )
        .await
        .unwrap();
    client.rollout("retry", v1, 100).await.unwrap();
    let heartbeat = Duration::from_millis(50);
    let engine = Engine::builder()
        .router_limits(RouterLimits::new().time_budget(Duration::from_secs(1)))
        .connection("default", "sqlite::memory:")
        .router_registry_with(
            RouterRegistry::new(&db.url, "retry")
                .instance_id("retry-1")
                .heartbeat_every(heartbeat),
        )
        .build()
        .await
        .unwrap();
    assert_eq!(user_read(&engine), "default");

    client.rollout("retry", v2, 100).await.unwrap();
    let error = within("the refusal", async {
        loop {
            if let Some(error) = engine.registry_status().unwrap().last_error {
                break error;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let refused_at = Instant::now();
    assert!(
        error.contains("version 2 refused") && error.contains("\"replica1\" is not a registered connection"),
        "{error}"
    );
    assert_eq!(engine.registry_status().unwrap().version, Some(v1));
    assert_eq!(user_read(&engine), "default");

    engine
        .add_connection("replica1", "sqlite::memory:", dbroute::PoolSettings::default())
        .await
        .unwrap();
    converged(std::slice::from_ref(&engine), v2).await;
    // Not before ten heartbeats (500 ms; a little less counted from when
    // the refusal was seen here), or a module that cannot load would be
    // compiled again every heartbeat.
    let waited = refused_at.elapsed();
    assert!(waited >= heartbeat * 8, "tried again after {waited:?}");
    assert_eq!(user_read(&engine), "replica1");
    assert!(engine.registry_status().unwrap().last_error.is_none());
    engine.close().await;
}

/// The fault guard needs no registry: with the registry's server killed,
/// an instance whose new version faults goes back at once to the version
/// it ran before (kept loaded), and marks the rollout failed once the
/// registry is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_guard_goes_back_while_the_registry_is_down() {
    let server = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let url = server.url("postgres");
    let client = registry(&url).await;
    let v1 = publish(&client, "orders", replica_router()).await;
    let faulty = std::fs::read(crate::support::fixture("routers/fault_trap.wat")).unwrap();
    let v2 = publish(&client, "orders", faulty).await;
    client.rollout("orders", v1, 100).await.unwrap();
    let engine = Engine::builder()
        .router_limits(RouterLimits::new().time_budget(Duration::from_secs(1)))
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .router_registry_with(
            RouterRegistry::new(&url, "orders")
                .instance_id("orders-1")
                .heartbeat_every(Duration::from_secs(120))
                .fault_guard(0.2, 10),
        )
        .build()
        .await
        .unwrap();
    client.rollout("orders", v2, 100).await.unwrap();
    converged(std::slice::from_ref(&engine), v2).await;
    drop(client);

    server.kill().await;
    let faulty = ModelInfo::new("FaultyModel");
    for _ in 0..5 {
        assert_eq!(user_read(&engine), "replica");
    }
    for _ in 0..5 {
        assert!(engine.db_for_read(&faulty, &Hints::default()).is_err());
    }
    // Back on version 1 with the registry still down: it was kept loaded.
    let back = converged(std::slice::from_ref(&engine), v1).await;
    assert!(back < Duration::from_secs(5), "back after {back:?}");
    assert_eq!(user_read(&engine), "replica");
    assert!(engine.db_for_read(&faulty, &Hints::default()).is_ok());

    // Once the registry is back, the rollout is marked failed.
    server.restart().await;
    let client = RegistryClient::connect(&url, SCHEMA).await.unwrap();
    let rollout = within("the rollout marked failed", async {
        loop {
            let rollout = client.latest_rollout("orders").await.unwrap().unwrap();
            if rollout.state == RolloutState::Failed {
                break rollout;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(rollout.reason.unwrap().contains("orders-1 gave version 2 up"));
    assert_eq!(engine.registry_status().unwrap().version, Some(v1));
    engine.close().await;
}
