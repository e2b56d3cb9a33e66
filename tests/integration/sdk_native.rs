//! Routers written with `dbroute-sdk`, run natively through `SdkRouter`:
//! the reference router's crate answers every case of the conformance
//! table as its WebAssembly build does; a panic fails only its own call;
//! calls from many threads share a few instances; init refusals are load
//! errors; new connections re-initialise the instances; and a router given
//! to `EngineBuilder::add_router` routes real rows on SQLite.

use std::sync::atomic::{AtomicUsize, Ordering};

use dbroute::router::{
    Fault, HostRouter, MigrateRequest, RelationRequest, RelationSide, RouteDecision, RouteKind, RouteRequest,
    RouterIdentity, SdkRouter,
};
use dbroute::sqlx::AssertSqlSafe;
use dbroute::wasm::{Compilation, LoadError, RouterRuntime, WasmRouter};
use dbroute::{ConnectionName, Engine, Error, Hints, ModelInfo, params};
use dbroute_example_routers as routers;
use dbroute_router_reference::ReferenceRouter;
use dbroute_sdk as sdk;

use crate::conformance::{self, Case, Expected};
use crate::support::reference_connections;

/// The reference router's WebAssembly build, on baseline code, for `case`.
fn wasm_reference(runtime: &RouterRuntime, connections: &[String], case: &Case) -> dbroute::Result<WasmRouter> {
    WasmRouter::named("reference")
        .config(case.config.clone())
        .connections(connections)
        .compilation(Compilation::Baseline)
        .load_file(runtime, routers::REFERENCE)
}

/// The reference router's crate, run natively, for `case`.
fn native_reference(connections: &[String], case: &Case) -> dbroute::Result<SdkRouter<ReferenceRouter>> {
    SdkRouter::<ReferenceRouter>::builder("reference")
        .config(case.config.clone())
        .connections(connections)
        .build()
}

fn op<'a>(kind: RouteKind, model: &'a ModelInfo, hints: &'a Hints) -> RouteRequest<'a> {
    RouteRequest {
        kind,
        model,
        hints,
        origin: None,
    }
}

fn decide(router: &dyn HostRouter, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
    match op.kind {
        RouteKind::Read => router.db_for_read(op),
        RouteKind::Write => router.db_for_write(op),
    }
}

fn name(name: &str) -> ConnectionName {
    ConnectionName::new(name).expect("a connection name")
}

/// Every case of `example-routers/reference-cases.json`: the same load
/// error, or the same answers to reads and writes (each asked twice: the
/// second time the Wasm build's answer comes from its cache, the native
/// one's from a reused instance), to `allow_migrate` on every connection
/// and to `allow_relation` between them. The native answers are also the
/// table's.
#[test]
fn the_reference_router_answers_natively_as_its_wasm_build_does() {
    let table = conformance::table();
    let runtime = RouterRuntime::new(conformance::limits()).expect("router runtime");
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &table.cases {
        let mut fail = |what: String| failures.push(format!("{}: {what}", case.name));
        let wasm = wasm_reference(&runtime, &table.connections, case);
        let native = native_reference(&table.connections, case);
        let (wasm, native) = match (wasm, native) {
            (Ok(wasm), Ok(native)) => (wasm, native),
            (Err(wasm), Err(native)) => {
                // The same error, message included; and the table's.
                if wasm.to_string() != native.to_string() {
                    fail(format!("load: Wasm {wasm}, native {native}"));
                }
                match (&case.init, native) {
                    (
                        Some(expected),
                        Error::RouterLoad {
                            reason: LoadError::InitRefused(message),
                            ..
                        },
                    ) if message == expected.refused => {}
                    (expected, got) => fail(format!("load: expected {expected:?}, got {got}")),
                }
                compared += 1;
                continue;
            }
            (wasm, native) => {
                fail(format!(
                    "load: Wasm {:?}, native {:?}",
                    wasm.map(|r| r.identity()),
                    native.map(|r| r.identity())
                ));
                continue;
            }
        };
        if case.init.is_some() {
            fail("loaded, but the table expects its init to refuse".into());
        }
        assert_eq!(native.identity(), RouterIdentity::native("reference"));
        let (model, hints) = (case.model(), case.hints());
        for kind in [RouteKind::Read, RouteKind::Write] {
            let op = op(kind, &model, &hints);
            for call in 1..=2 {
                let (from_wasm, from_native) = (decide(&wasm, &op), decide(&native, &op));
                if from_wasm != from_native {
                    fail(format!(
                        "{kind} (call {call}): Wasm {from_wasm:?}, native {from_native:?}"
                    ));
                }
                let expected = match case.expected(kind) {
                    Expected::Use(db) => RouteDecision::Use(name(db)),
                    Expected::Refused(r) => RouteDecision::Refuse(r.refused.clone()),
                };
                if from_native.as_ref() != Ok(&expected) {
                    fail(format!(
                        "{kind} (call {call}): expected {expected:?}, got {from_native:?}"
                    ));
                }
            }
        }
        let dbs: Vec<ConnectionName> = table.connections.iter().map(|db| name(db)).collect();
        for &db in &dbs {
            let migration = MigrateRequest {
                db,
                target: dbroute::router::MigrateTarget::Model(&model),
                hints: &hints,
            };
            let (from_wasm, from_native) = (wasm.allow_migrate(&migration), native.allow_migrate(&migration));
            if from_wasm != from_native {
                fail(format!(
                    "allow_migrate on {db}: Wasm {from_wasm:?}, native {from_native:?}"
                ));
            }
            if let Some(expected) = case.migrate.get(db.as_str())
                && from_native.as_ref() != Ok(expected)
            {
                fail(format!(
                    "allow_migrate on {db}: expected {expected:?}, got {from_native:?}"
                ));
            }
            let other = ModelInfo::new("Author");
            let relation = RelationRequest {
                a: RelationSide {
                    model: &model,
                    db: Some(db),
                },
                b: RelationSide {
                    model: &other,
                    db: Some(dbs[0]),
                },
                hints: &hints,
            };
            let (from_wasm, from_native) = (wasm.allow_relation(&relation), native.allow_relation(&relation));
            if from_wasm != from_native {
                fail(format!(
                    "allow_relation with {db}: Wasm {from_wasm:?}, native {from_native:?}"
                ));
            }
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(compared, table.cases.len());
}

/// Reads of `Boom` panic; reads of `Count` go to the connection named
/// after how many calls this instance has answered (`call1`, `call2`...),
/// which tells instances apart; anything else goes to `default`.
#[derive(Debug, Default)]
struct Flaky {
    calls: u32,
}

impl sdk::Router for Flaky {
    fn db_for_read<'a>(&'a mut self, op: &'a sdk::Operation<'_>) -> sdk::Decision<'a> {
        self.calls += 1;
        match op.model().name() {
            "Boom" => panic!("boom at call {}", self.calls),
            "Count" => sdk::Decision::use_connection(format!("call{}", self.calls)),
            _ => sdk::Decision::use_connection("default"),
        }
    }

    fn allow_migrate(&mut self, m: &sdk::Migration<'_>) -> Option<bool> {
        if m.model().is_some_and(|model| model.name() == "Boom") {
            panic!("boom in allow_migrate");
        }
        None
    }
}

fn read(router: &dyn HostRouter, model: &str) -> Result<RouteDecision, Fault> {
    let model = ModelInfo::new(model);
    router.db_for_read(&op(RouteKind::Read, &model, &Hints::new()))
}

#[test]
fn a_panic_fails_its_call_drops_its_instance_and_the_next_call_works() {
    let router = SdkRouter::<Flaky>::builder("flaky")
        .connections(["default"])
        .build()
        .expect("loads");
    assert_eq!(router.idle_instances(), 1, "the instance the load made");
    assert_eq!(read(&router, "Count"), Ok(RouteDecision::Use(name("call1"))));
    assert_eq!(read(&router, "Count"), Ok(RouteDecision::Use(name("call2"))));
    match read(&router, "Boom") {
        Err(Fault::Panic(message)) => {
            assert!(message.starts_with("boom at call 3 "), "{message}");
            assert!(message.contains("Flaky"), "names the router type: {message}");
            assert!(message.contains("run natively"), "{message}");
        }
        other => panic!("expected a panic fault, got {other:?}"),
    }
    assert_eq!(router.idle_instances(), 0, "the instance that panicked is gone");
    // A new instance answers: its count starts again.
    assert_eq!(read(&router, "Count"), Ok(RouteDecision::Use(name("call1"))));
    assert_eq!(router.idle_instances(), 1);
    // allow_migrate too.
    let boom = ModelInfo::new("Boom");
    let migration = MigrateRequest {
        db: ConnectionName::DEFAULT,
        target: dbroute::router::MigrateTarget::Model(&boom),
        hints: &Hints::new(),
    };
    assert!(matches!(router.allow_migrate(&migration), Err(Fault::Panic(m)) if m.starts_with("boom in allow_migrate")));
    assert_eq!(read(&router, "User"), Ok(RouteDecision::Use(ConnectionName::DEFAULT)));
}

#[tokio::test]
async fn a_panic_is_a_router_fault_through_the_engine() {
    let router = SdkRouter::<Flaky>::builder("flaky")
        .connections(["default"])
        .build()
        .expect("loads");
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .add_router(router)
        .build()
        .await
        .expect("engine");
    let err = engine
        .db_for_read(&ModelInfo::new("Boom"), &Hints::new())
        .expect_err("the router panicked");
    assert!(
        matches!(&err, Error::RouterFault { router, fault: Fault::Panic(_) } if router.name() == "flaky"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("router `flaky` (native) failed: it panicked: boom at call 1"),
        "{message}"
    );
    assert_eq!(
        engine
            .db_for_read(&ModelInfo::new("User"), &Hints::new())
            .expect("routes"),
        "default"
    );
}

/// Answers whatever name the `answer` hint holds.
#[derive(Debug, Default)]
struct Echo;

impl sdk::Router for Echo {
    fn db_for_read<'a>(&'a mut self, op: &'a sdk::Operation<'_>) -> sdk::Decision<'a> {
        match op.hint("answer").and_then(|v| v.as_str()) {
            Some(answer) => sdk::Decision::use_connection(answer.into_owned()),
            None => sdk::Decision::no_opinion(),
        }
    }
}

#[tokio::test]
async fn malformed_and_unknown_names_fail_as_a_modules_do() {
    let router = SdkRouter::<Echo>::builder("echo")
        .connections(["default"])
        .build()
        .expect("loads");
    let ask = |answer: &str| {
        let model = ModelInfo::new("User");
        let hints = Hints::new().with("answer", answer);
        router.db_for_read(&op(RouteKind::Read, &model, &hints))
    };
    assert!(matches!(ask("not valid"), Err(Fault::MalformedName { name, .. }) if name == "not valid"));
    assert!(matches!(ask(""), Err(Fault::MalformedName { .. })));
    assert!(
        matches!(ask(&"x".repeat(100)), Err(Fault::MalformedName { reason, .. }) if reason.contains("longer than 64"))
    );
    // A faulty answer drops the instance, as a fault does in a module.
    assert_eq!(router.idle_instances(), 0);
    assert_eq!(ask("default"), Ok(RouteDecision::Use(ConnectionName::DEFAULT)));

    // A well-formed name that is not registered: the engine's error.
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .add_router(router.clone())
        .build()
        .await
        .expect("engine");
    let err = engine
        .db_for_read(&ModelInfo::new("User"), &Hints::new().with("answer", "nowhere"))
        .expect_err("not registered");
    assert!(
        matches!(&err, Error::UnknownConnection { name, .. } if name == "nowhere"),
        "{err:?}"
    );
}

/// Panics in its init.
#[derive(Debug, Default)]
struct PanicsAtInit;

impl sdk::Router for PanicsAtInit {
    fn init(&mut self, _: &sdk::Config<'_>, _: &sdk::Connections<'_>) -> Result<(), String> {
        panic!("no init today");
    }

    fn db_for_read<'a>(&'a mut self, _: &'a sdk::Operation<'_>) -> sdk::Decision<'a> {
        sdk::Decision::no_opinion()
    }
}

#[tokio::test]
async fn an_init_refusal_is_a_clear_load_error() {
    let engine = reference_connections().build().await.expect("engine");
    let refused = SdkRouter::<ReferenceRouter>::builder("reference")
        .config(serde_json::json!({"tenants": ["acme"]}))
        .build_for(&engine)
        .expect_err("the configuration is refused");
    assert!(
        matches!(&refused, Error::RouterLoad { router, reason: LoadError::InitRefused(message) }
            if router == "reference" && message == "config.tenants must be an object whose values are strings"),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "router `reference` refused at load: its init refused: config.tenants must be an object whose values are strings"
    );

    let panicked = SdkRouter::<PanicsAtInit>::builder("panics")
        .build()
        .expect_err("init panicked");
    assert!(
        matches!(&panicked, Error::RouterLoad { reason: LoadError::InitFault(Fault::Panic(message)), .. }
            if message.starts_with("no init today")),
        "{panicked:?}"
    );

    let invalid = SdkRouter::<ReferenceRouter>::builder("reference")
        .connections(["not valid"])
        .build()
        .expect_err("an invalid connection name");
    assert!(matches!(invalid, Error::InvalidName { .. }), "{invalid:?}");
}

/// Counts the instances made (its `Default` runs once per instance), and
/// answers the reference policy's reads.
#[derive(Debug)]
struct Counted;

static COUNTED_MADE: AtomicUsize = AtomicUsize::new(0);

impl Default for Counted {
    fn default() -> Self {
        COUNTED_MADE.fetch_add(1, Ordering::Relaxed);
        Counted
    }
}

impl sdk::Router for Counted {
    fn db_for_read<'a>(&'a mut self, op: &'a sdk::Operation<'_>) -> sdk::Decision<'a> {
        match op.hint("tenant").and_then(|t| t.as_str()) {
            Some(tenant) => sdk::Decision::use_connection(format!("tenant_{tenant}")),
            None => sdk::Decision::use_connection(op.model().name().to_lowercase()),
        }
    }
}

/// Eight threads, each asking thousands of questions with answers of its
/// own: every answer is right, and the instances are reused (at most one
/// per thread is ever made).
#[test]
fn calls_from_many_threads_answer_right_and_share_instances() {
    const THREADS: usize = 8;
    const CALLS: usize = 2_000;
    let reference = SdkRouter::<ReferenceRouter>::builder("reference")
        .config(serde_json::json!({"tenants": {"acme": "tenant_acme", "globex": "tenant_globex"}}))
        .connections(["default", "replica", "analytics", "tenant_acme", "tenant_globex"])
        .build()
        .expect("loads");
    let counted = SdkRouter::<Counted>::builder("counted").build().expect("loads");
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (reference, counted) = (&reference, &counted);
            scope.spawn(move || {
                let tenant = if thread % 2 == 0 { "acme" } else { "globex" };
                let with_tenant = Hints::new().with("tenant", tenant);
                let own = Hints::new().with("tenant", format!("t{thread}"));
                let user = ModelInfo::new("User");
                let event = ModelInfo::new("Event");
                let rate = ModelInfo::new("Rate").with_tags(["readonly"]);
                let model = ModelInfo::new(format!("Model{thread}"));
                let none = Hints::new();
                let questions = [
                    (op(RouteKind::Read, &user, &none), RouteDecision::Use(name("replica"))),
                    (
                        op(RouteKind::Read, &event, &none),
                        RouteDecision::Use(name("analytics")),
                    ),
                    (
                        op(RouteKind::Write, &user, &none),
                        RouteDecision::Use(ConnectionName::DEFAULT),
                    ),
                    (
                        op(RouteKind::Write, &user, &with_tenant),
                        RouteDecision::Use(name(&format!("tenant_{tenant}"))),
                    ),
                    (
                        op(RouteKind::Write, &rate, &with_tenant),
                        RouteDecision::Refuse("writes to read-only model Rate are forbidden".into()),
                    ),
                ];
                for call in 0..CALLS {
                    let (question, expected) = &questions[call % questions.len()];
                    assert_eq!(decide(reference, question).as_ref(), Ok(expected), "thread {thread}");
                    let (model_answer, tenant_answer) = (
                        decide(counted, &op(RouteKind::Read, &model, &none)),
                        decide(counted, &op(RouteKind::Read, &model, &own)),
                    );
                    assert_eq!(model_answer, Ok(RouteDecision::Use(name(&format!("model{thread}")))));
                    assert_eq!(
                        tenant_answer,
                        Ok(RouteDecision::Use(name(&format!("tenant_t{thread}"))))
                    );
                }
            });
        }
    });
    // An instance is made only when every one made is busy in another
    // thread, and none is dropped: never more than one per thread.
    let made = COUNTED_MADE.load(Ordering::Relaxed);
    assert!((1..=THREADS).contains(&made), "{made} instances made");
    assert_eq!(counted.idle_instances(), made);
    assert!((1..=THREADS).contains(&reference.idle_instances()));
}

/// Sends a model whose app has a connection of that name there (the
/// example `app` router's policy): its answers depend on the connections
/// its init was told about.
#[derive(Debug, Default)]
struct AppRouter {
    connections: Vec<String>,
}

impl sdk::Router for AppRouter {
    fn init(&mut self, _: &sdk::Config<'_>, connections: &sdk::Connections<'_>) -> Result<(), String> {
        self.connections = connections.iter().map(|c| c.into_owned()).collect();
        Ok(())
    }

    fn db_for_read<'a>(&'a mut self, op: &'a sdk::Operation<'_>) -> sdk::Decision<'a> {
        match op.model().app() {
            Some(app) if self.connections.iter().any(|c| c == app) => sdk::Decision::use_connection(app),
            _ => sdk::Decision::no_opinion(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_reinitialise_the_instances() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .build()
        .await
        .expect("engine");
    let router = SdkRouter::<AppRouter>::builder("app")
        .build_for(&engine)
        .expect("loads");
    engine.set_router(router.clone());
    let invoice = ModelInfo::new("Invoice").with_app("billing");
    assert_eq!(engine.db_for_read(&invoice, &Hints::new()).expect("routes"), "default");
    engine
        .add_connection("billing", "sqlite::memory:", Default::default())
        .await
        .expect("added");
    assert_eq!(engine.db_for_read(&invoice, &Hints::new()).expect("routes"), "billing");
    engine.remove_connection("billing").await.expect("removed");
    assert_eq!(engine.db_for_read(&invoice, &Hints::new()).expect("routes"), "default");
    // Told the names it knows already, it keeps its instances.
    let idle = router.idle_instances();
    assert!(idle >= 1);
    router.connections_changed(&engine.connection_names());
    assert_eq!(router.idle_instances(), idle);
}

/// The reference router's crate, given to `EngineBuilder::add_router`, routes
/// real rows into three SQLite databases: reads come from the connection
/// it names, writes land there and nowhere else, a refused write writes
/// nothing, and `allow_migrate` answers through the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_router_given_to_the_engine_builder_routes_rows_on_sqlite() {
    const NAMES: [&str; 3] = ["default", "replica", "analytics"];
    let router = SdkRouter::<ReferenceRouter>::builder("reference")
        .connections(NAMES)
        .build()
        .expect("loads");
    let engine = reference_connections()
        .add_router(router)
        .build()
        .await
        .expect("engine");
    assert_eq!(engine.router_status().routers, [RouterIdentity::native("reference")]);
    // Each database holds one row saying which database it is (id 0).
    for db in NAMES {
        let conn = engine.connection(db).expect("registered");
        conn.execute("CREATE TABLE notes (id INTEGER, note TEXT)", &[])
            .await
            .expect("create");
        conn.execute("INSERT INTO notes (id, note) VALUES (0, ?)", &params![db])
            .await
            .expect("insert");
    }
    let user = ModelInfo::new("User");
    let event = ModelInfo::new("Event");
    let rate = ModelInfo::new("Rate").with_tags(["readonly"]);
    let read_from = async |model: &ModelInfo| -> String {
        engine
            .read_model(model)
            .fetch_one("SELECT note FROM notes WHERE id = 0", &[])
            .await
            .expect("read")
            .get("note")
    };
    assert_eq!(read_from(&user).await, "replica");
    assert_eq!(read_from(&event).await, "analytics");

    for (id, model) in [(1, &user), (2, &event), (3, &rate)] {
        let written = engine
            .write_model(model)
            .execute("INSERT INTO notes (id, note) VALUES (?, 'written')", &params![id])
            .await;
        let lands_on = match model.name() {
            "User" => Some("default"),
            "Event" => Some("analytics"),
            _ => None,
        };
        match lands_on {
            Some(_) => assert!(written.is_ok(), "{written:?}"),
            None => assert!(
                matches!(&written, Err(Error::RouterRefused { message, .. })
                    if message == "writes to read-only model Rate are forbidden"),
                "{written:?}"
            ),
        }
        for db in NAMES {
            let rows: i64 = engine
                .connection(db)
                .expect("registered")
                .fetch_one(
                    AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM notes WHERE id = {id}")),
                    &[],
                )
                .await
                .expect("count")
                .get("n");
            assert_eq!(rows, i64::from(lands_on == Some(db)), "{} on {db}", model.name());
        }
    }
    assert!(
        !engine
            .allow_migrate("analytics", &user, &Hints::new())
            .expect("answers")
    );
    assert!(
        engine
            .allow_migrate("analytics", &event, &Hints::new())
            .expect("answers")
    );
    assert!(!engine.allow_migrate("default", &event, &Hints::new()).expect("answers"));
    engine.close().await;
}
