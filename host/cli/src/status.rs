//! `dbroute status --config FILE`: checks every connection of a
//! configuration file and prints what each is doing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use dbroute::Config;
use dbroute::stats::{ConnectionStatus, Health};
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
            if status.iter().all(|s| s.health == Health::Healthy) {
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
    let status = engine.check_health(Duration::from_millis(args.timeout_ms)).await;
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

fn print(status: &[ConnectionStatus], as_json: bool) {
    if as_json {
        let connections: Vec<_> = status
            .iter()
            .map(|s| {
                json!({
                    "name": s.name.as_str(),
                    "backend": s.backend.as_str(),
                    "default": s.is_default,
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
        "{:<16} {:<8} {:<9} {:>4} {:>4} {:>6} {:>7}  {:>8}  last error",
        "connection", "backend", "health", "pool", "idle", "in use", "waiting", "p50 ms"
    );
    for s in status {
        let name = if s.is_default {
            format!("{} *", s.name)
        } else {
            s.name.to_string()
        };
        println!(
            "{:<16} {:<8} {:<9} {:>4} {:>4} {:>6} {:>7}  {:>8}  {}",
            name,
            s.backend.as_str(),
            health(s.health),
            s.pool_size,
            s.idle,
            s.in_use,
            s.waiting,
            millis(s.latency_p50),
            s.last_error.as_deref().unwrap_or("-")
        );
    }
    println!("(* the default connection)");
}
