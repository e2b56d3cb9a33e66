//! `dbroute`: the command line of the dbroute routing engine.
//!
//! - `dbroute check ROUTER` loads a router module exactly as the host
//!   would and reports what it is, or why it would be refused.
//! - `dbroute route ROUTER --op read --model User` asks a router for one
//!   decision, without any database.
//! - `dbroute demo` plays scenarios on real SQLite databases and proves each
//!   claim by reading rows back.
//! - `dbroute migrate --config FILE --dir NAME=PATH` runs sqlx migrations
//!   directories on the configured connections and prints what was applied
//!   where.
//!
//! Exit codes: 0 success, 1 the router (or a demo claim) failed, 2 a usage
//! error. Logs go to stderr, filtered by `RUST_LOG` (default `warn`).

/// `println!` that ignores a closed stdout (`dbroute demo | head`): the
/// run goes on, its exit status still says whether it succeeded.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod check;
mod demo;
mod diff;
mod fleet;
mod follow;
mod migrate;
mod route;
mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dbroute::ConnectionName;
use dbroute::wasm::{ABI_VERSION, Compilation, RouterLimits, RouterRuntime, WasmRouter, WasmRouterBuilder};

/// Exit code when the router would be refused, answered with a refusal or a
/// fault, or a demo claim failed.
const EXIT_FAILURE: u8 = 1;
/// Exit code for usage errors (clap uses the same).
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "dbroute",
    version,
    about = "Route each database operation to a named connection, chosen by WebAssembly routers.",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a router module (.wasm or .wat) exactly as the host would, and
    /// report its ABI version, exports, size, content hash and compile time,
    /// or the reason it would be refused.
    ///
    /// Exit status: 0 when it would load, 1 when not, 2 for usage errors.
    Check(CheckArgs),
    /// Ask a router for one decision and print the connection it names
    /// (`default` when it has no opinion). No database is needed.
    ///
    /// Exit status: 0 for a decision, 1 for a refusal, a fault, an unknown
    /// connection or a router that does not load, 2 for usage errors.
    Route(RouteArgs),
    /// Play the demo scenarios on real databases (SQLite files by default)
    /// and prove each claim by reading rows back from where they should
    /// be.
    ///
    /// Exit status: 0 when every claim holds, 1 otherwise.
    Demo(DemoArgs),
    /// Run sqlx migrations directories on the connections of a
    /// configuration file (each connection its own directory, or one for
    /// all) and print what was applied where.
    ///
    /// Exit status: 0 when every migration applied, 1 when one failed or
    /// the configuration, a directory or a connection is wrong, 2 for
    /// usage errors.
    Migrate(migrate::MigrateArgs),
    /// Check every connection of a configuration file (`SELECT 1` within
    /// a timeout), measure each replica's lag (`replica_of`), and print
    /// its backend, health, role, lag, pool and last error.
    ///
    /// Exit status: 0 when every connection is healthy and every
    /// replica's lag could be measured, 1 otherwise, 2 for usage errors.
    Status(status::StatusArgs),
    /// Manage the router registry a fleet follows (PostgreSQL):
    /// `registry init` makes or upgrades it.
    Registry(fleet::RegistryArgs),
    /// Check a router module as a host would (like `check`), then store it
    /// in the registry as the router's next version. It runs nowhere until
    /// `rollout`.
    ///
    /// Exit status: 0 when published, 1 when refused, 2 for usage errors.
    Publish(fleet::PublishArgs),
    /// Roll a published version out to a share of the instances (those
    /// whose canary bucket, from a hash of their id, is below the percent);
    /// 100 completes the rollout.
    Rollout(fleet::RolloutArgs),
    /// Roll back a router's latest rollout: every instance goes back to
    /// the version before it.
    Rollback(fleet::RollbackArgs),
    /// Ask two routers for their decisions over a file of operations (one
    /// JSON object a line) and print the ones that change, before rolling
    /// NEW out in place of OLD. No database is needed.
    ///
    /// Exit status: 0 when both routers answered every operation (changed
    /// or not), 1 when a router or the file is refused, 2 for usage errors.
    Diff(diff::DiffArgs),
    /// Run an instance that only follows the `[router_registry]` of a
    /// configuration file, printing a JSON line (version, SHA-256,
    /// connected, last error) each time what it runs changes.
    Follow(follow::FollowArgs),
    /// Show the registry's rollouts and every instance: the version and
    /// SHA-256 it runs, decisions, last heartbeat, last error.
    Fleet(fleet::FleetArgs),
}

/// How a router is loaded: the options `check` and `route` share.
#[derive(Debug, Args)]
struct LoadArgs {
    /// The router: a core module or a component (`wit/router.wit`), as a
    /// `.wasm` binary or `.wat` text file. Its file stem is the router's
    /// name.
    #[arg(value_name = "ROUTER")]
    router: PathBuf,
    /// The router's configuration, as JSON, handed to its init
    /// (`dbroute_init`, or a component's `init`).
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    config: Option<serde_json::Value>,
    /// The connection names its init is told about, comma-separated
    /// [default: default]. For `route`, a decision naming another
    /// connection is an error.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', value_parser = parse_connection_name())]
    connections: Option<Vec<ConnectionName>>,
    /// The time budget of each router call, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = default_budget_ms(), value_parser = clap::value_parser!(u64).range(1..=60_000))]
    time_budget_ms: u64,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl LoadArgs {
    /// The router's name: the file stem (the whole path when it has none).
    fn router_name(&self) -> String {
        self.router
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.router.display().to_string())
    }

    /// The connection names given, or `default`.
    fn connection_names(&self) -> Vec<ConnectionName> {
        self.connections
            .clone()
            .unwrap_or_else(|| vec![ConnectionName::DEFAULT])
    }

    fn limits(&self) -> RouterLimits {
        RouterLimits::new().time_budget(Duration::from_millis(self.time_budget_ms))
    }

    /// The builder the host would use for this router. Baseline code only:
    /// a host loads a router on that code too, and this process makes too
    /// few decisions to gain from optimizing it.
    fn builder(&self) -> WasmRouterBuilder {
        let mut builder = WasmRouter::named(self.router_name())
            .connections(self.connection_names())
            .compilation(Compilation::Baseline);
        if let Some(config) = &self.config {
            builder = builder.config(config.clone());
        }
        builder
    }

    /// Loads the router as the host would: same runtime, limits and checks
    /// (`load_file` refuses anything but a regular file of at most
    /// `MAX_COMPONENT_SIZE` bytes, and a core module of more than
    /// `MAX_ROUTER_SIZE`).
    fn load(&self) -> anyhow::Result<(RouterRuntime, WasmRouter)> {
        let runtime = RouterRuntime::new(self.limits())?;
        let router = self.builder().load_file(&runtime, &self.router)?;
        Ok((runtime, router))
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    /// `db_for_read`.
    Read,
    /// `db_for_write`.
    Write,
}

#[derive(Debug, Args)]
struct RouteArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The operation to route.
    #[arg(long, value_enum)]
    op: Op,
    /// The model's name.
    #[arg(long, value_name = "NAME")]
    model: String,
    /// The model's table.
    #[arg(long, value_name = "T")]
    table: Option<String>,
    /// The model's app (the group of models it belongs to).
    #[arg(long, value_name = "A")]
    app: Option<String>,
    /// The model's tags, comma-separated.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    tags: Vec<String>,
    /// The operation's hints, as a JSON object (for example
    /// '{"tenant":"acme"}').
    #[arg(long, value_name = "JSON", value_parser = parse_hints)]
    hints: Option<serde_json::Map<String, serde_json::Value>>,
    /// The operation's origin: the connection its row was read from. The
    /// router sees it; without an opinion, the answer is this connection
    /// instead of `default`.
    #[arg(long, value_name = "NAME", value_parser = parse_connection_name())]
    origin: Option<ConnectionName>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Keep the demo's SQLite files in this folder (created if missing)
    /// instead of a temporary one removed at exit.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    dir: Option<PathBuf>,
    /// Use the connections of this TOML configuration file instead of
    /// SQLite files. The demo creates its `dbroute_demo_*` tables there
    /// when missing and adds rows tagged with the run's id. Scenarios that
    /// need a connection it lacks are skipped. (Every key:
    /// docs/configuration.md.)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
}

fn parse_hints(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match parse_json(text)? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(format!("hints must be a JSON object, not {}", json_kind(&other))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses a connection name. Unlike a plain function parser, its error does
/// not quote the raw argument: a URL pasted where a name belongs must not
/// print its password (the library's message shows it redacted).
#[derive(Debug, Clone, Copy)]
struct ConnectionNameParser;

impl clap::builder::TypedValueParser for ConnectionNameParser {
    type Value = ConnectionName;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ConnectionName, clap::Error> {
        let option = arg.map_or_else(|| "the argument".to_owned(), |a| format!("--{}", a.get_id()));
        let text = value
            .to_str()
            .ok_or_else(|| clap::Error::raw(clap::error::ErrorKind::InvalidUtf8, format!("{option}: not UTF-8\n")))?;
        ConnectionName::new(text)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{option}: {e}\n")))
    }
}

/// The value parser for connection names.
fn parse_connection_name() -> ConnectionNameParser {
    ConnectionNameParser
}

/// Squeezes a message onto one line. WAT parse errors quote the source
/// over several lines (`--> <anon>:1:1`, then `1 | text`, then `| ^`):
/// keep the position, drop the quote.
fn one_line(message: &str) -> String {
    let mut parts = Vec::new();
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(at) = line.strip_prefix("-->") {
            let at = at.trim();
            let position = at
                .strip_prefix("<anon>:")
                .and_then(|lc| lc.split_once(':'))
                .map_or_else(|| at.to_owned(), |(l, c)| format!("line {l}, column {c}"));
            parts.push(format!("(at {position})"));
        } else if is_source_quote(line) {
            continue;
        } else {
            parts.push(line.to_owned());
        }
    }
    parts.join(" ")
}

/// `|`, `| ^` or `12 | text`: a line of quoted source under an error.
fn is_source_quote(line: &str) -> bool {
    line.split_once('|')
        .is_some_and(|(head, _)| head.trim().chars().all(|c| c.is_ascii_digit()))
}

/// An error and its causes, as `error: cause: cause`, skipping causes the
/// text already shows (dbroute's messages include their source).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Prints `message` as one line on stderr and returns exit code 1.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {}", one_line(&message.to_string()));
    ExitCode::from(EXIT_FAILURE)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to
            // stderr with status 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Route(args) => route::run(&args),
        Command::Demo(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return fail(format_args!("could not start the async runtime: {e}")),
            };
            runtime.block_on(demo::run(&args))
        }
        Command::Migrate(args) => migrate::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Registry(args) => fleet::registry(&args),
        Command::Publish(args) => fleet::publish(&args),
        Command::Rollout(args) => fleet::rollout(&args),
        Command::Rollback(args) => fleet::rollback(&args),
        Command::Fleet(args) => fleet::fleet(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Follow(args) => follow::run(&args),
    }
}

/// The library's default time budget, in milliseconds.
fn default_budget_ms() -> u64 {
    RouterLimits::default().get_time_budget().as_millis() as u64
}
