//! Tenants: hint scopes, the connection factory, and the live view of the
//! connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dbroute::stats::Health;
use dbroute::{ConnectionFactory, Engine, Error, Hints, ModelInfo, PoolSettings, params, scope, sqlx::AssertSqlSafe};

use crate::support::{ByTenant, TestDb, admin_execute, invoice, per_backend};

async fn count_on(engine: &Engine, name: &str) -> i64 {
    let conn = engine.connection(name).unwrap();
    conn.fetch_one("SELECT COUNT(*) AS n FROM invoices", &[])
        .await
        .unwrap()
        .get("n")
}

per_backend!(scopes_route_everything_inside_them, |db: TestDb| async move {
    let (a, b) = (TestDb::new(db.backend).await, TestDb::new(db.backend).await);
    let engine = Engine::builder()
        .connection("default", &db.url)
        .connection("acme", &a.url)
        .connection("globex", &b.url)
        .add_router(ByTenant)
        .build()
        .await
        .unwrap();
    for name in ["default", "acme", "globex"] {
        engine
            .connection(name)
            .unwrap()
            .execute("CREATE TABLE invoices (n INTEGER)", &[])
            .await
            .unwrap();
    }
    let insert_sql = format!("INSERT INTO invoices VALUES ({})", db.p(1));
    let insert = move || AssertSqlSafe(insert_sql.clone());
    let e = engine.clone();
    scope(Hints::new().with("tenant", "acme"), async {
        e.write_model(&invoice()).execute(insert(), &params![1]).await.unwrap();
        // Nested: inner keys win.
        scope(Hints::new().with("tenant", "globex"), async {
            e.write_model(&invoice()).execute(insert(), &params![2]).await.unwrap();
        })
        .await;
        // An operation's own hints win over the scope's.
        e.write_model(&invoice())
            .hint("tenant", "globex")
            .execute(insert(), &params![3])
            .await
            .unwrap();
        // A spawned task does not inherit the scope: no tenant, so default.
        let e2 = e.clone();
        let insert2 = insert();
        tokio::spawn(async move { e2.write_model(&invoice()).execute(insert2, &params![4]).await.unwrap() })
            .await
            .unwrap();
    })
    .await;
    // Outside every scope: default.
    engine
        .write_model(&invoice())
        .execute(insert(), &params![5])
        .await
        .unwrap();
    assert_eq!(count_on(&engine, "acme").await, 1);
    assert_eq!(count_on(&engine, "globex").await, 2);
    assert_eq!(count_on(&engine, "default").await, 2);
});

#[tokio::test]
async fn the_factory_makes_postgres_tenant_databases_once() {
    let default = TestDb::postgres().await;
    let names: Vec<String> = (0..3)
        .map(|i| format!("dbroute_tenant_{}_{i}", std::process::id()))
        .collect();
    for name in &names {
        admin_execute(dbroute::Backend::Postgres, &format!("CREATE DATABASE {name}")).await;
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let engine = Engine::builder()
        .connection("default", &default.url)
        .add_router(ByTenant)
        .connection_factory(
            ConnectionFactory::from_fn(move |name| {
                counted.fetch_add(1, Ordering::SeqCst);
                // Only tenants we know: anything else stays unknown.
                name.starts_with("dbroute_tenant_")
                    .then(|| format!("postgres://postgres@127.0.0.1:5432/{name}"))
            })
            .pool_settings(PoolSettings::new().max_connections(2))
            .max_connections(2),
        )
        .build()
        .await
        .unwrap();

    // 16 racing first requests for one tenant: one pool.
    let mut racers = Vec::new();
    for _ in 0..16 {
        let (engine, tenant) = (engine.clone(), names[0].clone());
        racers.push(tokio::spawn(async move {
            engine
                .read_model(&invoice())
                .hint("tenant", tenant)
                .fetch_one("SELECT current_database() AS db", &[])
                .await
                .unwrap()
                .get::<String, _>("db")
        }));
    }
    for racer in racers {
        assert_eq!(racer.await.unwrap(), names[0], "the query ran on the tenant's database");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the factory made the pool once");
    let status = engine.status();
    let made: Vec<_> = status.iter().filter(|s| s.made_by_factory).collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].name, names[0].as_str());

    // An unknown tenant the factory refuses stays an error, naming it.
    let err = engine
        .read_model(&invoice())
        .hint("tenant", "stranger")
        .connection()
        .unwrap_err();
    assert!(matches!(err, Error::UnknownConnection { .. }), "{err}");
    assert!(err.to_string().contains("stranger"), "{err}");

    // At most two made connections: the third evicts the least recently used.
    for tenant in &names[1..] {
        tokio::time::sleep(Duration::from_millis(5)).await;
        engine
            .read_model(&invoice())
            .hint("tenant", tenant.as_str())
            .fetch_one("SELECT 1 AS one", &[])
            .await
            .unwrap();
    }
    let names_now = engine.connection_names();
    assert!(!names_now.iter().any(|n| *n == names[0].as_str()), "{names_now:?}");
    assert!(names_now.iter().any(|n| *n == names[1].as_str()) && names_now.iter().any(|n| *n == names[2].as_str()));

    engine.close().await;
    drop(engine);
    for name in &names {
        admin_execute(
            dbroute::Backend::Postgres,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
}

#[tokio::test]
async fn the_factory_makes_sqlite_files_and_evicts_idle_ones() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .add_router(ByTenant)
        .connection_factory(
            ConnectionFactory::from_template(format!("sqlite:{}/{{name}}.db", dir.path().display()))
                .evict_after_idle(Duration::from_millis(300)),
        )
        .build()
        .await
        .unwrap();
    let conn = engine
        .write_model(&invoice())
        .hint("tenant", "t1")
        .connection()
        .unwrap();
    conn.execute("CREATE TABLE invoices (n INTEGER)", &[]).await.unwrap();
    assert!(dir.path().join("t1.db").exists(), "the factory made the SQLite file");
    assert!(engine.connection_names().iter().any(|n| n == "t1"));
    // Idle past the limit: the background sweeper evicts it.
    let evicted = async {
        loop {
            if !engine.connection_names().iter().any(|n| n == "t1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), evicted)
        .await
        .expect("evicted within 5 s");
    // Asked again, it is made again, with its data.
    let again = engine.read_model(&invoice()).hint("tenant", "t1").connection().unwrap();
    assert_eq!(
        again
            .fetch_one("SELECT COUNT(*) AS n FROM invoices", &[])
            .await
            .unwrap()
            .get::<i64, _>("n"),
        0
    );
}

#[tokio::test]
async fn without_a_factory_an_unknown_name_is_an_error() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .add_router(ByTenant)
        .build()
        .await
        .unwrap();
    let err = engine
        .read_model(&invoice())
        .hint("tenant", "acme")
        .connection()
        .unwrap_err();
    assert!(matches!(err, Error::UnknownConnection { .. }), "{err}");
}

#[tokio::test]
async fn stats_move_and_a_dead_database_shows_unhealthy() {
    let pg = TestDb::postgres().await;
    let engine = Engine::builder()
        .connection("default", &pg.url)
        .connection_with(
            "dead",
            "postgres://postgres:S3cret@127.0.0.1:1/none",
            PoolSettings::new()
                .lazy(true)
                .acquire_timeout(Duration::from_millis(300)),
        )
        .build()
        .await
        .unwrap();
    let before = engine.status();
    assert_eq!(before[0].name, "default");
    assert!(before[0].is_default);
    assert_eq!(before[0].queries, 0);
    let conn = engine.connection("default").unwrap();
    for _ in 0..20 {
        conn.execute("SELECT 1", &[]).await.unwrap();
    }
    assert!(conn.execute("SELEC 1", &[]).await.is_err());
    engine.read_model(&invoice()).connection().unwrap();
    let status = engine.check_health(Duration::from_secs(2)).await;
    let default = status.iter().find(|s| s.name == "default").unwrap();
    assert_eq!(default.queries, 22, "20 statements, 1 failed one, 1 health check");
    assert_eq!(default.errors, 1);
    assert_eq!(default.routed_reads, 1);
    assert!(default.latency_p50.is_some() && default.latency_p99 >= default.latency_p50);
    assert!(
        default.last_error.as_deref().unwrap_or_default().contains("syntax"),
        "{default:?}"
    );
    assert_eq!(default.health, Health::Healthy);
    assert!(default.pool_size >= 1);
    let dead = status.iter().find(|s| s.name == "dead").unwrap();
    assert_eq!(dead.health, Health::Unhealthy);
    assert!(dead.last_error.is_some());
    assert!(!format!("{status:?}").contains("S3cret"), "{status:?}");
}

#[tokio::test]
async fn decisions_are_counted_per_route() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("acme", "sqlite::memory:")
        .add_router(ByTenant)
        .route_stats(true)
        .build()
        .await
        .unwrap();
    let acme = Hints::new().with("tenant", "acme");
    for _ in 0..3 {
        engine.db_for_read(&invoice(), &acme).unwrap();
    }
    engine.db_for_write(&invoice(), &Hints::new()).unwrap();
    engine.set_router(ByTenant);
    engine.db_for_read(&ModelInfo::new("User"), &acme).unwrap();
    let routes: Vec<(u64, &str, String, String, u64)> = engine
        .route_stats()
        .into_iter()
        .map(|r| (r.generation, r.op.as_str(), r.model, r.connection.to_string(), r.count))
        .collect();
    assert_eq!(
        routes,
        [
            (0, "read", "Invoice".into(), "acme".into(), 3),
            (0, "write", "Invoice".into(), "default".into(), 1),
            (1, "read", "User".into(), "acme".into(), 1),
        ]
    );
    // The hints a route stat keeps are those the routers saw: a scope's
    // too.
    scope(Hints::new().with("tenant", "acme"), async {
        engine.db_for_write(&invoice(), &Hints::new()).unwrap();
    })
    .await;
    let scoped: Vec<_> = engine
        .route_stats()
        .into_iter()
        .filter(|r| r.op.as_str() == "write" && r.hints.get("tenant").is_some_and(|t| t == "acme"))
        .map(|r| (r.model, r.connection.to_string(), r.count))
        .collect();
    assert_eq!(scoped, [("Invoice".to_owned(), "acme".to_owned(), 1)]);
    // Off by default.
    let plain = Engine::builder()
        .connection("default", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    plain.db_for_read(&invoice(), &Hints::new()).unwrap();
    assert!(plain.route_stats().is_empty());
}
