//! Test support: a fresh database per test on each backend, dropped
//! afterwards (even when the test panics).

use std::sync::atomic::{AtomicU32, Ordering};

use dbroute::Backend;

/// PostgreSQL of the machine (trust auth).
pub(crate) const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// MariaDB of the machine (root, no password).
pub(crate) const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique_name(prefix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A database made for one test; dropped when this value is dropped.
pub(crate) struct TestDb {
    pub(crate) backend: Backend,
    pub(crate) url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new database on `backend`.
    pub(crate) async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::MySql => Self::mysql().await,
            Backend::Sqlite => Self::sqlite(),
        }
    }

    /// A new PostgreSQL database.
    pub(crate) async fn postgres() -> TestDb {
        let name = unique_name("dbroute_t");
        admin_execute(Backend::Postgres, &format!("CREATE DATABASE {name}")).await;
        TestDb {
            backend: Backend::Postgres,
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
            _dir: None,
        }
    }

    /// A new MariaDB database.
    pub(crate) async fn mysql() -> TestDb {
        let name = unique_name("dbroute_t");
        admin_execute(Backend::MySql, &format!("CREATE DATABASE {name}")).await;
        TestDb {
            backend: Backend::MySql,
            url: format!("mysql://root@127.0.0.1:3306/{name}"),
            name,
            _dir: None,
        }
    }

    /// A new SQLite file in a temporary folder.
    pub(crate) fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("test.db");
        TestDb {
            backend: Backend::Sqlite,
            url: format!("sqlite:{}", path.display()),
            name: String::new(),
            _dir: Some(dir),
        }
    }

    /// `$n` or `?`, as this backend wants.
    pub(crate) fn p(&self, n: usize) -> String {
        self.backend.placeholder(n)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = match self.backend {
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Backend::MySql => format!("DROP DATABASE IF EXISTS {}", self.name),
            _ => return,
        };
        let backend = self.backend;
        // Drop may run inside a runtime: do the async work on a thread of
        // its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(admin_execute(backend, &sql));
        })
        .join();
    }
}

/// Runs one statement as the administrator.
pub(crate) async fn admin_execute(backend: Backend, sql: &str) {
    use sqlx::Connection as _;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(POSTGRES_ADMIN)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432");
            sqlx::query(sql).execute(&mut c).await.expect("admin statement");
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(MYSQL_ADMIN)
                .await
                .expect("MariaDB on 127.0.0.1:3306");
            sqlx::query(sql).execute(&mut c).await.expect("admin statement");
        }
        _ => {}
    }
}

/// Builds an engine on `default` = a fresh database of `backend`.
pub(crate) async fn engine_on(db: &TestDb) -> dbroute::Engine {
    dbroute::Engine::builder()
        .connection("default", &db.url)
        .build()
        .await
        .expect("engine")
}

/// A path under `tests/fixtures`.
pub(crate) fn fixture(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(relative)
}

/// Declares one test per backend: `per_backend!(name, |db: TestDb| async move { ... });`
/// makes `name::postgres`, `name::mysql` and `name::sqlite`.
macro_rules! per_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::support::TestDb::postgres().await;
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                let db = $crate::support::TestDb::mysql().await;
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::TestDb::sqlite();
                ($body)(db).await;
            }
        }
    };
}
pub(crate) use per_backend;

/// The tier a router from bytes starts on here: baseline code where
/// wasmtime's baseline compiler exists (x86-64, AArch64), else optimized.
pub(crate) const FIRST_TIER: dbroute::wasm::Tier = if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
    dbroute::wasm::Tier::Baseline
} else {
    dbroute::wasm::Tier::Optimized
};

/// A generous bound on a router's optimizing compile in the background (a
/// safety net, not a measurement: it takes a fraction of a second).
pub(crate) const OPTIMIZED_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// An engine builder with the three in-memory SQLite connections the
/// reference router names: `default`, `replica`, `analytics`.
pub(crate) fn reference_connections() -> dbroute::EngineBuilder {
    dbroute::Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .connection("analytics", "sqlite::memory:")
}

/// Asks `router` directly (no engine) for a read of `model`.
pub(crate) fn read_directly(
    router: &dbroute::wasm::WasmRouter,
    model: &str,
) -> Result<dbroute::router::RouteDecision, dbroute::router::Fault> {
    use dbroute::router::HostRouter;
    let model = dbroute::ModelInfo::new(model);
    let hints = dbroute::Hints::new();
    router.db_for_read(&dbroute::router::RouteRequest {
        kind: dbroute::router::RouteKind::Read,
        model: &model,
        hints: &hints,
        origin: None,
    })
}

/// The most any one step of a test may take before it counts as hung.
pub(crate) const STEP: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `future`, failing the test when it takes longer than `limit`.
pub(crate) async fn within_limit<T>(limit: std::time::Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: still running after {limit:?} (hung?)"),
    }
}

/// Runs `future`, failing the test when it takes longer than [`STEP`].
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    within_limit(STEP, what, future).await
}

/// Polls `check` every 10 ms until it returns `Some`, failing the test
/// after [`STEP`] (a safety net, reached only when it fails).
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + STEP;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: not within {STEP:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Routes every operation to the connection named by the `tenant` hint.
#[derive(Debug)]
pub(crate) struct ByTenant;

impl dbroute::router::HostRouter for ByTenant {
    fn identity(&self) -> dbroute::router::RouterIdentity {
        dbroute::router::RouterIdentity::native("by-tenant")
    }
    fn db_for_read(
        &self,
        op: &dbroute::router::RouteRequest<'_>,
    ) -> Result<dbroute::router::RouteDecision, dbroute::router::Fault> {
        match op.hints.get("tenant").and_then(|t| t.as_str()) {
            Some(tenant) => dbroute::router::RouteDecision::use_connection(tenant),
            None => Ok(dbroute::router::RouteDecision::NoOpinion),
        }
    }
    fn db_for_write(
        &self,
        op: &dbroute::router::RouteRequest<'_>,
    ) -> Result<dbroute::router::RouteDecision, dbroute::router::Fault> {
        self.db_for_read(op)
    }
}

/// The tenants' model.
pub(crate) fn invoice() -> dbroute::ModelInfo {
    dbroute::ModelInfo::new("Invoice").with_table("invoices")
}

/// A native router with fixed answers (`None`: no opinion) that counts
/// how often it is asked.
#[derive(Debug, Default)]
pub(crate) struct Fixed {
    pub(crate) read: Option<&'static str>,
    pub(crate) write: Option<&'static str>,
    pub(crate) calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Fixed {
    /// Reads to `read`, writes to `write`.
    pub(crate) fn answers(read: Option<&'static str>, write: Option<&'static str>) -> Self {
        Fixed {
            read,
            write,
            calls: Default::default(),
        }
    }
}

impl dbroute::router::HostRouter for Fixed {
    fn identity(&self) -> dbroute::router::RouterIdentity {
        dbroute::router::RouterIdentity::native("fixed")
    }
    fn db_for_read(
        &self,
        _: &dbroute::router::RouteRequest<'_>,
    ) -> Result<dbroute::router::RouteDecision, dbroute::router::Fault> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.read.map_or(
            Ok(dbroute::router::RouteDecision::NoOpinion),
            dbroute::router::RouteDecision::use_connection,
        )
    }
    fn db_for_write(
        &self,
        _: &dbroute::router::RouteRequest<'_>,
    ) -> Result<dbroute::router::RouteDecision, dbroute::router::Fault> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.write.map_or(
            Ok(dbroute::router::RouteDecision::NoOpinion),
            dbroute::router::RouteDecision::use_connection,
        )
    }
}

/// Everything an error shows: its message, its `Debug`, and its sources'.
pub(crate) fn shown(error: &dbroute::Error) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let _ = write!(out, " | caused by {s} | {s:?}");
        source = s.source();
    }
    out
}

/// For a test that measures the whole process (its resident memory), which
/// the binary's other tests would disturb, running in parallel: `true` in a
/// process that runs only `test` (measure there); otherwise runs `test`
/// alone in a child process of this binary, fails if it fails there, and
/// returns `false`.
pub(crate) fn alone(test: &str) -> bool {
    const ALONE: &str = "DBROUTE_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .expect("the test binary runs");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{shown}");
    assert!(out.status.success(), "{test}, alone, failed:\n{shown}");
    assert!(shown.contains("1 passed"), "{test} did not run alone:\n{shown}");
    false
}

/// The resident set size of this process, in bytes (`/proc/self/statm`'s
/// second field, in pages of 4 KiB).
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}
