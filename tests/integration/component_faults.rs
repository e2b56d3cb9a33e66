//! Hostile router components and the sandbox, through the real host:
//! Python and JavaScript routers that loop, hoard memory, raise, recurse,
//! open files and sockets, exit, read the clock and draw random numbers
//! (`example-routers/python/hostile.py`, `example-routers/javascript/hostile.js`,
//! their misbehaviour chosen by the configuration's `mode`), and
//! hand-written components with imports or exports the host refuses.
//!
//! The hostile routers misbehave only for the model `Hostile`: after each
//! fault the test asks the same router about another model and gets its
//! answer, from a new instance (a trapped component instance can never be
//! entered again, so an instance kept after a fault would fail it).

use std::time::Duration;

use dbroute::router::{Fault, HostRouter, RouteDecision, RouteKind, RouteRequest};
use dbroute::wasm::{Compilation, LoadError, RouterLimits, RouterRuntime, WasmRouter};
use dbroute::{Error, Hints, ModelInfo};
use dbroute_example_routers as routers;

use crate::components::{compiled_cache_dir, warm};

/// The time budget here: short, so that the infinite loops end soon.
const BUDGET: Duration = Duration::from_millis(300);
/// The memory ceiling of a component instance here.
const CEILING: usize = 96 << 20;

/// A runtime with a short budget and a low ceiling, sharing the tests'
/// compiled components (the limits are not part of the compiled code).
fn runtime(limits: RouterLimits) -> RouterRuntime {
    RouterRuntime::with_compiled_cache(limits, compiled_cache_dir()).expect("router runtime")
}

fn strict() -> RouterLimits {
    RouterLimits::new()
        .time_budget(BUDGET)
        .component_memory_ceiling(CEILING)
        .idle_instances(2)
}

/// The hostile router of `language` (`None` when its toolchain was
/// missing and the suite does not require every language).
fn hostile(language: &str) -> Option<&'static str> {
    let path = match language {
        "python" => routers::PYTHON_HOSTILE,
        "javascript" => routers::JAVASCRIPT_HOSTILE,
        other => panic!("no hostile router in {other}"),
    };
    if path.is_none() {
        assert!(
            std::env::var("DBROUTE_REQUIRE_ALL_LANGUAGES").as_deref() != Ok("1"),
            "the {language} toolchain is required (DBROUTE_REQUIRE_ALL_LANGUAGES=1)"
        );
        eprintln!("component_faults: skipped {language}: its toolchain is missing");
    }
    if let Some(path) = path {
        warm(path);
    }
    path
}

fn load(runtime: &RouterRuntime, path: &str, mode: &str) -> WasmRouter {
    WasmRouter::named(format!("hostile-{mode}"))
        .config(serde_json::json!({ "mode": mode }))
        .compilation(Compilation::Optimized)
        .load_file(runtime, path)
        .unwrap_or_else(|e| panic!("{path} ({mode}): {e}"))
}

fn read(router: &WasmRouter, model: &str) -> Result<RouteDecision, Fault> {
    router.db_for_read(&RouteRequest {
        kind: RouteKind::Read,
        model: &ModelInfo::new(model),
        hints: &Hints::new(),
        origin: None,
    })
}

fn answer(router: &WasmRouter) -> String {
    match read(router, "Hostile") {
        Ok(RouteDecision::Use(name)) => name.to_string(),
        other => panic!("{router:?}: expected a connection, got {other:?}"),
    }
}

/// Runs `mode` of `language`'s hostile router: the call for `Hostile`
/// faults as `expected` says (twice: the second time on a new instance),
/// and the next call for another model is served.
fn faults(language: &str, mode: &str, expected: impl Fn(&Fault) -> bool) {
    let Some(path) = hostile(language) else {
        return;
    };
    let runtime = runtime(strict());
    let router = load(&runtime, path, mode);
    for attempt in 1..=2 {
        match read(&router, "Hostile") {
            Err(fault) => assert!(
                expected(&fault) && !fault.to_string().contains("cannot enter"),
                "{language} {mode} (call {attempt}): unexpected fault: {fault}"
            ),
            Ok(decision) => panic!("{language} {mode} (call {attempt}): no fault, answered {decision:?}"),
        }
    }
    assert_eq!(router.faults(), 2, "{language} {mode}: faults counted");
    assert!(
        matches!(read(&router, "User"), Ok(RouteDecision::Use(db)) if db.as_str() == "default"),
        "{language} {mode}: the next call was not served"
    );
}

#[test]
fn a_python_infinite_loop_is_stopped_at_the_time_budget() {
    faults(
        "python",
        "loop",
        |f| matches!(f, Fault::Timeout { budget } if *budget == BUDGET),
    );
}

#[test]
fn a_python_memory_bomb_stops_at_the_ceiling() {
    faults(
        "python",
        "memory",
        |f| matches!(f, Fault::MemoryLimit { limit } if *limit == CEILING),
    );
}

#[test]
fn an_uncaught_python_exception_is_a_fault() {
    faults("python", "raise", |f| matches!(f, Fault::Trap(_)));
}

#[test]
fn deep_python_recursion_is_a_fault() {
    // CPython's recursion limit raises RecursionError, uncaught.
    faults("python", "recursion", |f| {
        matches!(f, Fault::StackOverflow | Fault::Trap(_))
    });
}

#[test]
fn a_python_router_cannot_open_a_file() {
    // No directory is preopened: CPython's open() raises, uncaught.
    faults("python", "file", |f| matches!(f, Fault::Trap(_)));
}

#[test]
fn a_python_router_cannot_open_a_socket() {
    // CPython asks `wasi:sockets` for a socket: the sandbox traps, naming
    // the function.
    faults(
        "python",
        "socket",
        |f| matches!(f, Fault::Trap(m) if m.contains("`wasi:sockets/tcp-create-socket#create-tcp-socket`") && m.contains("does not grant")),
    );
}

#[test]
fn a_python_router_cannot_resolve_a_name() {
    faults("python", "lookup", |f| matches!(f, Fault::Trap(_)));
}

#[test]
fn a_python_router_that_exits_faults() {
    faults(
        "python",
        "exit",
        |f| matches!(f, Fault::Trap(m) if m.contains("called exit")),
    );
}

#[test]
fn a_javascript_infinite_loop_is_stopped_at_the_time_budget() {
    faults(
        "javascript",
        "loop",
        |f| matches!(f, Fault::Timeout { budget } if *budget == BUDGET),
    );
}

#[test]
fn a_javascript_heap_bomb_is_a_fault() {
    // SpiderMonkey turns a refused memory.grow into an out-of-memory it
    // may report as its own trap: a memory-limit fault or a trap.
    faults("javascript", "heap", |f| {
        matches!(f, Fault::MemoryLimit { .. } | Fault::Trap(_))
    });
}

#[test]
fn an_uncaught_javascript_exception_is_a_fault() {
    faults("javascript", "throw", |f| matches!(f, Fault::Trap(_)));
}

#[test]
fn the_clocks_are_frozen() {
    for language in ["python", "javascript"] {
        if let Some(path) = hostile(language) {
            let router = load(&runtime(strict()), path, "clock");
            assert_eq!(answer(&router), "frozen", "{language}");
        }
    }
}

#[test]
fn random_numbers_are_the_same_in_every_instance() {
    for language in ["python", "javascript"] {
        let Some(path) = hostile(language) else {
            continue;
        };
        // A router that says it is not deterministic is asked every time:
        // each instance draws the same first number; an instance asked
        // again draws the next one.
        let fresh = runtime(strict().recycle_after_calls(1));
        let router = load(&fresh, path, "random");
        let first = answer(&router);
        assert!(first.starts_with('r'), "{language}: {first}");
        for _ in 0..3 {
            assert_eq!(
                answer(&router),
                first,
                "{language}: a fresh instance drew another number"
            );
        }
        // Two routers loaded apart: the same sequence.
        assert_eq!(answer(&load(&fresh, path, "random")), first, "{language}");

        let reused = runtime(strict().idle_instances(1));
        let router = load(&reused, path, "random");
        assert_eq!(answer(&router), first, "{language}");
        assert_ne!(
            answer(&router),
            first,
            "{language}: the kept instance drew the same number again"
        );
    }
}

#[test]
fn a_python_router_sees_no_environment_and_may_print() {
    let Some(path) = hostile("python") else {
        return;
    };
    let runtime = runtime(strict());
    assert_eq!(answer(&load(&runtime, path, "env")), "empty");
    // 10,000 lines: the output allowance drops most; the call answers.
    assert_eq!(answer(&load(&runtime, path, "print")), "default");
}

/// Loads WAT text as a router.
fn load_wat(wat: &str) -> dbroute::Result<WasmRouter> {
    WasmRouter::named("hand-written").load(
        &RouterRuntime::new(RouterLimits::default()).expect("router runtime"),
        wat.as_bytes(),
    )
}

#[test]
fn a_component_importing_http_is_refused_naming_the_import() {
    let wat = r#"(component
  (import "wasi:http/outgoing-handler@0.2.0" (instance))
)"#;
    match load_wat(wat) {
        Err(Error::RouterLoad {
            reason: LoadError::ComponentImport(name),
            ..
        }) => assert_eq!(name, "wasi:http/outgoing-handler@0.2.0"),
        other => panic!("expected a refused import, got {other:?}"),
    }
    // A core-module router importing WASI is still refused as before.
    let core = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (func (export "dbroute_abi_version") (result i32) i32.const 1))"#;
    assert!(matches!(
        load_wat(core),
        Err(Error::RouterLoad {
            reason: LoadError::ForbiddenImport { .. },
            ..
        })
    ));
}

#[test]
fn a_component_without_the_router_interface_is_refused() {
    match load_wat("(component)") {
        Err(Error::RouterLoad {
            reason: LoadError::MissingExport(name),
            ..
        }) => assert_eq!(name, "dbroute:router/router@1"),
        other => panic!("expected a missing export, got {other:?}"),
    }
}
