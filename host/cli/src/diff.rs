//! `dbroute diff OLD NEW --ops FILE`: both routers' decisions over a file
//! of operations, and the ones that change.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use dbroute::router::{HostRouter, RouteDecision, RouteKind, RouteRequest};
use dbroute::wasm::{Compilation, RouterLimits, RouterRuntime, WasmRouter};
use dbroute::{ConnectionName, Hints, ModelInfo};
use serde_json::{Value, json};

use crate::{fail, one_line, parse_connection_name, parse_json};

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The router running now (`.wasm` or `.wat`).
    #[arg(value_name = "OLD")]
    old: PathBuf,
    /// The router that would replace it.
    #[arg(value_name = "NEW")]
    new: PathBuf,
    /// The operations, one JSON object a line: `{"op": "read", "model":
    /// "User"}`, with optional `app`, `table`, `tags` (an array), `hints`
    /// (an object), `origin` and `count` (how many decisions the line
    /// stands for; 1 when absent). Blank lines and lines starting with `#`
    /// are skipped. `Engine::write_route_operations` writes such a file
    /// from a running service's route stats.
    #[arg(long, value_name = "FILE")]
    ops: PathBuf,
    /// OLD's configuration (JSON), handed to its `dbroute_init`.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    old_config: Option<Value>,
    /// NEW's configuration (JSON), handed to its `dbroute_init`.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    new_config: Option<Value>,
    /// The connection names both routers' `dbroute_init` are told about,
    /// comma-separated [default: default].
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', value_parser = parse_connection_name())]
    connections: Option<Vec<ConnectionName>>,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// One operation of the file.
struct Operation {
    line: usize,
    kind: RouteKind,
    model: ModelInfo,
    hints: Hints,
    origin: Option<ConnectionName>,
    /// How many decisions the line stands for.
    count: u64,
    text: String,
}

fn field<'a>(object: &'a serde_json::Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn parse_operation(line: usize, text: &str) -> Result<Operation, String> {
    let at = |e: String| format!("{}, line {line}: {e}", "the operations file");
    let value: Value = serde_json::from_str(text).map_err(|e| at(format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(at("each line must be a JSON object".into()));
    };
    let kind = match field(&object, "op").map_err(at)? {
        Some("read") => RouteKind::Read,
        Some("write") => RouteKind::Write,
        Some(other) => return Err(at(format!("`op` must be \"read\" or \"write\", not \"{other}\""))),
        None => return Err(at("`op` is missing (\"read\" or \"write\")".into())),
    };
    let name = field(&object, "model")
        .map_err(at)?
        .ok_or_else(|| at("`model` is missing".into()))?;
    let mut model = ModelInfo::new(name.to_owned());
    if let Some(app) = field(&object, "app").map_err(at)? {
        model = model.with_app(app.to_owned());
    }
    if let Some(table) = field(&object, "table").map_err(at)? {
        model = model.with_table(table.to_owned());
    }
    match object.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) => {
            let tags: Option<Vec<String>> = tags.iter().map(|t| t.as_str().map(str::to_owned)).collect();
            model = model.with_tags(tags.ok_or_else(|| at("`tags` must be an array of strings".into()))?);
        }
        Some(_) => return Err(at("`tags` must be an array of strings".into())),
    }
    let hints = match object.get("hints") {
        None | Some(Value::Null) => Hints::default(),
        Some(Value::Object(map)) => Hints::from(map.clone()),
        Some(_) => return Err(at("`hints` must be an object".into())),
    };
    let origin = field(&object, "origin")
        .map_err(at)?
        .map(ConnectionName::new)
        .transpose()
        .map_err(|e| at(format!("`origin`: {e}")))?;
    let count = match object.get("count") {
        None | Some(Value::Null) => 1,
        Some(count) => count
            .as_u64()
            .filter(|&n| n > 0)
            .ok_or_else(|| at(format!("`count` must be a whole number above 0, not {count}")))?,
    };
    Ok(Operation {
        line,
        kind,
        model,
        hints,
        origin,
        count,
        text: text.to_owned(),
    })
}

fn read_operations(path: &Path) -> Result<Vec<Operation>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| parse_operation(i + 1, l.trim()))
        .collect()
}

/// Where an operation goes by a router (the connection, or its refusal or
/// fault), and how: what the diff compares, then what it shows.
fn answer(router: &WasmRouter, op: &Operation) -> (String, &'static str) {
    let request = RouteRequest {
        kind: op.kind,
        model: &op.model,
        hints: &op.hints,
        origin: op.origin.as_ref(),
    };
    let answer = match op.kind {
        RouteKind::Read => router.db_for_read(&request),
        RouteKind::Write => router.db_for_write(&request),
    };
    match answer {
        Ok(RouteDecision::Use(name)) => (name.to_string(), ""),
        Ok(RouteDecision::NoOpinion) => match op.origin {
            Some(origin) => (origin.to_string(), " (no opinion: its origin)"),
            None => ("default".to_owned(), " (no opinion)"),
        },
        Ok(RouteDecision::Refuse(message)) => (format!("refused: {}", one_line(&message)), ""),
        Err(fault) => (format!("fault: {}", one_line(&fault.to_string())), ""),
    }
}

/// The operations whose connection (or refusal, or fault) differs between
/// `old` and `new`: (operation, old answer, new answer).
fn compare<'o>(
    old: &WasmRouter,
    new: &WasmRouter,
    operations: &'o [Operation],
) -> Vec<(&'o Operation, String, String)> {
    let mut changes = Vec::new();
    for op in operations {
        let (before, how_before) = answer(old, op);
        let (after, how_after) = answer(new, op);
        if before != after {
            changes.push((op, format!("{before}{how_before}"), format!("{after}{how_after}")));
        }
    }
    changes
}

/// How many decisions `operations` stand for (their counts).
fn decisions<'o>(operations: impl IntoIterator<Item = &'o Operation>) -> u64 {
    operations.into_iter().map(|op| op.count).sum()
}

fn print_changes(changes: &[(&Operation, String, String)], operations: &[Operation]) {
    for (op, before, after) in changes {
        say!("line {}: {}\n  {before} → {after}", op.line, op.text);
    }
    let total = decisions(operations);
    if total == operations.len() as u64 {
        say!("{} of {} operations change", changes.len(), operations.len());
    } else {
        // Counted operations (route stats): how much traffic moves.
        let changed = decisions(changes.iter().map(|(op, _, _)| *op));
        #[allow(clippy::cast_precision_loss)]
        let share = 100.0 * changed as f64 / total as f64;
        say!(
            "{} of {} operations change: {changed} of {total} decisions ({share:.1}%)",
            changes.len(),
            operations.len()
        );
    }
}

/// For `publish --diff-ops`: prints how `new` (about to be published)
/// decides the file's operations differently from `old` (the fleet's
/// version, from the registry).
pub(crate) fn show_before_publishing(
    ops: &Path,
    old: (&str, &[u8], &Value),
    new: (&Path, Option<&Value>),
    names: &[ConnectionName],
) -> anyhow::Result<()> {
    let operations = read_operations(ops).map_err(anyhow::Error::msg)?;
    let runtime = RouterRuntime::new(RouterLimits::default())?;
    let (label, bytes, config) = old;
    let old = WasmRouter::named(label)
        .connections(names.iter().map(ConnectionName::as_str))
        .compilation(Compilation::Baseline)
        .config(config.clone())
        .load(&runtime, bytes)?;
    let new = load(&runtime, new.0, new.1, names)?;
    let changes = compare(&old, &new, &operations);
    print_changes(&changes, &operations);
    Ok(())
}

fn load(
    runtime: &RouterRuntime,
    path: &Path,
    config: Option<&Value>,
    names: &[ConnectionName],
) -> dbroute::Result<WasmRouter> {
    let name = path
        .file_stem()
        .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
    let mut builder = WasmRouter::named(name)
        .connections(names.iter().map(ConnectionName::as_str))
        .compilation(Compilation::Baseline);
    if let Some(config) = config {
        builder = builder.config(config.clone());
    }
    builder.load_file(runtime, path)
}

pub(crate) fn run(args: &DiffArgs) -> ExitCode {
    let operations = match read_operations(&args.ops) {
        Ok(ops) => ops,
        Err(e) => return fail(e),
    };
    let names = args
        .connections
        .clone()
        .unwrap_or_else(|| vec![ConnectionName::DEFAULT]);
    let runtime = match RouterRuntime::new(RouterLimits::default()) {
        Ok(runtime) => runtime,
        Err(e) => return fail(e),
    };
    let old = match load(&runtime, &args.old, args.old_config.as_ref(), &names) {
        Ok(router) => router,
        Err(e) => return fail(format_args!("OLD: {e}")),
    };
    let new = match load(&runtime, &args.new, args.new_config.as_ref(), &names) {
        Ok(router) => router,
        Err(e) => return fail(format_args!("NEW: {e}")),
    };
    let changes = compare(&old, &new, &operations);
    if args.json {
        let changed: Vec<Value> = changes
            .iter()
            .map(|(op, before, after)| json!({"line": op.line, "operation": op.text, "count": op.count, "old": before, "new": after}))
            .collect();
        say!(
            "{}",
            json!({
                "operations": operations.len(),
                "changed": changes.len(),
                "decisions": decisions(&operations),
                "changed_decisions": decisions(changes.iter().map(|(op, _, _)| *op)),
                "changes": changed,
            })
        );
    } else {
        print_changes(&changes, &operations);
    }
    ExitCode::SUCCESS
}
