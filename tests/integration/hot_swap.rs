//! Hot swap: routers replaced while many tasks route.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dbroute::wasm::{RouterSource, WasmRouter};
use dbroute::{Engine, Hints, ModelInfo};

/// A WAT router whose reads and writes all go to `connection`.
pub(crate) fn fixed_router_wat(connection: &str) -> String {
    let len = connection.len();
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{connection}")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const {answer})
  (func (export "db_for_write") (param i32 i32) (result i64) i64.const {answer}))"#,
        answer = (16i64 << 32) | len as i64
    )
}

pub(crate) async fn engine_with(names: &[&str]) -> Engine {
    // These tests are about swapping, not budgets: a generous budget keeps
    // a descheduled thread on a busy machine from failing a call.
    let mut builder =
        Engine::builder().router_limits(dbroute::wasm::RouterLimits::new().time_budget(Duration::from_secs(2)));
    for name in names {
        builder = builder.connection(*name, "sqlite::memory:");
    }
    builder.build().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_under_load_loses_no_decision() {
    const NAMES: [&str; 5] = ["default", "c0", "c1", "c2", "c3"];
    let names = NAMES;
    let engine = engine_with(&names).await;
    let load = |k: usize| {
        engine
            .load_router(
                WasmRouter::named(format!("v{k}")),
                RouterSource::Bytes(fixed_router_wat(names[1 + k % 4]).into_bytes().into()),
            )
            .unwrap()
    };
    let routers: Vec<WasmRouter> = (0..4).map(load).collect();
    // Generation g activates routers[(g - 1) % 4], which answers c{(g-1)%4}.
    let answer_of = |generation: u64| NAMES[1 + ((generation as usize + 3) % 4)];
    assert_eq!(engine.set_router(routers[0].clone()), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let decisions = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (engine, stop, decisions) = (engine.clone(), stop.clone(), decisions.clone());
        tasks.push(tokio::spawn(async move {
            let model = ModelInfo::new(format!("Model{t}"));
            let hints = Hints::new().with("task", t);
            while !stop.load(Ordering::Relaxed) {
                let before = engine.router_status().generation;
                let decided = engine.db_for_read(&model, &hints).map_err(|e| e.to_string())?;
                let after = engine.router_status().generation;
                let possible: Vec<&str> = (before..=after).map(answer_of).collect();
                if !possible.contains(&decided.as_str()) {
                    return Err(format!(
                        "decided {decided}, but generations {before}..={after} answer {possible:?}"
                    ));
                }
                decisions.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            Ok::<_, String>(())
        }));
    }
    for generation in 2..=400u64 {
        let router = if generation % 50 == 0 {
            // Now and then a freshly compiled one, compiled under load.
            load((generation as usize + 3) % 4)
        } else {
            routers[(generation as usize + 3) % 4].clone()
        };
        assert_eq!(engine.set_router(router), generation);
        if generation % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(decisions.load(Ordering::Relaxed) > 400, "the tasks barely ran");
    let status = engine.router_status();
    assert_eq!(status.generation, 400);
    assert_eq!(status.routers.len(), 1);
    // Every decision was counted on the connection it chose.
    let counted: u64 = engine.decision_counts().iter().map(|c| c.reads).sum();
    assert_eq!(counted, decisions.load(Ordering::Relaxed));
}

#[tokio::test]
async fn clearing_the_router_sends_everything_to_default() {
    let engine = engine_with(&["default", "c0"]).await;
    let router = engine
        .load_router(
            WasmRouter::named("c0"),
            RouterSource::Bytes(fixed_router_wat("c0").into_bytes().into()),
        )
        .unwrap();
    engine.set_router(router);
    let model = ModelInfo::new("User");
    assert_eq!(engine.db_for_write(&model, &Hints::new()).unwrap(), "c0");
    engine.clear_router();
    assert_eq!(engine.db_for_write(&model, &Hints::new()).unwrap(), "default");
    assert!(engine.router_status().routers.is_empty());
}
