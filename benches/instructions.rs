//! One way of running the same select, `DBROUTE_IR_N` times after
//! `DBROUTE_IR_WARM_UP` (100) times, for counting its instructions under callgrind:
//! `benches/instructions.sh` collects only inside the polls of `query`'s
//! future (`--toggle-collect`), so set-up, warm-up, the router's compile
//! and the runtime's parking are not counted. Instruction counts do not
//! drift with the machine's load the way times do. Only the calling thread
//! is counted: SQLite's own work runs on sqlx's worker thread, the same for
//! every way.
//!
//! Ways (`DBROUTE_IR_WAY`): `raw` (sqlx on the pool), `handle` (a
//! `Connection` handle), `routed` (a routed read, the Rust reference router
//! with its answer cache), `routed-uncached` (without it), `typed` (a routed
//! read's connection, then sqlx's `query_as` on its pool), `handle-as` (a
//! typed read on the handle: `fetch_one_as` into a struct, through serde),
//! `routed-as` (the same, routed). Backend
//! (`DBROUTE_IR_BACKEND`): `sqlite` (in memory) or `postgres`
//! (`DBROUTE_IR_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`).

use std::hint::black_box;

use dbroute::wasm::{Compilation, WasmRouter};
use dbroute::{DbPool, Engine, Model, params};

#[derive(Model)]
#[dbroute(table = "dbroute_ir_users", app = "auth")]
struct User;

/// The row, as a typed read gives it.
#[derive(serde::Deserialize)]
struct UserRow {
    #[allow(dead_code)]
    id: i64,
    name: String,
}

fn main() {
    let way = std::env::var("DBROUTE_IR_WAY").unwrap_or_else(|_| "handle".into());
    let backend = std::env::var("DBROUTE_IR_BACKEND").unwrap_or_else(|_| "sqlite".into());
    let count = |name: &str, default: usize| std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    let (warm_up, n) = (count("DBROUTE_IR_WARM_UP", 100), count("DBROUTE_IR_N", 0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let set_up = runtime.block_on(set_up(&way, &backend, warm_up));
    measured_queries(&runtime, &set_up, &way, n);
    runtime.block_on(set_up.tear_down());
}

/// The engine, the connection the reference policy reads `User` from, and
/// the select.
struct SetUp {
    engine: Engine,
    replica: dbroute::Connection,
    table: String,
    select: String,
}

impl SetUp {
    async fn tear_down(self) {
        let drop_table = format!("DROP TABLE {}", self.table);
        self.replica
            .execute(dbroute::sqlx::AssertSqlSafe(drop_table), &[])
            .await
            .expect("drop");
    }
}

/// The queries, after the set-up and warm-up.
#[inline(never)]
fn measured_queries(runtime: &tokio::runtime::Runtime, set_up: &SetUp, way: &str, n: usize) {
    runtime.block_on(async {
        for _ in 0..n {
            query(way, &set_up.engine, &set_up.replica, &set_up.select).await;
        }
    });
}

async fn set_up(way: &str, backend: &str, warm_up: usize) -> SetUp {
    let url = match backend {
        "sqlite" => "sqlite::memory:".to_owned(),
        "postgres" => {
            std::env::var("DBROUTE_IR_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
        }
        other => panic!("unknown backend {other}: sqlite or postgres"),
    };
    // One pool of one connection, named as the reference policy names it.
    let settings = dbroute::PoolSettings::new().max_connections(1);
    let engine = Engine::builder()
        .connection_with("default", &url, settings.clone())
        .build()
        .await
        .expect("engine");
    engine
        .add_connection("replica", &url, settings.clone())
        .await
        .expect("replica");
    engine
        .add_connection("analytics", &url, settings)
        .await
        .expect("analytics");
    if !matches!(way, "raw" | "handle" | "handle-as") {
        let router = engine
            .load_router(
                WasmRouter::named("reference")
                    .answer_cache(way != "routed-uncached")
                    .compilation(Compilation::Optimized),
                std::path::Path::new(dbroute_example_routers::REFERENCE),
            )
            .expect("the reference router");
        engine.set_router(router);
    }
    let replica = engine.connection("replica").expect("replica");
    let table = format!("dbroute_ir_{}", std::process::id());
    // A 64-bit id on both backends, as dbroute binds integers (see
    // benches/routing.rs).
    let id = if backend == "postgres" { "BIGINT" } else { "INTEGER" };
    replica
        .execute(
            dbroute::sqlx::AssertSqlSafe(format!("CREATE TABLE {table} (id {id} PRIMARY KEY, name TEXT)")),
            &[],
        )
        .await
        .expect("table");
    replica
        .execute(
            dbroute::sqlx::AssertSqlSafe(format!("INSERT INTO {table} VALUES (1, 'ada')")),
            &[],
        )
        .await
        .expect("row");
    let select = format!("SELECT id, name FROM {table} WHERE id = $1");
    for _ in 0..warm_up {
        query(way, &engine, &replica, &select).await;
    }
    SetUp {
        engine,
        replica,
        table,
        select,
    }
}

async fn query(way: &str, engine: &Engine, replica: &dbroute::Connection, select: &str) {
    let sql = || dbroute::sqlx::AssertSqlSafe(select);
    let name: String = match way {
        "raw" => raw(replica.pool(), select).await,
        "handle" => replica.fetch_one(sql(), &params![1]).await.expect("select").get(1),
        "routed" | "routed-uncached" => engine
            .read::<User>()
            .fetch_one(sql(), &params![1])
            .await
            .expect("select")
            .get(1),
        "handle-as" => {
            let row: UserRow = replica.fetch_one_as(sql(), &params![1]).await.expect("select");
            row.name
        }
        "routed-as" => {
            let row: UserRow = engine
                .read::<User>()
                .fetch_one_as(sql(), &params![1])
                .await
                .expect("select");
            row.name
        }
        "typed" => {
            let connection = engine.read::<User>().connection().expect("routed");
            raw(connection.pool(), select).await
        }
        other => panic!("unknown way {other}"),
    };
    black_box(name);
}

/// sqlx's own typed path on the pool.
async fn raw(pool: &DbPool, select: &str) -> String {
    let sql = dbroute::sqlx::AssertSqlSafe(select);
    let row: (i64, String) = match pool {
        DbPool::Sqlite(pool) => dbroute::sqlx::query_as(sql).bind(1i64).fetch_one(pool).await,
        DbPool::Postgres(pool) => dbroute::sqlx::query_as(sql).bind(1i64).fetch_one(pool).await,
        _ => panic!("the instruction counts run on SQLite and PostgreSQL"),
    }
    .expect("select");
    row.1
}
