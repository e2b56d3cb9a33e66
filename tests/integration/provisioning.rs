//! Tenants' databases: the connection factory's provisioning hook creates
//! and migrates a tenant's database on its first use (once, however many
//! requests race; a failure is reported, unregistered and tried again from
//! scratch), and a database that does not exist is reported as missing
//! (by the statement's error, the health check and the status). On
//! PostgreSQL, MariaDB and SQLite.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dbroute::stats::{ConnectionStatus, Health, ProvisionState};
use dbroute::{
    Backend, ConnectionFactory, DbPool, Engine, Error, Hints, Provisioning, ReadFailure, params, sqlx::AssertSqlSafe,
};

use crate::support::{ByTenant, TestDb, admin_execute, invoice, per_backend, shown, within};

/// The password in the URLs here (PostgreSQL's trust authentication
/// ignores it; MariaDB's root has none, so its URLs carry none).
const PASSWORD: &str = "S3cr3tPw";

/// A name no database has: `dbroute_test_absent_<pid>_<n>`.
fn absent_name(n: u32) -> String {
    format!("dbroute_test_absent_{}_{n}", std::process::id())
}

/// A URL template for `{name}` on the test's server (a folder for SQLite)
/// whose databases are never made here: read-only on SQLite, so that
/// SQLite does not create the file.
fn template(db: &TestDb, dir: &std::path::Path) -> String {
    match db.backend {
        Backend::Postgres => format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/{{name}}"),
        Backend::MySql => "mysql://root@127.0.0.1:3306/{name}".to_owned(),
        Backend::Sqlite => format!("sqlite:{}/{{name}}.db?mode=ro", dir.display()),
    }
}

per_backend!(
    a_missing_database_is_reported_as_missing_by_errors_health_and_status,
    |db: TestDb| async move {
        let dir = tempfile::tempdir().unwrap();
        let tenant = absent_name(db.backend as u32);
        // Even with the lenient read policy: a tenant's read must not be
        // served by `default`.
        let engine = Engine::builder()
            .connection("default", &db.url)
            .add_router(ByTenant)
            .read_failure(ReadFailure::FallBackToDefault)
            .connection_factory(ConnectionFactory::from_template(template(&db, dir.path())))
            .build()
            .await
            .unwrap();
        let err = within(
            "a read on the missing database",
            engine
                .read_model(&invoice())
                .hint("tenant", tenant.as_str())
                .fetch_all("SELECT 1", &[]),
        )
        .await
        .expect_err("the database does not exist");
        let Error::DatabaseMissing {
            connection, database, ..
        } = &err
        else {
            panic!("expected DatabaseMissing, got {}", shown(&err));
        };
        assert_eq!(connection, &tenant);
        assert!(database.contains(&tenant), "{database}");
        assert!(
            !err.is_unreachable(),
            "a missing database is not unreachable: no fallback"
        );
        let message = err.to_string();
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains("provisioning hook"), "{message}");
        assert!(!shown(&err).contains(PASSWORD), "{}", shown(&err));

        // A write and a transaction say the same.
        let err = within(
            "a write",
            engine
                .write_model(&invoice())
                .hint("tenant", tenant.as_str())
                .execute("SELECT 1", &[]),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::DatabaseMissing { .. }), "{}", shown(&err));
        let err = within("a transaction", engine.transaction().on(&tenant).begin())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DatabaseMissing { .. }), "{}", shown(&err));

        // The status, at once, and the health check.
        let status = engine.status();
        let missing = status.iter().find(|s| s.name == tenant.as_str()).unwrap();
        assert_eq!(missing.health, Health::Unhealthy, "{missing:?}");
        let last = missing.last_error.as_deref().unwrap_or_default();
        assert!(last.contains("does not exist") && last.contains(&tenant), "{last}");
        let status = within("the health check", engine.check_health(Duration::from_secs(5))).await;
        let missing = status.iter().find(|s| s.name == tenant.as_str()).unwrap();
        assert_eq!(missing.health, Health::Unhealthy, "{missing:?}");
        assert!(
            missing
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("does not exist"),
            "{missing:?}"
        );
        let default = status.iter().find(|s| s.is_default).unwrap();
        assert_eq!(default.health, Health::Healthy, "{default:?}");
        assert_eq!(default.queries, 1, "only the health check ran on default: {default:?}");
        assert!(!format!("{status:?}").contains(PASSWORD), "{status:?}");
        engine.close().await;
    }
);

#[tokio::test]
async fn an_eager_connection_to_a_missing_database_fails_the_build_as_missing() {
    let name = absent_name(100);
    let err = Engine::builder()
        .connection(
            "default",
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/{name}"),
        )
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DatabaseMissing { connection, database, .. } if connection == "default" && *database == name),
        "{}",
        shown(&err)
    );
    assert!(!shown(&err).contains(PASSWORD), "{}", shown(&err));
    // A statement that fails with the same code on an existing database
    // is a query error, not a missing database.
    let db = TestDb::postgres().await;
    let engine = crate::support::engine_on(&db).await;
    let err = engine
        .connection("default")
        .unwrap()
        .execute(dbroute::sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{}", shown(&err));
}

// ---- provisioning on first use ----

/// Databases a test has its hook create: dropped when this is dropped
/// (also when the test panics).
struct TenantDatabases {
    backend: Backend,
    names: Vec<String>,
}

impl Drop for TenantDatabases {
    fn drop(&mut self) {
        let statements: Vec<String> = self
            .names
            .iter()
            .filter_map(|name| match self.backend {
                Backend::Postgres => Some(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                Backend::MySql => Some(format!("DROP DATABASE IF EXISTS {name}")),
                _ => None,
            })
            .collect();
        let backend = self.backend;
        // After a panic, a hook may still be running and create its
        // database after the first pass: a second pass a moment later.
        let passes = if std::thread::panicking() { 2 } else { 1 };
        // Drop may run inside a runtime: do the async work on a thread of
        // its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            for pass in 0..passes {
                if pass > 0 {
                    std::thread::sleep(Duration::from_secs(1));
                }
                for sql in &statements {
                    rt.block_on(admin_execute(backend, sql));
                }
            }
        })
        .join();
    }
}

/// A tenant name no database has yet, dropped after the test.
fn tenant(databases: &mut TenantDatabases, label: &str) -> String {
    let name = format!("dbroute_test_prov_{label}_{}", std::process::id());
    databases.names.push(name.clone());
    name
}

/// Where the factory puts each tenant: a database per name on the
/// server, a file per name in `dir` on SQLite.
fn tenant_template(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Postgres => format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/{{name}}"),
        Backend::MySql => "mysql://root@127.0.0.1:3306/{name}".to_owned(),
        Backend::Sqlite => format!("sqlite:{}/{{name}}.db", dir.display()),
    }
}

/// The tenant's URL, for checking its database directly (not through the
/// engine).
fn tenant_url(backend: Backend, dir: &Path, name: &str) -> String {
    tenant_template(backend, dir).replace("{name}", name)
}

/// Whether the tenant's database exists, asked of the server (or the file
/// system) directly.
async fn database_exists(backend: Backend, dir: &Path, name: &str) -> bool {
    use dbroute::sqlx::migrate::MigrateDatabase;
    let url = tenant_url(backend, dir, name);
    match backend {
        Backend::Postgres => dbroute::sqlx::Postgres::database_exists(&url).await.unwrap(),
        Backend::MySql => dbroute::sqlx::MySql::database_exists(&url).await.unwrap(),
        Backend::Sqlite => dir.join(format!("{name}.db")).exists(),
    }
}

/// Counts the invoices in the tenant's database, connecting to it directly.
async fn invoices_in(backend: Backend, dir: &Path, name: &str) -> i64 {
    use dbroute::sqlx::Connection as _;
    let url = tenant_url(backend, dir, name);
    let sql = "SELECT COUNT(*) FROM invoices";
    match backend {
        Backend::Postgres => {
            let mut c = dbroute::sqlx::PgConnection::connect(&url).await.unwrap();
            dbroute::sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Backend::MySql => {
            let mut c = dbroute::sqlx::MySqlConnection::connect(&url).await.unwrap();
            dbroute::sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Backend::Sqlite => {
            let mut c = dbroute::sqlx::SqliteConnection::connect(&url).await.unwrap();
            dbroute::sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

/// A sqlx migrations directory with the tenant schema: `invoices`, then a
/// `plans` table.
fn tenant_migrations() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_invoices.sql"),
        "CREATE TABLE invoices (id INTEGER NOT NULL, total INTEGER NOT NULL)",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("2_plans.sql"),
        "CREATE TABLE plans (name VARCHAR(40) NOT NULL)",
    )
    .unwrap();
    dir
}

/// The usual hook: create the database, migrate it, seed it. Returns
/// whether it created the database, and how many migrations it applied.
async fn create_migrate_seed(tenant: &Provisioning, migrations: &Path) -> Result<(bool, usize), Error> {
    let created = tenant.create_database_if_missing().await?;
    let migrated = tenant.migrate(migrations).await?;
    tenant
        .connection()
        .execute("INSERT INTO plans (name) VALUES ('free')", &[])
        .await?;
    Ok((created, migrated.applied.len()))
}

fn status_of(engine: &Engine, name: &str) -> Option<ConnectionStatus> {
    engine.status().into_iter().find(|s| s.name == name)
}

async fn insert_invoice(engine: &Engine, backend: Backend, tenant: &str, id: i64) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO invoices (id, total) VALUES ({}, {})",
        backend.placeholder(1),
        backend.placeholder(2)
    );
    engine
        .write_model(&invoice())
        .hint("tenant", tenant)
        .execute(AssertSqlSafe(sql), &params![id, 100 * id])
        .await
        .map(drop)
}

per_backend!(
    the_hook_creates_and_migrates_a_tenant_database_on_first_use,
    |db: TestDb| async move {
        let backend = db.backend;
        let dir = tempfile::tempdir().unwrap();
        let migrations = tenant_migrations();
        let mut databases = TenantDatabases {
            backend,
            names: Vec::new(),
        };
        let acme = tenant(&mut databases, "first_use");
        let runs = Arc::new(AtomicUsize::new(0));
        let (counted, migrations_dir) = (runs.clone(), migrations.path().to_path_buf());
        let engine = Engine::builder()
            .connection("default", &db.url)
            .add_router(ByTenant)
            .connection_factory(
                ConnectionFactory::from_template(tenant_template(backend, dir.path())).provision(
                    move |tenant: Provisioning| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let migrations = migrations_dir.clone();
                        async move {
                            let (created, applied) = create_migrate_seed(&tenant, &migrations).await?;
                            assert!(created && applied == 2, "created {created}, applied {applied}");
                            Ok(())
                        }
                    },
                ),
            )
            .build()
            .await
            .unwrap();
        assert!(!database_exists(backend, dir.path(), &acme).await);

        // Decided, not yet used: made, pending, not provisioned; the
        // health check leaves it alone.
        let conn = engine
            .write_model(&invoice())
            .hint("tenant", acme.as_str())
            .connection()
            .unwrap();
        assert_eq!(conn.name(), acme.as_str());
        let status = within("a health check", engine.check_health(Duration::from_secs(5))).await;
        let pending = status.iter().find(|s| s.name == acme.as_str()).unwrap();
        assert_eq!(
            (pending.provision, pending.health),
            (ProvisionState::Pending, Health::Unknown)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing ran before the first statement");
        assert!(!database_exists(backend, dir.path(), &acme).await);

        // The first statement provisions it, then runs there.
        within("the first insert", insert_invoice(&engine, backend, &acme, 1))
            .await
            .unwrap();
        within("a second insert", insert_invoice(&engine, backend, &acme, 2))
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(database_exists(backend, dir.path(), &acme).await);
        assert_eq!(
            invoices_in(backend, dir.path(), &acme).await,
            2,
            "the rows landed in the tenant's database"
        );
        let plans = engine
            .read_model(&invoice())
            .hint("tenant", acme.as_str())
            .fetch_one("SELECT COUNT(*) AS n FROM plans", &[])
            .await
            .unwrap();
        assert_eq!(plans.get::<i64, _>("n"), 1, "seeded by the hook");
        // Not on default.
        let on_default = engine
            .connection("default")
            .unwrap()
            .fetch_all("SELECT COUNT(*) AS n FROM invoices", &[])
            .await;
        assert!(on_default.is_err(), "default has no invoices table");
        let done = status_of(&engine, &acme).unwrap();
        assert_eq!(done.provision, ProvisionState::Done);
        assert!(done.made_by_factory);
        let status = within("a health check", engine.check_health(Duration::from_secs(5))).await;
        let healthy = status.iter().find(|s| s.name == acme.as_str()).unwrap();
        assert_eq!(healthy.health, Health::Healthy, "{healthy:?}");
        assert_eq!(
            status_of(&engine, "default").unwrap().provision,
            ProvisionState::NotNeeded
        );
        engine.close().await;
    }
);

/// 16 first requests race for one tenant, through routed reads and writes,
/// a handle and transactions: the hook runs once, and none of them runs
/// before it is done (each needs its table).
async fn racing_first_requests_provision_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut databases = TenantDatabases {
        backend,
        names: Vec::new(),
    };
    let acme = tenant(&mut databases, "race");
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let engine = Engine::builder()
        .connection("default", &db.url)
        .add_router(ByTenant)
        .connection_factory(
            ConnectionFactory::from_template(tenant_template(backend, dir.path())).provision(move |tenant| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    tenant.create_database_if_missing().await?;
                    // Long enough for every racer to arrive meanwhile.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    tenant
                        .connection()
                        .execute(
                            "CREATE TABLE invoices (id INTEGER NOT NULL, total INTEGER NOT NULL)",
                            &[],
                        )
                        .await?;
                    Ok(())
                }
            }),
        )
        .build()
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut racers = Vec::new();
    for i in 0..16i64 {
        let (engine, acme, barrier) = (engine.clone(), acme.clone(), barrier.clone());
        racers.push(tokio::spawn(async move {
            barrier.wait().await;
            match i % 4 {
                0 => insert_invoice(&engine, backend, &acme, i).await,
                1 => engine
                    .read_model(&invoice())
                    .hint("tenant", acme.as_str())
                    .fetch_all("SELECT id FROM invoices", &[])
                    .await
                    .map(drop),
                2 => {
                    let (model, hints) = (invoice(), Hints::new().with("tenant", acme.as_str()));
                    let tx = engine
                        .transaction()
                        .for_write_model(&model)
                        .hints(&hints)
                        .begin()
                        .await?;
                    tx.connection().fetch_all("SELECT id FROM invoices", &[]).await?;
                    tx.commit().await
                }
                _ => {
                    let conn = engine.read_model(&invoice()).using(acme.as_str()).connection()?;
                    conn.fetch_optional("SELECT id FROM invoices", &[]).await.map(drop)
                }
            }
        }));
    }
    for racer in racers {
        within("a racing first request", racer).await.unwrap().unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the hook ran once");
    assert_eq!(invoices_in(backend, dir.path(), &acme).await, 4);
    assert_eq!(status_of(&engine, &acme).unwrap().provision, ProvisionState::Done);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_runs_once_under_16_racing_first_requests_postgres() {
    racing_first_requests_provision_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_runs_once_under_16_racing_first_requests_sqlite() {
    racing_first_requests_provision_once(Backend::Sqlite).await;
}

/// How the hook of [`a_failing_hook_is_reported_unregistered_and_retried`]
/// behaves on each run.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Fails with an error that shows the tenant's URL and password.
    Fail,
    /// Panics.
    Panic,
    /// Succeeds.
    Work,
}

async fn a_failing_hook_is_reported_unregistered_and_retried(backend: Backend, plan: &'static [Behaviour]) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let migrations = tenant_migrations();
    let mut databases = TenantDatabases {
        backend,
        names: Vec::new(),
    };
    let acme = tenant(&mut databases, "failing");
    let runs = Arc::new(AtomicUsize::new(0));
    // The pool each run was handed, to see it closed after a failure.
    let pools: Arc<Mutex<Vec<DbPool>>> = Arc::default();
    let (counted, kept, migrations_dir) = (runs.clone(), pools.clone(), migrations.path().to_path_buf());
    let url = tenant_url(backend, dir.path(), &acme);
    let engine = Engine::builder()
        .connection("default", &db.url)
        .add_router(ByTenant)
        // Even so, a tenant's read is never served by default.
        .read_failure(ReadFailure::FallBackToDefault)
        .connection_factory(
            ConnectionFactory::from_template(tenant_template(backend, dir.path())).provision(move |tenant| {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                kept.lock().unwrap().push(tenant.connection().pool().clone());
                let (migrations, url) = (migrations_dir.clone(), url.clone());
                async move {
                    // The database is made before the failure: the retry
                    // finds it.
                    create_migrate_seed(&tenant, &migrations).await?;
                    match plan[run] {
                        Behaviour::Fail => Err(format!("broken on purpose; could not reach {url}").into()),
                        Behaviour::Panic => panic!("panicked on purpose"),
                        Behaviour::Work => Ok(()),
                    }
                }
            }),
        )
        .build()
        .await
        .unwrap();

    for (attempt, behaviour) in plan.iter().enumerate() {
        let (Behaviour::Fail | Behaviour::Panic) = behaviour else {
            break;
        };
        // Four requests wait on this attempt: each gets its failure.
        let mut waiting = Vec::new();
        for _ in 0..4 {
            let (engine, acme) = (engine.clone(), acme.clone());
            waiting.push(tokio::spawn(async move {
                engine
                    .read_model(&invoice())
                    .hint("tenant", acme.as_str())
                    .fetch_all("SELECT id FROM invoices", &[])
                    .await
            }));
        }
        for request in waiting {
            let err = within("a request on a failing tenant", request)
                .await
                .unwrap()
                .unwrap_err();
            let Error::Provision { connection, message } = &err else {
                panic!("expected Provision, got {}", shown(&err));
            };
            assert_eq!(connection, &acme);
            let expected = match behaviour {
                Behaviour::Panic => "the hook panicked: panicked on purpose",
                _ => "broken on purpose",
            };
            assert!(message.contains(expected), "{message}");
            assert!(!err.is_unreachable(), "no fallback to default");
            assert!(err.to_string().contains("next request provisions it again"), "{err}");
            assert!(!shown(&err).contains(PASSWORD), "{}", shown(&err));
        }
        assert_eq!(runs.load(Ordering::SeqCst), attempt + 1, "once for the four requests");
        // No connection left half-made: unregistered, its pool closed.
        assert!(!engine.connection_names().iter().any(|n| *n == acme.as_str()));
        let pool = pools.lock().unwrap()[attempt].clone();
        let closed = match &pool {
            DbPool::Postgres(p) => p.is_closed(),
            DbPool::MySql(p) => p.is_closed(),
            DbPool::Sqlite(p) => p.is_closed(),
            _ => unreachable!(),
        };
        assert!(closed, "the failed connection's pool is closed");
        assert!(matches!(
            engine.connection(&acme).unwrap_err(),
            Error::UnknownConnection { .. }
        ));
        // The status reports it, failed, with the message.
        let status = within("a health check", engine.check_health(Duration::from_secs(5))).await;
        let failed = status.iter().find(|s| s.name == acme.as_str()).expect("listed");
        assert_eq!(
            (failed.provision, failed.health),
            (ProvisionState::Failed, Health::Unhealthy)
        );
        assert!(failed.made_by_factory);
        let last = failed.last_error.as_deref().unwrap_or_default();
        assert!(last.contains("provisioning failed") && last.contains(&acme), "{last}");
        assert!(!format!("{status:?}").contains(PASSWORD), "{status:?}");
    }

    // Fixed: the next request makes it again and provisions it.
    within("an insert once fixed", insert_invoice(&engine, backend, &acme, 1))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), plan.len());
    assert_eq!(invoices_in(backend, dir.path(), &acme).await, 1);
    let status = engine.status();
    let acme_status: Vec<_> = status.iter().filter(|s| s.name == acme.as_str()).collect();
    assert_eq!(acme_status.len(), 1, "the failure is no longer listed: {acme_status:?}");
    assert_eq!(acme_status[0].provision, ProvisionState::Done);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_reported_unregistered_and_retried_postgres() {
    a_failing_hook_is_reported_unregistered_and_retried(Backend::Postgres, &[Behaviour::Fail, Behaviour::Work]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_reported_unregistered_and_retried_sqlite() {
    a_failing_hook_is_reported_unregistered_and_retried(
        Backend::Sqlite,
        &[Behaviour::Fail, Behaviour::Panic, Behaviour::Work],
    )
    .await;
}

/// Statements the hook runs through the engine itself (on the connection
/// being provisioned) do not wait for the hook: no deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_may_use_the_engine_on_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let engine_slot: Arc<OnceLock<Engine>> = Arc::default();
    let slot = engine_slot.clone();
    let in_hook = Arc::new(AtomicBool::new(false));
    let seen = in_hook.clone();
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .add_router(ByTenant)
        .connection_factory(
            ConnectionFactory::from_template(format!("sqlite:{}/{{name}}.db", dir.path().display())).provision(
                move |tenant| {
                    let (slot, seen) = (slot.clone(), seen.clone());
                    async move {
                        let engine = slot.get().expect("set after build");
                        let name = tenant.name();
                        engine
                            .connection(name.as_str())?
                            .execute("CREATE TABLE invoices (id INTEGER, total INTEGER)", &[])
                            .await?;
                        engine
                            .write_model(&invoice())
                            .hint("tenant", name.as_str())
                            .execute("INSERT INTO invoices VALUES (0, 0)", &[])
                            .await?;
                        engine
                            .transaction()
                            .on(name.as_str())
                            .run(|tx| async move { tx.execute("INSERT INTO invoices VALUES (1, 1)", &[]).await })
                            .await?;
                        engine
                            .migrate()
                            .dir(name.as_str(), tenant_migrations_plans().path())
                            .run()
                            .await?;
                        seen.store(true, Ordering::SeqCst);
                        Ok(())
                    }
                },
            ),
        )
        .build()
        .await
        .unwrap();
    let _ = engine_slot.set(engine.clone());
    let n = within(
        "the first read",
        engine
            .read_model(&invoice())
            .hint("tenant", "acme")
            .fetch_one("SELECT COUNT(*) AS n FROM invoices", &[]),
    )
    .await
    .unwrap();
    assert_eq!(n.get::<i64, _>("n"), 2);
    assert!(in_hook.load(Ordering::SeqCst));
    engine.close().await;
}

/// A migrations directory with only the `plans` table.
fn tenant_migrations_plans() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_plans.sql"), "CREATE TABLE plans (name TEXT)").unwrap();
    dir
}
