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
use dbroute::router::{Fault, HostRouter, RouteDecision, RouteRequest, RouterIdentity};
use dbroute::wasm::{Compilation, RouterSource, Tier, WasmRouter};
use dbroute::{ConnectionName, Engine, Hints, ModelInfo, params};
use tokio::runtime::Runtime;

#[path = "support/mod.rs"]
mod support;
use support::{config, percentile, report_selected, resident_bytes};

/// The reference policy as a native router (the same decisions as the
/// `reference` example router).
#[derive(Debug)]
struct NativeReference;

const REPLICA: ConnectionName = ConnectionName::from_static("replica");
const ANALYTICS: ConnectionName = ConnectionName::from_static("analytics");

impl HostRouter for NativeReference {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("reference")
    }
    fn db_for_read(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        if let Some(tenant) = op.hints.get("tenant").and_then(|t| t.as_str()) {
            let _ = tenant;
        }
        Ok(RouteDecision::Use(if op.model.name() == "Event" {
            ANALYTICS
        } else {
            REPLICA
        }))
    }
    fn db_for_write(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        if op.model.has_tag("readonly") {
            return Ok(RouteDecision::Refuse(format!(
                "writes to read-only model {} are forbidden",
                op.model.name()
            )));
        }
        Ok(RouteDecision::Use(if op.model.name() == "Event" {
            ANALYTICS
        } else {
            ConnectionName::DEFAULT
        }))
    }
}

static USER: std::sync::LazyLock<ModelInfo> =
    std::sync::LazyLock::new(|| ModelInfo::new("User").with_table("users").with_app("auth"));

fn engine(rt: &Runtime, urls: &[(&str, &str)]) -> Engine {
    engine_with(rt, urls, |builder| builder)
}

/// An engine with these connections, and whatever else `configure` sets.
fn engine_with(
    rt: &Runtime,
    urls: &[(&str, &str)],
    configure: impl FnOnce(dbroute::EngineBuilder) -> dbroute::EngineBuilder,
) -> Engine {
    let mut builder = Engine::builder();
    for (name, url) in urls {
        builder = builder.connection(*name, *url);
    }
    rt.block_on(configure(builder).build()).expect("engine")
}

/// The connections the reference policy names, all in-memory SQLite.
const SQLITE_NAMES: [(&str, &str); 3] = [
    ("default", "sqlite::memory:"),
    ("replica", "sqlite::memory:"),
    ("analytics", "sqlite::memory:"),
];

fn sqlite_names(rt: &Runtime) -> Engine {
    engine(rt, &SQLITE_NAMES)
}

/// The router at `path`, called `name`, compiled as `compilation` says,
/// with or without its answer cache.
fn load(engine: &Engine, name: &str, path: &str, cache: bool, compilation: Compilation) -> WasmRouter {
    engine
        .load_router(
            WasmRouter::named(name).answer_cache(cache).compilation(compilation),
            RouterSource::File(path.into()),
        )
        .unwrap_or_else(|e| panic!("router {name}: {e}"))
}

/// The Rust reference router on optimized code (as it runs once its
/// optimizing compile is done), with or without its answer cache.
fn reference(engine: &Engine, cache: bool) -> WasmRouter {
    load(
        engine,
        "reference",
        dbroute_example_routers::REFERENCE,
        cache,
        Compilation::Optimized,
    )
}

/// The hand-written WAT router, the simplest policy (reads to replica), on
/// optimized code.
fn simple(engine: &Engine) -> WasmRouter {
    load(
        engine,
        "simple",
        dbroute_example_routers::WAT_SIMPLE,
        false,
        Compilation::Optimized,
    )
}

/// Whether `language`'s reference router is a component: those are
/// measured by the `components` bench (they take seconds to compile).
fn is_component(language: &str) -> bool {
    ["python", "javascript", "rust-component"].contains(&language)
}

/// The routers of the `decide` and `route` groups: the reference policy in
/// every language whose toolchain was there when the example routers were
/// built, the simplest WAT router, and the Rust one with its answer cache.
fn routers(engine: &Engine) -> Vec<(String, Arc<dyn HostRouter>)> {
    let mut routers: Vec<(String, Arc<dyn HostRouter>)> = vec![
        ("native".into(), Arc::new(NativeReference)),
        ("wasm-rust".into(), Arc::new(reference(engine, false))),
    ];
    for (language, path) in dbroute_example_routers::languages() {
        let Some(path) = path.filter(|_| !["rust", "wat"].contains(language) && !is_component(language)) else {
            continue;
        };
        let router = load(
            engine,
            &format!("reference-{language}"),
            path,
            false,
            Compilation::Optimized,
        );
        routers.push((format!("wasm-{language}"), Arc::new(router)));
    }
    routers.push(("wasm-wat".into(), Arc::new(simple(engine))));
    routers.push(("cached".into(), Arc::new(reference(engine, true))));
    // The Rust router before its optimizing compile is done.
    let rust = dbroute_example_routers::REFERENCE;
    let baseline = load(engine, "reference-baseline", rust, false, Compilation::Baseline);
    routers.push(("wasm-rust-baseline".into(), Arc::new(baseline)));
    routers
}

/// One decision through the router alone: the `HostRouter` call the engine
/// makes (for a Wasm router: the ABI input, the instance the thread keeps,
/// the two calls into the module, the answer checked).
fn decide(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = sqlite_names(&rt);
    let hints = Hints::new();
    let op = RouteRequest {
        kind: dbroute::router::RouteKind::Read,
        model: &USER,
        hints: &hints,
        origin: None,
    };
    let mut group = c.benchmark_group("decide");
    // A language whose toolchain was missing has no case: say so, or its
    // absence from the results goes unnoticed.
    for (language, reason) in dbroute_example_routers::skipped() {
        eprintln!("decide/wasm-{language} skipped: {reason}");
    }
    for (name, router) in routers(&engine) {
        assert_eq!(router.db_for_read(&op).unwrap(), RouteDecision::Use(REPLICA), "{name}");
        group.bench_function(&name, |b| b.iter(|| router.db_for_read(black_box(&op))));
    }
    group.finish();
}

/// One decision through the engine: `Engine::db_for_read`, which adds the
/// registry and router snapshots, scoped hints, the name check and the
/// per-connection counters to `decide`.
fn route(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = sqlite_names(&rt);
    let hints = Hints::new();
    let mut group = c.benchmark_group("route");
    for (name, router) in routers(&engine) {
        if !matches!(name.as_str(), "native" | "wasm-rust" | "cached") {
            continue;
        }
        engine.set_router(dbroute::router::RouterChain::new().then_shared(router));
        assert_eq!(engine.db_for_read(&USER, &hints).unwrap(), "replica", "{name}");
        group.bench_function(&name, |b| {
            b.iter(|| engine.db_for_read(black_box(&USER), black_box(&hints)))
        });
    }
    group.finish();
}

const PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn query(c: &mut Criterion) {
    // One thread runs the futures: no hand-off between runtime workers
    // (their wake-ups are the noisiest part of a query on two cores).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("query");
    for (backend, url) in [("sqlite", "sqlite::memory:"), ("postgres", PG)] {
        let engine = engine(&rt, &[("default", url), ("replica", url)]);
        let table = format!("dbroute_bench_users_{}", std::process::id());
        rt.block_on(async {
            let sql = dbroute::sqlx::AssertSqlSafe;
            // In-memory SQLite connections are separate databases: make the
            // table wherever reads may go. Its id is a 64-bit integer on
            // both backends: dbroute binds integers as such, and so does raw
            // sqlx here, so both run the same comparison (an INT4 column
            // against an INT8 parameter costs PostgreSQL about 2% more).
            let id = if backend == "postgres" { "BIGINT" } else { "INTEGER" };
            for name in ["default", "replica"] {
                let conn = engine.connection(name).unwrap();
                conn.execute(
                    sql(format!(
                        "CREATE TABLE IF NOT EXISTS {table} (id {id} PRIMARY KEY, name TEXT)"
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
        // The reference router declares itself deterministic: as loaded by
        // default, its answers are cached. The uncached case is the most a
        // decision costs.
        let cached = reference(&engine, true);
        let uncached = reference(&engine, false);

        let pool = engine.connection("replica").unwrap().pool().clone();
        group.bench_function(format!("raw-sqlx/{backend}"), |b| {
            b.to_async(&rt).iter(|| raw_select(&pool, &select))
        });
        let handle = engine.connection("replica").unwrap();
        group.bench_function(format!("handle/{backend}"), |b| {
            b.to_async(&rt).iter(|| handle_select(&handle, &select))
        });
        engine.set_router(cached.clone());
        group.bench_function(format!("routed/{backend}"), |b| {
            b.to_async(&rt).iter(|| routed_select(&engine, &select))
        });
        engine.set_router(uncached.clone());
        group.bench_function(format!("routed-uncached/{backend}"), |b| {
            b.to_async(&rt).iter(|| routed_select(&engine, &select))
        });
        if report_selected(&format!("query/paired/{backend}/report")) {
            let ways = Ways {
                engine: &engine,
                pool: &pool,
                handle: &handle,
                select: &select,
                cached: &cached,
                uncached: &uncached,
            };
            rt.block_on(paired_report(backend, &ways));
        }
        if report_selected(&format!("query/decision-after-query/{backend}/report")) {
            rt.block_on(decision_after_query_report(backend, &engine, &pool, &select));
        }
        rt.block_on(async {
            let drop = dbroute::sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}"));
            engine.connection("default").unwrap().execute(drop, &[]).await.unwrap();
        });
    }
    group.finish();
}

/// The primary-key select through raw sqlx on the pool.
async fn raw_select(pool: &dbroute::DbPool, select: &str) -> String {
    let sql = || dbroute::sqlx::AssertSqlSafe(select);
    let name = match pool {
        dbroute::DbPool::Sqlite(pool) => {
            let row = dbroute::sqlx::query(sql()).bind(1i64).fetch_one(pool).await.unwrap();
            dbroute::sqlx::Row::get::<String, _>(&row, 1)
        }
        dbroute::DbPool::Postgres(pool) => {
            let row = dbroute::sqlx::query(sql()).bind(1i64).fetch_one(pool).await.unwrap();
            dbroute::sqlx::Row::get::<String, _>(&row, 1)
        }
        _ => unreachable!("the query benchmark runs on SQLite and PostgreSQL"),
    };
    black_box(name)
}

/// The same select, routed by the engine's router.
async fn routed_select(engine: &Engine, select: &str) -> String {
    let row = engine
        .read_model(&USER)
        .fetch_one(dbroute::sqlx::AssertSqlSafe(select), &params![1])
        .await
        .unwrap();
    black_box(row.get::<String, _>(1))
}

/// The typed path: a routed read's connection, then sqlx's own query on
/// its pool (where `query!`/`query_as!` run).
async fn typed_select(engine: &Engine, select: &str) -> String {
    let connection = engine.read_model(&USER).connection().unwrap();
    raw_select(connection.pool(), select).await
}

/// The same select on a `Connection` handle (no routing).
async fn handle_select(handle: &dbroute::Connection, select: &str) -> String {
    let row = handle
        .fetch_one(dbroute::sqlx::AssertSqlSafe(select), &params![1])
        .await
        .unwrap();
    black_box(row.get::<String, _>(1))
}

/// The ways the paired report runs the same select.
struct Ways<'a> {
    engine: &'a Engine,
    pool: &'a dbroute::DbPool,
    handle: &'a dbroute::Connection,
    select: &'a str,
    cached: &'a WasmRouter,
    uncached: &'a WasmRouter,
}

impl Ways<'_> {
    /// `raw-again` is raw sqlx once more: the control, whose ratio shows
    /// how far the method itself is from 1.000× on this machine.
    /// `raw+100ns` is raw sqlx after a busy wait of at least 100 ns: what
    /// any work between statements costs here, which is not in proportion
    /// to the work (the wait costs some machines 4%, a µs, on SQLite).
    const NAMES: [&'static str; 7] = [
        "raw",
        "handle",
        "routed",
        "routed-uncached",
        "typed",
        "raw-again",
        "raw+100ns",
    ];

    /// Activates the router the `way`-th way routes with, if any.
    fn prepare(&self, way: usize) {
        let router = match way {
            2 | 4 => self.cached,
            3 => self.uncached,
            _ => return,
        };
        self.engine.set_router(router.clone());
    }

    /// Runs the select `n` times the `way`-th way.
    async fn run(&self, way: usize, n: usize) {
        for _ in 0..n {
            match way {
                0 | 5 => drop(raw_select(self.pool, self.select).await),
                1 => drop(handle_select(self.handle, self.select).await),
                4 => drop(typed_select(self.engine, self.select).await),
                6 => {
                    busy_wait(Duration::from_nanos(100));
                    drop(raw_select(self.pool, self.select).await)
                }
                _ => drop(routed_select(self.engine, self.select).await),
            }
        }
    }
}

/// Spins for at least `how_long` without yielding.
fn busy_wait(how_long: Duration) {
    let started = Instant::now();
    while started.elapsed() < how_long {
        std::hint::spin_loop();
    }
}

/// Each way against raw, measured in rounds: 1001 rounds of 10 selects each
/// way, in an order shuffled each round, and the median of the rounds' ratios. Queries on
/// loopback drift by more than the difference being measured; comparing
/// within a short round cancels the drift (rounds of 100 selects were too
/// long on a noisy machine: their ratios fell below 1).
async fn paired_report(backend: &str, ways: &Ways<'_>) {
    const ROUNDS: usize = 1001;
    const QUERIES: usize = 10;
    const WAYS: usize = Ways::NAMES.len();
    // Way 0 is raw sqlx, what the others are compared with.
    let mut ratios: Vec<Vec<f64>> = (0..WAYS).map(|_| Vec::with_capacity(ROUNDS)).collect();
    let mut totals = [Duration::ZERO; WAYS];
    // Each round runs the ways in an order of its own: a fixed rotation
    // would give every way the same neighbour each round (raw after
    // raw-again, always), and a way run after another one's code pays for
    // it.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut order: [usize; WAYS] = std::array::from_fn(|way| way);
    for _ in 0..ROUNDS {
        let mut times = [Duration::ZERO; WAYS];
        for i in (1..WAYS).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for way in order {
            ways.prepare(way);
            let started = Instant::now();
            ways.run(way, QUERIES).await;
            times[way] = started.elapsed();
        }
        for way in 0..WAYS {
            if way > 0 {
                ratios[way].push(times[way].as_secs_f64() / times[0].as_secs_f64());
            }
            totals[way] += times[way];
        }
    }
    let summary: Vec<String> = (1..WAYS)
        .map(|way| {
            ratios[way].sort_by(f64::total_cmp);
            format!("{} {:.3}x", Ways::NAMES[way], ratios[way][ROUNDS / 2])
        })
        .collect();
    let means: Vec<String> = (0..WAYS)
        .map(|way| format!("{} {:?}", Ways::NAMES[way], totals[way] / (ROUNDS * QUERIES) as u32))
        .collect();
    println!(
        "query/paired/{backend} report: median of {ROUNDS} rounds, against raw sqlx: {}; mean per query: {}",
        summary.join(", "),
        means.join(", ")
    );
}

/// What one decision costs right after a query, when the query has pushed
/// the router's code and memory out of the core's caches (as in a
/// service): each router in turn decides once after a select, 2,000 times.
async fn decision_after_query_report(backend: &str, engine: &Engine, pool: &dbroute::DbPool, select: &str) {
    const TIMES: usize = 2000;
    let routers: [(&str, Arc<dyn HostRouter>); 4] = [
        ("native", Arc::new(NativeReference)),
        ("wasm-rust", Arc::new(reference(engine, false))),
        ("wasm-wat", Arc::new(simple(engine))),
        ("cached", Arc::new(reference(engine, true))),
    ];
    let hints = Hints::new();
    let op = RouteRequest {
        kind: dbroute::router::RouteKind::Read,
        model: &USER,
        hints: &hints,
        origin: None,
    };
    let mut times: Vec<Vec<Duration>> = routers.iter().map(|_| Vec::with_capacity(TIMES)).collect();
    for _ in 0..TIMES {
        for (k, (_, router)) in routers.iter().enumerate() {
            drop(raw_select(pool, select).await);
            let started = Instant::now();
            black_box(router.db_for_read(black_box(&op)).unwrap());
            times[k].push(started.elapsed());
        }
    }
    let medians: Vec<String> = routers
        .iter()
        .zip(&mut times)
        .map(|((name, _), times)| {
            times.sort();
            format!("{name} {:?}", times[TIMES / 2])
        })
        .collect();
    println!(
        "query/decision-after-query/{backend} report: median of {TIMES} decisions, each right after a select: {}",
        medians.join(", ")
    );
}

fn swap(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = sqlite_names(&rt);
    let bytes: Arc<[u8]> = std::fs::read(dbroute_example_routers::REFERENCE).unwrap().into();
    let mut group = c.benchmark_group("swap");
    group.sample_size(20);
    // From `.wasm` bytes: compile, check the ABI, make and init an
    // instance, activate. Tiered (the default): baseline code at once, and
    // the optimizing compile runs on the optimizer thread meanwhile, for
    // the router active then. `bytes-100kb`: a router of 100 KB (the size
    // the target names), all code, about a thousand small generated
    // functions. `bytes-optimized`: optimized before the load returns.
    let big: Arc<[u8]> = router_of_size(100 * 1024).into();
    let from_bytes = [
        ("bytes", &bytes, Compilation::Tiered),
        ("bytes-100kb", &big, Compilation::Tiered),
        ("bytes-optimized", &bytes, Compilation::Optimized),
    ];
    for (case, module, compilation) in from_bytes {
        group.bench_function(case, |b| {
            b.iter(|| {
                let router = engine
                    .load_router(
                        WasmRouter::named(case).compilation(compilation),
                        RouterSource::Bytes(module.clone()),
                    )
                    .unwrap();
                engine.set_router(router)
            })
        });
    }
    // The same bytes, compiled before and kept on disk by content hash.
    let dir = tempfile::tempdir().unwrap();
    let cached = engine_with(&rt, &SQLITE_NAMES, |b| b.compiled_router_cache(dir.path()));
    let first = cached
        .load_router(WasmRouter::named("reference"), RouterSource::Bytes(bytes.clone()))
        .unwrap();
    assert!(!first.info().compiled_from_cache);
    // Optimized in the background, and then in the cache.
    assert_eq!(first.wait_until_optimized(Duration::from_secs(120)), Tier::Optimized);
    cached.set_router(first);
    group.bench_function("precompiled", |b| {
        b.iter(|| {
            let router = cached
                .load_router(WasmRouter::named("reference"), RouterSource::Bytes(bytes.clone()))
                .unwrap();
            assert!(router.info().compiled_from_cache);
            cached.set_router(router)
        })
    });
    // A router already loaded: only the activation.
    let loaded = reference(&engine, true);
    group.bench_function("loaded", |b| b.iter(|| engine.set_router(loaded.clone())));
    // One decision by 64 tasks while the router is swapped every 0.5 ms.
    group.bench_function("under-load", |b| {
        b.iter_custom(|iters| {
            let run = under_load(
                &cached,
                &bytes,
                Stop::Decisions(iters),
                Some(Duration::from_micros(500)),
            );
            assert_eq!(run.failed, 0, "decisions failed during swaps");
            run.elapsed.mul_f64(iters as f64 / run.latencies.len() as f64)
        })
    });
    group.finish();
    if report_selected("swap/under-load/report") {
        swap_latency_report(&cached, &bytes);
    }
}

/// A router module of about `size` bytes (within 2%): reads go to
/// `replica`, after calling a chain of generated functions, each a loop
/// over the input with branches, loads and arithmetic (the kind of code a
/// policy compiles to), so that its compile time is that of code, not of
/// data.
fn router_of_size(size: usize) -> Vec<u8> {
    let module = |functions: usize| {
        let mut wat = String::from(
            r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param $ptr i32) (param $len i32) (result i64)
    (drop (call $f0 (local.get $ptr) (local.get $len)))
    i64.const 0x0000001000000007)
"#,
        );
        for f in 0..functions {
            let next = if f + 1 < functions {
                format!("(call $f{} (local.get $p) (local.get $h))", f + 1)
            } else {
                "(local.get $h)".to_owned()
            };
            wat.push_str(&format!(
                r#"  (func $f{f} (param $p i32) (param $n i32) (result i32) (local $h i32) (local $i i32)
    (local.set $h (i32.const {f}))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $h (i32.xor (i32.mul (local.get $h) (i32.const 16777619))
                             (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
      (if (i32.eq (i32.and (local.get $h) (i32.const 7)) (i32.const {k}))
        (then (local.set $h (i32.rotl (local.get $h) (i32.const 5))))
        (else (local.set $h (i32.add (local.get $h) (i32.shr_u (local.get $h) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (if (result i32) (i32.gt_u (local.get $h) (i32.const {limit}))
      (then {next})
      (else (i32.sub (local.get $h) (local.get $n)))))
"#,
                k = f % 8,
                limit = 1_000_000 + f,
            ));
        }
        wat.push(')');
        wat::parse_str(&wat).expect("a valid module")
    };
    // Functions are about equal in size: scale from a sample, then correct.
    let mut functions = 100;
    loop {
        let bytes = module(functions);
        if bytes.len().abs_diff(size) * 50 <= size {
            return bytes;
        }
        functions = (functions * size).div_ceil(bytes.len());
    }
}

/// When [`under_load`] stops.
#[derive(Clone, Copy)]
enum Stop {
    /// After this many decisions in all.
    Decisions(u64),
    /// After this many swaps.
    Swaps(u64),
    /// After this long.
    After(Duration),
}

/// What [`under_load`] saw.
struct UnderLoad {
    /// Wall time of all the decisions.
    elapsed: Duration,
    /// Every decision's time, in nanoseconds.
    latencies: Vec<u32>,
    /// Decisions that failed or answered anything but `replica`.
    failed: u64,
    /// Swaps made meanwhile.
    swaps: u64,
}

/// Tasks routing while the router is swapped: 64 tokio tasks on two
/// worker threads make decisions, timing each, while this thread loads the
/// reference router (from the compiled cache) and activates it, pausing
/// `pause` between swaps (no swaps when `None`), until `stop`.
fn under_load(engine: &Engine, bytes: &Arc<[u8]>, stop: Stop, pause: Option<Duration>) -> UnderLoad {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    const TASKS: u64 = 64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let per_task = match stop {
        Stop::Decisions(n) => n.div_ceil(TASKS),
        _ => u64::MAX,
    };
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (engine, done) = (engine.clone(), done.clone());
            rt.spawn(async move {
                let hints = Hints::new();
                let mut latencies = Vec::new();
                let mut failed = 0u64;
                for i in 0..per_task {
                    let started = Instant::now();
                    let answer = engine.db_for_read(&USER, &hints);
                    latencies.push(started.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
                    if !matches!(answer, Ok(name) if name == "replica") {
                        if failed == 0 {
                            eprintln!("a decision during swaps: {answer:?}");
                        }
                        failed += 1;
                    }
                    if i % 32 == 31 {
                        if done.load(Relaxed) {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let swapper = {
        let (engine, done, bytes) = (engine.clone(), done.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !done.load(Relaxed) {
                let finished = match stop {
                    Stop::Swaps(n) => swaps == n,
                    Stop::After(limit) => start.elapsed() >= limit,
                    Stop::Decisions(_) => false,
                };
                if finished {
                    done.store(true, Relaxed);
                    break;
                }
                let Some(pause) = pause else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                let router = engine
                    .load_router(
                        WasmRouter::named("reference").answer_cache(false),
                        RouterSource::Bytes(bytes.clone()),
                    )
                    .unwrap();
                engine.set_router(router);
                swaps += 1;
                std::thread::sleep(pause);
            }
            swaps
        })
    };
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = rt.block_on(task).unwrap();
        latencies.extend(l);
        failed += f;
    }
    let elapsed = start.elapsed();
    done.store(true, Relaxed);
    let swaps = swapper.join().unwrap();
    UnderLoad {
        elapsed,
        latencies,
        failed,
        swaps,
    }
}

/// The latency report of `swap/under-load`: 1,000 swaps while 64 tasks
/// route, against the same tasks as long without swaps. Printed, and
/// checked: no decision may fail.
fn swap_latency_report(engine: &Engine, bytes: &Arc<[u8]>) {
    engine.set_router(reference(engine, false));
    let mut swapping = under_load(engine, bytes, Stop::Swaps(1000), Some(Duration::from_micros(500)));
    engine.set_router(reference(engine, false));
    let mut steady = under_load(engine, bytes, Stop::After(swapping.elapsed), None);
    assert_eq!(steady.failed + swapping.failed, 0, "decisions failed during swaps");
    println!(
        "swap/under-load report: steady: {} decisions in {:?}, p50 {} ns, p99 {} ns; \
         during {} swaps: {} decisions in {:?}, p50 {} ns, p99 {} ns, {} failed",
        steady.latencies.len(),
        steady.elapsed,
        percentile(&mut steady.latencies, 0.5),
        percentile(&mut steady.latencies, 0.99),
        swapping.swaps,
        swapping.latencies.len(),
        swapping.elapsed,
        percentile(&mut swapping.latencies, 0.5),
        percentile(&mut swapping.latencies, 0.99),
        swapping.failed,
    );
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
                let model = ModelInfo::new(format!("Model{t}"));
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

/// The memory report: resident memory of a loaded router (its compiled
/// code and first instance), of each further instance, and of a full pool
/// at the default idle limit. Printed; not a timing.
fn memory(_c: &mut Criterion) {
    const INSTANCES: usize = 64;
    if !report_selected("memory/report") {
        return;
    }
    let Some(before) = resident_bytes() else {
        println!("memory report: /proc/self/statm is not readable here");
        return;
    };
    let rt = Runtime::new().unwrap();
    let engine = engine_with(&rt, &SQLITE_NAMES, |b| {
        b.router_limits(dbroute::wasm::RouterLimits::new().idle_instances(INSTANCES + 1))
    });
    engine.router_runtime().unwrap();
    let hints = Hints::new();
    let mut report = Vec::new();
    for (language, path) in dbroute_example_routers::languages() {
        let Some(path) = path.filter(|_| !is_component(language)) else {
            continue;
        };
        let start = resident_bytes().unwrap_or(before);
        let router = engine
            .load_router(
                WasmRouter::named(format!("memory-{language}"))
                    .answer_cache(false)
                    .compilation(Compilation::Optimized),
                RouterSource::File((*path).into()),
            )
            .unwrap();
        let op = RouteRequest {
            kind: dbroute::router::RouteKind::Read,
            model: &USER,
            hints: &hints,
            origin: None,
        };
        router.db_for_read(&op).unwrap();
        let loaded = resident_bytes().unwrap_or(start);
        router.prepare_instances(INSTANCES + 1).unwrap();
        for _ in 0..1000 {
            router.db_for_read(&op).unwrap();
        }
        let full = resident_bytes().unwrap_or(loaded);
        let per_instance = full.saturating_sub(loaded) / INSTANCES as u64;
        report.push(format!(
            "{language}: loaded (code + 1 instance) {} KiB, each further instance {} KiB, \
             a pool of 32 idle instances {} KiB",
            loaded.saturating_sub(start) / 1024,
            per_instance / 1024,
            32 * per_instance / 1024,
        ));
    }
    println!("memory report (resident):\n  {}", report.join("\n  "));
}

criterion_group! {
    name = benches;
    config = config();
    targets = decide, route, query, swap, scale, memory
}
criterion_main!(benches);
