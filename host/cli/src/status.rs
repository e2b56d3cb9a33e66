//! `dbroute status --config FILE`: checks every connection of a
//! configuration file, measures each replica's lag, and prints what each
//! is doing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use dbroute::Config;
use dbroute::stats::{ConnectionStatus, Health, ReplicaLag, Role};
use serde_json::json;

use crate::fail;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The TOML configuration file whose connections are checked (every
    /// key: docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// How long each health check may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &StatusArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format_args!("could not start the async runtime: {e}")),
    };
    match runtime.block_on(status(args)) {
        Ok(status) => {
            print(&status, args.json);
            let lag_known = |s: &ConnectionStatus| s.replication.as_ref().is_none_or(ReplicaLag::is_known);
            if status.iter().all(|s| s.health == Health::Healthy && lag_known(s)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => fail(error),
    }
}

async fn status(args: &StatusArgs) -> dbroute::Result<Vec<ConnectionStatus>> {
    // Lazily: a dead server is reported as unhealthy, not as a failed start.
    let engine = Config::from_file(&args.config)?
        .builder()
        .connect_lazily()
        .build()
        .await?;
    let timeout = Duration::from_millis(args.timeout_ms);
    engine.check_health(timeout).await;
    engine.measure_replication(timeout).await;
    let status = engine.status();
    engine.close().await;
    Ok(status)
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
        _ => "unknown",
    }
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
}

fn role(role: Role) -> String {
    match role.replica_of() {
        Some(primary) => format!("replica of {primary}"),
        None => "primary".to_owned(),
    }
}

/// A replica's lag for the table: `-` for a primary, `unknown` when it
/// could not be measured.
fn lag(lag: Option<&ReplicaLag>) -> String {
    let Some(lag) = lag else { return "-".to_owned() };
    if !lag.is_known() {
        return "unknown".to_owned();
    }
    let mut parts = Vec::new();
    if let Some(bytes) = lag.bytes_behind {
        parts.push(format!("{bytes} B"));
    }
    if let Some(transactions) = lag.transactions_behind {
        parts.push(format!("{transactions} transactions"));
    }
    if let Some(time) = lag.time_behind {
        parts.push(format!("{:.1} s", time.as_secs_f64()));
    }
    if lag.replay_paused == Some(true) {
        parts.push("paused".to_owned());
    }
    if parts.is_empty() {
        return "not reported".to_owned();
    }
    parts.join(", ")
}

fn lag_json(lag: &ReplicaLag) -> serde_json::Value {
    let measured_at_ms = lag
        .measured_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "bytes_behind": lag.bytes_behind,
        "transactions_behind": lag.transactions_behind,
        "time_behind_ms": lag.time_behind.map(|d| d.as_millis() as u64),
        "replay_paused": lag.replay_paused,
        "measured_at_unix_ms": measured_at_ms,
        "error": lag.error,
    })
}

fn print(status: &[ConnectionStatus], as_json: bool) {
    if as_json {
        let connections: Vec<_> = status
            .iter()
            .map(|s| {
                json!({
                    "name": s.name.as_str(),
                    "backend": s.backend.as_str(),
                    "default": s.is_default,
                    "role": if s.role.replica_of().is_some() { "replica" } else { "primary" },
                    "replica_of": s.role.replica_of().map(|p| p.to_string()),
                    "lag": s.replication.as_ref().map(lag_json),
                    "health": health(s.health),
                    "pool_size": s.pool_size,
                    "idle": s.idle,
                    "in_use": s.in_use,
                    "waiting": s.waiting,
                    "queries": s.queries,
                    "errors": s.errors,
                    "latency_ms": {"p50": millis(s.latency_p50), "p95": millis(s.latency_p95), "p99": millis(s.latency_p99)},
                    "last_error": s.last_error,
                })
            })
            .collect();
        println!("{}", json!({ "connections": connections }));
        return;
    }
    println!(
        "{:<16} {:<8} {:<9} {:<20} {:<22} {:>4} {:>4} {:>6} {:>7}  {:>8}  last error",
        "connection", "backend", "health", "role", "lag", "pool", "idle", "in use", "waiting", "p50 ms"
    );
    for s in status {
        let name = if s.is_default {
            format!("{} *", s.name)
        } else {
            s.name.to_string()
        };
        // A replica whose lag is unknown says why first.
        let error = s
            .replication
            .as_ref()
            .and_then(|l| l.error.as_deref())
            .map(|e| format!("lag: {e}"))
            .or_else(|| s.last_error.clone());
        println!(
            "{:<16} {:<8} {:<9} {:<20} {:<22} {:>4} {:>4} {:>6} {:>7}  {:>8}  {}",
            name,
            s.backend.as_str(),
            health(s.health),
            role(s.role),
            lag(s.replication.as_ref()),
            s.pool_size,
            s.idle,
            s.in_use,
            s.waiting,
            millis(s.latency_p50),
            error.as_deref().unwrap_or("-")
        );
    }
    println!("(* the default connection; lag: bytes behind (PostgreSQL), time behind, see docs/replicas.md)");
}
