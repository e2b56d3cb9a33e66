//! Security: passwords in connection URLs never reach logs, errors, `Debug`
//! output or a router; connection names from untrusted input only ever
//! reach registered connections; an [`AllowList`] narrows them further.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbroute::wasm::{RouterSource, WasmRouter};
use dbroute::{AllowList, Config, ConnectionName, Engine, Error, Hints, ModelInfo, PoolSettings, params};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::pg_server::PgServer;
use crate::support::{TestDb, shown, within};

/// The password of every URL here. Trust authentication ignores it, so
/// the URLs connect.
const PASSWORD: &str = "S3cr3tPw";

// ---- a subscriber that keeps everything ----

/// A tracing subscriber that writes every event and every span's fields,
/// at every level, into a buffer.
#[derive(Default)]
struct Capture {
    buffer: Arc<Mutex<String>>,
    events: Arc<std::sync::atomic::AtomicU64>,
    next_span: std::sync::atomic::AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={value} ({value:?})", field.name());
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(self.0, " caused by {s} ({s:?})");
            source = s.source();
        }
    }
}

impl Capture {
    fn write(&self, metadata: &Metadata<'_>, fill: impl FnOnce(&mut Fields<'_>)) {
        let mut buffer = self.buffer.lock().unwrap();
        let _ = write!(
            buffer,
            "{} {} {}:",
            metadata.level(),
            metadata.target(),
            metadata.name()
        );
        fill(&mut Fields(&mut buffer));
        buffer.push('\n');
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.write(span.metadata(), |f| span.record(f));
        Id::from_u64(1 + self.next_span.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut buffer = self.buffer.lock().unwrap();
        buffer.push_str("span record:");
        values.record(&mut Fields(&mut buffer));
        buffer.push('\n');
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        self.events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.write(event.metadata(), |f| event.record(f));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

// ---- passwords ----

/// A WAT router whose `dbroute_init` keeps its whole input, and whose
/// `db_for_read` refuses with it as the message: whatever init was told is
/// shown to the test.
const INIT_ECHO: &str = r#"(module
  (memory (export "memory") 1)
  (global $len (mut i32) (i32.const 0))
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "dbroute_init") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.gt_u (local.get $len) (i32.const 32768))
      (then (local.set $len (i32.const 32768))))
    (memory.copy (i32.const 32768) (local.get $ptr) (local.get $len))
    (global.set $len (local.get $len))
    i64.const 0)
  (func (export "db_for_read") (param i32 i32) (result i64)
    (i64.or
      (i64.const -9223372036854775808)
      (i64.or (i64.shl (i64.const 32768) (i64.const 32)) (i64.extend_i32_u (global.get $len))))))"#;

/// What the init-echo router was told: its refusal of a read, as JSON.
fn what_the_router_was_told(engine: &Engine, seen: &mut Vec<String>) -> serde_json::Value {
    let err = engine
        .db_for_read(&ModelInfo::new("User"), &Hints::new())
        .expect_err("the init-echo router refuses every read");
    seen.push(shown(&err));
    let Error::RouterRefused { message, .. } = err else {
        panic!("expected a refusal, got {err:?}");
    };
    serde_json::from_str(&message).unwrap_or_else(|e| panic!("the router was told {message:?}, not JSON: {e}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// current_thread: the capturing subscriber is this thread's default, and
// every task of the test (the pools' too) runs on this thread.
#[tokio::test(flavor = "current_thread")]
async fn passwords_never_reach_logs_errors_debug_or_routers() {
    let capture = Capture::default();
    let (buffer, events) = (capture.buffer.clone(), capture.events.clone());
    let _guard = tracing::subscriber::set_default(capture);
    // With a single scoped dispatcher, tracing asks only the registering
    // thread's subscriber whether a new callsite is interesting: one first
    // hit by a test on another thread would be disabled for good. A second
    // dispatcher makes it ask every one of them.
    let _second = tracing::Dispatch::new(Capture::default());
    let mut seen: Vec<String> = Vec::new();

    let db = TestDb::postgres().await;
    // A callsite first hit on another test's thread while these dispatchers
    // were being registered can still have cached "never" (seen once in
    // CI: no `sqlx::query` event). Making the database ran queries, so
    // sqlx's statement log is registered by now: ask every callsite again.
    tracing::callsite::rebuild_interest_cache();
    let db_name = db.url.rsplit('/').next().unwrap().to_owned();
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/{db_name}");
    let url_in_query = format!("postgres://postgres@127.0.0.1:5432/{db_name}?password={PASSWORD}&sslmode=disable");
    let server = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let replica_url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres", server.port());
    let quick = || PoolSettings::new().acquire_timeout(Duration::from_millis(800));

    // Building, with a router whose init is told the connections.
    let builder = Engine::builder()
        .connection("default", &url)
        .connection_with("replica", &replica_url, quick())
        .add_wasm_router(
            WasmRouter::named("init-echo"),
            RouterSource::Bytes(INIT_ECHO.as_bytes().into()),
        );
    seen.push(format!("{builder:?}"));
    let engine = within("build", builder.build()).await.unwrap();
    seen.push(format!("{engine:?}"));

    // The router was told the names, and nothing else.
    let told = what_the_router_was_told(&engine, &mut seen);
    assert_eq!(
        told,
        serde_json::json!({"config": null, "connections": ["default", "replica"]})
    );

    // Queries, and a failing one.
    let db_conn = engine.connection("default").unwrap();
    seen.push(format!("{db_conn:?} {:?}", db_conn.pool()));
    let model = ModelInfo::new("Secret");
    within(
        "create",
        engine
            .write_model(&model)
            .execute("CREATE TABLE secrets (v TEXT PRIMARY KEY)", &[]),
    )
    .await
    .unwrap();
    within(
        "insert",
        engine
            .write_model(&model)
            .execute("INSERT INTO secrets VALUES ($1)", &params!["x"]),
    )
    .await
    .unwrap();
    for bad in [
        within("a syntax error", db_conn.execute("SELEC 1", &[])).await,
        within(
            "a duplicate key",
            db_conn.execute("INSERT INTO secrets VALUES ('x')", &[]),
        )
        .await,
        within("a missing table", db_conn.execute("SELECT * FROM no_such_table", &[])).await,
    ] {
        seen.push(shown(&bad.unwrap_err()));
    }

    // Adding and removing a connection (password as a query parameter):
    // new router instances are told the new names only.
    within(
        "add",
        engine.add_connection("extra", &url_in_query, PoolSettings::new()),
    )
    .await
    .unwrap();
    let extra = engine.connection("extra").unwrap();
    within("select on extra", extra.fetch_one("SELECT 1 AS one", &[]))
        .await
        .unwrap();
    seen.push(format!("{engine:?} {extra:?} {:?}", extra.pool()));
    let told = what_the_router_was_told(&engine, &mut seen);
    assert_eq!(told["connections"], serde_json::json!(["default", "extra", "replica"]));
    within("remove", engine.remove_connection("extra")).await.unwrap();
    seen.push(shown(
        &within("a removed pool", extra.execute("SELECT 1", &[]))
            .await
            .unwrap_err(),
    ));
    let told = what_the_router_was_told(&engine, &mut seen);
    assert_eq!(told["connections"], serde_json::json!(["default", "replica"]));

    // A server that dies under a pool, and servers that are not there.
    let replica = engine.connection("replica").unwrap();
    within("select on the replica", replica.fetch_one("SELECT 1 AS one", &[]))
        .await
        .unwrap();
    within("kill", server.kill()).await;
    for _ in 0..2 {
        seen.push(shown(
            &within("a dead replica", replica.fetch_one("SELECT 1 AS one", &[]))
                .await
                .unwrap_err(),
        ));
    }
    let nowhere = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/none", free_port());
    within("add lazy", engine.add_connection("ghost", &nowhere, quick().lazy(true)))
        .await
        .unwrap();
    seen.push(shown(
        &within(
            "a lazy pool to nowhere",
            engine.connection("ghost").unwrap().execute("SELECT 1", &[]),
        )
        .await
        .unwrap_err(),
    ));
    within("remove ghost", engine.remove_connection("ghost")).await.unwrap();
    seen.push(shown(
        &within(
            "an eager pool to nowhere",
            engine.add_connection("ghost", &nowhere, quick()),
        )
        .await
        .unwrap_err(),
    ));

    // URLs that are wrong, with the password in them, and URLs given where
    // a name belongs (swapped arguments, a confused caller).
    let wrong_urls = [
        format!("postgres://postgres:{PASSWORD}@[::1/db"),
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:99999/db"),
        format!("postgress://postgres:{PASSWORD}@127.0.0.1/db"),
        format!("postgres//postgres:{PASSWORD}@127.0.0.1/db"),
        format!("postgres:postgres:{PASSWORD}@127.0.0.1/db"),
        format!("mysql://root:{PASSWORD}@127.0.0.1:1/db"),
        format!("postgres://127.0.0.1:1/db?user=postgres&password={PASSWORD}"),
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/db?sslmode=bogus"),
    ];
    for wrong in &wrong_urls {
        let err = within("a wrong URL", engine.add_connection("wrong", wrong, quick()))
            .await
            .unwrap_err();
        seen.push(shown(&err));
        let err = within(
            "a wrong URL at build",
            Engine::builder().connection_with("wrong", wrong, quick()).build(),
        )
        .await
        .unwrap_err();
        seen.push(shown(&err));
    }
    for name_is_a_url in [&url, &url_in_query, &replica_url] {
        let err = within(
            "swapped arguments",
            Engine::builder().connection(name_is_a_url.as_str(), "default").build(),
        )
        .await
        .unwrap_err();
        seen.push(shown(&err));
        let err = within(
            "swapped arguments when adding",
            engine.add_connection(name_is_a_url, "default", PoolSettings::new()),
        )
        .await
        .unwrap_err();
        seen.push(shown(&err));
        seen.push(shown(&engine.connection(name_is_a_url).unwrap_err()));
        seen.push(shown(
            &engine
                .read_model(&model)
                .using(name_is_a_url.as_str())
                .connection()
                .unwrap_err(),
        ));
    }

    // A configuration with the password, and broken ones.
    let toml = format!(
        "[connections.default]\nurl = \"{url}\"\nmax_connections = 2\n\n[connections.replica]\nurl = \"{replica_url}\"\nlazy = true\n"
    );
    let config = Config::from_toml_str(&toml, std::path::Path::new(".")).unwrap();
    seen.push(format!("{config:?} {:?}", config.builder()));
    let from_config = within("build from a config", config.builder().build()).await.unwrap();
    seen.push(format!("{from_config:?}"));
    from_config.close().await;
    for broken in [
        format!("[connections.default]\nurl = \"{url}\" oops\n"),
        format!("[connections.default]\nurl = {url}\n"),
        format!("[connections.default]\nurl = \"{url}\"\nurl = \"{url}\"\n"),
        format!("[connections.default]\nurl = \"{url}\"\nlazy = \"{url}\"\n"),
    ] {
        seen.push(shown(
            &Config::from_toml_str(&broken, std::path::Path::new(".")).unwrap_err(),
        ));
    }

    seen.push(format!(
        "{:?} {:?} {:?}",
        engine.router_status(),
        engine.decision_counts(),
        engine.connection_names()
    ));
    engine.close().await;
    drop(_guard);

    let captured = buffer.lock().unwrap().clone();
    let events = events.load(std::sync::atomic::Ordering::Relaxed);
    for expected in ["dbroute::", "sqlx::query", "router loaded"] {
        assert!(captured.contains(expected), "no {expected} event captured:\n{captured}");
    }
    let mut leaks = Vec::new();
    for text in seen
        .iter()
        .chain(captured.lines().map(str::to_owned).collect::<Vec<_>>().iter())
    {
        if text.contains(PASSWORD) {
            leaks.push(text.clone());
        }
    }
    assert!(leaks.is_empty(), "the password was shown:\n{}", leaks.join("\n"));
    println!(
        "secrets: {} errors and Debug outputs and {events} log events ({} bytes, TRACE) scanned; the password \
         appears in none",
        seen.len(),
        captured.len()
    );
}

// ---- untrusted names ----

/// Connection names a request might carry.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "",
        " ",
        "\t",
        "default ",
        " default",
        "DEFAULT",
        "Replica",
        "replica\0",
        "replica\n",
        "replica\r\nERROR forged log line",
        "replica;DROP TABLE t",
        "replica' OR '1'='1",
        "'; DROP TABLE t; --",
        "\"replica\"",
        "`replica`",
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        ".",
        "replica/../default",
        "..\\..\\windows",
        "%72eplica",
        "replica%00",
        "r\u{e9}plica",
        "\u{ff52}\u{ff45}\u{ff50}\u{ff4c}\u{ff49}\u{ff43}\u{ff41}",
        "replica\u{200b}",
        "\u{202e}acilper",
        "\u{1F600}",
        "sqlite::memory:",
        "postgres://postgres:pw@127.0.0.1/x",
        "${HOME}",
        "{name}",
        "null",
        "default.",
        "-replica",
        "tenant_acme",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    names.push("x".repeat(10 * 1024));
    names.push("\u{e9}".repeat(5 * 1024));
    names.push("a".repeat(65));
    names.push("a".repeat(64));
    names.push("replica".repeat(1500));
    names
}

/// An error about an untrusted name: short, on one line, without raw
/// control characters.
#[track_caller]
fn check_error(error: &Error, input: &str) {
    let message = error.to_string();
    assert!(
        matches!(
            error,
            Error::InvalidName { .. } | Error::UnknownConnection { .. } | Error::NotAllowed { .. }
        ),
        "{input:?}: unexpected error {error:?}"
    );
    assert!(message.len() <= 1024, "{input:?}: a {}-byte message", message.len());
    assert!(
        !message.chars().any(|c| c.is_control()),
        "{input:?}: control characters in {message:?}"
    );
}

#[tokio::test]
async fn untrusted_names_only_ever_reach_registered_connections() {
    let (first, second) = (TestDb::sqlite(), TestDb::sqlite());
    let engine = Engine::builder()
        .connection("default", &first.url)
        .connection("replica", &second.url)
        .build()
        .await
        .unwrap();
    for name in ["default", "replica"] {
        engine
            .connection(name)
            .unwrap()
            .execute("CREATE TABLE t (x INTEGER)", &[])
            .await
            .unwrap();
    }
    let model = ModelInfo::new("T");
    let allow = AllowList::new(["replica"]).unwrap();
    let names = hostile_names();
    for input in &names {
        let input = input.as_str();
        check_error(&engine.read_model(&model).using(input).connection().unwrap_err(), input);
        check_error(
            &engine
                .write_model(&model)
                .using(input)
                .execute("INSERT INTO t VALUES (1)", &[])
                .await
                .unwrap_err(),
            input,
        );
        check_error(&engine.connection(input).unwrap_err(), input);
        check_error(&engine.transaction().on(input).begin().await.unwrap_err(), input);
        check_error(&engine.remove_connection(input).await.unwrap_err(), input);
        check_error(&engine.allow_migrate(input, &model, &Hints::new()).unwrap_err(), input);
        check_error(&allow.check(input).unwrap_err(), input);
        if let Ok(name) = ConnectionName::new(input) {
            assert_eq!(name.as_str(), input, "a valid name is kept as given");
        }
    }
    // Nothing ran, nothing was removed.
    assert_eq!(engine.connection_names(), ["default", "replica"]);
    for name in ["default", "replica"] {
        let n: i64 = engine
            .connection(name)
            .unwrap()
            .fetch_one("SELECT count(*) AS n FROM t", &[])
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, 0);
    }
    // The registered names work.
    let picked = allow.check("replica").unwrap();
    let conn = engine.read_model(&model).using(picked.as_str()).connection().unwrap();
    assert_eq!(conn.name(), "replica");
    assert_eq!(
        engine.read_model(&model).using("default").connection().unwrap().name(),
        "default"
    );
    println!(
        "untrusted names: {} hostile names x 7 entry points refused, nothing ran",
        names.len()
    );
}

#[test]
fn an_allow_list_narrows_what_a_request_may_pick() {
    let allow = AllowList::new(["replica", "analytics", "replica"]).unwrap();
    assert_eq!(allow.names(), ["analytics", "replica"]);
    assert_eq!(allow.check("replica").unwrap(), "replica");
    assert_eq!(allow.check("analytics").unwrap(), "analytics");
    assert!(allow.contains("analytics") && !allow.contains("default"));
    for input in hostile_names()
        .iter()
        .map(String::as_str)
        .chain(["default", "Replica", "analytics "])
    {
        let err = allow.check(input).unwrap_err();
        check_error(&err, input);
        match &err {
            Error::NotAllowed { allowed, .. } => assert_eq!(allowed, allow.names()),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().ends_with("allowed: analytics, replica"), "{err}");
    }
    // An empty list allows nothing; a bad name is refused when building.
    let none = AllowList::new(Vec::<String>::new()).unwrap();
    assert!(none.check("default").unwrap_err().to_string().contains("(none)"));
    assert!(matches!(
        AllowList::new(["fine", "not fine"]),
        Err(Error::InvalidName { .. })
    ));
}

#[tokio::test]
async fn a_router_loaded_before_a_connection_change_learns_it_when_activated() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    let router = engine
        .load_router(
            WasmRouter::named("init-echo"),
            RouterSource::Bytes(INIT_ECHO.as_bytes().into()),
        )
        .unwrap();
    engine
        .add_connection("late", "sqlite::memory:", dbroute::PoolSettings::new())
        .await
        .unwrap();
    engine.set_router(router);
    let told = what_the_router_was_told(&engine, &mut Vec::new());
    assert_eq!(told["connections"], serde_json::json!(["default", "late"]), "{told}");
}
