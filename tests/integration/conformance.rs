//! Conformance: the reference policy, written in every language a router
//! can be written in (as core modules: Rust with the SDK, C, Zig,
//! AssemblyScript, WAT for its simplest part; as components: Python,
//! JavaScript, Rust with wit-bindgen), gives the same answers through the
//! host.
//!
//! The cases are `example-routers/reference-cases.json`. Every case runs
//! against every language's module: loaded with the case's configuration,
//! asked `db_for_read`, `db_for_write` and `allow_migrate` (or refused at
//! load, for a bad configuration). Then every case routes real rows through
//! an engine on PostgreSQL and on SQLite: a row written lands on the
//! connection the case names and on no other, a read returns the row of the
//! connection it names, a refused write writes nothing.
//!
//! The answers of core modules are checked on the code of both compiler
//! tiers, baseline and optimized; the rows are routed on baseline code (the
//! one a router runs first). Components, which take seconds to compile, run
//! optimized code compiled once per build of the component and shared
//! through a compiled-router cache in cargo's target folder
//! (`components::shared_runtime`).
//!
//! A language whose toolchain is not installed is skipped, and said so on
//! stderr; with `DBROUTE_REQUIRE_ALL_LANGUAGES=1` (as `.ci/run` sets it) a
//! skipped language fails the suite instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Once;

use dbroute::router::{HostRouter, MigrateRequest, RouteDecision, RouteKind, RouteRequest};
use dbroute::sqlx::AssertSqlSafe;
use dbroute::wasm::{
    Compilation, LoadError, RouterLimits, RouterRuntime, RouterSource, Tier, WasmRouter, WasmRouterBuilder,
};
use dbroute::{Backend, ConnectionName, Engine, Error, Hints, ModelInfo, params};
use dbroute_example_routers as routers;
use serde::Deserialize;

use crate::components;
use crate::support::{FIRST_TIER, TestDb};

/// The variable that turns a skipped language into a failure.
const REQUIRE_ALL: &str = "DBROUTE_REQUIRE_ALL_LANGUAGES";

/// The case table (`sdk_native.rs` runs it too).
#[derive(Debug, Deserialize)]
pub(crate) struct Table {
    pub(crate) connections: Vec<String>,
    subsets: BTreeMap<String, Subset>,
    pub(crate) cases: Vec<Case>,
}

/// The part of the table a partial router (WAT) implements.
#[derive(Debug, Deserialize)]
struct Subset {
    implements: String,
    checks: Vec<String>,
    cases: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) config: serde_json::Value,
    model: Option<ModelJson>,
    #[serde(default)]
    hints: serde_json::Map<String, serde_json::Value>,
    read: Option<Expected>,
    write: Option<Expected>,
    #[serde(default)]
    pub(crate) migrate: BTreeMap<String, Option<bool>>,
    pub(crate) init: Option<Refused>,
}

#[derive(Debug, Deserialize)]
struct ModelJson {
    name: String,
    table: Option<String>,
    app: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Expected {
    Use(String),
    Refused(Refused),
}

#[derive(Debug, Deserialize)]
pub(crate) struct Refused {
    pub(crate) refused: String,
}

impl Case {
    pub(crate) fn model(&self) -> ModelInfo {
        let m = self
            .model
            .as_ref()
            .unwrap_or_else(|| panic!("case `{}` has no model", self.name));
        let mut model = ModelInfo::new(&m.name).with_tags(&m.tags);
        if let Some(table) = &m.table {
            model = model.with_table(table);
        }
        if let Some(app) = &m.app {
            model = model.with_app(app);
        }
        model
    }

    pub(crate) fn hints(&self) -> Hints {
        let mut hints = Hints::new();
        for (key, value) in &self.hints {
            hints.insert(key, value.clone());
        }
        hints
    }

    pub(crate) fn expected(&self, kind: RouteKind) -> &Expected {
        let expected = match kind {
            RouteKind::Read => &self.read,
            RouteKind::Write => &self.write,
        };
        expected
            .as_ref()
            .unwrap_or_else(|| panic!("case `{}` has no {kind} answer", self.name))
    }
}

pub(crate) fn table() -> Table {
    let text = std::fs::read_to_string(routers::REFERENCE_CASES).expect("reading the reference cases");
    let table: Table = serde_json::from_str(&text).expect("the reference cases are valid");
    // The table checks itself: names are unique, subsets name real cases
    // whose answers the simplest router gives.
    let mut names = std::collections::BTreeSet::new();
    for case in &table.cases {
        assert!(names.insert(case.name.as_str()), "case `{}` twice", case.name);
        assert!(
            case.init.is_some() != (case.read.is_some() && case.write.is_some()),
            "case `{}` needs either init or read and write",
            case.name
        );
    }
    let wat = &table.subsets["wat"];
    assert_eq!(wat.checks, ["read", "write"]);
    for name in &wat.cases {
        let case = table
            .cases
            .iter()
            .find(|c| &c.name == name)
            .unwrap_or_else(|| panic!("subset wat names no case `{name}`"));
        assert!(
            matches!(&case.read, Some(Expected::Use(db)) if db == "replica")
                && matches!(&case.write, Some(Expected::Use(db)) if db == "default"),
            "subset wat: case `{name}` is not a read from replica and a write to default"
        );
    }
    table
}

/// A language whose module was built, with the cases it implements.
struct Language {
    name: &'static str,
    path: &'static str,
    /// `None`: every case; else the names of the cases of its subset.
    subset: Option<Vec<String>>,
    /// Whether its router is a component.
    component: bool,
}

impl Language {
    fn runs(&self, case: &Case) -> bool {
        match &self.subset {
            None => true,
            Some(names) => names.contains(&case.name),
        }
    }

    /// Whether this language's router implements allow_migrate and init.
    fn is_complete(&self) -> bool {
        self.subset.is_none()
    }

    /// Its router with `config`, compiled by the tier `compilation` names
    /// (and never moved to another).
    fn builder(&self, config: &serde_json::Value, compilation: Compilation) -> WasmRouterBuilder {
        WasmRouter::named(format!("{}-reference", self.name))
            .config(config.clone())
            .compilation(compilation)
    }

    /// The compilation its rows are routed with: a core module's first
    /// tier; a component's optimized code, from the shared cache.
    fn routing_compilation(&self) -> Compilation {
        if self.component {
            Compilation::Optimized
        } else {
            Compilation::Baseline
        }
    }
}

/// The built languages. Says which were skipped, on stderr (past the test
/// harness's capture, so that a plain `cargo test` shows it), or fails when
/// every language is required.
fn languages(table: &Table) -> Vec<Language> {
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        let mut stderr = std::io::stderr();
        for (language, reason) in routers::skipped() {
            let _ = writeln!(
                stderr,
                "conformance: skipped {language}: {reason}; run .ci/run or see docs/routers/{language}.md"
            );
        }
    });
    let skipped = routers::skipped();
    if std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1") {
        assert!(
            skipped.is_empty(),
            "{REQUIRE_ALL}=1, but languages were skipped: {skipped:?} (install their toolchains: .ci/run, docs/routers/)"
        );
    }
    routers::languages()
        .iter()
        .filter_map(|&(name, path)| {
            let path = path?;
            let component = components::is_component_file(path);
            if component {
                components::warm(path);
            }
            Some(Language {
                name,
                path,
                component,
                subset: table.subsets.get(name).map(|s| {
                    assert!(!s.implements.is_empty());
                    s.cases.clone()
                }),
            })
        })
        .collect()
}

pub(crate) fn limits() -> RouterLimits {
    RouterLimits::new().time_budget(std::time::Duration::from_secs(2))
}

/// The answer a router gave, as the table writes it.
fn describe(decision: &Result<RouteDecision, dbroute::router::Fault>) -> String {
    match decision {
        Ok(RouteDecision::Use(name)) => format!("{name:?}"),
        Ok(RouteDecision::Refuse(message)) => format!("refused {message:?}"),
        Ok(RouteDecision::NoOpinion) => "no opinion".into(),
        Err(fault) => format!("fault: {fault}"),
    }
}

fn expected_text(expected: &Expected) -> String {
    match expected {
        Expected::Use(name) => format!("{name:?}"),
        Expected::Refused(r) => format!("refused {:?}", r.refused),
    }
}

/// Runs one case against one language's module, directly through the host's
/// `WasmRouter`. `Err` says every answer that differs.
fn run_case(
    language: &Language,
    case: &Case,
    table: &Table,
    runtime: &RouterRuntime,
    (compilation, tier): (Compilation, Tier),
) -> Result<(), String> {
    let loaded = language
        .builder(&case.config, compilation)
        .connections(&table.connections)
        .load_file(runtime, language.path);
    if let Some(init) = &case.init {
        return match loaded {
            Err(Error::RouterLoad {
                reason: LoadError::InitRefused(message),
                ..
            }) if message == init.refused => Ok(()),
            Err(other) => Err(format!("load: expected refusal {:?}, got {other}", init.refused)),
            Ok(_) => Err(format!("load: expected refusal {:?}, but it loaded", init.refused)),
        };
    }
    let router = loaded.map_err(|e| format!("load: {e}"))?;
    let mut problems = Vec::new();
    if router.tier() != tier {
        problems.push(format!("runs {:?} code", router.tier()));
    }
    if !router.info().deterministic {
        problems.push("does not declare itself deterministic".to_owned());
    }
    let (model, hints) = (case.model(), case.hints());
    for kind in [RouteKind::Read, RouteKind::Write] {
        let op = RouteRequest {
            kind,
            model: &model,
            hints: &hints,
            origin: None,
        };
        // Twice: the second answer may come from the host's cache.
        for attempt in 0..2 {
            let got = match kind {
                RouteKind::Read => router.db_for_read(&op),
                RouteKind::Write => router.db_for_write(&op),
            };
            let ok = match (case.expected(kind), &got) {
                (Expected::Use(name), Ok(RouteDecision::Use(db))) => db == name.as_str(),
                (Expected::Refused(r), Ok(RouteDecision::Refuse(message))) => *message == r.refused,
                _ => false,
            };
            if !ok {
                problems.push(format!(
                    "{kind} (call {}): expected {}, got {}",
                    attempt + 1,
                    expected_text(case.expected(kind)),
                    describe(&got)
                ));
            }
        }
    }
    if language.is_complete() {
        for (db, expected) in &case.migrate {
            let db = ConnectionName::new(db).expect("a connection name");
            let got = router.allow_migrate(&MigrateRequest {
                db,
                target: dbroute::router::MigrateTarget::Model(&model),
                hints: &hints,
            });
            if got.as_ref().ok() != Some(expected) {
                problems.push(format!("allow_migrate on {db}: expected {expected:?}, got {got:?}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Every case against every language, through the host, on each tier's
/// code. Prints the table of results; fails listing every case that
/// differs.
#[test]
fn every_language_gives_the_reference_answers() {
    let table = table();
    let languages = languages(&table);
    // Optimized code: each language's module is compiled once, and read
    // from the cache for the other cases. Baseline code: no cache (it
    // would give the optimized code).
    let cache = tempfile::tempdir().expect("a folder for compiled routers");
    let optimizing = RouterRuntime::with_compiled_cache(limits(), cache.path()).expect("router runtime");
    let baseline = RouterRuntime::new(limits()).expect("router runtime");
    let shared = components::shared_runtime();
    let mut failures = Vec::new();
    let mut report = String::new();
    let width = table.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let _ = write!(report, "{:width$}", "case");
    for language in &languages {
        let _ = write!(report, " | {:^14}", language.name);
    }
    report.push('\n');
    let mut passed: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for case in &table.cases {
        let _ = write!(report, "{:width$}", case.name);
        for language in &languages {
            let cell = if language.runs(case) {
                let tally = passed.entry(language.name).or_default();
                tally.1 += 1;
                let mut problems = Vec::new();
                let runs = if language.component {
                    vec![((Compilation::Optimized, Tier::Optimized), shared)]
                } else {
                    vec![
                        ((Compilation::Baseline, FIRST_TIER), &baseline),
                        ((Compilation::Optimized, Tier::Optimized), &optimizing),
                    ]
                };
                for (tiers, runtime) in runs {
                    let tier = tiers.1;
                    if let Err(problem) = run_case(language, case, &table, runtime, tiers) {
                        problems.push(format!("{} / {} ({tier:?} code): {problem}", language.name, case.name));
                    }
                }
                if problems.is_empty() {
                    tally.0 += 1;
                    "pass"
                } else {
                    failures.extend(problems);
                    "FAIL"
                }
            } else {
                "-"
            };
            let _ = write!(report, " | {cell:^14}");
        }
        report.push('\n');
    }
    for (name, subset) in &table.subsets {
        let _ = writeln!(
            report,
            "-: not implemented by {name}, which implements {}",
            subset.implements
        );
    }
    println!("{report}");
    let summary: Vec<String> = passed
        .iter()
        .map(|(name, (ok, all))| format!("{name} {ok}/{all}"))
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "conformance: cases passed per language: {}",
        summary.join(", ")
    );
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
}

/// The table of a language in the databases: one per language, so that
/// the languages never see each other's rows.
fn table_name(language: &Language) -> String {
    format!("conformance_{}", language.name.replace('-', "_"))
}

/// Routes real rows through every language's router into six databases of
/// `backend` (one per connection of the table): writes land where the case
/// says and nowhere else, reads come from where it says, refused writes
/// write nothing, and allow_migrate answers through the engine.
async fn rows_land_where_routed(backend: Backend) {
    let table = table();
    let languages = languages(&table);
    let mut dbs = Vec::new();
    for _ in &table.connections {
        dbs.push(TestDb::new(backend).await);
    }
    let mut builder = Engine::builder()
        .router_limits(limits())
        .compiled_router_cache(components::compiled_cache_dir());
    for (name, db) in table.connections.iter().zip(&dbs) {
        builder = builder.connection(name, &db.url);
    }
    let engine = builder.build().await.expect("engine");
    let p = |n| dbs[0].p(n);

    let mut failures = Vec::new();
    let mut routed = 0;
    for language in &languages {
        let t = table_name(language);
        // Each database holds one row saying which database it is (id 0).
        for name in &table.connections {
            let conn = engine.connection(name).expect("a registered connection");
            conn.execute(AssertSqlSafe(format!("CREATE TABLE {t} (id INTEGER, note TEXT)")), &[])
                .await
                .expect("create table");
            conn.execute(
                AssertSqlSafe(format!("INSERT INTO {t} (id, note) VALUES ({}, {})", p(1), p(2))),
                &params![0, name.as_str()],
            )
            .await
            .expect("insert");
        }
        for (index, case) in table.cases.iter().enumerate() {
            if case.init.is_some() || !language.runs(case) {
                continue;
            }
            let id = i64::try_from(index).expect("a small index") + 1;
            let router = engine
                .load_router(
                    language.builder(&case.config, language.routing_compilation()),
                    RouterSource::File(language.path.into()),
                )
                .unwrap_or_else(|e| panic!("{} / {}: {e}", language.name, case.name));
            engine.set_router(router);
            let (model, hints) = (case.model(), case.hints());
            let mut fail = |what: String| failures.push(format!("{} / {}: {what}", language.name, case.name));

            // A read returns the row of the connection the case names.
            let read = engine
                .read_model(&model)
                .hints(&hints)
                .fetch_all(AssertSqlSafe(format!("SELECT note FROM {t} WHERE id = 0")), &[])
                .await;
            match (case.expected(RouteKind::Read), read) {
                (Expected::Use(db), Ok(rows)) => {
                    let notes: Vec<String> = rows.iter().map(|r| r.get("note")).collect();
                    if notes != [db.as_str()] {
                        fail(format!("read: expected the row of {db}, read {notes:?}"));
                    }
                }
                (expected, got) => fail(format!("read: expected {}, got {got:?}", expected_text(expected))),
            }

            // A write lands on the connection the case names, or nowhere.
            let write = engine
                .write_model(&model)
                .hints(&hints)
                .execute(
                    AssertSqlSafe(format!("INSERT INTO {t} (id, note) VALUES ({}, {})", p(1), p(2))),
                    &params![id, case.name.as_str()],
                )
                .await;
            let lands_on = match (case.expected(RouteKind::Write), write) {
                (Expected::Use(db), Ok(_)) => Some(db.as_str()),
                (Expected::Refused(r), Err(Error::RouterRefused { message, .. })) if message == r.refused => None,
                (expected, got) => {
                    fail(format!("write: expected {}, got {got:?}", expected_text(expected)));
                    None
                }
            };
            for name in &table.connections {
                let rows = engine
                    .connection(name)
                    .expect("a registered connection")
                    .fetch_one(
                        AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {t} WHERE id = {}", p(1))),
                        &params![id],
                    )
                    .await
                    .expect("count")
                    .get::<i64, _>("n");
                let want = i64::from(lands_on == Some(name.as_str()));
                if rows != want {
                    fail(format!("write: {rows} row(s) on {name}, expected {want}"));
                }
            }

            // allow_migrate through the engine: no opinion means yes.
            if language.is_complete() {
                for (db, expected) in &case.migrate {
                    let got = engine.allow_migrate(db, &model, &hints);
                    if got.as_ref().ok() != Some(&expected.unwrap_or(true)) {
                        fail(format!(
                            "allow_migrate on {db} through the engine: expected {expected:?}, got {got:?}"
                        ));
                    }
                }
            }
            routed += 1;
        }
    }
    engine.close().await;
    let _ = writeln!(
        std::io::stderr(),
        "conformance: {routed} cases routed real rows on {backend:?} through {} languages",
        languages.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_land_where_every_language_routes_them_on_postgres() {
    rows_land_where_routed(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_land_where_every_language_routes_them_on_sqlite() {
    rows_land_where_routed(Backend::Sqlite).await;
}

/// Each language's page in `docs/routers/` shows its router as it is in
/// `example-routers/`, so the docs cannot drift from the tested code.
#[test]
fn the_docs_show_the_routers_as_they_are() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pages = [
        ("rust", "example-routers/reference/src/lib.rs"),
        ("c", "example-routers/c/reference.c"),
        ("zig", "example-routers/zig/reference.zig"),
        ("assemblyscript", "example-routers/assemblyscript/assembly/reference.ts"),
        ("wat", "example-routers/wat/simple.wat"),
        ("python", "example-routers/python/reference.py"),
        ("javascript", "example-routers/javascript/reference.js"),
    ];
    for (language, source) in pages {
        let page = format!("docs/routers/{language}.md");
        let doc = std::fs::read_to_string(root.join(&page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        let code = std::fs::read_to_string(root.join(source)).unwrap_or_else(|e| panic!("{source}: {e}"));
        // The Rust router's unit tests are not part of the page.
        let code = code.split("\n#[cfg(test)]").next().unwrap_or_default().trim();
        assert!(
            doc.contains(code),
            "{page} does not show {source} as it is: copy it in again"
        );
    }
}
