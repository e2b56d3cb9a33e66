//! `dbroute migrate --config FILE --dir NAME=PATH ... [--on a,b]`: runs sqlx
//! migrations directories on the connections of a configuration file and
//! prints what was applied where.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dbroute::schema::MigrationReport;
use dbroute::{Config, ConnectionName};
use serde_json::json;

use crate::{fail, parse_connection_name};

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The TOML configuration file whose connections (and routers) are
    /// used (every key: docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A sqlx migrations directory. `NAME=PATH` runs it on connection NAME;
    /// a bare `PATH` runs it on every connection without a directory of its
    /// own. Repeat for several connections. (Write `./a=b` for a path that
    /// starts with a connection name and `=`.)
    #[arg(long = "dir", value_name = "[NAME=]PATH", required = true, value_parser = parse_dir)]
    dirs: Vec<DirArg>,
    /// Migrate only these connections, comma-separated, in this order.
    /// Without it: every connection given a `NAME=PATH`, and every
    /// connection when a bare `PATH` is given.
    #[arg(long, value_name = "A,B", value_delimiter = ',', value_parser = parse_connection_name())]
    on: Option<Vec<ConnectionName>>,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// One `--dir` value.
#[derive(Debug, Clone)]
struct DirArg {
    connection: Option<String>,
    path: PathBuf,
}

fn parse_dir(text: &str) -> Result<DirArg, String> {
    if let Some((name, path)) = text.split_once('=')
        && ConnectionName::new(name).is_ok()
    {
        if path.is_empty() {
            return Err(format!("`{name}=` names no directory; write {name}=PATH"));
        }
        return Ok(DirArg {
            connection: Some(name.to_owned()),
            path: PathBuf::from(path),
        });
    }
    if text.is_empty() {
        return Err("the directory is empty; write NAME=PATH or PATH".into());
    }
    Ok(DirArg {
        connection: None,
        path: PathBuf::from(text),
    })
}

pub(crate) fn run(args: &MigrateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format_args!("could not start the async runtime: {e}")),
    };
    match runtime.block_on(migrate(args)) {
        Ok(report) => {
            print_report(&report, args.json);
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

async fn migrate(args: &MigrateArgs) -> dbroute::Result<MigrationReport> {
    let engine = Config::from_file(&args.config)?.builder().build().await?;
    let mut migrations = engine.migrate();
    for dir in &args.dirs {
        migrations = match &dir.connection {
            Some(name) => migrations.dir(name.clone(), &dir.path),
            None => migrations.dir_for_all(&dir.path),
        };
    }
    if let Some(on) = &args.on {
        migrations = migrations.on(on.iter().map(ConnectionName::as_str));
    }
    let result = migrations.run().await;
    engine.close().await;
    result
}

fn print_report(report: &MigrationReport, as_json: bool) {
    if as_json {
        let connections: Vec<_> = report
            .connections
            .iter()
            .map(|c| {
                let applied: Vec<_> = c
                    .applied
                    .iter()
                    .map(|m| json!({ "version": m.version, "description": m.description }))
                    .collect();
                json!({
                    "connection": c.connection.as_str(),
                    "backend": c.backend.as_str(),
                    "dir": c.dir.display().to_string(),
                    "applied": applied,
                    "already_applied": c.already_applied,
                })
            })
            .collect();
        say!(
            "{}",
            json!({ "connections": connections, "total_applied": report.total_applied() })
        );
    } else {
        say!("{}", report.to_string().trim_end());
    }
}
