//! Routers: the engine's WebAssembly runtime, loading, swapping and
//! watching routers, and telling them about connection changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::router::chain::ActiveRouters;
use crate::router::wasm::runtime::RouterRuntime;
use crate::router::wasm::{WasmRouter, WasmRouterBuilder};
use crate::router::{RouterChain, RouterStatus};

use super::Engine;

/// Where a WebAssembly router's module comes from: a file's path or the
/// module's bytes. Functions that load a router take `impl
/// Into<RouterSource>`, so a `PathBuf`, a `&Path` or the bytes (a `Vec<u8>`,
/// an `Arc<[u8]>`) can be passed as they are.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use dbroute::wasm::RouterSource;
///
/// let from_file: RouterSource = Path::new("routers/replica.wasm").into();
/// let from_bytes: RouterSource = b"(module)".to_vec().into();
/// assert!(matches!(from_file, RouterSource::File(_)));
/// assert!(matches!(from_bytes, RouterSource::Bytes(_)));
/// ```
#[derive(Debug, Clone)]
pub enum RouterSource {
    /// A `.wasm` or `.wat` file.
    File(PathBuf),
    /// Module bytes (binary or WAT text).
    Bytes(Arc<[u8]>),
}

impl From<PathBuf> for RouterSource {
    fn from(path: PathBuf) -> Self {
        RouterSource::File(path)
    }
}

impl From<&Path> for RouterSource {
    fn from(path: &Path) -> Self {
        RouterSource::File(path.to_path_buf())
    }
}

impl From<&PathBuf> for RouterSource {
    fn from(path: &PathBuf) -> Self {
        RouterSource::File(path.clone())
    }
}

impl From<Vec<u8>> for RouterSource {
    fn from(bytes: Vec<u8>) -> Self {
        RouterSource::Bytes(bytes.into())
    }
}

impl From<Arc<[u8]>> for RouterSource {
    fn from(bytes: Arc<[u8]>) -> Self {
        RouterSource::Bytes(bytes)
    }
}

impl From<&[u8]> for RouterSource {
    fn from(bytes: &[u8]) -> Self {
        RouterSource::Bytes(bytes.into())
    }
}

impl Engine {
    /// The runtime WebAssembly routers of this engine run in, made on first
    /// use with the engine's [`RouterLimits`](crate::wasm::RouterLimits) (and its compiled-router
    /// cache, when [`EngineBuilder::compiled_router_cache`](crate::EngineBuilder::compiled_router_cache) set one).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] (origin "router runtime", the same every call)
    /// when wasmtime cannot be configured with the limits, or the
    /// compiled-router cache's folder cannot be made or is not private.
    pub fn router_runtime(&self) -> Result<&RouterRuntime> {
        self.inner
            .runtime
            .get_or_init(|| {
                let limits = self.inner.limits.clone();
                match &self.inner.compiled_cache {
                    Some(dir) => RouterRuntime::with_compiled_cache(limits, dir),
                    None => RouterRuntime::new(limits),
                }
            })
            .as_ref()
            .map_err(|e| Error::Config {
                origin: "router runtime".into(),
                message: e.to_string(),
            })
    }

    /// Loads a WebAssembly router with this engine's runtime, telling its
    /// `dbroute_init` the registered connection names. It is not activated:
    /// pass it to [`Engine::set_router`].
    ///
    /// # Errors
    ///
    /// [`Error::RouterLoad`] with the reason it was refused.
    pub fn load_router(&self, builder: WasmRouterBuilder, source: impl Into<RouterSource>) -> Result<WasmRouter> {
        let runtime = self.router_runtime()?;
        let builder = builder.connection_names(self.connection_names());
        match source.into() {
            RouterSource::File(path) => builder.load_file(runtime, path),
            RouterSource::Bytes(bytes) => builder.load(runtime, &bytes),
        }
    }

    /// Replaces the active router chain, atomically: decisions in flight
    /// finish with the old chain, new ones use the new chain. Open
    /// transactions are not affected. Returns the new generation.
    pub fn set_router(&self, chain: impl Into<RouterChain>) -> u64 {
        let chain = chain.into();
        let _swap = self.inner.swap.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.inner.routers.load().generation + 1;
        let old = self.inner.routers.swap(Arc::new(ActiveRouters::new(chain, generation)));
        // Its last answers are published with the next metrics.
        self.inner.telemetry.retire_chain(old);
        // A router loaded before a connection was added or removed learns
        // the current names now (a no-op when it knows them already).
        self.connections_changed();
        tracing::info!(generation, "router chain swapped");
        generation
    }

    /// The active router chain.
    #[cfg(feature = "postgres")]
    pub(crate) fn active_chain(&self) -> RouterChain {
        self.inner.routers.load().chain.clone()
    }

    /// Removes every router: everything goes to `default`.
    pub fn clear_router(&self) -> u64 {
        self.set_router(RouterChain::new())
    }

    /// The active routers and the swap generation.
    pub fn router_status(&self) -> RouterStatus {
        let active = self.inner.routers.load();
        RouterStatus {
            generation: active.generation,
            routers: active.chain.routers().iter().map(|r| r.identity()).collect(),
        }
    }

    /// Watches a router file and loads each new version of it; each good
    /// version becomes the whole active chain. Dropping the returned
    /// watcher stops watching (the active router stays).
    ///
    /// - **What counts as a change**: creations, writes, completed writes,
    ///   renames and removals in the file's folder, and in the folder the
    ///   path resolves to through symbolic links (so `cp`, `mv`, editors'
    ///   rename-on-save and Kubernetes ConfigMap updates, which swap a
    ///   `..data` link, are all seen). Opening or reading the file is not a
    ///   change, so neither the watcher's own reads nor a `cat` reload it.
    /// - **When it looks**: once the folder has been quiet for 150 ms. A
    ///   file still growing while it is read is read again later.
    /// - **What is loaded**: only content whose SHA-256 differs from the
    ///   content this watcher last loaded and from the last refused
    ///   content; a touched or re-copied file compiles nothing (even if
    ///   another router was set since).
    /// - **A bad file** (broken, half-written, refused by its self-test) is
    ///   refused once per distinct content: one `ERROR` log line,
    ///   [`WatchStatus::failures`](crate::wasm::WatchStatus::failures) and
    ///   `last_error`; the active router keeps serving, and the file is
    ///   loaded as soon as it is complete.
    ///
    /// [`RouterWatcher::status`](crate::wasm::RouterWatcher::status) counts what
    /// the watcher did: changes seen, load attempts, reloads, failures.
    ///
    /// # Errors
    ///
    /// When the first load fails, or the file cannot be watched.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::Engine;
    /// use dbroute::wasm::WasmRouter;
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let dir = std::env::temp_dir().join(format!("dbroute-watch-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("router.wat");
    /// std::fs::write(&path, r#"(module
    ///   (memory (export "memory") 1)
    ///   (func (export "dbroute_abi_version") (result i32) i32.const 1)
    ///   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
    ///   (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))"#).unwrap();
    /// let watcher = engine.watch_router(WasmRouter::named("rules"), &path)?;
    /// assert_eq!(watcher.status().reloads, 0);
    /// assert_eq!(engine.router_status().routers[0].name(), "rules");
    /// # drop(watcher);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok(()) }
    /// ```
    pub fn watch_router(
        &self,
        builder: WasmRouterBuilder,
        path: impl AsRef<Path>,
    ) -> Result<crate::wasm::RouterWatcher> {
        crate::router::watch::RouterWatcher::start(self.clone(), builder, path.as_ref().to_path_buf())
    }

    /// Tells the active routers the registered names, then the
    /// connections' state if it changed. Serialised, and the names are read
    /// under the lock, so the last call always passes the latest names
    /// whatever order concurrent changes finish in.
    pub(super) fn connections_changed(&self) {
        let _serial = self
            .inner
            .notify
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = self.connection_names();
        for router in self.inner.routers.load().chain.routers() {
            router.connections_changed(&names);
        }
        self.tell_state_locked();
    }
}
