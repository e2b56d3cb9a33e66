//! Tests of the `dbroute` command line, run on the real binary. The test
//! routers are small WAT files in `routers/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `dbroute` with `args` (logs at their default level).
fn dbroute<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbroute"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the dbroute binary runs")
}

/// A test router's path.
fn router(name: &str) -> String {
    routers_dir().join(name).display().to_string()
}

fn routers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cli/routers")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts a failure (exit 1) reported as exactly one line on stderr
/// containing every piece of `expected`, with nothing on stdout.
#[track_caller]
fn assert_fails_with(out: &Output, expected: &[&str]) {
    assert_exit(out, 1);
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line on stderr, got:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    for piece in expected {
        assert!(err.contains(piece), "stderr lacks {piece:?}:\n{err}");
    }
    assert!(stdout(out).is_empty(), "stdout: {}", stdout(out));
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(out).trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

// ---- check ----

#[test]
fn check_and_route_take_a_component() {
    let Some(path) = dbroute_example_routers::RUST_COMPONENT_REFERENCE else {
        assert!(
            std::env::var("DBROUTE_REQUIRE_ALL_LANGUAGES").as_deref() != Ok("1"),
            "the Rust component router was not built"
        );
        return;
    };
    let connections = "--connections=default,replica,analytics,tenant_acme";
    let out = dbroute(&["check", connections, path]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("kind           component (wit/router.wit"), "{text}");
    assert!(text.contains("db-for-read"), "{text}");
    assert!(text.contains("init           accepted"), "{text}");

    let config = r#"--config={"tenants":{"acme":"tenant_acme"}}"#;
    let route = |op: &str, model: &str, extra: &[&str]| {
        let mut args = vec!["route", connections, config, "--op", op, "--model", model];
        args.extend_from_slice(extra);
        args.push(path);
        dbroute(&args)
    };
    let out = route("read", "User", &[]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "replica");
    let out = route("write", "Event", &[]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "analytics");
}

#[test]
fn check_reports_a_good_router() {
    let out = dbroute(&["check", &router("good.wat")]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("router `good` would load"), "{text}");
    // good.wat does not export dbroute_abi_minor: ABI 1.0.
    assert!(text.contains("abi version    1.0"), "{text}");
    for export in [
        "memory",
        "dbroute_abi_version",
        "dbroute_input",
        "db_for_read",
        "db_for_write",
        "dbroute_init",
    ] {
        assert!(text.contains(export), "{export} missing from {text}");
    }
    let size = std::fs::metadata(router("good.wat")).unwrap().len();
    assert!(text.contains(&format!("size           {size} bytes")), "{text}");
    assert!(text.contains("sha256"), "{text}");
    assert!(text.contains("compile time"), "{text}");
    assert!(text.contains("deterministic  yes"), "{text}");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn check_json_is_one_object() {
    let out = dbroute(&["check", "--json", &router("good.wat")]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["router"], "good");
    assert_eq!(report["abi_version"], 1);
    assert_eq!(report["abi_minor"], 0);
    let size = std::fs::metadata(router("good.wat")).unwrap().len();
    assert_eq!(report["size_bytes"], size);
    let hash = report["sha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
    assert!(report["compile_time_ms"].as_f64().unwrap() >= 0.0);
    // A check needs no optimized code (where a baseline compiler exists).
    let baseline = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
    assert_eq!(report["compiled_by"], if baseline { "baseline" } else { "optimizing" });
    assert_eq!(report["deterministic"], true);
    let exports: Vec<&str> = report["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        exports.contains(&"db_for_read") && exports.contains(&"db_for_write"),
        "{exports:?}"
    );
    assert!(!exports.contains(&"allow_relation"), "{exports:?}");
    assert_eq!(report["connections"], serde_json::json!(["default"]));

    // The same file, the same hash.
    let again = json(&dbroute(&["check", "--json", &router("good.wat")]));
    assert_eq!(again["sha256"], report["sha256"]);
}

#[test]
fn check_json_reports_refusals_too() {
    let out = dbroute(&["check", "--json", &router("wasi.wat")]);
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["ok"], false);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("wasi_snapshot_preview1.fd_write")
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn check_refuses_a_module_that_is_not_a_router() {
    let out = dbroute(&["check", &router("not_a_router.wat")]);
    assert_fails_with(&out, &["`not_a_router`", "not a dbroute router", "dbroute_abi_version"]);
}

#[test]
fn check_refuses_another_abi_version() {
    let out = dbroute(&["check", &router("wrong_version.wat")]);
    assert_fails_with(&out, &["version 2", "version 1"]);
}

#[test]
fn check_refuses_wasi_imports() {
    let out = dbroute(&["check", &router("wasi.wat")]);
    assert_fails_with(&out, &["wasi_snapshot_preview1.fd_write", "dbroute.log"]);
}

#[test]
fn check_refuses_bytes_that_are_not_webassembly() {
    let out = dbroute(&["check", &router("garbage.wat")]);
    assert_fails_with(&out, &["not a valid WebAssembly module", "line 1"]);
}

#[test]
fn check_refuses_a_directory() {
    let out = dbroute(&["check", &routers_dir().display().to_string()]);
    assert_fails_with(&out, &["not a regular file"]);
}

#[test]
fn check_refuses_a_file_larger_than_the_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.wasm");
    // Sparse: no 16 MiB written to disk.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(dbroute::wasm::MAX_ROUTER_SIZE as u64 + 1).unwrap();
    drop(file);
    let out = dbroute(&["check", &path.display().to_string()]);
    assert_fails_with(&out, &["`huge`", "more than the 16777216-byte maximum"]);
}

#[test]
fn check_reports_a_missing_file() {
    let out = dbroute(&["check", &router("there_is_no_such_router.wasm")]);
    assert_fails_with(&out, &["there_is_no_such_router.wasm"]);
}

#[test]
fn check_hands_config_and_connections_to_init() {
    let out = dbroute(&["check", &router("needs_config.wat")]);
    assert_fails_with(&out, &["its init refused", "config must set \"mode\""]);

    let out = dbroute(&[
        "check",
        &router("needs_config.wat"),
        "--config",
        r#"{"mode":"strict"}"#,
        "--connections",
        "default,replica",
    ]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("accepted (connections: default, replica)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_usage_errors_exit_2() {
    assert_exit(&dbroute(&["check"]), 2);
    assert_exit(&dbroute(&["check", &router("good.wat"), "--config", "{not json"]), 2);
    assert_exit(
        &dbroute(&["check", &router("good.wat"), "--connections", "not valid"]),
        2,
    );
    assert_exit(&dbroute(&["frobnicate"]), 2);
}

// ---- route ----

#[test]
fn route_prints_the_connection_alone() {
    let out = dbroute(&["route", &router("good.wat"), "--op", "read", "--model", "User"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "replica\n");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    let out = dbroute(&["route", &router("good.wat"), "--op", "write", "--model", "User"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "default\n");
}

#[test]
fn route_json_says_who_decided() {
    let out = dbroute(&[
        "route",
        &router("good.wat"),
        "--op",
        "read",
        "--model",
        "User",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        json(&out),
        serde_json::json!({"connection": "replica", "decided_by": "router"})
    );

    let out = dbroute(&[
        "route",
        &router("no_opinion.wat"),
        "--op",
        "write",
        "--model",
        "User",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        json(&out),
        serde_json::json!({"connection": "default", "decided_by": "default"})
    );
}

#[test]
fn route_without_an_opinion_is_default() {
    let out = dbroute(&["route", &router("no_opinion.wat"), "--op", "read", "--model", "User"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "default\n");
    // A router without a db_for_write export has no opinion on writes.
    let out = dbroute(&["route", &router("spin.wat"), "--op", "write", "--model", "User"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "default\n");
}

#[test]
fn route_without_an_opinion_is_the_origin_when_there_is_one() {
    let run = |extra: &[&str]| {
        let mut args = vec!["route", "--op", "write", "--model", "User", "--json"];
        args.extend_from_slice(extra);
        dbroute(&args)
    };
    let no_opinion = router("no_opinion.wat");
    let out = run(&[&no_opinion, "--origin", "other"]);
    assert_exit(&out, 0);
    assert_eq!(
        json(&out),
        serde_json::json!({"connection": "other", "decided_by": "origin"})
    );
    // A router with an opinion decides.
    let good = router("good.wat");
    let out = run(&[&good, "--origin", "other"]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["decided_by"], "router");
    // An origin outside --connections is an unknown connection; a bad
    // name is a usage error.
    let plain = |extra: &[&str]| {
        let mut args = vec!["route", no_opinion.as_str(), "--op", "write", "--model", "User"];
        args.extend_from_slice(extra);
        dbroute(&args)
    };
    let out = plain(&["--origin", "other", "--connections", "default,replica"]);
    assert_fails_with(&out, &["unknown connection `other`", "--origin"]);
    let out = plain(&["--origin", "other", "--connections", "default,other"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "other\n");
    let out = plain(&["--origin", "not a name"]);
    assert_exit(&out, 2);
}

#[test]
fn route_refusal_exits_1_with_the_message() {
    let out = dbroute(&["route", &router("refuse.wat"), "--op", "write", "--model", "Archive"]);
    assert_fails_with(
        &out,
        &[
            "`refuse`",
            "refused the write of model `Archive`",
            "writes to archived models are forbidden",
        ],
    );
}

#[test]
fn route_passes_model_metadata_and_hints() {
    let inspect = router("inspect.wat");
    let run = |extra: &[&str]| {
        let mut args = vec!["route", inspect.as_str(), "--op", "read", "--model", "Event"];
        args.extend_from_slice(extra);
        dbroute(&args)
    };
    let out = run(&["--app", "analytics"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "analytics\n");
    let out = run(&["--hints", r#"{"tenant":"acme","shard":3}"#]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "tenant-acme\n");
    let out = run(&["--table", "cache_entries"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "cache\n");
    let out = run(&["--tags", "audit,pii"]);
    assert_fails_with(&out, &["pii is not readable here"]);
    let out = run(&["--app", "billing", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["decided_by"], "default");
}

#[test]
fn route_with_connections_refuses_an_unknown_name() {
    let out = dbroute(&[
        "route",
        &router("good.wat"),
        "--op",
        "read",
        "--model",
        "User",
        "--connections",
        "default,analytics",
    ]);
    assert_fails_with(&out, &["unknown connection `replica`", "default, analytics"]);

    let out = dbroute(&[
        "route",
        &router("good.wat"),
        "--op",
        "read",
        "--model",
        "User",
        "--connections",
        "default,replica",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "replica\n");
}

#[test]
fn route_reports_a_malformed_name_as_a_fault() {
    let out = dbroute(&["route", &router("bad_name.wat"), "--op", "read", "--model", "User"]);
    assert_fails_with(&out, &["`bad_name`", "failed", "malformed connection name"]);
}

#[test]
fn route_a_router_that_never_returns_is_stopped_by_the_budget() {
    let started = Instant::now();
    let out = dbroute(&["route", &router("spin.wat"), "--op", "read", "--model", "User"]);
    let took = started.elapsed();
    assert_fails_with(&out, &["`spin`", "time budget of 50ms"]);
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let out = dbroute(&[
        "route",
        &router("spin.wat"),
        "--op",
        "read",
        "--model",
        "User",
        "--time-budget-ms",
        "50",
    ]);
    assert_fails_with(&out, &["time budget of 50ms"]);
}

#[test]
fn route_a_router_that_does_not_load_exits_1() {
    let out = dbroute(&["route", &router("wasi.wat"), "--op", "read", "--model", "User"]);
    assert_fails_with(&out, &["refused at load", "wasi_snapshot_preview1"]);
}

#[test]
fn route_usage_errors_exit_2() {
    let good = router("good.wat");
    let base = ["route", good.as_str(), "--model", "User"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        dbroute(&args)
    };
    let out = with(&["--op", "delete"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("delete"), "{}", stderr(&out));
    let out = with(&["--op", "read", "--hints", "{tenant: acme}"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("invalid JSON"), "{}", stderr(&out));
    let out = with(&["--op", "read", "--hints", "[1, 2]"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("JSON object"), "{}", stderr(&out));
    assert_exit(&with(&["--op", "read", "--config", "{"]), 2);
    assert_exit(&with(&["--op", "read", "--time-budget-ms", "0"]), 2);
    assert_exit(&with(&[]), 2); // no --op
}

// ---- demo and help ----

#[test]
fn demo_plays_every_scenario_and_proves_its_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbroute(&["demo", "--dir", &dir.path().display().to_string()]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for scenario in [
        "reads to the replica and writes to the primary",
        "a transaction is pinned to one connection",
        "hot swap of the router during a stream of queries, with zero failures",
        "a router refuses an operation",
        "a router that never returns is stopped by its time budget",
    ] {
        assert!(text.contains(scenario), "{scenario:?} missing from:\n{text}");
    }
    assert!(
        text.contains("connection") && text.contains("operation") && text.contains("rows"),
        "{text}"
    );
    assert!(text.contains("0 failed, 0 scenarios skipped"), "{text}");
    assert!(!text.contains("[FAILED]"), "{text}");
    for db in ["default", "replica", "analytics", "cache"] {
        assert!(dir.path().join(format!("{db}.db")).is_file(), "{db}.db");
    }

    // A second run on the same files: rows of the first run do not
    // confuse the claims.
    let out = dbroute(&["demo", "--dir", &dir.path().display().to_string()]);
    assert_exit(&out, 0);
}

#[test]
fn demo_with_a_config_skips_scenarios_it_cannot_play() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dbroute.toml");
    let db = |name: &str| dir.path().join(format!("{name}.db")).display().to_string();
    std::fs::write(
        &config,
        format!(
            "[connections.primary]\nurl = \"sqlite:{}\"\ndefault = true\n\n[connections.replica]\nurl = \"sqlite:{}\"\n",
            db("primary"),
            db("replica")
        ),
    )
    .unwrap();
    let out = dbroute(&["demo", "--config", &config.display().to_string()]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("skipped: it needs the connection(s) analytics"), "{text}");
    assert!(text.contains("0 failed, 4 scenarios skipped"), "{text}");
    assert!(text.contains("primary"), "{text}");

    let out = dbroute(&[
        "demo",
        "--config",
        &dir.path().join("missing.toml").display().to_string(),
    ]);
    assert_fails_with(&out, &["missing.toml"]);
}

#[test]
fn help_lists_the_commands() {
    let out = dbroute(&["--help"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for command in ["check", "route", "demo"] {
        assert!(text.contains(command), "{text}");
    }
    for command in ["check", "route", "demo"] {
        let out = dbroute(&[command, "--help"]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("Exit status"), "{command}: {}", stdout(&out));
    }
}

// ---- migrate ----

/// A migrations fixture directory (`tests/fixtures/migrations/NAME`).
fn migrations(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/migrations")
        .join(name)
        .display()
        .to_string()
}

/// A configuration with two SQLite files, `primary` (the default) and
/// `cache`, in `dir`.
fn two_sqlite_config(dir: &Path) -> String {
    let config = dir.join("dbroute.toml");
    let db = |name: &str| dir.join(format!("{name}.db")).display().to_string();
    std::fs::write(
        &config,
        format!(
            "[connections.primary]\nurl = \"sqlite:{}\"\ndefault = true\n\n[connections.cache]\nurl = \"sqlite:{}\"\n",
            db("primary"),
            db("cache")
        ),
    )
    .unwrap();
    config.display().to_string()
}

#[test]
fn migrate_runs_each_directory_on_its_connection_and_says_what_ran_where() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_sqlite_config(dir.path());
    let shop = format!("primary={}", migrations("shop"));
    let auth = format!("cache={}", migrations("auth"));
    let args = ["migrate", "--config", &config, "--dir", &shop, "--dir", &auth];
    let out = dbroute(&args);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("primary (sqlite, ") && text.contains("applied 2, 0 already applied"),
        "{text}"
    );
    assert!(
        text.contains("  1 create widgets") && text.contains("  2 add color"),
        "{text}"
    );
    assert!(
        text.contains("cache (sqlite, ") && text.contains("  1 create accounts"),
        "{text}"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // Again, as JSON: nothing left to apply.
    let mut again = args.to_vec();
    again.push("--json");
    let out = dbroute(&again);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["total_applied"], 0);
    assert_eq!(report["connections"][0]["connection"], "primary");
    assert_eq!(report["connections"][0]["already_applied"], 2);
    assert_eq!(report["connections"][0]["applied"], serde_json::json!([]));
    assert_eq!(report["connections"][1]["connection"], "cache");
    assert_eq!(report["connections"][1]["backend"], "sqlite");
}

#[test]
fn migrate_one_directory_for_all_restricted_with_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_sqlite_config(dir.path());
    let out = dbroute(&[
        "migrate",
        "--config",
        &config,
        "--dir",
        &migrations("shop"),
        "--on",
        "cache",
        "--json",
    ]);
    assert_exit(&out, 0);
    let report = json(&out);
    let connections = report["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{report}");
    assert_eq!(connections[0]["connection"], "cache");
    assert_eq!(connections[0]["applied"][1]["description"], "add color");

    // Without `on`: every connection, the default first; cache is done.
    let out = dbroute(&["migrate", "--config", &config, "--dir", &migrations("shop"), "--json"]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["connections"][0]["connection"], "primary");
    assert_eq!(report["connections"][0]["applied"].as_array().unwrap().len(), 2);
    assert_eq!(report["connections"][1]["already_applied"], 2);
}

#[test]
fn migrate_failures_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_sqlite_config(dir.path());
    let missing = dir.path().join("nowhere").display().to_string();
    let out = dbroute(&["migrate", "--config", &config, "--dir", &format!("cache={missing}")]);
    assert_fails_with(&out, &["connection `cache`", "nowhere"]);

    let broken = format!("primary={}", migrations("broken"));
    let out = dbroute(&["migrate", "--config", &config, "--dir", &broken]);
    assert_fails_with(&out, &["connection `primary`", "broken", "run again"]);

    let shop = format!("nope={}", migrations("shop"));
    let out = dbroute(&["migrate", "--config", &config, "--dir", &shop]);
    assert_fails_with(&out, &["unknown connection `nope`"]);

    // Two names, one database file.
    let same = dir.path().join("same.toml");
    let file = dir.path().join("one.db").display().to_string();
    std::fs::write(
        &same,
        format!("[connections.a]\nurl = \"sqlite:{file}\"\n\n[connections.b]\nurl = \"sqlite:{file}\"\n"),
    )
    .unwrap();
    let out = dbroute(&[
        "migrate",
        "--config",
        &same.display().to_string(),
        "--dir",
        &migrations("shop"),
    ]);
    assert_fails_with(&out, &["`a` and `b` point at the same database"]);

    let out = dbroute(&[
        "migrate",
        "--config",
        &dir.path().join("missing.toml").display().to_string(),
        "--dir",
        &migrations("shop"),
    ]);
    assert_fails_with(&out, &["missing.toml"]);
}

#[test]
fn migrate_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_sqlite_config(dir.path());
    assert_exit(&dbroute(&["migrate", "--dir", &migrations("shop")]), 2); // no --config
    assert_exit(&dbroute(&["migrate", "--config", &config]), 2); // no --dir
    assert_exit(&dbroute(&["migrate", "--config", &config, "--dir", "cache="]), 2);
    let out = dbroute(&["migrate", "--config", &config, "--dir", "x", "--on", "not a name"]);
    assert_exit(&out, 2);
}

#[test]
fn migrate_help_says_the_exit_status() {
    let out = dbroute(&["--help"]);
    assert!(stdout(&out).contains("migrate"), "{}", stdout(&out));
    let out = dbroute(&["migrate", "--help"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("Exit status") && text.contains("[NAME=]PATH"), "{text}");
}

#[test]
fn status_reports_each_connection_and_fails_on_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dbroute.toml");
    std::fs::write(
        &config,
        format!(
            "[connections.main]\nurl = \"sqlite:{}\"\n\n[connections.dead]\nurl = \"postgres://app:S3cretPw@127.0.0.1:1/none\"\nacquire_timeout_ms = 300\n",
            dir.path().join("main.db").display()
        ),
    )
    .unwrap();
    let out = dbroute(&["status", "--config", &config.display().to_string()]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("main *") && text.contains("healthy"), "{text}");
    assert!(text.contains("dead") && text.contains("unhealthy"), "{text}");
    assert!(!text.contains("S3cretPw"), "{text}");

    std::fs::write(
        &config,
        format!(
            "[connections.main]\nurl = \"sqlite:{}\"\n",
            dir.path().join("main.db").display()
        ),
    )
    .unwrap();
    let out = dbroute(&["status", "--config", &config.display().to_string(), "--json"]);
    assert_exit(&out, 0);
    let parsed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(parsed["connections"][0]["name"], "main");
    assert_eq!(parsed["connections"][0]["health"], "healthy");
}

/// A connection declared a replica shows its role and lag; one whose lag
/// cannot be measured (here: the machine's PostgreSQL, which is no replica)
/// says why, and fails the command.
#[test]
fn status_shows_roles_and_a_replica_whose_lag_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dbroute.toml");
    let url = "postgres://postgres@127.0.0.1:5432/postgres";
    std::fs::write(
        &config,
        format!("[connections.main]\nurl = \"{url}\"\n\n[connections.copy]\nurl = \"{url}\"\nreplica_of = \"main\"\n"),
    )
    .unwrap();
    let out = dbroute(&["status", "--config", &config.display().to_string()]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("main *").contains("primary"), "{text}");
    let copy = line("copy");
    let columns: Vec<&str> = copy.split_whitespace().collect();
    assert_eq!(columns.get(2), Some(&"healthy"), "{text}");
    assert!(copy.contains("replica of main"), "{text}");
    assert!(
        copy.contains("unknown") && copy.contains("lag: ") && copy.contains("not a replica"),
        "{text}"
    );

    let out = dbroute(&["status", "--config", &config.display().to_string(), "--json"]);
    assert_exit(&out, 1);
    let parsed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (main, copy) = (&parsed["connections"][0], &parsed["connections"][1]);
    assert_eq!(
        (&main["name"], &main["role"]),
        (&"main".into(), &"primary".into()),
        "{parsed}"
    );
    assert!(main["replica_of"].is_null() && main["lag"].is_null(), "{parsed}");
    assert_eq!(
        (&copy["role"], &copy["replica_of"]),
        (&"replica".into(), &"main".into()),
        "{parsed}"
    );
    assert!(copy["lag"]["bytes_behind"].is_null(), "{parsed}");
    assert!(copy["lag"]["measured_at_unix_ms"].as_u64().unwrap() > 0, "{parsed}");
    let error = copy["lag"]["error"].as_str().unwrap();
    assert!(error.contains("not a replica"), "{error}");
}

#[test]
fn a_url_given_as_a_connection_name_does_not_print_its_password() {
    let out = dbroute(&[
        "check",
        &router("good.wat"),
        "--connections",
        "default,postgres://app:S3cretPw@127.0.0.1/db",
    ]);
    assert_exit(&out, 2);
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("--connections"), "{text}");
    assert!(!text.contains("S3cretPw"), "{text}");
}

// ---- registry: publish, rollout, rollback, fleet ----

/// The machine's PostgreSQL; each test uses a schema of its own there.
const REGISTRY_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A registry schema of this test's own, dropped afterwards (also on
/// panic).
struct RegistrySchema(String);

impl RegistrySchema {
    fn new(test: &str) -> RegistrySchema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        RegistrySchema(format!("cli_{test}_{}_{nanos}", std::process::id()))
    }

    /// `dbroute ARGS --schema S` with the registry's URL in the
    /// environment.
    fn dbroute(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dbroute"))
            .args(args)
            .args(["--schema", &self.0])
            .env("DBROUTE_REGISTRY_URL", REGISTRY_URL)
            .env_remove("RUST_LOG")
            .output()
            .expect("the dbroute binary runs")
    }
}

impl Drop for RegistrySchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0);
        // On a thread of its own: a drop during a panic must not panic.
        let _ = std::thread::spawn(move || run_on_registry(sql)).join();
    }
}

/// Runs one statement on the registry's database (PostgreSQL on the
/// machine), on a runtime of its own.
fn run_on_registry(sql: String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let engine = dbroute::Engine::builder()
            .connection("default", REGISTRY_URL)
            .build()
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        engine
            .connection("default")
            .expect("default")
            .execute(dbroute::sqlx::AssertSqlSafe(sql), &[])
            .await
            .expect("the statement");
        engine.close().await;
    });
}

/// `dbroute fleet` exits with status 1 while a router's latest rollout is
/// failed (its instances gave the version up), so that a deploy script
/// stops there; it prints the fleet all the same.
#[test]
fn fleet_fails_while_the_latest_rollout_failed() {
    let registry = RegistrySchema::new("failed");
    assert_exit(&registry.dbroute(&["registry", "init"]), 0);
    let replica = dbroute_example_routers::REPLICA;
    let out = registry.dbroute(&["publish", replica, "--name", "app", "--connections", "default,replica"]);
    assert_exit(&out, 0);
    assert_exit(&registry.dbroute(&["rollout", "app", "1", "--percent", "100"]), 0);
    assert_exit(&registry.dbroute(&["fleet"]), 0);
    // What an instance's fault guard records when it gives a version up.
    run_on_registry(format!(
        "UPDATE {}.rollouts SET state = 'failed', reason = 'faults'",
        registry.0
    ));
    let out = registry.dbroute(&["fleet"]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the latest rollout failed: app version 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = registry.dbroute(&["fleet", "--json"]);
    assert_exit(&out, 1);
    assert_eq!(json(&out)["rollouts"][0]["state"], "failed");
}

/// `dbroute fleet --forget-after S` removes the rows of instances silent
/// for more than S seconds, and keeps the others.
#[test]
fn fleet_forgets_silent_instances() {
    let registry = RegistrySchema::new("forget");
    assert_exit(&registry.dbroute(&["registry", "init"]), 0);
    // Two instances as heartbeats leave them: one an hour silent, one now.
    run_on_registry(format!(
        "INSERT INTO {0}.instances (instance_id, service, host, router, generation, last_heartbeat) VALUES
           ('gone-1', 'app', 'h1', 'app', 1, now() - interval '1 hour'),
           ('live-1', 'app', 'h2', 'app', 1, now())",
        registry.0
    ));
    let ids = |out: &Output| -> Vec<String> {
        json(out)["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["instance_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let out = registry.dbroute(&["fleet", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(ids(&out), ["gone-1", "live-1"]);
    let out = registry.dbroute(&["fleet", "--json", "--forget-after", "600"]);
    assert_exit(&out, 0);
    assert_eq!(ids(&out), ["live-1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forgot 1 instance(s) silent for more than 600 s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn publish_rollout_rollback_and_fleet_through_the_binary() {
    let registry = RegistrySchema::new("publish");
    let replica = dbroute_example_routers::REPLICA;
    let out = registry.dbroute(&["registry", "init"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("schema version 1"), "{}", stdout(&out));

    let out = registry.dbroute(&["publish", replica, "--name", "app", "--connections", "default,replica"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("published router `app` version 1"),
        "{}",
        stdout(&out)
    );
    // What a host would refuse is refused, and nothing is stored.
    let out = registry.dbroute(&["publish", &router("needs_config.wat"), "--name", "app"]);
    assert_fails_with(&out, &["not published", "refused at load"]);
    let out = registry.dbroute(&["publish", &router("not_a_router.wat"), "--name", "app"]);
    assert_fails_with(&out, &["not published"]);
    let out = registry.dbroute(&["rollout", "app", "2", "--percent", "10"]);
    assert_fails_with(&out, &["router `app` has no version 2", "[1]"]);
    for percent in ["101", "-5"] {
        let out = registry.dbroute(&["rollout", "app", "1", "--percent", percent]);
        assert_fails_with(&out, &["percent must be 0 to 100"]);
    }

    let out = registry.dbroute(&["rollout", "app", "1", "--percent", "100", "--json"]);
    assert_exit(&out, 0);
    let rollout = json(&out);
    assert_eq!(rollout["state"], "complete");
    assert_eq!(rollout["version"], 1);

    // An instance follows the registry and shows in the fleet.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let engine = runtime.block_on(async {
        dbroute::Engine::builder()
            .connection("default", "sqlite::memory:")
            .connection("replica", "sqlite::memory:")
            .router_registry_with(
                dbroute::registry::RouterRegistry::new(REGISTRY_URL, "app")
                    .schema(registry.0.as_str())
                    .instance_id("cli-instance-1"),
            )
            .build()
            .await
            .expect("an engine following the registry")
    });
    assert_eq!(engine.registry_status().unwrap().version, Some(1));
    let out = registry.dbroute(&["fleet", "--json"]);
    assert_exit(&out, 0);
    let fleet = json(&out);
    let instances = fleet["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{fleet}");
    assert_eq!(instances[0]["instance_id"], "cli-instance-1");
    assert_eq!(instances[0]["version"], 1);
    assert_eq!(fleet["rollouts"][0]["state"], "complete");
    let out = registry.dbroute(&["fleet"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("cli-instance-1") && text.contains("version 1 at 100% complete"),
        "{text}"
    );

    // A new version shows how it decides differently before it is published.
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops.jsonl");
    std::fs::write(
        &ops,
        "{\"op\":\"read\",\"model\":\"User\"}\n{\"op\":\"write\",\"model\":\"User\"}\n",
    )
    .unwrap();
    let ops = ops.display().to_string();
    let analytics = dbroute_example_routers::ANALYTICS;
    let out = registry.dbroute(&[
        "publish",
        analytics,
        "--name",
        "app",
        "--connections",
        "default,replica,analytics",
        "--diff-ops",
        &ops,
    ]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("compared with version 1"), "{text}");
    assert!(
        text.contains("replica → default (no opinion)") && text.contains("1 of 2 operations change"),
        "{text}"
    );
    assert!(text.contains("published router `app` version 2"), "{text}");

    let out = registry.dbroute(&["rollback", "app", "--reason", "bad numbers"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("rolled_back") && stdout(&out).contains("bad numbers"),
        "{}",
        stdout(&out)
    );
    let out = registry.dbroute(&["rollback", "app"]);
    assert_fails_with(&out, &["no rolling or complete rollout to roll back"]);
    drop(engine);
    drop(runtime);
}

#[test]
fn registry_commands_need_a_url_and_never_print_its_password() {
    let out = Command::new(env!("CARGO_BIN_EXE_dbroute"))
        .args(["fleet"])
        .env_remove("DBROUTE_REGISTRY_URL")
        .output()
        .unwrap();
    assert_fails_with(&out, &["--registry URL", "DBROUTE_REGISTRY_URL"]);
    let out = dbroute(&["fleet", "--registry", "postgres://svc:hunter2@127.0.0.1:1/ops"]);
    assert_fails_with(
        &out,
        &["cannot reach the router registry", "postgres://***@127.0.0.1:1/ops"],
    );
    assert!(!stderr(&out).contains("hunter2"));
    // A registry that was never made says how to make it.
    let registry = RegistrySchema::new("missing");
    let out = registry.dbroute(&["fleet"]);
    assert_fails_with(&out, &["not initialised", "dbroute registry init"]);
}

// ---- diff ----

#[test]
fn diff_shows_the_operations_whose_connection_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops.jsonl");
    std::fs::write(
        &ops,
        concat!(
            "# recorded operations\n",
            "{\"op\":\"read\",\"model\":\"User\"}\n",
            "{\"op\":\"write\",\"model\":\"User\"}\n",
            "\n",
            "{\"op\":\"read\",\"model\":\"Event\",\"app\":\"metrics\",\"hints\":{\"tenant\":\"acme\"}}\n",
        ),
    )
    .unwrap();
    let (old, new) = (dbroute_example_routers::REPLICA, dbroute_example_routers::ANALYTICS);
    let ops = ops.display().to_string();
    let out = dbroute(&[
        "diff",
        old,
        new,
        "--ops",
        &ops,
        "--connections",
        "default,replica,analytics",
    ]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("line 2:") && text.contains("replica → default (no opinion)"),
        "{text}"
    );
    assert!(
        text.contains("line 5:") && text.contains("replica → analytics"),
        "{text}"
    );
    // A write to default before and after is no change.
    assert!(!text.contains("line 3:"), "{text}");
    assert!(text.contains("2 of 3 operations change"), "{text}");
    let out = dbroute(&["diff", old, new, "--ops", &ops, "--json"]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(
        (report["operations"].as_u64(), report["changed"].as_u64()),
        (Some(3), Some(2))
    );
    // Against itself, nothing changes.
    let out = dbroute(&["diff", old, old, "--ops", &ops]);
    assert!(stdout(&out).contains("0 of 3 operations change"), "{}", stdout(&out));

    std::fs::write(dir.path().join("bad.jsonl"), "{\"op\":\"delete\",\"model\":\"User\"}\n").unwrap();
    let bad = dir.path().join("bad.jsonl").display().to_string();
    let out = dbroute(&["diff", old, new, "--ops", &bad]);
    assert_fails_with(&out, &["line 1", "`op` must be \"read\" or \"write\""]);
    let out = dbroute(&["diff", old, &router("not_a_router.wat"), "--ops", &ops]);
    assert_fails_with(&out, &["NEW:", "refused at load"]);
}

/// What a service really ran, counted by its engine's route stats and
/// written as an operations file, is what `diff` weighs a new router by.
#[test]
fn diff_weighs_the_operations_a_services_route_stats_wrote() {
    use dbroute::wasm::{RouterLimits, RouterRuntime, WasmRouter};
    use dbroute::{Engine, Hints, ModelInfo};
    let (old, new) = (dbroute_example_routers::REPLICA, dbroute_example_routers::ANALYTICS);
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops.jsonl");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let runtime = RouterRuntime::new(RouterLimits::default()).unwrap();
        let names = ["default", "replica", "analytics"];
        let running = WasmRouter::named("replica")
            .connections(names)
            .load_file(&runtime, old)
            .unwrap();
        let mut builder = Engine::builder().route_stats(true).add_router(running);
        for name in names {
            builder = builder.connection(name, "sqlite::memory:");
        }
        let engine = builder.build().await.unwrap();
        let user = ModelInfo::new("User");
        let event = ModelInfo::new("Event").with_app("metrics");
        let acme = Hints::new().with("tenant", "acme");
        for _ in 0..5 {
            assert_eq!(engine.db_for_read(&user, &Hints::new()).unwrap().as_str(), "replica");
        }
        for _ in 0..2 {
            engine.db_for_write(&user, &Hints::new()).unwrap();
        }
        for _ in 0..3 {
            engine.db_for_read(&event, &acme).unwrap();
        }
        let file = std::fs::File::create(&ops).unwrap();
        assert_eq!(engine.write_route_operations(file).unwrap(), 3);
        engine.close().await;
    });
    let written = std::fs::read_to_string(&ops).unwrap();
    assert_eq!(
        written,
        concat!(
            r#"{"op":"read","model":"User","count":5}"#,
            "\n",
            r#"{"op":"read","model":"Event","app":"metrics","hints":{"tenant":"acme"},"count":3}"#,
            "\n",
            r#"{"op":"write","model":"User","count":2}"#,
            "\n",
        )
    );
    let ops = ops.display().to_string();
    let connections = "default,replica,analytics";
    let out = dbroute(&["diff", old, new, "--ops", &ops, "--connections", connections]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("line 1:") && text.contains("replica → default (no opinion)"),
        "{text}"
    );
    assert!(
        text.contains("line 2:") && text.contains("replica → analytics"),
        "{text}"
    );
    assert!(!text.contains("line 3:"), "{text}");
    assert!(
        text.contains("2 of 3 operations change: 8 of 10 decisions (80.0%)"),
        "{text}"
    );
    let out = dbroute(&["diff", old, new, "--ops", &ops, "--connections", connections, "--json"]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(
        (report["decisions"].as_u64(), report["changed_decisions"].as_u64()),
        (Some(10), Some(8))
    );
    assert_eq!(report["changes"][1]["count"].as_u64(), Some(3));

    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"op\":\"read\",\"model\":\"User\",\"count\":0}\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.jsonl").display().to_string();
    let out = dbroute(&["diff", old, new, "--ops", &bad]);
    assert_fails_with(&out, &["line 1", "`count` must be a whole number above 0, not 0"]);
}

#[test]
fn separate_service_processes_converge_on_a_rollout() {
    use std::io::{BufRead, BufReader};
    let registry = RegistrySchema::new("processes");
    assert_exit(&registry.dbroute(&["registry", "init"]), 0);
    let names = "default,replica,analytics";
    let publish = |module: &str| registry.dbroute(&["publish", module, "--name", "svc", "--connections", names]);
    assert_exit(&publish(dbroute_example_routers::REPLICA), 0);
    assert_exit(&publish(dbroute_example_routers::ANALYTICS), 0);
    assert_exit(&registry.dbroute(&["rollout", "svc", "1", "--percent", "100"]), 0);

    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for i in 0..3 {
        let config = dir.path().join(format!("instance-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[connections.default]\nurl = \"sqlite::memory:\"\n[connections.replica]\nurl = \"sqlite::memory:\"\n\
                 [connections.analytics]\nurl = \"sqlite::memory:\"\n\
                 [router_registry]\nurl = \"{REGISTRY_URL}\"\nservice = \"svc\"\ninstance_id = \"process-{i}\"\n\
                 schema = \"{}\"\nheartbeat_ms = 100\n",
                registry.0
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dbroute"))
            .args(["follow", "--config"])
            .arg(&config)
            .args(["--for-secs", "60"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("dbroute follow");
        children.push(child);
    }
    // Each process reports what it runs on stdout, a JSON line per change.
    let (tx, rx) = std::sync::mpsc::channel();
    for child in &mut children {
        let stdout = child.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str::<serde_json::Value>(&line).unwrap());
            }
        });
    }
    let wait_for = |version: i64| {
        let mut at = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while at.len() < 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("every process reports the version");
            if line["version"] == version {
                at.insert(line["instance_id"].as_str().unwrap().to_owned());
            }
        }
    };
    wait_for(1);
    let started = Instant::now();
    assert_exit(&registry.dbroute(&["rollout", "svc", "2", "--percent", "100"]), 0);
    wait_for(2);
    println!("3 processes converged in {:?}", started.elapsed());
    // The registry shows them too.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fleet = json(&registry.dbroute(&["fleet", "--json"]));
        let instances = fleet["instances"].as_array().unwrap();
        if instances.len() == 3 && instances.iter().all(|i| i["version"] == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "{fleet}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}
