//! Reloading a router when its file changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use tokio::sync::watch;

use crate::engine::{Engine, RouterSource};
use crate::error::{Error, Result};
use crate::router::RouterIdentity;
use crate::router::wasm::WasmRouterBuilder;

/// How long a file must be quiet before it is reloaded.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// What a [`RouterWatcher`] has done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStatus {
    /// The router version now active from this file.
    pub active: RouterIdentity,
    /// The swap generation it was activated at.
    pub generation: u64,
    /// Successful reloads (the first load not counted).
    pub reloads: u64,
    /// Refused reloads.
    pub failures: u64,
    /// Why the last reload was refused, if the last attempt failed.
    pub last_error: Option<String>,
}

/// Watches a router file; see [`Engine::watch_router`]. Dropping it stops
/// watching (the active router stays).
pub struct RouterWatcher {
    _debouncer: Debouncer<RecommendedWatcher>,
    status: watch::Receiver<WatchStatus>,
}

impl std::fmt::Debug for RouterWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterWatcher")
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl RouterWatcher {
    pub(crate) fn start(engine: Engine, builder: WasmRouterBuilder, path: PathBuf) -> Result<Self> {
        let router = engine.load_router(builder.clone(), RouterSource::File(path.clone()))?;
        let active = crate::router::Router::identity(&router);
        let generation = engine.set_router(router);
        let (sender, status) = watch::channel(WatchStatus {
            active,
            generation,
            reloads: 0,
            failures: 0,
            last_error: None,
        });
        let file_name = path.file_name().map(ToOwned::to_owned);
        let watched = path.clone();
        let mut debouncer = new_debouncer(DEBOUNCE, move |events: DebounceEventResult| {
            let touches_file = match &events {
                Ok(events) => events.iter().any(|e| e.path.file_name() == file_name.as_deref()),
                Err(_) => true,
            };
            if touches_file {
                reload(&engine, &builder, &watched, &sender);
            }
        })
        .map_err(|e| watch_error(&path, e))?;
        // Watch the folder: editors and build tools replace files by rename.
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        debouncer
            .watcher()
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&path, e))?;
        Ok(RouterWatcher {
            _debouncer: debouncer,
            status,
        })
    }

    /// What the watcher has done so far.
    pub fn status(&self) -> WatchStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every change of [`RouterWatcher::status`].
    pub fn subscribe(&self) -> watch::Receiver<WatchStatus> {
        self.status.clone()
    }
}

fn watch_error(path: &Path, error: notify_debouncer_mini::notify::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(error.to_string()),
    }
}

fn reload(engine: &Engine, builder: &WasmRouterBuilder, path: &Path, sender: &watch::Sender<WatchStatus>) {
    if !path.exists() {
        // Removed (or mid-rename): keep serving; a new file triggers again.
        return;
    }
    match engine.load_router(builder.clone(), RouterSource::File(path.to_path_buf())) {
        Ok(router) => {
            let identity = crate::router::Router::identity(&router);
            if sender.borrow().active == identity && sender.borrow().last_error.is_none() {
                return; // Touched, not changed.
            }
            let generation = engine.set_router(router);
            tracing::info!(router = %identity, generation, "router reloaded from {}", path.display());
            sender.send_modify(|s| {
                s.active = identity;
                s.generation = generation;
                s.reloads += 1;
                s.last_error = None;
            });
        }
        Err(e) => {
            tracing::error!(
                "router file {} refused, the active router keeps serving: {e}",
                path.display()
            );
            sender.send_modify(|s| {
                s.failures += 1;
                s.last_error = Some(e.to_string());
            });
        }
    }
}
