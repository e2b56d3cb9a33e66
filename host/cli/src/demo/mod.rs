//! `dbroute demo`: scenarios played on real databases. Each scenario says
//! what it claims, does it through the engine, then proves every claim by
//! reading rows back from the database they should (and should not) be in.
//!
//! Scenarios are a plain list ([`scenarios::all`]): adding one is writing
//! an async function and listing it.

mod routers;
mod scenarios;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use dbroute::sqlx::AssertSqlSafe;
use dbroute::wasm::{Expectation, RouterSource, WasmRouter};
use dbroute::{Config, Connection, Engine, ModelInfo, params};

use crate::{DemoArgs, EXIT_FAILURE, error_chain, fail, one_line};

/// The connections the demo registers (without `--config`), one SQLite
/// file each.
const CONNECTIONS: [&str; 4] = ["default", "replica", "analytics", "cache"];

/// The tables every connection gets. Every row carries the run's id, so
/// claims hold even in databases kept from earlier runs.
const TABLES: [&str; 5] = [
    "dbroute_demo_snapshots",
    "dbroute_demo_users",
    "dbroute_demo_orders",
    "dbroute_demo_events",
    "dbroute_demo_archive",
];

/// A scenario's future, borrowing the demo and its report.
type Play<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// One scenario of the demo.
pub(crate) struct Scenario {
    /// A short handle (`replica`, `transaction`, ...).
    pub(crate) key: &'static str,
    /// What it shows, as one sentence.
    pub(crate) title: &'static str,
    /// Connections it needs besides `default`.
    pub(crate) needs: &'static [&'static str],
    /// Plays it, recording operations and claims.
    pub(crate) play: for<'a> fn(&'a Demo, &'a mut Report) -> Play<'a>,
}

/// What the scenarios share: the engine and this run's id. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Demo {
    pub(crate) engine: Engine,
    /// Marks this run's rows.
    pub(crate) run: String,
}

impl Demo {
    /// Loads a WAT router with the engine's runtime, checking `expect`
    /// before it may be used.
    pub(crate) fn router(&self, name: &str, wat: &str, expect: Vec<Expectation>) -> anyhow::Result<WasmRouter> {
        let mut builder = WasmRouter::named(name);
        for expectation in expect {
            builder = builder.expect(expectation);
        }
        Ok(self
            .engine
            .load_router(builder, RouterSource::Bytes(wat.as_bytes().into()))?)
    }

    /// Loads one of the Rust example routers (`example-routers/`, built for
    /// wasm32 when the CLI was built), checking `expect` before it may be
    /// used.
    pub(crate) fn example_router(
        &self,
        name: &str,
        path: &str,
        config: serde_json::Value,
        expect: Vec<Expectation>,
    ) -> anyhow::Result<WasmRouter> {
        anyhow::ensure!(
            std::path::Path::new(path).is_file(),
            "the example router `{name}` is not at {path}: run the demo from the repository with `cargo run -p dbroute-cli -- demo`, which builds it"
        );
        let mut builder = WasmRouter::named(name).config(config);
        for expectation in expect {
            builder = builder.expect(expectation);
        }
        Ok(self.engine.load_router(builder, RouterSource::File(path.into()))?)
    }

    /// A model of the demo, stored in `table`.
    pub(crate) fn model(name: &str, table: &str) -> ModelInfo {
        ModelInfo::new(name).with_table(table)
    }

    fn table(model: &ModelInfo) -> &str {
        model.table().unwrap_or("dbroute_demo_users")
    }

    /// Writes one row of `model`, routed by `db_for_write` (or joining the
    /// task's open transaction). Returns the connection and rows written.
    pub(crate) async fn write(&self, model: &ModelInfo, label: &str) -> anyhow::Result<(String, u64)> {
        let conn = self.engine.write_model(model).connection()?;
        let written = self.insert(&conn, model, label).await?;
        Ok((conn.name().to_string(), written))
    }

    /// Reads this run's rows of `model`, routed by `db_for_read`. Returns
    /// the connection and the rows' labels.
    pub(crate) async fn read(&self, model: &ModelInfo) -> anyhow::Result<(String, Vec<String>)> {
        let conn = self.engine.read_model(model).connection()?;
        let sql = format!(
            "SELECT label FROM {} WHERE run = {} ORDER BY label",
            Self::table(model),
            conn.backend().placeholder(1)
        );
        let rows = conn.fetch_all(AssertSqlSafe(sql), &params![&self.run]).await?;
        let mut labels = Vec::with_capacity(rows.len());
        for row in &rows {
            labels.push(row.try_get::<String, _>(0)?);
        }
        Ok((conn.name().to_string(), labels))
    }

    /// Inserts a row straight into a named connection, bypassing routers.
    pub(crate) async fn seed(&self, connection: &str, model: &ModelInfo, label: &str) -> anyhow::Result<u64> {
        let conn = self.engine.connection(connection)?;
        self.insert(&conn, model, label).await
    }

    /// Inserts one row of this run into `model`'s table on `conn`.
    async fn insert(&self, conn: &Connection, model: &ModelInfo, label: &str) -> anyhow::Result<u64> {
        let p = |n| conn.backend().placeholder(n);
        let sql = format!(
            "INSERT INTO {} (run, label) VALUES ({}, {})",
            Self::table(model),
            p(1),
            p(2)
        );
        Ok(conn
            .execute(AssertSqlSafe(sql), &params![&self.run, label])
            .await?
            .rows_affected)
    }

    /// How many rows of this run labelled `label` are in `connection`, read
    /// straight from it (no router). Must not be called inside a
    /// transaction on another connection.
    pub(crate) async fn count(&self, connection: &str, model: &ModelInfo, label: &str) -> anyhow::Result<i64> {
        let conn = self.engine.connection(connection)?;
        let p = |n| conn.backend().placeholder(n);
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE run = {} AND label = {}",
            Self::table(model),
            p(1),
            p(2)
        );
        let row = conn.fetch_one(AssertSqlSafe(sql), &params![&self.run, label]).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Where rows labelled `label` are: `(connection, count)` for every
    /// registered connection that has any.
    pub(crate) async fn locate(&self, model: &ModelInfo, label: &str) -> anyhow::Result<Vec<(String, i64)>> {
        let mut found = Vec::new();
        for name in self.engine.connection_names() {
            let n = self.count(name.as_str(), model, label).await?;
            if n > 0 {
                found.push((name.to_string(), n));
            }
        }
        Ok(found)
    }

    /// The registered name of connection `name` (`default` is an alias).
    pub(crate) fn real_name(&self, name: &str) -> String {
        if name == "default" {
            self.engine.default_name().to_string()
        } else {
            name.to_owned()
        }
    }
}

/// What one scenario printed: blocks of text, tables and claims, in order.
#[derive(Debug, Default)]
pub(crate) struct Report {
    blocks: Vec<Block>,
    ops: Vec<[String; 4]>,
    held: usize,
    failed: usize,
}

#[derive(Debug)]
enum Block {
    Text(String),
    Table(Vec<&'static str>, Vec<Vec<String>>),
    Claim(bool, String),
}

impl Report {
    /// A line of explanation.
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.flush_ops();
        self.blocks.push(Block::Text(text.into()));
    }

    /// One operation: a row of the connection / operation / model / rows
    /// table.
    pub(crate) fn op(&mut self, connection: &str, operation: &str, model: &ModelInfo, rows: impl ToString) {
        self.ops.push([
            connection.to_owned(),
            operation.to_owned(),
            model.name().to_owned(),
            rows.to_string(),
        ]);
    }

    /// Any other table.
    pub(crate) fn table(&mut self, headers: Vec<&'static str>, rows: Vec<Vec<String>>) {
        self.flush_ops();
        self.blocks.push(Block::Table(headers, rows));
    }

    /// A claim and whether it held; `evidence` says what was found.
    pub(crate) fn claim(&mut self, holds: bool, claim: impl Into<String>, evidence: impl std::fmt::Display) {
        self.flush_ops();
        let evidence = evidence.to_string();
        let text = if evidence.is_empty() {
            claim.into()
        } else {
            format!("{} ({evidence})", claim.into())
        };
        if holds {
            self.held += 1;
        } else {
            self.failed += 1;
        }
        self.blocks.push(Block::Claim(holds, text));
    }

    fn flush_ops(&mut self) {
        if !self.ops.is_empty() {
            let rows = self.ops.drain(..).map(Vec::from).collect();
            self.blocks
                .push(Block::Table(vec!["connection", "operation", "model", "rows"], rows));
        }
    }

    fn print(&mut self) {
        self.flush_ops();
        for block in &self.blocks {
            match block {
                Block::Text(text) => say!("  {text}"),
                Block::Table(headers, rows) => print_table(headers, rows),
                Block::Claim(true, text) => say!("  [ok]     {text}"),
                Block::Claim(false, text) => say!("  [FAILED] {text}"),
            }
        }
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from("    ");
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        say!("{}", out.trim_end());
    };
    line(headers.to_vec());
    line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("dbroute-demo-{}", unique()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// The engine the demo runs on, and a description of where its data is.
async fn open(args: &DemoArgs) -> anyhow::Result<(Engine, String, Option<TempDir>)> {
    if let Some(path) = &args.config {
        let config = Config::from_file(path)?;
        let engine = config.builder().build().await?;
        let names: Vec<String> = engine.connection_names().iter().map(ToString::to_string).collect();
        let description = format!("the connections of {} ({})", path.display(), names.join(", "));
        return Ok((engine, description, None));
    }
    let (dir, temp) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let temp = TempDir::new()?;
            (temp.0.clone(), Some(temp))
        }
    };
    let mut builder = Engine::builder();
    for name in CONNECTIONS {
        let file = dir.join(format!("{name}.db"));
        builder = builder.connection(name, format!("sqlite:{}", file.display()));
    }
    let engine = builder.build().await?;
    let kept = if temp.is_some() { "removed at exit" } else { "kept" };
    let description = format!(
        "{} SQLite databases in {} ({kept}): {}",
        CONNECTIONS.len(),
        dir.display(),
        CONNECTIONS.join(", ")
    );
    Ok((engine, description, temp))
}

/// Creates the demo's tables on every connection.
async fn create_tables(engine: &Engine) -> anyhow::Result<()> {
    for name in engine.connection_names() {
        let conn = engine.connection(name.as_str())?;
        for table in TABLES {
            let sql =
                format!("CREATE TABLE IF NOT EXISTS {table} (run VARCHAR(64) NOT NULL, label VARCHAR(200) NOT NULL)");
            conn.execute(AssertSqlSafe(sql), &[])
                .await
                .with_context(|| format!("creating table {table} on `{name}`"))?;
        }
    }
    Ok(())
}

fn missing_connections(engine: &Engine, scenario: &Scenario) -> Vec<&'static str> {
    let names = engine.connection_names();
    scenario
        .needs
        .iter()
        .copied()
        .filter(|need| !names.iter().any(|n| n.as_str() == *need))
        .collect()
}

pub(crate) async fn run(args: &DemoArgs) -> ExitCode {
    let (engine, description, temp) = match open(args).await {
        Ok(opened) => opened,
        Err(e) => return fail(error_chain(&e)),
    };
    if let Err(e) = create_tables(&engine).await {
        engine.close().await;
        return fail(error_chain(&e));
    }
    let demo = Demo {
        engine,
        run: format!("run-{}", unique()),
    };
    let scenarios = scenarios::all();
    say!("dbroute demo: {} scenarios on {description}", scenarios.len());
    say!("(every row this run writes is tagged {})", demo.run);
    let (mut held, mut failed, mut skipped) = (0, 0, 0);
    for (i, scenario) in scenarios.iter().enumerate() {
        say!();
        say!("Scenario {}: {} [{}]", i + 1, scenario.title, scenario.key);
        let missing = missing_connections(&demo.engine, scenario);
        if !missing.is_empty() {
            say!("  skipped: it needs the connection(s) {}", missing.join(", "));
            skipped += 1;
            continue;
        }
        let mut report = Report::default();
        if let Err(e) = (scenario.play)(&demo, &mut report).await {
            report.claim(false, "the scenario ran to the end", one_line(&error_chain(&e)));
        }
        report.print();
        held += report.held;
        failed += report.failed;
    }
    demo.engine.close().await;
    drop(temp);
    say!();
    say!(
        "Summary: {} scenarios, {held} claims held, {failed} failed, {skipped} scenarios skipped",
        scenarios.len()
    );
    if failed > 0 {
        eprintln!("error: {failed} demo claim(s) failed; see [FAILED] above");
        return ExitCode::from(EXIT_FAILURE);
    }
    ExitCode::SUCCESS
}
