//! `dbroute follow --config FILE`: an instance that does nothing but follow
//! its configuration's `[router_registry]`, printing what it runs each time
//! that changes. To watch a rollout reach a host, or to try one out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use dbroute::Config;
use serde_json::json;

use crate::fail;

#[derive(Debug, Args)]
pub(crate) struct FollowArgs {
    /// The TOML configuration file: its connections, and the
    /// `[router_registry]` to follow (every key: docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Stop after this many seconds [default: run until interrupted].
    #[arg(long, value_name = "N")]
    for_secs: Option<u64>,
}

pub(crate) fn run(args: &FollowArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format_args!("could not start the async runtime: {e}")),
    };
    match runtime.block_on(follow(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(crate::error_chain(&e)),
    }
}

async fn follow(args: &FollowArgs) -> anyhow::Result<()> {
    let config = Config::from_file(&args.config)?;
    let engine = config.builder().build().await?;
    if engine.registry_status().is_none() {
        engine.close().await;
        anyhow::bail!(
            "{} has no [router_registry] table: nothing to follow",
            args.config.display()
        );
    }
    let deadline = args
        .for_secs
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut shown = None;
    loop {
        let status = engine.registry_status();
        if status != shown {
            if let Some(s) = &status {
                say!(
                    "{}",
                    json!({
                        "instance_id": s.instance_id,
                        "router": s.router,
                        "canary_bucket": s.canary_bucket,
                        "version": s.version,
                        "sha256": s.sha256,
                        "connected": s.connected,
                        "last_error": s.last_error,
                    })
                );
            }
            shown = status;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        // Interrupted, the process ends as a crashed instance would: its
        // row stays, with its last heartbeat.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.close().await;
    Ok(())
}
