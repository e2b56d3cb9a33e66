//! An axum service that routes its reads and writes with dbroute.
//!
//! - The engine is built from dbroute's TOML file (`docs/configuration.md`),
//!   named by the service's own file (see [`ServiceConfig`]).
//! - `POST /notes` writes a note, `GET /notes` lists the tenant's notes:
//!   both are routed (model `Note`, table `notes`) by the router chain.
//! - The tenant comes from the `x-tenant` request header: a middleware runs
//!   the request inside a hint scope (`tenant = "acme"`), so every routed
//!   operation of the request carries it without being handed it.
//! - The router file is watched and each new version swapped in while
//!   requests run.
//! - `/metrics` renders the `metrics` recorder in Prometheus' text format
//!   (`metrics-exporter-prometheus`); `/status` shows the connections'
//!   health and the router's status as JSON.
//! - `/route-operations` is the operations the service routed, counted
//!   (route stats), as the file `dbroute diff --ops` reads: a new router
//!   is tried on what the service really runs before it is rolled out.
//!
//! Run it with `cargo run -p dbroute-example-service -- service.toml`; it
//! prints `listening on http://ADDRESS` once it accepts requests. See
//! `examples/service/README.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use dbroute::wasm::{RouterWatcher, WasmRouter};
use dbroute::{Engine, Hints, Model, params};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

/// The service's own file.
///
/// ```toml
/// listen = "127.0.0.1:8080"    # port 0: any free port
/// engine = "dbroute.toml"      # dbroute's file, relative to this one
///
/// [router]                     # optional: a router file to watch
/// name = "tenants"
/// path = "router.wasm"         # relative to this file
/// config = { tenants = { acme = "main", globex = "local" } }
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceConfig {
    listen: SocketAddr,
    engine: PathBuf,
    router: Option<WatchedRouter>,
}

/// A WebAssembly router file, followed by the engine's watcher.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchedRouter {
    name: String,
    path: PathBuf,
    /// Handed to the router's `dbroute_init` as JSON.
    config: Option<toml::Value>,
}

impl ServiceConfig {
    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: ServiceConfig = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        // Paths in the file are relative to the file.
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.engine = base.join(&config.engine);
        if let Some(router) = &mut config.router {
            router.path = base.join(&router.path);
        }
        Ok(config)
    }
}

/// Notes: one table on every connection; the router picks which.
#[derive(Model)]
#[dbroute(name = "Note", table = "notes", app = "notes")]
struct Note;

const CREATE_NOTES: &str = "CREATE TABLE IF NOT EXISTS notes (tenant TEXT NOT NULL, body TEXT NOT NULL)";

/// What the handlers share.
#[derive(Clone)]
struct AppState {
    engine: Engine,
    prometheus: PrometheusHandle,
    watcher: Option<Arc<RouterWatcher>>,
}

/// The request's tenant, from its `x-tenant` header.
#[derive(Clone, Debug)]
struct Tenant(Option<String>);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs on stderr: stdout says where the service listens.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: dbroute-example-service SERVICE.toml")?;
    let config = ServiceConfig::from_file(&path)?;

    let engine = dbroute::Config::from_file(&config.engine)?
        .builder()
        .route_stats(true)
        .build()
        .await?;
    // The recorder may be installed before or after the engine is built:
    // the engine publishes every count since it started either way.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let watcher = match &config.router {
        Some(router) => {
            let mut builder = WasmRouter::named(&router.name);
            if let Some(router_config) = &router.config {
                builder = builder.config(serde_json::to_value(router_config)?);
            }
            Some(Arc::new(engine.watch_router(builder, &router.path)?))
        }
        None => None,
    };
    for name in engine.connection_names() {
        engine.connection(name.as_str())?.execute(CREATE_NOTES, &[]).await?;
    }

    let app = app(AppState {
        engine: engine.clone(),
        prometheus,
        watcher,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    // The test (and an operator) learn the port from this line.
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    engine.close().await;
    Ok(())
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/notes", get(list_notes).post(create_note))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/route-operations", get(route_operations))
        .layer(middleware::from_fn(tenant_scope))
        .with_state(state)
}

/// Runs the request inside a hint scope carrying its tenant: every routed
/// operation the request makes is routed with `tenant` among its hints.
async fn tenant_scope(mut request: Request, next: Next) -> Response {
    let tenant = request
        .headers()
        .get("x-tenant")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    request.extensions_mut().insert(Tenant(tenant.clone()));
    match tenant {
        Some(tenant) => dbroute::scope(Hints::new().with("tenant", tenant), next.run(request)).await,
        None => next.run(request).await,
    }
}

#[derive(Deserialize)]
struct NewNote {
    body: String,
}

#[derive(Serialize)]
struct Created {
    /// The connection the router chose.
    connection: String,
}

async fn create_note(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Json(note): Json<NewNote>,
) -> Result<Json<Created>, ApiError> {
    let tenant = tenant.ok_or(ApiError::NoTenant)?;
    let done = state
        .engine
        .write::<Note>()
        .execute(
            "INSERT INTO notes (tenant, body) VALUES ($1, $2)",
            &params![tenant, note.body],
        )
        .await?;
    Ok(Json(Created {
        connection: done.connection.to_string(),
    }))
}

#[derive(Serialize)]
struct NoteRow {
    body: String,
}

async fn list_notes(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> Result<Json<Vec<NoteRow>>, ApiError> {
    let tenant = tenant.ok_or(ApiError::NoTenant)?;
    let rows = state
        .engine
        .read::<Note>()
        .fetch_all(
            "SELECT body FROM notes WHERE tenant = $1 ORDER BY body",
            &params![tenant],
        )
        .await?;
    Ok(Json(rows.iter().map(|row| NoteRow { body: row.get("body") }).collect()))
}

/// Every metric the recorder holds, dbroute's published right before.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.engine.publish_metrics();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.prometheus.render(),
    )
}

#[derive(Serialize)]
struct Status {
    connections: Vec<dbroute::stats::ConnectionStatus>,
    router: dbroute::router::RouterStatus,
    watch: Option<dbroute::wasm::WatchStatus>,
}

/// The connections, each checked now, and the router's status.
async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(Status {
        connections: state.engine.check_health(Duration::from_secs(2)).await,
        router: state.engine.router_status(),
        watch: state.watcher.as_ref().map(|w| w.status()),
    })
}

/// The operations routed so far, one JSON object a line with its count
/// (`Engine::write_route_operations`), for `dbroute diff --ops`.
async fn route_operations(State(state): State<AppState>) -> impl IntoResponse {
    let mut lines = Vec::new();
    // Writing to memory cannot fail.
    let _ = state.engine.write_route_operations(&mut lines);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"))],
        lines,
    )
}

/// A request that failed, as `{"error": ...}` with its status code.
#[derive(Debug)]
enum ApiError {
    NoTenant,
    Db(dbroute::Error),
}

impl From<dbroute::Error> for ApiError {
    fn from(error: dbroute::Error) -> Self {
        ApiError::Db(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            ApiError::NoTenant => (StatusCode::BAD_REQUEST, "the x-tenant header is required".to_owned()),
            ApiError::Db(error @ dbroute::Error::RouterRefused { .. }) => (StatusCode::FORBIDDEN, error.to_string()),
            ApiError::Db(error) => {
                tracing::error!("request failed: {error}");
                (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            }
        };
        (code, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
