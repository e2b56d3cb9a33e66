//! `dbroute check ROUTER`: would the host load this router?

use std::process::ExitCode;

use dbroute::router::HostRouter;
use dbroute::wasm::Tier;
use serde_json::json;

use crate::{ABI_VERSION, CheckArgs, fail, one_line};

pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let load = &args.load;
    let name = load.router_name();
    let router = match load.load() {
        Ok((_runtime, router)) => router,
        Err(error) => {
            if load.json {
                let report = json!({
                    "ok": false,
                    "router": name,
                    "path": load.router.display().to_string(),
                    "error": one_line(&error.to_string()),
                });
                say!("{report}");
            }
            return fail(error);
        }
    };
    let info = router.info();
    let identity = router.identity();
    let hash = identity.content_hash().unwrap_or_default();
    let names = load.connection_names();
    let connections: Vec<&str> = names.iter().map(|c| c.as_str()).collect();
    let compile_ms = info.compile_time.as_secs_f64() * 1000.0;
    if load.json {
        let report = json!({
            "ok": true,
            "router": name,
            "path": load.router.display().to_string(),
            "kind": if info.component { "component" } else { "module" },
            "abi_version": ABI_VERSION,
            "abi_minor": info.abi_minor,
            "exports": info.exports,
            "size_bytes": info.size,
            "sha256": hash,
            "compile_time_ms": (compile_ms * 1000.0).round() / 1000.0,
            "compiled_by": tier_name(info.compiled_by),
            "deterministic": info.deterministic,
            "connections": connections,
            "time_budget_ms": load.time_budget_ms,
        });
        say!("{report}");
    } else {
        say!("router `{name}` would load ({})", load.router.display());
        if info.component {
            say!(
                "  kind           component (wit/router.wit, dbroute:router@1; ABI {ABI_VERSION}.{})",
                info.abi_minor
            );
        } else {
            say!("  kind           core module");
            say!("  abi version    {ABI_VERSION}.{}", info.abi_minor.max(0));
        }
        say!("  exports        {}", info.exports.join(", "));
        say!("  size           {} bytes", info.size);
        say!("  sha256         {hash}");
        say!(
            "  compile time   {compile_ms:.2} ms ({} compiler)",
            tier_name(info.compiled_by)
        );
        say!(
            "  deterministic  {}",
            if info.deterministic {
                "yes (answers may be cached)"
            } else {
                "no"
            }
        );
        if info.component || info.exports.contains(&"dbroute_init") {
            say!("  init           accepted (connections: {})", connections.join(", "));
        } else {
            say!("  init           none (no `dbroute_init` export)");
        }
    }
    ExitCode::SUCCESS
}

/// The compiler a tier names, as the report says it.
fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Baseline => "baseline",
        Tier::Optimized => "optimizing",
        _ => "another",
    }
}
