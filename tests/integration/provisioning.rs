//! Tenants' databases: one that does not exist is reported as missing (by
//! the statement's error, the health check and the status), on
//! PostgreSQL, MariaDB and SQLite.

use std::fmt::Write as _;
use std::time::Duration;

use dbroute::router::{Decision, Fault, Operation, Router, RouterIdentity};
use dbroute::stats::Health;
use dbroute::{Backend, ConnectionFactory, Engine, Error, ModelInfo, ReadFailure};

use crate::support::{TestDb, per_backend};

/// The password in the URLs here (PostgreSQL's trust authentication
/// ignores it; MariaDB's root has none, so its URLs carry none).
const PASSWORD: &str = "S3cr3tPw";

/// The most any one step may take.
const STEP: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: still running after {STEP:?} (hung?)"),
    }
}

/// Routes every operation to the connection named by the `tenant` hint.
#[derive(Debug)]
struct ByTenant;

impl Router for ByTenant {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("by-tenant")
    }
    fn db_for_read(&self, op: &Operation<'_>) -> Result<Decision, Fault> {
        match op.hints.get("tenant").and_then(|t| t.as_str()) {
            Some(tenant) => Decision::use_connection(tenant),
            None => Ok(Decision::NoOpinion),
        }
    }
    fn db_for_write(&self, op: &Operation<'_>) -> Result<Decision, Fault> {
        self.db_for_read(op)
    }
}

fn invoice() -> ModelInfo {
    ModelInfo::new("Invoice").with_table("invoices")
}

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

/// Everything an error shows: its message, its `Debug`, and its sources'.
fn shown(error: &Error) -> String {
    let mut out = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let _ = write!(out, " | caused by {s} | {s:?}");
        source = s.source();
    }
    out
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
