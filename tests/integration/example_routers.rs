//! The example routers (Rust, built with dbroute-sdk for wasm32), through
//! the host against real databases: their decisions, and that the rows land
//! where they said.

use std::collections::BTreeMap;

use dbroute::wasm::{Compilation, RouterSource, WasmRouter};
use dbroute::{Engine, Error, Hints, ModelInfo, params, sqlx::AssertSqlSafe};
use serde_json::json;

use crate::support::TestDb;

/// An engine with one database per name (the first is the default), each
/// with a `notes` table, and the example router `path` active.
async fn engine_with(dbs: &[(&str, &TestDb)], router: &str, path: &str, config: serde_json::Value) -> Engine {
    let mut builder = Engine::builder();
    for (name, db) in dbs {
        builder = builder.connection(*name, &db.url);
    }
    let engine = builder.build().await.unwrap();
    for (name, _) in dbs {
        engine
            .connection(name)
            .unwrap()
            .execute("CREATE TABLE notes (model VARCHAR(40), note VARCHAR(80))", &[])
            .await
            .unwrap();
    }
    // Baseline code only: no move to optimized code replaces the instances
    // mid-test (the round-robin router's turns are per instance).
    let router = engine
        .load_router(
            WasmRouter::named(router)
                .config(config)
                .compilation(Compilation::Baseline),
            RouterSource::File(path.into()),
        )
        .unwrap();
    engine.set_router(router);
    engine
}

/// Writes a row for `model` through the router; returns where it went.
async fn routed_write(engine: &Engine, model: &ModelInfo, hints: &Hints, note: &str) -> Result<String, Error> {
    let conn = engine.write_model(model).hints(hints).connection()?;
    let sql = format!(
        "INSERT INTO notes (model, note) VALUES ({}, {})",
        conn.backend().placeholder(1),
        conn.backend().placeholder(2)
    );
    conn.execute(AssertSqlSafe(sql), &params![model.name(), note]).await?;
    Ok(conn.name().to_string())
}

/// For each `(model, connection, note)`: a write of `note` for `model` goes
/// to `connection`, so does a read, and afterwards each connection holds
/// exactly the notes written to it.
async fn writes_and_reads_land(engine: &Engine, cases: &[(&ModelInfo, &str, &str)]) {
    for (model, connection, note) in cases {
        assert_eq!(
            routed_write(engine, model, &Hints::new(), note).await.unwrap(),
            *connection,
            "write of {}",
            model.name()
        );
        assert_eq!(
            engine.db_for_read(model, &Hints::new()).unwrap(),
            *connection,
            "read of {}",
            model.name()
        );
    }
    let mut expected: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, connection, note) in cases {
        expected.entry(connection).or_default().push(note);
    }
    let notes = notes(engine).await;
    for (connection, mut written) in expected {
        written.sort_unstable();
        assert_eq!(notes[connection], written, "notes on {connection}");
    }
}

/// The notes stored on each connection.
async fn notes(engine: &Engine) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for name in engine.connection_names() {
        let rows = engine
            .connection(name.as_str())
            .unwrap()
            .fetch_all("SELECT note FROM notes ORDER BY note", &[])
            .await
            .unwrap();
        out.insert(
            name.to_string(),
            rows.iter().map(|r| r.get::<String, _>("note")).collect(),
        );
    }
    out
}

#[tokio::test]
async fn replica_reads_from_the_replica_and_writes_to_the_primary() {
    let (primary, replica) = (TestDb::postgres().await, TestDb::postgres().await);
    let engine = engine_with(
        &[("default", &primary), ("replica", &replica)],
        "replica",
        dbroute_example_routers::REPLICA,
        json!(null),
    )
    .await;
    let user = ModelInfo::new("User");
    assert_eq!(
        routed_write(&engine, &user, &Hints::new(), "written").await.unwrap(),
        "default"
    );
    engine
        .connection("replica")
        .unwrap()
        .execute("INSERT INTO notes VALUES ('User', 'replicated')", &[])
        .await
        .unwrap();
    let read = engine
        .read_model(&user)
        .fetch_all("SELECT note FROM notes", &[])
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>(),
        ["replicated"]
    );
    let notes = notes(&engine).await;
    assert_eq!(notes["default"], ["written"]);
    assert_eq!(notes["replica"], ["replicated"]);
}

#[tokio::test]
async fn analytics_keeps_events_in_their_own_database() {
    let (main, events) = (TestDb::postgres().await, TestDb::mysql().await);
    let engine = engine_with(
        &[("default", &main), ("analytics", &events)],
        "analytics",
        dbroute_example_routers::ANALYTICS,
        json!(null),
    )
    .await;
    let (event, user) = (ModelInfo::new("Event"), ModelInfo::new("User"));
    writes_and_reads_land(&engine, &[(&event, "analytics", "clicked"), (&user, "default", "ada")]).await;
}

#[tokio::test]
async fn app_sends_each_apps_models_to_the_connection_named_after_it() {
    // The answer is borrowed from the input (the model's `app`): the host
    // reads it where it is.
    let (main, billing) = (TestDb::sqlite(), TestDb::postgres().await);
    let engine = engine_with(
        &[("default", &main), ("billing", &billing)],
        "app",
        dbroute_example_routers::APP,
        json!(null),
    )
    .await;
    let invoice = ModelInfo::new("Invoice").with_app("billing");
    let user = ModelInfo::new("User").with_app("auth");
    writes_and_reads_land(&engine, &[(&invoice, "billing", "paid"), (&user, "default", "ada")]).await;
}

#[tokio::test]
async fn cache_puts_snapshots_in_sqlite_beside_postgres() {
    let (main, cache) = (TestDb::postgres().await, TestDb::sqlite());
    let engine = engine_with(
        &[("default", &main), ("cache", &cache)],
        "cache",
        dbroute_example_routers::CACHE,
        json!(null),
    )
    .await;
    let (snapshot, user) = (ModelInfo::new("Snapshot"), ModelInfo::new("User"));
    writes_and_reads_land(&engine, &[(&snapshot, "cache", "snap"), (&user, "default", "ada")]).await;
    assert_eq!(engine.connection("cache").unwrap().backend(), dbroute::Backend::Sqlite);
    let hints = Hints::new();
    assert!(engine.allow_migrate("cache", &snapshot, &hints).unwrap());
    assert!(!engine.allow_migrate("default", &snapshot, &hints).unwrap());
    assert!(!engine.allow_migrate("cache", &user, &hints).unwrap());
    assert!(engine.allow_migrate("default", &user, &hints).unwrap());
}

#[tokio::test]
async fn tenant_routes_by_the_tenant_hint_and_guards_read_only_models() {
    let (main, acme, globex) = (TestDb::sqlite(), TestDb::postgres().await, TestDb::sqlite());
    let engine = engine_with(
        &[("default", &main), ("tenant_acme", &acme), ("tenant_globex", &globex)],
        "tenant",
        dbroute_example_routers::TENANT,
        json!({"tenants": {"acme": "tenant_acme", "globex": "tenant_globex"}}),
    )
    .await;
    let invoice = ModelInfo::new("Invoice");
    let acme_hints = Hints::new().with("tenant", "acme");
    let globex_hints = Hints::new().with("tenant", "globex");
    assert_eq!(
        routed_write(&engine, &invoice, &acme_hints, "a1").await.unwrap(),
        "tenant_acme"
    );
    assert_eq!(
        routed_write(&engine, &invoice, &globex_hints, "g1").await.unwrap(),
        "tenant_globex"
    );
    assert_eq!(
        routed_write(&engine, &invoice, &Hints::new(), "none").await.unwrap(),
        "default"
    );
    // An unknown tenant is refused, with the router's message.
    let err = routed_write(&engine, &invoice, &Hints::new().with("tenant", "initech"), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RouterRefused { .. }), "{err}");
    assert!(err.to_string().contains("initech"), "{err}");
    // Writes to read-only models are refused; reads are fine.
    let ledger = ModelInfo::new("Ledger").with_tags(["readonly"]);
    let err = routed_write(&engine, &ledger, &acme_hints, "x").await.unwrap_err();
    assert!(matches!(err, Error::RouterRefused { .. }), "{err}");
    assert_eq!(engine.db_for_read(&ledger, &acme_hints).unwrap(), "tenant_acme");
    let notes = notes(&engine).await;
    assert_eq!(notes["tenant_acme"], ["a1"]);
    assert_eq!(notes["tenant_globex"], ["g1"]);
    assert_eq!(notes["default"], ["none"]);
}

#[tokio::test]
async fn round_robin_spreads_reads_over_its_replicas() {
    let (main, r1, r2) = (TestDb::sqlite(), TestDb::sqlite(), TestDb::sqlite());
    let engine = engine_with(
        &[("default", &main), ("r1", &r1), ("r2", &r2)],
        "round-robin",
        dbroute_example_routers::ROUND_ROBIN,
        json!({"replicas": ["r1", "r2"]}),
    )
    .await;
    let user = ModelInfo::new("User");
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        *seen
            .entry(engine.db_for_read(&user, &Hints::new()).unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(seen, BTreeMap::from([("r1".to_string(), 5), ("r2".to_string(), 5)]));
    assert_eq!(engine.db_for_write(&user, &Hints::new()).unwrap(), "default");

    // Its init refuses a replica that is not a registered connection.
    let err = engine
        .load_router(
            WasmRouter::named("round-robin").config(json!({"replicas": ["r1", "r9"]})),
            RouterSource::File(dbroute_example_routers::ROUND_ROBIN.into()),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RouterLoad {
                reason: dbroute::wasm::LoadError::InitRefused(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("r9"), "{err}");
}
