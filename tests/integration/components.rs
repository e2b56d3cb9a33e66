//! Router components (`wit/router.wit`): what they share in the tests, and
//! the host's handling of them beyond the conformance cases.
//!
//! A Python or JavaScript component takes seconds to compile (its
//! language's runtime is inside it), so the tests compile each one once
//! per build of the component: every test loads components through
//! [`shared_runtime`] (or an engine with [`compiled_cache_dir`]), whose
//! compiled-router cache lives in cargo's target folder and outlives the
//! test run. A component loaded for the first time is compiled under a
//! lock, so that two tests never compile the same one at once.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use dbroute::wasm::{RouterRuntime, WasmRouter};

use crate::conformance::limits;

/// Where the tests keep compiled routers: in cargo's target folder, so
/// that a component built once is compiled once.
pub(crate) fn compiled_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-routers")
}

/// The runtime the tests load components with: the conformance limits
/// and the shared compiled-router cache.
pub(crate) fn shared_runtime() -> &'static RouterRuntime {
    static RUNTIME: OnceLock<RouterRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| RouterRuntime::with_compiled_cache(limits(), compiled_cache_dir()).expect("router runtime"))
}

/// Compiles the component at `path` into the shared cache unless it is
/// there (one test at a time: the first one waits for the compile, the
/// others read the cache).
pub(crate) fn warm(path: &str) {
    static COMPILING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    // Any load stores the optimized code; its init may refuse, which is
    // not this function's concern.
    let _ = WasmRouter::named("warm-up")
        .compilation(dbroute::wasm::Compilation::Optimized)
        .load_file(shared_runtime(), path);
}

/// Whether the file at `path` holds a component (its header's layer is
/// 1) rather than a core module.
pub(crate) fn is_component_file(path: &str) -> bool {
    let mut header = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header));
    read.is_ok() && header[..4] == *b"\0asm" && header[6..8] == [1, 0]
}

/// A service swaps component routers in and out while it routes: a core
/// module, the Rust component, the Python one, the JavaScript one, each
/// serving real rows (in-memory SQLite per connection) with no failed
/// decision or query, and each answer the active router's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_swap_in_and_out_while_a_service_routes() {
    use dbroute::wasm::{Compilation, RouterSource};
    use dbroute::{Engine, Hints, ModelInfo};
    use dbroute_example_routers as routers;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let languages: Vec<(&str, &str)> = [
        ("rust", Some(routers::REFERENCE)),
        ("rust-component", routers::RUST_COMPONENT_REFERENCE),
        ("python", routers::PYTHON_REFERENCE),
        ("javascript", routers::JAVASCRIPT_REFERENCE),
    ]
    .into_iter()
    .filter_map(|(language, path)| Some((language, path?)))
    .collect();
    for (_, path) in &languages {
        if is_component_file(path) {
            warm(path);
        }
    }
    let mut builder = Engine::builder()
        .router_limits(limits())
        .compiled_router_cache(compiled_cache_dir());
    for name in ["default", "replica", "analytics"] {
        builder = builder.connection(name, "sqlite::memory:");
    }
    let engine = builder.build().await.expect("engine");
    let load = |language: &str, path: &str| {
        engine
            .load_router(
                WasmRouter::named(format!("reference-{language}")).compilation(Compilation::Optimized),
                RouterSource::File(path.into()),
            )
            .unwrap_or_else(|e| panic!("{language}: {e}"))
    };
    engine.set_router(load(languages[0].0, languages[0].1));

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (engine, stop, served, failed) = (engine.clone(), stop.clone(), served.clone(), failed.clone());
            tokio::spawn(async move {
                let (user, event) = (ModelInfo::new("User"), ModelInfo::new("Event"));
                while !stop.load(Ordering::Relaxed) {
                    let read = engine.read_model(&user).fetch_one("SELECT 1 AS one", &[]).await;
                    let decided = engine.db_for_write(&event, &Hints::new());
                    match (read, decided) {
                        (Ok(_), Ok(db)) if db == "analytics" => served.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("during swaps: {other:?}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for round in 0..3 {
        for (language, path) in &languages {
            let router = load(language, path);
            let generation = engine.set_router(router);
            let before = served.load(Ordering::Relaxed);
            while served.load(Ordering::Relaxed) < before + 50 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let status = engine.router_status();
            assert_eq!(status.generation, generation);
            assert_eq!(
                status.routers.first().map(|r| r.name()),
                Some(format!("reference-{language}").as_str()),
                "round {round}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed decisions or queries during swaps"
    );
    assert!(served.load(Ordering::Relaxed) >= 50 * 3 * languages.len() as u64);
    engine.close().await;
}
