//! The example service as an operator runs it: the real binary on a free
//! loopback port, built from TOML files that name a PostgreSQL database and
//! a SQLite file, the tenant router compiled to WebAssembly. Real HTTP
//! requests; the rows checked in the databases themselves; the router file
//! replaced while requests run (none may fail); `/metrics` parsed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dbroute::{Engine, params};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// A PostgreSQL database of this test's own, dropped at the end (also when
/// the test panics).
struct Database {
    admin: Engine,
    name: String,
}

impl Database {
    async fn create() -> Result<Self> {
        let admin = Engine::builder()
            .connection("default", format!("{POSTGRES}/postgres"))
            .build()
            .await?;
        let name = format!("dbroute_service_{}", std::process::id());
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let create = format!("CREATE DATABASE {name}");
        let db = admin.connection("default")?;
        db.execute(dbroute::sqlx::AssertSqlSafe(drop), &[]).await?;
        db.execute(dbroute::sqlx::AssertSqlSafe(create), &[]).await?;
        Ok(Database { admin, name })
    }

    fn url(&self) -> String {
        format!("{POSTGRES}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Dropped inside the test's runtime: drop on a thread of its own.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let _ = admin
                    .connection("default")
                    .unwrap()
                    .execute(dbroute::sqlx::AssertSqlSafe(drop), &[])
                    .await;
            });
        })
        .join()
        .ok();
    }
}

/// The service's process, killed when dropped.
struct Service {
    child: Child,
    address: SocketAddr,
}

impl Service {
    fn start(config: &Path) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dbroute-example-service"))
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut service = Service {
            child,
            address: "0.0.0.0:0".parse()?,
        };
        // The first line gives the address; its absence means it failed.
        let line = lines.next().context("the service exited before listening")??;
        let address = line
            .strip_prefix("listening on http://")
            .with_context(|| format!("unexpected first line: {line}"))?;
        service.address = address.parse()?;
        Ok(service)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a connection of its own: the status and body.
async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    tenant: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", address.to_string());
    if let Some(tenant) = tenant {
        builder = builder.header("x-tenant", tenant);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Full::new(Bytes::from(json.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let response = sender.send_request(builder.body(body)?).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(bytes.to_vec())?))
}

/// Writes a note for `tenant`; the connection the service says it went to.
async fn write_note(address: SocketAddr, tenant: &str, body: &str) -> Result<String> {
    let (status, text) = request(
        address,
        "POST",
        "/notes",
        Some(tenant),
        Some(serde_json::json!({ "body": body })),
    )
    .await?;
    ensure!(status == 200, "POST /notes for {tenant}: {status} {text}");
    let created: serde_json::Value = serde_json::from_str(&text)?;
    Ok(created["connection"].as_str().context("no connection")?.to_owned())
}

/// The bodies of `tenant`'s notes in one database.
async fn notes_in(db: &Engine, tenant: &str) -> Result<Vec<String>> {
    let rows = db
        .connection("default")?
        .fetch_all(
            "SELECT body FROM notes WHERE tenant = $1 ORDER BY body",
            &params![tenant],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get("body")).collect())
}

/// Every sample of a Prometheus text page: `name{labels}` → value.
fn parse_metrics(page: &str) -> Result<HashMap<String, f64>> {
    let mut samples = HashMap::new();
    for line in page.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').with_context(|| format!("not a sample: {line}"))?;
        samples.insert(
            series.to_owned(),
            value.parse::<f64>().with_context(|| line.to_owned())?,
        );
    }
    Ok(samples)
}

/// A router in WebAssembly text that sends every read and write to `local`.
const EVERYTHING_TO_LOCAL: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "local")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000005)
  (func (export "db_for_write") (param i32 i32) (result i64) i64.const 0x0000001000000005))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_swaps_and_reports_over_http() -> Result<()> {
    let database = Database::create().await?;
    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("local.db");
    let router = dir.path().join("router.wasm");
    std::fs::copy(dbroute_example_routers::TENANT, &router)?;
    std::fs::write(
        dir.path().join("dbroute.toml"),
        format!(
            "[connections.main]\nurl = \"{}\"\n\n[connections.local]\nurl = \"sqlite:{}\"\n",
            database.url(),
            sqlite.display()
        ),
    )?;
    let config = dir.path().join("service.toml");
    std::fs::write(
        &config,
        r#"listen = "127.0.0.1:0"
engine = "dbroute.toml"

[router]
name = "tenants"
path = "router.wasm"
config = { tenants = { acme = "main", globex = "local" } }
"#,
    )?;
    let service = Service::start(&config)?;
    let address = service.address;
    // The databases, as the test sees them.
    let main = Engine::builder().connection("default", database.url()).build().await?;
    let local = Engine::builder()
        .connection("default", format!("sqlite:{}", sqlite.display()))
        .build()
        .await?;

    // Writes go where the tenant router sends each tenant.
    for i in 0..3 {
        assert_eq!(write_note(address, "acme", &format!("acme {i}")).await?, "main");
    }
    for i in 0..2 {
        assert_eq!(write_note(address, "globex", &format!("globex {i}")).await?, "local");
    }
    assert_eq!(notes_in(&main, "acme").await?, ["acme 0", "acme 1", "acme 2"]);
    assert_eq!(notes_in(&main, "globex").await?, Vec::<String>::new());
    assert_eq!(notes_in(&local, "globex").await?, ["globex 0", "globex 1"]);
    assert_eq!(notes_in(&local, "acme").await?, Vec::<String>::new());
    // Reads too.
    let (status, text) = request(address, "GET", "/notes", Some("globex"), None).await?;
    assert_eq!(status, 200, "{text}");
    let listed: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(
        listed,
        serde_json::json!([{ "body": "globex 0" }, { "body": "globex 1" }])
    );
    // A tenant the router does not know is refused, and said so.
    let (status, text) = request(address, "GET", "/notes", Some("initech"), None).await?;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("unknown tenant"), "{text}");

    // Requests keep running while the router file is replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let outcome = if worker % 2 == 0 {
                    write_note(address, "acme", &format!("during {worker} {i}"))
                        .await
                        .map(drop)
                } else {
                    match request(address, "GET", "/notes", Some("acme"), None).await {
                        Ok((200, _)) => Ok(()),
                        Ok((status, text)) => Err(anyhow::anyhow!("{status} {text}")),
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = outcome {
                    eprintln!("request failed during the swap: {e:#}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Deployed as it should be: written aside, then renamed into place.
    let staged = dir.path().join("router.wat.new");
    std::fs::write(&staged, EVERYTHING_TO_LOCAL)?;
    std::fs::rename(&staged, &router)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, text) = request(address, "GET", "/status", None, None).await?;
        ensure!(code == 200, "/status: {code} {text}");
        let status: serde_json::Value = serde_json::from_str(&text)?;
        if status["watch"]["reloads"] == 1 {
            break status;
        }
        if Instant::now() > deadline {
            bail!("the router file was not reloaded: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await?;
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the swap");
    assert!(
        done.load(Ordering::Relaxed) > 20,
        "too few requests ran during the swap"
    );

    // The status: both connections healthy, the reloaded router active.
    let connections = status["connections"].as_array().context("connections")?;
    let names: Vec<_> = connections.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["main", "local"]);
    for connection in connections {
        assert_eq!(connection["health"], "healthy", "{connection}");
    }
    assert_eq!(status["router"]["generation"], 2);
    assert_eq!(status["router"]["routers"][0]["name"], "tenants");
    assert_eq!(status["watch"]["failures"], 0);

    // After the swap, acme's writes land on `local`.
    assert_eq!(write_note(address, "acme", "after").await?, "local");
    assert!(notes_in(&local, "acme").await?.contains(&"after".to_owned()));
    assert!(!notes_in(&main, "acme").await?.contains(&"after".to_owned()));

    // What the service routed, as an operations file for `dbroute diff`:
    // the tenant of each request's scope is among the hints.
    let (code, ops) = request(address, "GET", "/route-operations", None, None).await?;
    assert_eq!(code, 200, "{ops}");
    let operations: Vec<serde_json::Value> = ops.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let count = |op: &str, tenant: &str| {
        operations
            .iter()
            .find(|o| o["op"] == op && o["model"] == "Note" && o["hints"]["tenant"] == tenant)
            .and_then(|o| o["count"].as_u64())
    };
    assert!(count("write", "acme").is_some_and(|n| n >= 4), "{ops}");
    assert_eq!(count("write", "globex"), Some(2), "{ops}");
    assert!(count("read", "globex").is_some_and(|n| n >= 1), "{ops}");
    assert_eq!(operations[0]["app"], "notes", "{ops}");

    // The metrics, parsed: decisions per connection and decider, router
    // answers, the reload, statements and their times.
    let (code, page) = request(address, "GET", "/metrics", None, None).await?;
    assert_eq!(code, 200);
    let metrics = parse_metrics(&page)?;
    let sample = |series: &str| {
        metrics
            .get(series)
            .copied()
            .with_context(|| format!("{series} is not in /metrics:\n{page}"))
    };
    let main_writes = sample(r#"dbroute_decisions_total{connection="main",operation="write",decided_by="router"}"#)?;
    let acme_in_main = notes_in(&main, "acme").await?.len() as f64;
    assert_eq!(main_writes, acme_in_main, "one decision per write that landed on main");
    assert!(sample(r#"dbroute_decisions_total{connection="local",operation="write",decided_by="router"}"#)? >= 3.0);
    assert!(sample(r#"dbroute_router_answers_total{router="tenants",operation="read",answer="refused"}"#)? >= 1.0);
    assert_eq!(sample(r#"dbroute_router_reloads_total{result="loaded"}"#)?, 1.0);
    assert_eq!(sample("dbroute_router_swaps_total")?, 2.0);
    assert!(sample(r#"dbroute_queries_total{connection="main"}"#)? >= acme_in_main);
    assert!(sample(r#"dbroute_query_duration_seconds_count{connection="local"}"#)? >= 3.0);
    assert!(sample(r#"dbroute_pool_acquire_seconds_count{connection="main"}"#)? >= 3.0);
    assert_eq!(sample(r#"dbroute_connection_up{connection="main"}"#)?, 1.0);
    Ok(())
}
