//! Compiler tiers: a router loaded from bytes answers at once on baseline
//! code and moves to optimized code compiled in the background; each
//! `Compilation` choice gives the tier it names; a module the baseline
//! compiler cannot take is optimized at once. (The optimizer's queue, its
//! skipping of dropped routers, the self-test and connections of the move,
//! and its failures are unit tests in `host/src/router/wasm/mod.rs` and
//! `tiers.rs`.)

use std::time::{Duration, Instant};

use dbroute::router::RouteDecision;
use dbroute::wasm::{Compilation, RouterLimits, RouterRuntime, RouterSource, Tier, WasmRouter};
use dbroute::{ConnectionName, Engine, Hints, ModelInfo};

use crate::support::{FIRST_TIER, OPTIMIZED_WITHIN, read_directly, reference_connections};

async fn reference_engine() -> Engine {
    reference_connections().build().await.unwrap()
}

/// The reference router without its answer cache: every decision is the
/// code's.
fn load_reference(engine: &Engine, compilation: Compilation) -> WasmRouter {
    engine
        .load_router(
            WasmRouter::named("reference")
                .compilation(compilation)
                .answer_cache(false),
            RouterSource::File(dbroute_example_routers::REFERENCE.into()),
        )
        .unwrap()
}

/// The reference policy's answers, through the engine.
#[track_caller]
fn routes_as_the_reference_policy(engine: &Engine) {
    let none = Hints::new();
    let user = ModelInfo::new("User");
    let event = ModelInfo::new("Event");
    assert_eq!(engine.db_for_read(&user, &none).unwrap(), "replica");
    assert_eq!(engine.db_for_write(&user, &none).unwrap(), "default");
    assert_eq!(engine.db_for_read(&event, &none).unwrap(), "analytics");
    assert_eq!(engine.db_for_write(&event, &none).unwrap(), "analytics");
}

#[tokio::test]
async fn a_router_from_bytes_answers_on_baseline_code_then_on_optimized_code() {
    let engine = reference_engine().await;
    let router = load_reference(&engine, Compilation::Tiered);
    assert_eq!(router.info().compiled_by, FIRST_TIER, "loaded on baseline code");
    engine.set_router(router.clone());
    routes_as_the_reference_policy(&engine);

    assert_eq!(router.wait_until_optimized(OPTIMIZED_WITHIN), Tier::Optimized);
    assert_eq!(router.tier(), Tier::Optimized);
    assert_eq!(
        router.info().compiled_by,
        FIRST_TIER,
        "info keeps the tier it was loaded with"
    );
    routes_as_the_reference_policy(&engine);
    assert_eq!(
        router.idle_instances(),
        1,
        "the optimized code's instance, made before the move"
    );
}

#[tokio::test]
async fn each_compilation_choice_gives_the_tier_it_names() {
    let engine = reference_engine().await;

    let optimized = load_reference(&engine, Compilation::Optimized);
    assert_eq!(optimized.info().compiled_by, Tier::Optimized);
    assert_eq!(optimized.tier(), Tier::Optimized, "optimized before the load returned");
    engine.set_router(optimized);
    routes_as_the_reference_policy(&engine);

    let baseline = load_reference(&engine, Compilation::Baseline);
    assert_eq!(baseline.info().compiled_by, FIRST_TIER);
    // Nothing to wait for: it returns at once, not after the timeout.
    let started = Instant::now();
    assert_eq!(baseline.wait_until_optimized(Duration::from_secs(60)), FIRST_TIER);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited {:?}",
        started.elapsed()
    );
    engine.set_router(baseline.clone());
    routes_as_the_reference_policy(&engine);
    assert_eq!(baseline.tier(), FIRST_TIER, "never optimized");
}

#[test]
fn a_router_the_baseline_compiler_cannot_take_is_optimized_at_once() {
    // Tail calls are a proposal wasmtime's baseline compiler does not
    // support: the router is compiled by the optimizing one, whatever the
    // load asked for.
    let wat = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func $answer (result i64) i64.const 0x0000001000000007)
  (func (export "db_for_read") (param i32 i32) (result i64) return_call $answer))"#;
    let runtime = RouterRuntime::new(RouterLimits::default()).unwrap();
    for compilation in [Compilation::Tiered, Compilation::Baseline] {
        let router = WasmRouter::named("tail-call")
            .compilation(compilation)
            .load(&runtime, wat.as_bytes())
            .unwrap();
        assert_eq!(router.info().compiled_by, Tier::Optimized, "{compilation:?}");
        assert_eq!(router.wait_until_optimized(OPTIMIZED_WITHIN), Tier::Optimized);
        let replica = ConnectionName::new("replica").unwrap();
        assert_eq!(read_directly(&router, "User"), Ok(RouteDecision::Use(replica)));
    }
}
