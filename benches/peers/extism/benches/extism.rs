//! dbroute's Extism peer: what one routing decision costs through an Extism
//! plugin with dbroute's reference policy, next to the same policy run
//! natively in the same process.
//!
//! Cases (group `peer`):
//! - `native`: parse the input with serde_json and decide, in Rust: the
//!   same source file as the plugin's policy;
//! - `extism-call`: one `Plugin::call` of `db_for_read` on a warm plugin;
//! - `extism-new-plugin`: `Plugin::new_from_compiled` from an already
//!   compiled `CompiledPlugin` (no compiling), and dropping it; Extism
//!   instantiates the module lazily, on the first call, so this is not a
//!   whole instance;
//! - `extism-new-plugin-and-call`: the same plus the first call, which
//!   instantiates the module;
//! - `extism-compile`: compiling the plugin's bytes into a `CompiledPlugin`
//!   (cranelift), the counterpart of dbroute's `swap/bytes`.
//!
//! The plugin is built for wasm32-unknown-unknown (no WASI) with the
//! `wasm-release` profile; `DBROUTE_EXTISM_PLUGIN` names its `.wasm`, which
//! defaults to that profile's output in the bench's own target directory.
//! Run: `bash benches/peers/extism/run.sh` from dbroute's root.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use dbroute_peer_extism::{Operation, Tenants, db_for_read, db_for_write};
use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};

/// The input dbroute sends for a read of `User` without hints.
const READ_USER: &str = r#"{"op":"read","model":{"name":"User","table":"users","app":"auth"}}"#;

/// The plugin's `.wasm`: `DBROUTE_EXTISM_PLUGIN`, or the `wasm-release`
/// output in the target directory this bench runs from.
fn plugin_path() -> PathBuf {
    if let Some(path) = std::env::var_os("DBROUTE_EXTISM_PLUGIN") {
        return path.into();
    }
    // The bench runs as <target>/release/deps/extism-<hash>.
    let exe = std::env::current_exe().expect("the bench's own path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the bench runs from <target>/release/deps");
    target.join("wasm32-unknown-unknown/wasm-release/dbroute_peer_extism_plugin.wasm")
}

fn plugin_bytes() -> Vec<u8> {
    let path = plugin_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the plugin at {} ({e}): build it first, or run benches/peers/extism/run.sh",
            path.display()
        )
    })
}

/// Compiles the plugin without WASI and without wasmtime's on-disk cache, with
/// `tenants` as its configuration if given.
fn compile(wasm: &[u8], tenants: Option<&str>) -> CompiledPlugin {
    let mut manifest = Manifest::new([Wasm::data(wasm.to_vec())]);
    if let Some(tenants) = tenants {
        manifest = manifest.with_config_key("tenants", tenants);
    }
    PluginBuilder::new(manifest)
        .with_wasi(false)
        .with_cache_disabled()
        .compile()
        .expect("the plugin compiles")
}

/// The native baseline: parse with serde_json, decide, return the name.
fn native_read(input: &str, tenants: &Tenants) -> String {
    let op: Operation = serde_json::from_str(input).expect("valid input");
    db_for_read(&op, tenants).to_owned()
}

fn native_write(input: &str, tenants: &Tenants) -> Result<String, String> {
    let op: Operation = serde_json::from_str(input).expect("valid input");
    db_for_write(&op, tenants).map(str::to_owned)
}

/// Checks, before any timing, that the plugin and the native policy give the
/// reference policy's answers, tenant map included.
fn check(wasm: &[u8]) {
    let tenants_json = r#"{"acme":"tenant_acme"}"#;
    let tenants: Tenants = serde_json::from_str(tenants_json).expect("a tenant map");
    let mut plugin = Plugin::new_from_compiled(&compile(wasm, Some(tenants_json))).expect("a plugin");

    let user = r#"{"name":"User","table":"users","app":"auth"}"#;
    let event = r#"{"name":"Event","app":"metrics"}"#;
    let rate = r#"{"name":"Rate","tags":["readonly"]}"#;
    let refused = || Err("writes to read-only model Rate are forbidden".to_owned());
    let ok = |db: &str| Ok(db.to_owned());
    let cases: [(&str, &str, &str, Result<String, String>); 14] = [
        ("read", user, "{}", ok("replica")),
        ("read", event, "{}", ok("analytics")),
        ("read", rate, "{}", ok("replica")),
        ("read", user, r#"{"tenant":"acme"}"#, ok("tenant_acme")),
        ("read", event, r#"{"tenant":"acme"}"#, ok("tenant_acme")),
        ("read", rate, r#"{"tenant":"acme"}"#, ok("tenant_acme")),
        ("read", user, r#"{"tenant":"initech"}"#, ok("replica")),
        ("read", user, r#"{"tenant":7}"#, ok("replica")),
        ("write", user, "{}", ok("default")),
        ("write", event, "{}", ok("analytics")),
        ("write", rate, "{}", refused()),
        ("write", rate, r#"{"tenant":"acme"}"#, refused()),
        ("write", user, r#"{"tenant":"acme"}"#, ok("tenant_acme")),
        ("write", event, r#"{"tenant":null}"#, ok("analytics")),
    ];
    for (kind, model, hints, expected) in cases {
        let input = format!(r#"{{"op":"{kind}","model":{model},"hints":{hints}}}"#);
        let (native, function) = if kind == "read" {
            (Ok(native_read(&input, &tenants)), "db_for_read")
        } else {
            (native_write(&input, &tenants), "db_for_write")
        };
        let extism = plugin
            .call::<&str, &str>(function, &input)
            .map(str::to_owned)
            .map_err(|e| e.to_string());
        assert_eq!(native, expected, "native, {input}");
        assert_eq!(extism, expected, "extism, {input}");
    }
}

fn peer(c: &mut Criterion) {
    let wasm = plugin_bytes();
    check(&wasm);

    let compiled = compile(&wasm, None);
    let mut plugin = Plugin::new_from_compiled(&compiled).expect("a plugin");
    assert_eq!(
        plugin.call::<&str, &str>("db_for_read", READ_USER).expect("a decision"),
        "replica"
    );
    let no_tenants = Tenants::new();
    assert_eq!(native_read(READ_USER, &no_tenants), "replica");

    let mut group = c.benchmark_group("peer");
    group.bench_function("native", |b| b.iter(|| native_read(black_box(READ_USER), &no_tenants)));
    group.bench_function("extism-call", |b| {
        b.iter(|| {
            plugin
                .call::<&str, &str>("db_for_read", black_box(READ_USER))
                .expect("a decision")
                .len()
        })
    });
    group.bench_function("extism-new-plugin", |b| {
        b.iter(|| Plugin::new_from_compiled(&compiled).expect("a plugin"))
    });
    group.bench_function("extism-new-plugin-and-call", |b| {
        b.iter(|| {
            let mut plugin = Plugin::new_from_compiled(&compiled).expect("a plugin");
            let db = plugin
                .call::<&str, &str>("db_for_read", black_box(READ_USER))
                .expect("a decision");
            db.len()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("peer");
    group.sample_size(10);
    group.bench_function("extism-compile", |b| b.iter(|| compile(black_box(&wasm), None)));
    group.finish();
}

criterion_group!(benches, peer);
criterion_main!(benches);
