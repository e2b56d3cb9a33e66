//! Router faults: every rule of the router ABI (`ABI.md`) and every fault
//! kind, each exercised by a small hand-written WAT router in
//! `tests/fixtures/routers/` (one file per case, its header says what it
//! does) and loaded through the real host.
//!
//! The faulty routers fault only for models whose input contains "Fault",
//! and route every other model normally (reads to `replica`, writes to
//! `default`), so each test can check that the very next call through the
//! same router works: the instance that faulted was discarded and the
//! process is healthy.
//!
//! The routers are compiled by one tier only, so that no move to optimized
//! code replaces their instances during a test: the baseline tier (the
//! quicker to compile), except for the call-time faults, which every tier's
//! code must stop the same way and which are run on both.

// The helpers hand back `dbroute::Result` as the engine returns it, however
// large `dbroute::Error` is.

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dbroute::router::{Fault, HostRouter, MigrateRequest, RouteDecision};
use dbroute::wasm::{
    Compilation, Expectation, LoadError, RouterLimits, RouterRuntime, RouterSource, Tier, WasmRouter, WasmRouterBuilder,
};
use dbroute::{ConnectionName, Engine, Error, Hints, ModelInfo, ReadFailure};

use crate::support::{FIRST_TIER, fixture, read_directly};

/// Idle instances each router keeps in these tests.
const IDLE: usize = 2;
/// A model the faulty fixtures fault on.
const FAULTY: &str = "FaultyModel";
/// A model the faulty fixtures route normally.
const PLAIN: &str = "User";
/// The time budget of the tests that need one.
const BUDGET: Duration = Duration::from_millis(20);
/// The memory ceiling of the tests that need one: 32 pages.
const CEILING: usize = 2 << 20;
/// A safety bound (not a performance measurement): a call stopped for
/// running past a 20 ms budget must return well before this.
const STOPPED_WITHIN: Duration = Duration::from_secs(2);
/// The size of a WebAssembly page.
const PAGE: usize = 65536;

fn router_file(name: &str) -> PathBuf {
    fixture(&format!("routers/{name}.wat"))
}

/// The limits of most tests: a time budget generous enough that a busy
/// machine never makes an ordinary call time out (the budget is wall-clock
/// time); the tests of the budget set [`BUDGET`].
fn limits() -> RouterLimits {
    RouterLimits::new()
        .idle_instances(IDLE)
        .time_budget(Duration::from_secs(1))
}

fn runtime(limits: RouterLimits) -> RouterRuntime {
    RouterRuntime::new(limits).expect("router runtime")
}

/// A router called `name`, compiled by the baseline tier only.
fn builder(name: &str) -> WasmRouterBuilder {
    WasmRouter::named(name).compilation(Compilation::Baseline)
}

/// Loads fixture `name` as a router called `name`, told that `default` and
/// `replica` exist.
fn load(name: &str, runtime: &RouterRuntime) -> dbroute::Result<WasmRouter> {
    builder(name)
        .connections(["default", "replica"])
        .load_file(runtime, router_file(name))
}

/// Loads fixture `file` with `builder`, expecting a refusal: checks the
/// error is [`Error::RouterLoad`] naming the router, and returns the reason
/// and the whole message.
#[track_caller]
fn refused(builder: WasmRouterBuilder, file: &str, runtime: &RouterRuntime) -> (LoadError, String) {
    let name = builder.name().to_owned();
    let error = builder
        .load_file(runtime, router_file(file))
        .expect_err("the router must be refused");
    refusal(error, &name)
}

#[track_caller]
fn refusal(error: Error, name: &str) -> (LoadError, String) {
    let message = error.to_string();
    match error {
        Error::RouterLoad { router, reason } => {
            assert_eq!(router, name, "the refusal names another router: {message}");
            assert!(
                message.contains(&format!("router `{name}`")),
                "the message does not name the router: {message}"
            );
            (reason, message)
        }
        other => panic!("expected Error::RouterLoad, got {other:?}: {message}"),
    }
}

/// Checks that `message` names `router`: its name and its content hash.
#[track_caller]
fn assert_names(message: &str, router: &WasmRouter) {
    let identity = router.identity();
    let hash = identity.content_hash().expect("a Wasm router has a content hash");
    assert!(
        message.contains(&format!("`{}`", identity.name())),
        "the message does not name the router: {message}"
    );
    assert!(
        message.contains(&format!("sha256:{}", &hash[..16])),
        "the message does not give the router's content hash: {message}"
    );
}

/// Expects a router fault (never a connection): checks the error is
/// [`Error::RouterFault`] naming `router`, and returns the fault and the
/// whole message.
#[track_caller]
fn fault_of<T: Debug>(result: dbroute::Result<T>, router: &WasmRouter) -> (Fault, String) {
    let error = match result {
        Ok(answer) => panic!("expected a router fault, but the operation was answered: {answer:?}"),
        Err(error) => error,
    };
    let message = error.to_string();
    match error {
        Error::RouterFault { router: faulty, fault } => {
            assert_eq!(faulty, router.identity(), "the fault names another router: {message}");
            assert_names(&message, router);
            (fault, message)
        }
        other => panic!("expected Error::RouterFault, got {other:?}: {message}"),
    }
}

async fn engine(policy: ReadFailure, limits: RouterLimits) -> Engine {
    Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .router_limits(limits)
        .read_failure(policy)
        .build()
        .await
        .expect("engine")
}

/// An engine on `default` and `replica` routed by one fixture.
struct Setup {
    engine: Engine,
    router: WasmRouter,
}

async fn routed_by(file: &str, policy: ReadFailure, limits: RouterLimits) -> Setup {
    routed_by_tier(file, policy, limits, Compilation::Baseline).await
}

/// [`routed_by`], with the router's code compiled as `compilation` says.
async fn routed_by_tier(file: &str, policy: ReadFailure, limits: RouterLimits, compilation: Compilation) -> Setup {
    let engine = engine(policy, limits).await;
    let router = engine
        .load_router(
            WasmRouter::named(file).compilation(compilation),
            RouterSource::File(router_file(file)),
        )
        .expect("the router loads");
    engine.set_router(router.clone());
    Setup { engine, router }
}

impl Setup {
    fn read(&self, model: &str) -> dbroute::Result<ConnectionName> {
        self.engine.db_for_read(&ModelInfo::new(model), &Hints::new())
    }

    fn write(&self, model: &str) -> dbroute::Result<ConnectionName> {
        self.engine.db_for_write(&ModelInfo::new(model), &Hints::new())
    }

    /// An ordinary read and write are routed as the router says, and one
    /// instance is idle (these tests call from one thread).
    #[track_caller]
    fn assert_healthy(&self) {
        assert_eq!(self.read(PLAIN).expect("an ordinary read"), "replica");
        assert_eq!(self.write(PLAIN).expect("an ordinary write"), "default");
        assert_eq!(self.router.idle_instances(), 1);
    }
}

/// One faulting call.
#[derive(Debug)]
struct Faulted {
    fault: Fault,
    message: String,
    took: Duration,
}

/// Reads, then writes, `model` through fixture `file`, compiled by each
/// tier in turn: all four calls must fault. Before, between and after,
/// ordinary reads and writes still work, and each fault discards the
/// instance that made it.
async fn faults_then_recovers(file: &str, model: &str, limits: RouterLimits) -> Vec<Faulted> {
    let mut faulted = Vec::new();
    for (compilation, tier) in [
        (Compilation::Baseline, FIRST_TIER),
        (Compilation::Optimized, Tier::Optimized),
    ] {
        let setup = routed_by_tier(file, ReadFailure::Fail, limits.clone(), compilation).await;
        assert_eq!(setup.router.tier(), tier, "{file}");
        setup.assert_healthy();
        for op in [Setup::read, Setup::write] {
            let started = Instant::now();
            let result = op(&setup, model);
            let took = started.elapsed();
            let (fault, message) = fault_of(result, &setup.router);
            assert_eq!(
                setup.router.idle_instances(),
                0,
                "the instance that faulted went back to the pool ({tier:?} code)"
            );
            setup.assert_healthy();
            faulted.push(Faulted { fault, message, took });
        }
    }
    faulted
}

// ---- valid routers ----

#[tokio::test]
async fn minimal_router_reads_from_replica_and_has_no_opinion_on_writes() {
    let setup = routed_by("minimal", ReadFailure::Fail, limits()).await;
    assert_eq!(setup.read(PLAIN).unwrap(), "replica");
    assert_eq!(setup.write(PLAIN).unwrap(), "default");
    let routed = setup.engine.read_model(&ModelInfo::new(PLAIN)).connection().unwrap();
    assert_eq!(routed.name(), "replica");

    let info = setup.router.info();
    assert!(!info.deterministic);
    assert_eq!(
        info.exports,
        ["memory", "dbroute_abi_version", "dbroute_input", "db_for_read"]
    );
    // No allow_* export: the engine's own rules.
    let (book, author) = (ModelInfo::new("Book"), ModelInfo::new("Author"));
    let hints = Hints::new();
    assert!(setup.engine.allow_migrate("replica", &book, &hints).unwrap());
    assert!(
        setup
            .engine
            .allow_relation((&book, Some("default")), (&author, Some("default")), &hints)
            .unwrap()
    );
    assert!(
        !setup
            .engine
            .allow_relation((&book, Some("default")), (&author, Some("replica")), &hints)
            .unwrap()
    );
}

#[tokio::test]
async fn router_with_every_optional_export() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .connection("analytics", "sqlite::memory:")
        .router_limits(limits())
        .build()
        .await
        .unwrap();
    let load = |config: serde_json::Value| {
        engine.load_router(
            builder("all-exports").config(config),
            RouterSource::File(router_file("all_exports")),
        )
    };

    // dbroute_init reads the config: the connection reads go to.
    let router = load(serde_json::json!("replica")).unwrap();
    let info = router.info();
    assert!(info.deterministic, "dbroute_deterministic returned 1");
    assert_eq!(
        info.exports,
        [
            "memory",
            "dbroute_abi_version",
            "dbroute_input",
            "db_for_read",
            "db_for_write",
            "allow_relation",
            "allow_migrate",
            "dbroute_deterministic",
            "dbroute_init",
        ]
    );
    engine.set_router(router.clone());
    let hints = Hints::new();
    let user = ModelInfo::new(PLAIN);
    assert_eq!(engine.db_for_read(&user, &hints).unwrap(), "replica");
    assert_eq!(engine.db_for_write(&user, &hints).unwrap(), "default");

    // allow_relation: "Y..." -> 1, "N..." -> 0, other -> -1 (no opinion: the
    // engine relates objects on the same connection only).
    let author = ModelInfo::new("Author");
    let relate = |a: &str, a_db: &str, b_db: &str| {
        engine
            .allow_relation((&ModelInfo::new(a), Some(a_db)), (&author, Some(b_db)), &hints)
            .unwrap()
    };
    assert!(relate("Yes", "default", "replica"), "1 allows across connections");
    assert!(!relate("No", "default", "default"), "0 forbids on one connection");
    assert!(relate("Other", "default", "default"), "-1: same connection");
    assert!(!relate("Other", "default", "replica"), "-1: different connections");

    // allow_migrate: default -> 1, replica -> 0, other -> -1 (no opinion:
    // the engine allows).
    let event = ModelInfo::new("Event");
    assert!(engine.allow_migrate("default", &event, &hints).unwrap());
    assert!(!engine.allow_migrate("replica", &event, &hints).unwrap());
    assert!(engine.allow_migrate("analytics", &event, &hints).unwrap());
    let migrate = |db: &str| {
        router.allow_migrate(&MigrateRequest {
            db: ConnectionName::new(db).unwrap(),
            target: dbroute::router::MigrateTarget::Model(&event),
            hints: &hints,
        })
    };
    assert_eq!(migrate("default"), Ok(Some(true)));
    assert_eq!(migrate("replica"), Ok(Some(false)));
    assert_eq!(migrate("analytics"), Ok(None));

    // Another config, another answer from the same module.
    let router = load(serde_json::json!("analytics")).unwrap();
    engine.set_router(router);
    assert_eq!(engine.db_for_read(&user, &hints).unwrap(), "analytics");

    // A config it cannot use: dbroute_init refuses with its message.
    let error = load(serde_json::Value::Null).expect_err("refused");
    let (reason, message) = refusal(error, "all-exports");
    assert_eq!(
        reason,
        LoadError::InitRefused("config must be a connection name string".into())
    );
    assert!(message.contains("config must be a connection name string"), "{message}");
}

#[tokio::test]
async fn logging_at_every_level_does_not_fault() {
    let setup = routed_by("logs", ReadFailure::Fail, limits()).await;
    for _ in 0..3 {
        assert_eq!(setup.read(PLAIN).unwrap(), "replica");
        assert_eq!(setup.router.idle_instances(), 1);
    }
}

#[test]
fn a_self_test_that_holds_lets_the_router_load() {
    let runtime = runtime(limits());
    let router = builder("minimal")
        .connections(["default", "replica"])
        .expect(Expectation::read(PLAIN).answers("replica"))
        .expect(Expectation::write(PLAIN).has_no_opinion())
        .load_file(&runtime, router_file("minimal"))
        .unwrap();
    assert_eq!(
        read_directly(&router, PLAIN),
        Ok(RouteDecision::Use(ConnectionName::new("replica").unwrap()))
    );
}

// ---- load-time refusals ----

#[test]
fn a_module_without_a_version_is_not_a_router() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("not-a-router"), "not_a_router", &runtime);
    assert_eq!(reason, LoadError::NotARouter);
    assert!(message.contains("not a dbroute router"), "{message}");
    assert!(message.contains("dbroute_abi_version"), "{message}");
}

#[test]
fn another_abi_version_is_refused_with_both_numbers() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("v2"), "abi_version_2", &runtime);
    assert_eq!(reason, LoadError::AbiVersion { found: 2, supported: 1 });
    assert!(message.contains("version 2"), "{message}");
    assert!(message.contains("version 1"), "{message}");
}

#[test]
fn a_mistyped_version_export_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("v-i64"), "abi_version_wrong_type", &runtime);
    assert_eq!(
        reason,
        LoadError::ExportType {
            name: "dbroute_abi_version",
            expected: "() -> i32"
        }
    );
    assert!(
        message.contains("`dbroute_abi_version` must have type () -> i32"),
        "{message}"
    );
}

#[test]
fn a_wasi_import_is_refused_by_name() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("wasi"), "wasi_import", &runtime);
    assert_eq!(
        reason,
        LoadError::ForbiddenImport {
            module: "wasi_snapshot_preview1".into(),
            name: "fd_write".into()
        }
    );
    assert!(message.contains("wasi_snapshot_preview1.fd_write"), "{message}");
}

#[test]
fn the_version_is_checked_before_the_imports() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("wasi-v2"), "wasi_import_abi_version_2", &runtime);
    assert_eq!(reason, LoadError::AbiVersion { found: 2, supported: 1 });
    assert!(message.contains("version 2"), "{message}");
}

#[test]
fn a_log_import_of_the_wrong_type_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("bad-log"), "log_import_wrong_type", &runtime);
    assert_eq!(
        reason,
        LoadError::ForbiddenImport {
            module: "dbroute".into(),
            name: "log".into()
        }
    );
    assert!(message.contains("dbroute.log"), "{message}");
}

#[test]
fn a_router_without_dbroute_input_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("no-input"), "missing_input", &runtime);
    assert_eq!(reason, LoadError::MissingExport("dbroute_input"));
    assert!(message.contains("does not export `dbroute_input`"), "{message}");
}

#[test]
fn a_router_without_an_exported_memory_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("no-memory"), "missing_memory", &runtime);
    assert_eq!(reason, LoadError::MissingExport("memory"));
    assert!(message.contains("does not export `memory`"), "{message}");
}

#[test]
fn a_memory_export_that_is_not_a_memory_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("global-memory"), "memory_not_a_memory", &runtime);
    assert_eq!(
        reason,
        LoadError::ExportType {
            name: "memory",
            expected: "a memory"
        }
    );
    assert!(message.contains("`memory` must have type a memory"), "{message}");
}

#[test]
fn a_mistyped_decision_export_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("i32-read"), "wrong_export_type", &runtime);
    assert_eq!(
        reason,
        LoadError::ExportType {
            name: "db_for_read",
            expected: "(i32, i32) -> i64"
        }
    );
    assert!(
        message.contains("`db_for_read` must have type (i32, i32) -> i64"),
        "{message}"
    );
}

#[test]
fn a_router_with_no_decision_export_is_refused() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("undecided"), "no_decision_export", &runtime);
    assert_eq!(reason, LoadError::NoDecisionExport);
    assert!(
        message.contains("neither `db_for_read` nor `db_for_write`"),
        "{message}"
    );
}

#[test]
fn an_init_refusal_is_refused_with_the_routers_message() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("init-refuses"), "init_refuses", &runtime);
    assert_eq!(reason, LoadError::InitRefused("no replicas configured".into()));
    assert!(
        message.contains("its init refused: no replicas configured"),
        "{message}"
    );
}

#[test]
fn a_positive_init_result_is_a_fault() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("init-positive"), "init_positive", &runtime);
    assert_eq!(
        reason,
        LoadError::InitFault(Fault::BadResult {
            export: "dbroute_init",
            value: 5
        })
    );
    assert!(message.contains("`dbroute_init` returned 5"), "{message}");
}

#[test]
fn an_init_that_never_returns_is_stopped() {
    let runtime = runtime(limits().time_budget(BUDGET));
    for compilation in [Compilation::Baseline, Compilation::Optimized] {
        let started = Instant::now();
        let (reason, message) = refused(builder("init-loops").compilation(compilation), "init_loops", &runtime);
        assert!(started.elapsed() < STOPPED_WITHIN, "took {:?}", started.elapsed());
        assert_eq!(reason, LoadError::InitFault(Fault::Timeout { budget: BUDGET }));
        assert!(message.contains("time budget"), "{message}");
    }
}

#[test]
fn bytes_that_are_not_webassembly_do_not_compile() {
    let runtime = runtime(limits());
    let (reason, message) = refused(builder("garbage"), "not_wasm", &runtime);
    assert!(matches!(reason, LoadError::Compile(_)), "{reason:?}");
    assert!(message.contains("not a valid WebAssembly module"), "{message}");

    // Binary garbage behind a valid magic number, too.
    let error = builder("binary-garbage")
        .load(&runtime, b"\0asm\x01\0\0\0\xff\xff\xff\xff")
        .expect_err("refused");
    let (reason, message) = refusal(error, "binary-garbage");
    assert!(matches!(reason, LoadError::Compile(_)), "{reason:?}");
    assert!(message.contains("not a valid WebAssembly module"), "{message}");
}

#[test]
fn an_initial_memory_above_the_ceiling_cannot_be_instantiated() {
    let ceiling = 1 << 20;
    let runtime = runtime(limits().memory_ceiling(ceiling));
    let (reason, message) = refused(builder("big-memory"), "memory_too_large", &runtime);
    assert!(matches!(reason, LoadError::Instantiate(_)), "{reason:?}");
    assert!(message.contains("could not be instantiated"), "{message}");
    assert!(message.contains(&format!("ceiling of {ceiling} bytes")), "{message}");
}

#[test]
fn a_self_test_that_does_not_hold_refuses_the_router() {
    let runtime = runtime(limits());
    let builder = builder("minimal")
        .connections(["default", "replica"])
        .expect(Expectation::read(PLAIN).answers("default"));
    let (reason, message) = refused(builder, "minimal", &runtime);
    let LoadError::SelfTest(detail) = reason else {
        panic!("expected LoadError::SelfTest, got {reason:?}")
    };
    assert!(detail.contains("read of `User`"), "{detail}");
    assert!(detail.contains("replica"), "{detail}");
    assert!(message.contains("self-test failed"), "{message}");
}

#[tokio::test]
async fn an_engine_refuses_a_router_at_load_and_at_build() {
    let engine = engine(ReadFailure::Fail, limits()).await;
    let error = engine
        .load_router(builder("wasi"), RouterSource::File(router_file("wasi_import")))
        .expect_err("refused");
    let (reason, _) = refusal(error, "wasi");
    assert!(matches!(reason, LoadError::ForbiddenImport { .. }), "{reason:?}");
    // The engine keeps routing (no router: everything to default).
    assert_eq!(
        engine.db_for_read(&ModelInfo::new(PLAIN), &Hints::new()).unwrap(),
        "default"
    );

    let error = Engine::builder()
        .connection("default", "sqlite::memory:")
        .add_wasm_router(builder("v2"), RouterSource::File(router_file("abi_version_2")))
        .build()
        .await
        .expect_err("refused");
    let (reason, _) = refusal(error, "v2");
    assert_eq!(reason, LoadError::AbiVersion { found: 2, supported: 1 });
}

// ---- call-time faults ----

#[tokio::test]
async fn an_infinite_loop_is_stopped_within_the_budget() {
    for call in faults_then_recovers("fault_timeout", FAULTY, limits().time_budget(BUDGET)).await {
        assert_eq!(call.fault, Fault::Timeout { budget: BUDGET });
        assert!(call.message.contains("time budget of 20ms"), "{}", call.message);
        assert!(call.took < STOPPED_WITHIN, "the call took {:?}", call.took);
    }
}

#[tokio::test]
async fn a_memory_bomb_hits_the_ceiling() {
    for call in faults_then_recovers("fault_memory_bomb", FAULTY, limits().memory_ceiling(CEILING)).await {
        assert_eq!(call.fault, Fault::MemoryLimit { limit: CEILING });
        assert!(
            call.message.contains(&format!("past the ceiling of {CEILING} bytes")),
            "{}",
            call.message
        );
    }
}

#[test]
fn memory_never_grows_past_the_ceiling_and_the_ceiling_is_not_blamed_later() {
    let runtime = runtime(limits().memory_ceiling(CEILING));
    let router = load("memory_probe", &runtime).unwrap();
    // The router grows until memory.grow fails, copes, and reports its size.
    let Ok(RouteDecision::Use(answer)) = read_directly(&router, PLAIN) else {
        panic!("the probe answers its size")
    };
    let pages: usize = answer
        .as_str()
        .strip_prefix("pages-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected answer {answer}"));
    assert!(pages * PAGE <= CEILING, "{pages} pages is more than {CEILING} bytes");
    assert_eq!(pages, CEILING / PAGE, "the memory may grow up to the ceiling");
    assert_eq!(router.idle_instances(), 1, "coping is not a fault");

    // The same instance now traps for another reason: that is a trap, not a
    // memory-limit fault left over from the earlier call.
    let fault = read_directly(&router, FAULTY).expect_err("traps");
    assert!(
        matches!(&fault, Fault::Trap(msg) if msg.contains("unreachable")),
        "{fault:?}"
    );
    assert_eq!(router.idle_instances(), 0);
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    for call in faults_then_recovers("fault_stack_overflow", FAULTY, limits()).await {
        assert_eq!(call.fault, Fault::StackOverflow);
        assert!(call.message.contains("exhausted its stack"), "{}", call.message);
    }
}

#[tokio::test]
async fn unreachable_is_a_trap() {
    for call in faults_then_recovers("fault_trap", FAULTY, limits()).await {
        assert!(
            matches!(&call.fault, Fault::Trap(msg) if msg.contains("unreachable")),
            "{:?}",
            call.fault
        );
        assert!(call.message.contains("it trapped"), "{}", call.message);
    }
}

#[tokio::test]
async fn an_answer_outside_memory_is_out_of_bounds() {
    for call in faults_then_recovers("fault_out_of_bounds", FAULTY, limits()).await {
        assert_eq!(
            call.fault,
            Fault::OutOfBounds {
                ptr: 0xfff0,
                len: 100,
                memory: PAGE
            }
        );
        assert!(
            call.message.contains("outside its 65536-byte memory"),
            "{}",
            call.message
        );
    }
}

#[tokio::test]
async fn a_name_that_is_not_utf8_is_a_fault() {
    for call in faults_then_recovers("fault_invalid_utf8", FAULTY, limits()).await {
        assert_eq!(call.fault, Fault::InvalidUtf8);
        assert!(call.message.contains("not UTF-8"), "{}", call.message);
    }
}

#[tokio::test]
async fn a_refusal_message_that_is_not_utf8_is_a_fault() {
    for call in faults_then_recovers("refusal_invalid_utf8", FAULTY, limits()).await {
        assert_eq!(call.fault, Fault::InvalidUtf8);
        assert!(call.message.contains("not UTF-8"), "{}", call.message);
    }
}

#[tokio::test]
async fn a_name_with_a_space_is_malformed_and_never_trimmed() {
    for call in faults_then_recovers("fault_name_space", FAULTY, limits()).await {
        let Fault::MalformedName { name, reason } = &call.fault else {
            panic!("expected Fault::MalformedName, got {:?}", call.fault)
        };
        assert_eq!(name, "replica ");
        assert!(reason.contains("character outside"), "{reason}");
        assert!(
            call.message.contains("malformed connection name \"replica \""),
            "{}",
            call.message
        );
    }
}

#[tokio::test]
async fn a_name_longer_than_64_bytes_is_malformed() {
    for call in faults_then_recovers("fault_name_too_long", FAULTY, limits()).await {
        let Fault::MalformedName { name, reason } = &call.fault else {
            panic!("expected Fault::MalformedName, got {:?}", call.fault)
        };
        assert!(name.starts_with("replicaxxx"), "{name}");
        assert_eq!(*reason, "it is longer than 64 bytes");
        assert!(call.message.contains("longer than 64 bytes"), "{}", call.message);
    }
}

/// A model whose input is longer than the 200 bytes the input fixtures
/// accept.
fn long_model_name() -> String {
    format!("Fault{}", "x".repeat(250))
}

#[tokio::test]
async fn an_input_that_cannot_be_allocated_is_a_fault() {
    let model = long_model_name();
    for call in faults_then_recovers("input_allocation", &model, limits()).await {
        let Fault::InputAllocation { len } = call.fault else {
            panic!("expected Fault::InputAllocation, got {:?}", call.fault)
        };
        assert!(len > model.len(), "the whole input is {len} bytes");
        assert!(call.message.contains("`dbroute_input` returned 0"), "{}", call.message);
    }
}

#[tokio::test]
async fn an_input_buffer_outside_memory_is_out_of_bounds() {
    let model = long_model_name();
    for call in faults_then_recovers("input_out_of_bounds", &model, limits()).await {
        let Fault::OutOfBounds { ptr, len, memory } = call.fault else {
            panic!("expected Fault::OutOfBounds, got {:?}", call.fault)
        };
        assert_eq!((ptr, memory), (65520, PAGE));
        assert!(len as usize > model.len(), "the whole input is {len} bytes");
    }
}

#[tokio::test]
async fn an_allow_answer_outside_the_encoding_is_a_fault() {
    let setup = routed_by("allow_migrate_bad_result", ReadFailure::Fail, limits()).await;
    let hints = Hints::new();
    let migrate = |model: &str| setup.engine.allow_migrate("default", &ModelInfo::new(model), &hints);
    assert!(migrate(PLAIN).unwrap());
    let (fault, message) = fault_of(migrate(FAULTY), &setup.router);
    assert_eq!(
        fault,
        Fault::BadResult {
            export: "allow_migrate",
            value: 7
        }
    );
    assert!(message.contains("`allow_migrate` returned 7"), "{message}");
    assert_eq!(setup.router.idle_instances(), 0, "the instance that faulted was kept");
    assert!(migrate(PLAIN).unwrap());
    assert_eq!(
        setup.engine.db_for_read(&ModelInfo::new(PLAIN), &hints).unwrap(),
        "replica"
    );
    assert_eq!(setup.router.idle_instances(), 1);
}

#[tokio::test]
async fn a_refusal_carries_the_routers_message() {
    let setup = routed_by("refuses", ReadFailure::Fail, limits()).await;
    for (result, op) in [(setup.read(FAULTY), "read"), (setup.write(FAULTY), "write")] {
        let error = result.expect_err("refused");
        let message = error.to_string();
        let Error::RouterRefused {
            router,
            op: refused_op,
            model,
            message: said,
        } = error
        else {
            panic!("expected Error::RouterRefused, got {error:?}")
        };
        assert_eq!(router, setup.router.identity());
        assert_eq!((refused_op, model.as_str()), (op, FAULTY));
        assert_eq!(said, "archived models are read-only");
        assert_names(&message, &setup.router);
        assert!(message.contains("archived models are read-only"), "{message}");
    }
    setup.assert_healthy();
}

#[tokio::test]
async fn an_unregistered_connection_is_an_error_naming_it() {
    for policy in [ReadFailure::Fail, ReadFailure::FallBackToDefault] {
        let setup = routed_by("unknown_connection", policy, limits()).await;
        for result in [setup.read(PLAIN), setup.write(PLAIN)] {
            let error = result.expect_err("analytics is not registered");
            let message = error.to_string();
            let Error::UnknownConnection {
                name,
                requested_by,
                registered,
            } = error
            else {
                panic!("expected Error::UnknownConnection, got {error:?}")
            };
            assert_eq!(name, "analytics");
            assert_eq!(registered, ["default", "replica"]);
            assert_names(&requested_by, &setup.router);
            assert!(message.contains("unknown connection `analytics`"), "{message}");
            assert!(
                message.contains("registered connections: default, replica"),
                "{message}"
            );
        }
    }
}

// ---- instances ----

/// The `counter` fixture: each instance answers `call-1`, `call-2`, ... in
/// turn.
fn counter() -> WasmRouter {
    load("counter", &runtime(limits())).unwrap()
}

/// Reads through `router`, expecting the counter's answers `call-N` for each
/// `N` of `calls` in turn.
#[track_caller]
fn expect_calls(router: &WasmRouter, calls: std::ops::RangeInclusive<u32>) {
    for n in calls {
        let expected = ConnectionName::new(&format!("call-{n}")).unwrap();
        assert_eq!(read_directly(router, PLAIN), Ok(RouteDecision::Use(expected)));
    }
}

#[test]
fn a_fault_discards_the_instance_and_its_state() {
    let router = counter();
    expect_calls(&router, 1..=2);
    assert!(matches!(read_directly(&router, FAULTY), Err(Fault::Trap(_))));
    // A fresh, initialised instance: the count starts again.
    expect_calls(&router, 1..=2);
    assert_eq!(router.idle_instances(), 1);
}

#[test]
fn a_thread_keeps_its_instance_and_gives_it_back_when_it_exits() {
    let router = counter();
    let in_thread = router.clone();
    // `join` (unlike a scoped thread's end) waits for the thread's locals
    // to be destroyed.
    std::thread::spawn(move || {
        // The same instance, kept by this thread, answers both calls;
        // kept, it still counts as idle.
        expect_calls(&in_thread, 1..=2);
        assert_eq!(in_thread.idle_instances(), 1);
    })
    .join()
    .expect("the routing thread");
    // The thread exited: its instance went back to the pool, state and all.
    assert_eq!(router.idle_instances(), 1);
    expect_calls(&router, 3..=3);
}

#[test]
fn new_connections_mean_new_instances_even_for_a_thread_that_keeps_one() {
    let router = counter();
    expect_calls(&router, 1..=2);
    let names = ["default", "replica", "reports"].map(|n| ConnectionName::new(n).unwrap());
    router.connections_changed(&names);
    // A fresh instance, initialised with the new names: the count restarts.
    expect_calls(&router, 1..=1);
    assert_eq!(router.idle_instances(), 1);
}

#[tokio::test]
async fn idle_instances_never_exceed_the_configured_number() {
    let setup = routed_by("fault_trap", ReadFailure::Fail, limits()).await;
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for i in 0..40 {
                    if i % 3 == 0 {
                        let (fault, _) = fault_of(setup.read(FAULTY), &setup.router);
                        assert!(matches!(fault, Fault::Trap(_)), "{fault:?}");
                    } else {
                        assert_eq!(setup.read(PLAIN).unwrap(), "replica");
                    }
                    let idle = setup.router.idle_instances();
                    assert!(idle <= IDLE, "{idle} idle instances, more than {IDLE}");
                }
            });
        }
    });
    assert_eq!(setup.read(PLAIN).unwrap(), "replica");
    let idle = setup.router.idle_instances();
    assert!((1..=IDLE).contains(&idle), "{idle} idle instances");
}

// ---- failure policy ----

/// Every fixture that faults (for "Fault..." models) on reads and writes.
const FAULTING: [&str; 9] = [
    "fault_timeout",
    "fault_memory_bomb",
    "fault_stack_overflow",
    "fault_trap",
    "fault_out_of_bounds",
    "fault_invalid_utf8",
    "fault_name_space",
    "fault_name_too_long",
    "refusal_invalid_utf8",
];

/// The limits for fixture `file` of [`FAULTING`].
fn fault_limits(file: &str) -> RouterLimits {
    let limits = limits().memory_ceiling(CEILING);
    if file == "fault_timeout" {
        limits.time_budget(BUDGET)
    } else {
        limits
    }
}

#[tokio::test]
async fn a_fault_never_sends_an_operation_anywhere() {
    for file in FAULTING {
        let setup = routed_by(file, ReadFailure::Fail, fault_limits(file)).await;
        let model = ModelInfo::new(FAULTY);
        let hints = Hints::new();
        fault_of(setup.read(FAULTY), &setup.router);
        fault_of(setup.write(FAULTY), &setup.router);
        let read = setup.engine.read_model(&model).connection().map(|c| c.name());
        fault_of(read, &setup.router);
        let write = setup.engine.write_model(&model).connection().map(|c| c.name());
        fault_of(write, &setup.router);
        let transaction = setup
            .engine
            .transaction()
            .for_write_model(&model)
            .hints(&hints)
            .begin()
            .await
            .map(|_| "a transaction");
        fault_of(transaction, &setup.router);
        setup.assert_healthy();
    }
}

#[tokio::test]
async fn a_faulting_read_falls_back_to_default_only_under_that_policy() {
    for file in FAULTING {
        let setup = routed_by(file, ReadFailure::FallBackToDefault, fault_limits(file)).await;
        let model = ModelInfo::new(FAULTY);
        assert_eq!(setup.read(FAULTY).unwrap(), "default", "{file}");
        let routed = setup.engine.read_model(&model).connection().unwrap();
        assert_eq!(routed.name(), "default", "{file}");
        // A write always fails.
        fault_of(setup.write(FAULTY), &setup.router);
        let write = setup.engine.write_model(&model).connection().map(|c| c.name());
        fault_of(write, &setup.router);
        // Ordinary reads are still routed by the router.
        setup.assert_healthy();
    }
}

#[tokio::test]
async fn a_refusal_is_never_a_fallback() {
    let setup = routed_by("refuses", ReadFailure::FallBackToDefault, limits()).await;
    for result in [setup.read(FAULTY), setup.write(FAULTY)] {
        let error = result.expect_err("refused");
        assert!(
            matches!(&error, Error::RouterRefused { message, .. } if message == "archived models are read-only"),
            "{error:?}"
        );
    }
    setup.assert_healthy();
}
