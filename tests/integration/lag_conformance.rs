//! Conformance of routing by replica lag (ABI 1.2): the lag routers
//! (`example-routers/lag` in Rust, `example-routers/c/lag.c`) give the
//! answers of `example-routers/lag-cases.json` through the host, each case
//! telling the router a connections' state (and, for some, further states
//! in turn: an answer cached under an earlier state must not be served).
//! The Rust router runs as its WebAssembly build and natively
//! ([`SdkRouter`]).
//!
//! A language whose toolchain is not installed is skipped, and said so on
//! stderr; with `DBROUTE_REQUIRE_ALL_LANGUAGES=1` it fails instead.

use std::io::Write as _;

use dbroute::router::{
    ConnectionState, ConnectionStates, HostRouter, RouteDecision, RouteKind, RouteRequest, SdkRouter,
};
use dbroute::stats::{Health, Role};
use dbroute::wasm::{Compilation, LoadError, RouterRuntime, WasmRouter};
use dbroute::{ConnectionName, Error, Hints, ModelInfo};
use dbroute_example_routers as routers;
use dbroute_router_lag::LagRouter;
use serde::Deserialize;

use crate::conformance::limits;

#[derive(Debug, Deserialize)]
struct Table {
    connections: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    config: serde_json::Value,
    state: Option<Vec<StateJson>>,
    read: Option<String>,
    write: Option<String>,
    #[serde(default)]
    after: Vec<Step>,
    init: Option<Refused>,
}

#[derive(Debug, Deserialize)]
struct Step {
    state: Vec<StateJson>,
    read: Option<String>,
    write: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Refused {
    refused: String,
}

/// One connection of a `dbroute_state` input, as `docs/ABI.md` writes it.
#[derive(Debug, Deserialize)]
struct StateJson {
    name: String,
    role: String,
    replica_of: Option<String>,
    healthy: Option<bool>,
    lag_ms: Option<u64>,
    lag_bytes: Option<u64>,
}

/// The host's snapshot of `state`: what the router is told is the ABI
/// JSON the host makes of it.
fn states(state: &[StateJson]) -> ConnectionStates {
    let name = |n: &str| ConnectionName::new(n).expect("a connection name");
    ConnectionStates::new(
        state
            .iter()
            .map(|c| {
                let role = match (&*c.role, &c.replica_of) {
                    ("primary", None) => Role::Primary,
                    ("replica", Some(of)) => Role::Replica { of: name(of) },
                    other => panic!("a role the ABI does not write: {other:?}"),
                };
                let health = match c.healthy {
                    Some(true) => Health::Healthy,
                    Some(false) => Health::Unhealthy,
                    None => Health::Unknown,
                };
                ConnectionState::new(name(&c.name), role)
                    .with_health(health)
                    .with_lag(c.lag_ms, c.lag_bytes)
            })
            .collect(),
    )
}

fn table() -> Table {
    let text = std::fs::read_to_string(routers::LAG_CASES).expect("reading the lag cases");
    serde_json::from_str(&text).expect("the lag cases are valid")
}

/// The answer as the table writes it: a connection, or `null`.
fn answer(decision: Result<RouteDecision, dbroute::router::Fault>) -> Result<Option<String>, String> {
    match decision {
        Ok(RouteDecision::Use(name)) => Ok(Some(name.to_string())),
        Ok(RouteDecision::NoOpinion) => Ok(None),
        Ok(RouteDecision::Refuse(message)) => Err(format!("refused {message:?}")),
        Err(fault) => Err(format!("fault: {fault}")),
    }
}

/// Asks `router` to read and write a model, twice each (the second answer
/// may come from the answer cache); the problems found.
fn check(router: &dyn HostRouter, step: &str, read: &Option<String>, write: &Option<String>) -> Vec<String> {
    let (model, hints) = (ModelInfo::new("User"), Hints::new());
    let mut problems = Vec::new();
    for (kind, expected) in [(RouteKind::Read, read), (RouteKind::Write, write)] {
        let op = RouteRequest {
            kind,
            model: &model,
            hints: &hints,
            origin: None,
        };
        for call in 1..=2 {
            let got = answer(match kind {
                RouteKind::Read => router.db_for_read(&op),
                RouteKind::Write => router.db_for_write(&op),
            });
            if got.as_ref() != Ok(expected) {
                problems.push(format!(
                    "{step}: {kind} (call {call}): expected {expected:?}, got {got:?}"
                ));
            }
        }
    }
    problems
}

/// Runs a case's states and answers against `router`.
fn run_steps(router: &dyn HostRouter, case: &Case) -> Vec<String> {
    if let Some(state) = &case.state {
        router.state_changed(&states(state));
    }
    let mut problems = check(router, "first state", &case.read, &case.write);
    for (i, step) in case.after.iter().enumerate() {
        router.state_changed(&states(&step.state));
        problems.extend(check(router, &format!("state {}", i + 2), &step.read, &step.write));
    }
    problems
}

#[test]
fn every_lag_router_gives_the_answers_of_the_cases() {
    let table = table();
    let runtime = RouterRuntime::new(limits()).expect("router runtime");
    let require_all = std::env::var("DBROUTE_REQUIRE_ALL_LANGUAGES").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut ran = Vec::new();
    for &(language, path) in routers::lag_languages() {
        let Some(path) = path else {
            assert!(!require_all, "the {language} lag router was not built");
            let _ = writeln!(std::io::stderr(), "lag conformance: skipped {language}");
            continue;
        };
        for case in &table.cases {
            let loaded = WasmRouter::named(format!("{language}-lag"))
                .config(case.config.clone())
                .connections(&table.connections)
                .compilation(Compilation::Baseline)
                .load_file(&runtime, path);
            let problems = match (&case.init, loaded) {
                (
                    Some(init),
                    Err(Error::RouterLoad {
                        reason: LoadError::InitRefused(message),
                        ..
                    }),
                ) if message == init.refused => Vec::new(),
                (Some(init), other) => vec![format!("load: expected refusal {:?}, got {other:?}", init.refused)],
                (None, Err(e)) => vec![format!("load: {e}")],
                (None, Ok(router)) => {
                    let mut problems = run_steps(&router, case);
                    if router.info().abi_minor != 2 || !router.info().exports.contains(&"dbroute_state") {
                        problems.push(format!("not a router of ABI 1.2: {:?}", router.info()));
                    }
                    if !router.info().deterministic {
                        problems.push("does not declare itself deterministic".into());
                    }
                    problems
                }
            };
            failures.extend(problems.into_iter().map(|p| format!("{language} / {}: {p}", case.name)));
        }
        ran.push(language);
    }
    // The Rust router natively: the same answers.
    for case in &table.cases {
        let built = SdkRouter::<LagRouter>::builder("lag-native")
            .config(case.config.clone())
            .connections(&table.connections)
            .build();
        let problems = match (&case.init, built) {
            (
                Some(init),
                Err(Error::RouterLoad {
                    reason: LoadError::InitRefused(message),
                    ..
                }),
            ) if message == init.refused => Vec::new(),
            (Some(init), other) => vec![format!("build: expected refusal {:?}, got {other:?}", init.refused)],
            (None, Err(e)) => vec![format!("build: {e}")],
            (None, Ok(router)) => run_steps(&router, case),
        };
        failures.extend(problems.into_iter().map(|p| format!("native / {}: {p}", case.name)));
    }
    let _ = writeln!(
        std::io::stderr(),
        "lag conformance: {} cases through {ran:?} and natively",
        table.cases.len()
    );
    assert!(ran.contains(&"rust"), "{ran:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
