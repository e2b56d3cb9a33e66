//! What routing costs: decisions (native, Wasm, cached), routed queries
//! against raw sqlx, swaps, and scaling over threads.
//!
//! Run: `cargo bench -p dbroute --bench routing` (PostgreSQL on
//! 127.0.0.1:5432 for the postgres cases). Results and the machine go in
//! BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dbroute::{
    ConnectionName, Decision, Engine, Fault, Hints, ModelInfo, Operation, Router, RouterIdentity, RouterSource,
    WasmRouter, params,
};
use tokio::runtime::Runtime;

/// The reference policy as a native router (the same decisions as the
/// `reference` example router).
#[derive(Debug)]
struct NativeReference;

const REPLICA: ConnectionName = ConnectionName::from_static("replica");
const ANALYTICS: ConnectionName = ConnectionName::from_static("analytics");

impl Router for NativeReference {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("reference")
    }
    fn db_for_read(&self, op: &Operation<'_>) -> Result<Decision, Fault> {
        if let Some(tenant) = op.hints.get("tenant").and_then(|t| t.as_str()) {
            let _ = tenant;
        }
        Ok(Decision::Use(if op.model.name() == "Event" {
            ANALYTICS
        } else {
            REPLICA
        }))
    }
    fn db_for_write(&self, op: &Operation<'_>) -> Result<Decision, Fault> {
        if op.model.has_tag("readonly") {
            return Ok(Decision::Refuse(format!(
                "writes to read-only model {} are forbidden",
                op.model.name()
            )));
        }
        Ok(Decision::Use(if op.model.name() == "Event" {
            ANALYTICS
        } else {
            ConnectionName::DEFAULT
        }))
    }
}

static USER: ModelInfo = ModelInfo::new("User").table("users").app("auth");

fn engine(rt: &Runtime, urls: &[(&str, &str)]) -> Engine {
    rt.block_on(async {
        let mut builder = Engine::builder();
        for (name, url) in urls {
            builder = builder.connection(*name, *url);
        }
        builder.build().await.expect("engine")
    })
}

fn sqlite_names(rt: &Runtime) -> Engine {
    engine(
        rt,
        &[
            ("default", "sqlite::memory:"),
            ("replica", "sqlite::memory:"),
            ("analytics", "sqlite::memory:"),
        ],
    )
}

fn reference(engine: &Engine, cache: bool) -> WasmRouter {
    engine
        .load_router(
            WasmRouter::builder("reference").answer_cache(cache),
            RouterSource::File(dbroute_example_routers::REFERENCE.into()),
        )
        .expect("reference router")
}

fn decide(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = sqlite_names(&rt);
    let hints = Hints::new();
    let mut group = c.benchmark_group("decide");
    let mut case = |name: &str, router: Option<Arc<dyn Router>>| {
        match router {
            Some(r) => engine.set_router(dbroute::RouterChain::new().then_shared(r)),
            None => engine.clear_router(),
        };
        assert_eq!(engine.db_for_read(&USER, &hints).unwrap(), "replica", "{name}");
        group.bench_function(name, |b| {
            b.iter(|| engine.db_for_read(black_box(&USER), black_box(&hints)))
        });
    };
    case("native", Some(Arc::new(NativeReference)));
    case("wasm-rust", Some(Arc::new(reference(&engine, false))));
    // The same policy in the other languages, where their toolchains were
    // there when the example routers were built.
    for (language, path) in dbroute_example_routers::languages() {
        let Some(path) = path.filter(|_| *language != "rust" && *language != "wat") else {
            continue;
        };
        let router = engine
            .load_router(
                WasmRouter::builder(format!("reference-{language}")).answer_cache(false),
                RouterSource::File((*path).into()),
            )
            .expect("reference router");
        case(&format!("wasm-{language}"), Some(Arc::new(router)));
    }
    // The hand-written WAT router is the simplest policy: reads to replica.
    let wat = engine
        .load_router(
            WasmRouter::builder("simple"),
            RouterSource::File(dbroute_example_routers::WAT_SIMPLE.into()),
        )
        .unwrap();
    case("wasm-wat", Some(Arc::new(wat)));
    case("cached", Some(Arc::new(reference(&engine, true))));
    group.finish();
}

const PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn query(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("query");
    for (backend, url) in [("sqlite", "sqlite::memory:"), ("postgres", PG)] {
        let engine = engine(&rt, &[("default", url), ("replica", url)]);
        let table = format!("dbroute_bench_users_{}", std::process::id());
        rt.block_on(async {
            let sql = dbroute::sqlx::AssertSqlSafe;
            // In-memory SQLite connections are separate databases: make the
            // table wherever reads may go.
            for name in ["default", "replica"] {
                let conn = engine.connection(Some(name)).unwrap();
                conn.execute(
                    sql(format!(
                        "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, name TEXT)"
                    )),
                    &[],
                )
                .await
                .unwrap();
                conn.execute(
                    sql(format!("INSERT INTO {table} VALUES (1, 'ada') ON CONFLICT DO NOTHING")),
                    &[],
                )
                .await
                .unwrap();
            }
        });
        let select = format!("SELECT id, name FROM {table} WHERE id = $1");
        engine.set_router(reference(&engine, false));

        match engine.connection(Some("replica")).unwrap().pool() {
            dbroute::DbPool::Sqlite(pool) => {
                let pool = pool.clone();
                group.bench_function(format!("raw-sqlx/{backend}"), |b| {
                    b.to_async(&rt).iter(|| async {
                        let row = dbroute::sqlx::query(dbroute::sqlx::AssertSqlSafe(select.as_str()))
                            .bind(1i64)
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                        black_box(dbroute::sqlx::Row::get::<String, _>(&row, 1))
                    })
                });
            }
            dbroute::DbPool::Postgres(pool) => {
                let pool = pool.clone();
                group.bench_function(format!("raw-sqlx/{backend}"), |b| {
                    b.to_async(&rt).iter(|| async {
                        let row = dbroute::sqlx::query(dbroute::sqlx::AssertSqlSafe(select.as_str()))
                            .bind(1i32)
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                        black_box(dbroute::sqlx::Row::get::<String, _>(&row, 1))
                    })
                });
            }
            _ => unreachable!(),
        }
        let handle = engine.connection(Some("replica")).unwrap();
        group.bench_function(format!("handle/{backend}"), |b| {
            b.to_async(&rt).iter(|| async {
                let row = handle
                    .fetch_one(dbroute::sqlx::AssertSqlSafe(select.as_str()), &params![1])
                    .await
                    .unwrap();
                black_box(row.get::<String, _>(1))
            })
        });
        group.bench_function(format!("routed/{backend}"), |b| {
            b.to_async(&rt).iter(|| async {
                let row = engine
                    .read_model(&USER)
                    .fetch_one(dbroute::sqlx::AssertSqlSafe(select.as_str()), &params![1])
                    .await
                    .unwrap();
                black_box(row.get::<String, _>(1))
            })
        });
        rt.block_on(async {
            let drop = dbroute::sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}"));
            engine.connection(None).unwrap().execute(drop, &[]).await.unwrap();
        });
    }
    group.finish();
}

fn swap(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = sqlite_names(&rt);
    let bytes: Arc<[u8]> = std::fs::read(dbroute_example_routers::REFERENCE).unwrap().into();
    let mut group = c.benchmark_group("swap");
    group.sample_size(20);
    group.bench_function("bytes", |b| {
        b.iter(|| {
            let router = engine
                .load_router(WasmRouter::builder("reference"), RouterSource::Bytes(bytes.clone()))
                .unwrap();
            engine.set_router(router)
        })
    });
    let loaded = reference(&engine, true);
    group.bench_function("loaded", |b| b.iter(|| engine.set_router(loaded.clone())));
    group.finish();
}

/// Decisions spread over `threads` threads; the time per decision.
fn run_threads(engine: &Engine, threads: usize, iters: u64) -> Duration {
    let per_thread = iters / threads as u64;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (engine, barrier) = (engine.clone(), barrier.clone());
            s.spawn(move || {
                let model = ModelInfo::named(format!("Model{t}"));
                let hints = Hints::new();
                barrier.wait();
                for _ in 0..per_thread {
                    black_box(engine.db_for_read(&model, &hints).unwrap());
                }
            });
        }
    });
    start.elapsed()
}

fn scale(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = sqlite_names(&rt);
    engine.set_router(reference(&engine, false));
    let mut group = c.benchmark_group("scale");
    for threads in [1usize, 2] {
        group.bench_function(format!("{threads}-threads"), |b| {
            b.iter_custom(|iters| run_threads(&engine, threads, iters.max(threads as u64)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decide, query, swap, scale
}
criterion_main!(benches);
