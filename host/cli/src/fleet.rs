//! The router registry's commands: `registry init`, `publish`, `rollout`,
//! `rollback`, `fleet`. The registry's URL comes from `--registry` or
//! `DBROUTE_REGISTRY_URL`, and is never printed.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use dbroute::registry::{DEFAULT_SCHEMA, FleetStatus, Publication, RegistryClient, Rollout, RolloutState};
use serde_json::json;

use crate::{LoadArgs, fail, one_line};

/// The environment variable that holds the registry's URL.
const URL_VAR: &str = "DBROUTE_REGISTRY_URL";

/// Where the registry is.
#[derive(Debug, Args)]
pub(crate) struct RegistryOptions {
    /// The registry's PostgreSQL URL [default: $DBROUTE_REGISTRY_URL].
    #[arg(long = "registry", value_name = "URL")]
    url: Option<String>,
    /// The registry's schema.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_SCHEMA)]
    schema: String,
}

impl RegistryOptions {
    async fn connect(&self) -> anyhow::Result<RegistryClient> {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => std::env::var(URL_VAR).map_err(|_| {
                anyhow::anyhow!("no registry: pass --registry URL or set {URL_VAR} to its PostgreSQL URL")
            })?,
        };
        Ok(RegistryClient::connect(&url, &self.schema).await?)
    }
}

#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Create the registry's schema and tables, or upgrade them to this
    /// version of dbroute (needs a role that may create tables).
    Init(InitArgs),
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    registry: RegistryOptions,
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The router's name in the registry (instances follow it by name).
    #[arg(long, value_name = "N")]
    name: String,
    /// First show how this module decides the operations of FILE (one
    /// JSON object a line, as for `dbroute diff`) differently from the
    /// version the fleet runs now.
    #[arg(long, value_name = "FILE")]
    diff_ops: Option<std::path::PathBuf>,
    #[command(flatten)]
    registry: RegistryOptions,
}

#[derive(Debug, Args)]
pub(crate) struct RolloutArgs {
    /// The router's name in the registry.
    #[arg(value_name = "N")]
    name: String,
    /// The version to roll out.
    #[arg(value_name = "VERSION")]
    target: i32,
    /// The share of instances that take it (0 to 100; 100 completes the
    /// rollout).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    percent: i64,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryOptions,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The router's name in the registry.
    #[arg(value_name = "N")]
    name: String,
    /// Why, recorded with the rollout.
    #[arg(long, value_name = "TEXT", default_value = "rolled back by hand")]
    reason: String,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryOptions,
}

#[derive(Debug, Args)]
pub(crate) struct FleetArgs {
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// First removes the rows of instances silent for this many seconds
    /// (stopped, or replaced under a new id); a running instance writes
    /// its row again at its next heartbeat. Needs a role that may delete
    /// from the registry's `instances` table.
    #[arg(long, value_name = "SECONDS")]
    forget_after: Option<u64>,
    #[command(flatten)]
    registry: RegistryOptions,
}

fn block_on<F: Future<Output = anyhow::Result<()>>>(work: F) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format_args!("could not start the async runtime: {e}")),
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(crate::error_chain(&e)),
    }
}

pub(crate) fn registry(args: &RegistryArgs) -> ExitCode {
    match &args.command {
        RegistryCommand::Init(init) => block_on(async {
            let client = init.registry.connect().await?;
            let version = client.init().await?;
            say!(
                "registry ready in schema `{}` (schema version {version})",
                client.schema()
            );
            Ok(())
        }),
    }
}

pub(crate) fn publish(args: &PublishArgs) -> ExitCode {
    let load = &args.load;
    // The same checks as `dbroute check`: what a host would refuse is
    // refused here, before anything reaches the registry.
    if let Err(error) = load.load() {
        return fail(format_args!("not published: {}", crate::error_chain(&error)));
    }
    block_on(async {
        let bytes = std::fs::read(&load.router)?;
        let connections: Vec<String> = load.connection_names().iter().map(|c| c.to_string()).collect();
        let mut publication = Publication::new(args.name.as_str(), bytes).connections(connections);
        if let Some(config) = &load.config {
            publication = publication.config(config.clone());
        }
        let client = args.registry.connect().await?;
        if let Some(ops) = &args.diff_ops {
            let stable = client
                .latest_rollout(&args.name)
                .await?
                .and_then(|r| r.stable_version());
            match stable {
                Some(version) => {
                    let running = client.fetch(&args.name, version).await?;
                    say!("compared with version {version}, which the fleet runs:");
                    crate::diff::show_before_publishing(
                        ops,
                        (&format!("{}-v{version}", args.name), &running.module, &running.config),
                        (&load.router, load.config.as_ref()),
                        &load.connection_names(),
                    )?;
                }
                None => say!(
                    "no version of `{}` runs in the fleet yet: nothing to compare",
                    args.name
                ),
            }
        }
        let version = client.publish(publication).await?;
        let published = client.fetch(&args.name, version).await?;
        if load.json {
            say!(
                "{}",
                json!({"ok": true, "router": args.name, "version": version, "sha256": published.sha256})
            );
        } else {
            say!(
                "published router `{}` version {version} (sha256 {}); roll it out with `dbroute rollout {} {version} --percent P`",
                args.name,
                published.sha256,
                args.name
            );
        }
        Ok(())
    })
}

fn describe(rollout: &Rollout) -> String {
    let previous = rollout
        .previous_version
        .map_or_else(|| "none".to_owned(), |v| v.to_string());
    let mut text = format!(
        "router `{}`: version {} at {}% {} (previous version {previous})",
        rollout.router, rollout.version, rollout.percent, rollout.state
    );
    if let Some(reason) = &rollout.reason {
        text.push_str(&format!(": {}", one_line(reason)));
    }
    text
}

pub(crate) fn rollout(args: &RolloutArgs) -> ExitCode {
    block_on(async {
        let client = args.registry.connect().await?;
        let rollout = client.rollout(&args.name, args.target, args.percent).await?;
        if args.json {
            say!("{}", serde_json::to_string(&rollout)?);
        } else {
            say!("{}", describe(&rollout));
        }
        Ok(())
    })
}

pub(crate) fn rollback(args: &RollbackArgs) -> ExitCode {
    block_on(async {
        let client = args.registry.connect().await?;
        let rollout = client.rollback(&args.name, &args.reason).await?;
        if args.json {
            say!("{}", serde_json::to_string(&rollout)?);
        } else {
            say!("{}", describe(&rollout));
        }
        Ok(())
    })
}

/// Prints the fleet; exits with status 1 when a router's latest rollout
/// failed (its instances gave the version up), so that a deploy script
/// that runs `dbroute fleet` stops there.
pub(crate) fn fleet(args: &FleetArgs) -> ExitCode {
    let mut failed = Vec::new();
    let shown = block_on(async {
        let client = args.registry.connect().await?;
        if let Some(secs) = args.forget_after {
            let removed = client.forget_instances(std::time::Duration::from_secs(secs)).await?;
            eprintln!("forgot {removed} instance(s) silent for more than {secs} s");
        }
        let fleet = client.fleet().await?;
        if args.json {
            say!("{}", serde_json::to_string(&fleet)?);
        } else {
            print_fleet(&fleet);
        }
        failed = fleet
            .rollouts
            .iter()
            .filter(|r| r.state == RolloutState::Failed)
            .map(|r| format!("{} version {}", r.router, r.version))
            .collect();
        Ok(())
    });
    if shown != ExitCode::SUCCESS || failed.is_empty() {
        return shown;
    }
    eprintln!("error: the latest rollout failed: {}", failed.join(", "));
    ExitCode::FAILURE
}

fn print_fleet(fleet: &FleetStatus) {
    if fleet.rollouts.is_empty() {
        say!("no rollouts");
    }
    for rollout in &fleet.rollouts {
        say!("{}", describe(rollout));
    }
    say!("");
    if fleet.instances.is_empty() {
        say!("no instances have reported");
        return;
    }
    say!(
        "{:<28} {:<14} {:<14} {:>7} {:<12} {:<9} {:>10} {:>7} {:>9}  ERROR",
        "INSTANCE",
        "SERVICE",
        "ROUTER",
        "VERSION",
        "SHA256",
        "TIER",
        "DECISIONS",
        "FAULTS",
        "HEARTBEAT"
    );
    for i in &fleet.instances {
        say!(
            "{:<28} {:<14} {:<14} {:>7} {:<12} {:<9} {:>10} {:>7} {:>8.1}s  {}",
            i.instance_id,
            i.service,
            i.router,
            i.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            i.sha256.as_deref().map_or("-", |s| &s[..12.min(s.len())]),
            i.tier.as_deref().unwrap_or("-"),
            i.decisions,
            i.faults.map_or_else(|| "-".to_owned(), |f| f.to_string()),
            i.heartbeat_age_secs,
            i.last_error.as_deref().map_or_else(String::new, one_line)
        );
    }
}
