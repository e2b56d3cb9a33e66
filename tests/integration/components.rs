//! Router components (`wit/router.wit`): what they share in the tests, and
//! the host's handling of them beyond the conformance cases.
//!
//! A Python or JavaScript component takes seconds to compile (its
//! language's runtime is inside it), so the tests compile each one once
//! per build of the component: every test loads components through
//! [`shared_runtime`] (or an engine with [`compiled_cache_dir`]), whose
//! compiled-router cache lives in cargo's target folder and outlives the
//! test run. A component loaded for the first time is compiled under a
//! lock, so that two tests never compile the same one at once.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use dbroute::wasm::{RouterRuntime, WasmRouter};

use crate::conformance::limits;

/// Where the tests keep compiled routers: in cargo's target folder, so
/// that a component built once is compiled once.
pub(crate) fn compiled_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-routers")
}

/// The runtime the tests load components with: the conformance limits
/// and the shared compiled-router cache.
pub(crate) fn shared_runtime() -> &'static RouterRuntime {
    static RUNTIME: OnceLock<RouterRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| RouterRuntime::with_compiled_cache(limits(), compiled_cache_dir()).expect("router runtime"))
}

/// Compiles the component at `path` into the shared cache unless it is
/// there (one test at a time: the first one waits for the compile, the
/// others read the cache).
pub(crate) fn warm(path: &str) {
    static COMPILING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    // Any load stores the optimized code; its init may refuse, which is
    // not this function's concern.
    let _ = WasmRouter::named("warm-up")
        .compilation(dbroute::wasm::Compilation::Optimized)
        .load_file(shared_runtime(), path);
}

/// Whether the file at `path` holds a component (its header's layer is
/// 1) rather than a core module.
pub(crate) fn is_component_file(path: &str) -> bool {
    let mut header = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header));
    read.is_ok() && header[..4] == *b"\0asm" && header[6..8] == [1, 0]
}
