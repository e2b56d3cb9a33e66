//! What router components cost: the reference policy as a Python,
//! JavaScript and Rust component (`example-routers/{python,javascript,
//! rust-component}`), against the same policy as a core module.
//!
//! - `decide/component-{language}/{uncached,cached,uncached-tenant}`: one
//!   decision through the router alone (as `decide/*` in the `routing`
//!   bench), with the answer cache off or on; `uncached-tenant` passes a
//!   `tenant` hint the configuration maps;
//! - `component/instantiate/{language}`: a new instance per decision:
//!   instantiating, `init`, the warm-up read and the decision;
//! - `component/swap-from-cache/{language}`: loading the router from its
//!   bytes when the compiled-router cache holds it, and swapping it in;
//! - reports (printed, not timed by criterion): compiling from bytes
//!   (`component/from-bytes report`), each instance's memory
//!   (`component/memory report`), and decisions during a Python router's
//!   swap against steady state (`component/swap-under-load report`).
//!
//! Run: `cargo bench -p dbroute --bench components`. The compiled
//! components are kept in cargo's target folder, so only the first run
//! compiles them. Results and the machine go in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dbroute::router::{HostRouter, RouteDecision, RouteKind, RouteRequest};
use dbroute::wasm::{Compilation, RouterLimits, RouterRuntime, RouterSource, WasmRouter};
use dbroute::{ConnectionName, Engine, Hints, ModelInfo};
use dbroute_example_routers as routers;
use serde_json::json;

#[path = "support/mod.rs"]
mod support;
use support::{config, percentile, report_selected, resident_bytes};

const REPLICA: ConnectionName = ConnectionName::from_static("replica");

static USER: std::sync::LazyLock<ModelInfo> =
    std::sync::LazyLock::new(|| ModelInfo::new("User").with_table("users").with_app("auth"));

/// Where compiled routers are kept between runs.
fn compiled_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled-routers")
}

fn runtime(limits: RouterLimits) -> RouterRuntime {
    RouterRuntime::with_compiled_cache(limits, compiled_cache_dir()).expect("router runtime")
}

/// The component languages built, and their reference routers.
fn components() -> Vec<(&'static str, &'static str)> {
    for (language, reason) in routers::skipped() {
        eprintln!("components: {language} skipped: {reason}");
    }
    [
        ("python", routers::PYTHON_REFERENCE),
        ("javascript", routers::JAVASCRIPT_REFERENCE),
        ("rust", routers::RUST_COMPONENT_REFERENCE),
    ]
    .into_iter()
    .filter_map(|(language, path)| Some((language, path?)))
    .collect()
}

/// The reference router at `path`, on optimized code, configured with a
/// tenant map.
fn load(runtime: &RouterRuntime, language: &str, path: &str, cache: bool) -> WasmRouter {
    WasmRouter::named(format!("reference-{language}"))
        .config(json!({ "tenants": { "acme": "tenant_acme" } }))
        .answer_cache(cache)
        .compilation(Compilation::Optimized)
        .load_file(runtime, path)
        .unwrap_or_else(|e| panic!("{language}: {e}"))
}

/// An engine on in-memory SQLite, with the shared compiled-router cache.
fn engine(rt: &tokio::runtime::Runtime) -> Engine {
    rt.block_on(
        Engine::builder()
            .connection("default", "sqlite::memory:")
            .connection("replica", "sqlite::memory:")
            .compiled_router_cache(compiled_cache_dir())
            .build(),
    )
    .expect("engine")
}

fn read<'a>(hints: &'a Hints) -> RouteRequest<'a> {
    RouteRequest {
        kind: RouteKind::Read,
        model: &USER,
        hints,
        origin: None,
    }
}

fn decide(c: &mut Criterion) {
    let runtime = runtime(RouterLimits::default());
    let none = Hints::new();
    let tenant = Hints::new().with("tenant", "acme");
    let mut group = c.benchmark_group("decide");
    for (language, path) in components() {
        for (case, cache, hints, expected) in [
            ("uncached", false, &none, "replica"),
            ("cached", true, &none, "replica"),
            ("uncached-tenant", false, &tenant, "tenant_acme"),
        ] {
            let router = load(&runtime, language, path, cache);
            let op = read(hints);
            assert!(
                matches!(router.db_for_read(&op), Ok(RouteDecision::Use(db)) if db.as_str() == expected),
                "{language} {case}"
            );
            group.bench_function(format!("component-{language}/{case}"), |b| {
                b.iter(|| router.db_for_read(black_box(&op)))
            });
        }
    }
    group.finish();
}

fn component(c: &mut Criterion) {
    let mut group = c.benchmark_group("component");
    group.sample_size(20);
    let none = Hints::new();
    let op = read(&none);
    // Every decision on a new instance: instantiate, init, warm-up, call.
    let fresh = runtime(RouterLimits::new().recycle_after_calls(1).idle_instances(1));
    for (language, path) in components() {
        let router = load(&fresh, language, path, false);
        group.bench_function(format!("instantiate/{language}"), |b| {
            b.iter(|| assert_eq!(router.db_for_read(black_box(&op)), Ok(RouteDecision::Use(REPLICA))))
        });
    }
    // Loading from bytes the compiled cache holds, then swapping in.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = engine(&rt);
    for (language, path) in components() {
        let bytes: Arc<[u8]> = std::fs::read(path).expect("the component").into();
        let builder = WasmRouter::named(format!("reference-{language}")).compilation(Compilation::Optimized);
        // The first load compiles into the cache when it is not there yet.
        engine.set_router(
            engine
                .load_router(builder.clone(), RouterSource::Bytes(bytes.clone()))
                .unwrap(),
        );
        group.bench_function(format!("swap-from-cache/{language}"), |b| {
            b.iter(|| {
                let router = engine
                    .load_router(builder.clone(), RouterSource::Bytes(bytes.clone()))
                    .unwrap();
                engine.set_router(router)
            })
        });
    }
    group.finish();
    from_bytes_report();
    memory_report();
    swap_under_load_report(&rt);
}

/// Compiling each component from its bytes (no cache), as the first load
/// of a new version does: twice each, printed.
fn from_bytes_report() {
    if !report_selected("component/from-bytes") {
        return;
    }
    let mut lines = Vec::new();
    for (language, path) in components() {
        for compilation in [Compilation::Baseline, Compilation::Optimized] {
            let mut times = Vec::new();
            for _ in 0..2 {
                let runtime = RouterRuntime::new(RouterLimits::default()).unwrap();
                let started = Instant::now();
                let loaded = WasmRouter::named(language)
                    .compilation(compilation)
                    .load_file(&runtime, path);
                match loaded {
                    Ok(_) => times.push(format!("{:.2?}", started.elapsed())),
                    Err(e) => times.push(format!("refused: {e}")),
                }
            }
            lines.push(format!("{language} ({compilation:?}): {}", times.join(", ")));
        }
    }
    println!(
        "component/from-bytes report (load from bytes, no cache):\n  {}",
        lines.join("\n  ")
    );
}

/// Each instance's resident memory: 16 instances made and used, printed.
fn memory_report() {
    const INSTANCES: usize = 16;
    if !report_selected("component/memory") {
        return;
    }
    let runtime = runtime(RouterLimits::new().idle_instances(INSTANCES + 1));
    let none = Hints::new();
    let op = read(&none);
    let mut lines = Vec::new();
    // Every router kept until the end, so that no instance reuses the
    // pages another one freed.
    let mut kept = Vec::new();
    for (language, path) in components() {
        let router = load(&runtime, language, path, false);
        let Some(before) = resident_bytes() else {
            return;
        };
        router.prepare_instances(INSTANCES + 1).unwrap();
        for _ in 0..1000 {
            router.db_for_read(&op).unwrap();
        }
        let after = resident_bytes().unwrap_or(before);
        lines.push(format!(
            "{language}: {} KiB per instance",
            after.saturating_sub(before) / INSTANCES as u64 / 1024
        ));
        kept.push(router);
    }
    println!("component/memory report (resident):\n  {}", lines.join("\n  "));
}

/// Decisions while a Python router is compiled from bytes and swapped in,
/// against the same decisions without a swap: 8 tasks on two worker
/// threads route through the active (cached) Python router; another
/// thread loads a new one from bytes, with no compiled cache, and swaps
/// it in. Printed: p50 and p99 of each.
fn swap_under_load_report(rt: &tokio::runtime::Runtime) {
    if !report_selected("component/swap-under-load") {
        return;
    }
    let Some(path) = routers::PYTHON_REFERENCE else {
        return;
    };
    let engine = engine(rt);
    let bytes: Arc<[u8]> = std::fs::read(path).expect("the component").into();
    let builder = WasmRouter::named("reference-python").compilation(Compilation::Optimized);
    engine.set_router(engine.load_router(builder, RouterSource::Bytes(bytes.clone())).unwrap());
    let route = |swap: bool| -> (Vec<u32>, Duration) {
        let done = Arc::new(AtomicBool::new(false));
        let workers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (engine, done) = (engine.clone(), done.clone());
                workers.spawn(async move {
                    let hints = Hints::new();
                    let mut latencies = Vec::new();
                    while !done.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            let started = Instant::now();
                            let answer = engine.db_for_read(&USER, &hints);
                            latencies.push(started.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
                            assert!(matches!(answer, Ok(db) if db == "replica"), "a decision failed");
                        }
                        tokio::task::yield_now().await;
                    }
                    latencies
                })
            })
            .collect();
        let started = Instant::now();
        if swap {
            // A fresh runtime: nothing cached, the whole compile happens.
            let fresh = RouterRuntime::new(RouterLimits::default()).unwrap();
            let router = WasmRouter::named("reference-python-new")
                .compilation(Compilation::Optimized)
                .load(&fresh, &bytes)
                .unwrap();
            engine.set_router(router);
            std::thread::sleep(Duration::from_millis(200));
        } else {
            std::thread::sleep(Duration::from_secs(3));
        }
        let elapsed = started.elapsed();
        done.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(workers.block_on(task).unwrap());
        }
        (latencies, elapsed)
    };
    let (mut steady, steady_for) = route(false);
    let (mut swapping, swap_for) = route(true);
    println!(
        "component/swap-under-load report (Python): steady: {} decisions in {steady_for:.2?}, p50 {} ns, p99 {} ns; \
         during a compile from bytes and the swap: {} decisions in {swap_for:.2?}, p50 {} ns, p99 {} ns",
        steady.len(),
        percentile(&mut steady, 0.5),
        percentile(&mut steady, 0.99),
        swapping.len(),
        percentile(&mut swapping, 0.5),
        percentile(&mut swapping, 0.99),
    );
}

criterion_group! {
    name = benches;
    config = config();
    targets = decide, component
}
criterion_main!(benches);
