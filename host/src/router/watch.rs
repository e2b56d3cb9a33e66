//! Reloading a router when its file changes.
//!
//! The watcher listens to the folder that holds the router file (and, when
//! the path is a symbolic link, to the folder of the file it resolves to),
//! and reacts only to events that can change what the path reads as:
//! creations, writes and completed writes, renames and removals. Opening or
//! reading a file is an event too on Linux (inotify reports both); those
//! are ignored, so loading the router, or anyone running `cat router.wasm`,
//! never triggers a reload.
//!
//! After a burst of such events the watcher waits until the folder has been
//! quiet for [`SETTLE`], reads the file through every symbolic link, and
//! compares the SHA-256 of its bytes with the content it saw last. Only new
//! content is compiled: a touched file, a rename of the same bytes, or an
//! event about another file in the folder costs one read and one hash. A
//! file whose size or modification time changes while it is read is still
//! being written and is read again after the next quiet period.
//!
//! New content that does not load is reported once (an `ERROR` log line and
//! [`WatchStatus::failures`]), however many events it causes; the router
//! that was active keeps serving. A file caught half-written is therefore
//! refused at most once, and loaded as soon as its writer completes it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::engine::{Engine, RouterSource};
use crate::error::{Error, Result};
use crate::router::RouterIdentity;
use crate::router::wasm::{WasmRouterBuilder, read_router_file};

/// How long the watched folders must be quiet after a change before the
/// file is read.
pub(crate) const SETTLE: Duration = Duration::from_millis(150);

/// What a [`RouterWatcher`] has done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WatchStatus {
    /// The router version now active from this file.
    pub active: RouterIdentity,
    /// The swap generation it was activated at.
    pub generation: u64,
    /// Settled bursts of changes after which the file was read and its
    /// content hash compared (opens and reads of files are not changes).
    pub changes_seen: u64,
    /// Times new content was compiled and loaded, successfully or not (the
    /// first load not counted). Content already seen is never loaded again.
    pub load_attempts: u64,
    /// Successful reloads (the first load not counted).
    pub reloads: u64,
    /// Refused reloads: one per distinct refused content.
    pub failures: u64,
    /// Why the file's current content was refused, if it was.
    pub last_error: Option<String>,
}

/// Watches a router file; see [`Engine::watch_router`]. Dropping it stops
/// watching (the active router stays).
pub struct RouterWatcher {
    events: mpsc::Sender<Signal>,
    thread: Option<JoinHandle<()>>,
    status: watch::Receiver<WatchStatus>,
}

impl std::fmt::Debug for RouterWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterWatcher")
            .field("status", &*self.status.borrow())
            .finish()
    }
}

/// What the file-system callback and [`RouterWatcher`]'s drop tell the
/// watcher thread.
enum Signal {
    Changed,
    Stop,
}

impl RouterWatcher {
    pub(crate) fn start(engine: Engine, builder: WasmRouterBuilder, path: PathBuf) -> Result<Self> {
        let bytes = read_router_file(&path)?;
        let content = Sha256::digest(&bytes).into();
        let router = engine.load_router(builder.clone(), RouterSource::Bytes(bytes.into()))?;
        let active = crate::router::HostRouter::identity(&router);
        let generation = engine.set_router(router);
        let (sender, status) = watch::channel(WatchStatus {
            active,
            generation,
            changes_seen: 0,
            load_attempts: 0,
            reloads: 0,
            failures: 0,
            last_error: None,
        });
        let (events, signals) = mpsc::channel();
        let on_event = events.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            // An error (a lost event queue, say) may hide a change: check.
            if event.as_ref().map_or(true, may_change_content) {
                let _ = on_event.send(Signal::Changed);
            }
        })
        .map_err(|e| watch_error(&path, e))?;
        let folders = watched_folders(&path);
        for folder in &folders {
            watcher
                .watch(folder, RecursiveMode::NonRecursive)
                .map_err(|e| watch_error(&path, e))?;
        }
        let state = WatchState {
            engine,
            builder,
            path,
            watcher,
            folders,
            active_content: content,
            refused: None,
            status: sender,
        };
        let thread = std::thread::Builder::new()
            .name("dbroute-router-watch".into())
            .spawn(move || state.run(&signals))
            .map_err(|source| Error::Io {
                path: "the router watcher's thread".into(),
                source,
            })?;
        Ok(RouterWatcher {
            events,
            thread: Some(thread),
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

impl Drop for RouterWatcher {
    fn drop(&mut self) {
        let _ = self.events.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            // At most one load in progress to wait for.
            let _ = thread.join();
        }
    }
}

/// Can this event change what the watched path reads as? Opens, reads and
/// closes after reading cannot; neither can a change of permissions or
/// timestamps alone.
fn may_change_content(event: &Event) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        // Backends that cannot tell what happened (and a lost queue).
        EventKind::Any | EventKind::Other => true,
    }
}

/// The folder of `path` and, when `path` resolves through symbolic links to
/// a file in another folder, that folder too: a change made there (to the
/// link's target, in place) is a change of the router.
fn watched_folders(path: &Path) -> Vec<PathBuf> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf();
    let mut folders = vec![folder];
    if let Some(target_folder) = std::fs::canonicalize(path)
        .ok()
        .and_then(|target| target.parent().map(Path::to_path_buf))
    {
        let folder = std::fs::canonicalize(&folders[0]).unwrap_or_else(|_| folders[0].clone());
        if target_folder != folder {
            folders.push(target_folder);
        }
    }
    folders
}

fn watch_error(path: &Path, error: notify::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(error.to_string()),
    }
}

/// The watcher thread's state.
struct WatchState {
    engine: Engine,
    builder: WasmRouterBuilder,
    path: PathBuf,
    watcher: RecommendedWatcher,
    folders: Vec<PathBuf>,
    /// The SHA-256 of the content the active router was loaded from.
    active_content: [u8; 32],
    /// What was refused last: its content's SHA-256 (or, when the file
    /// could not even be read, the reason), so it is reported once.
    refused: Option<Refused>,
    status: watch::Sender<WatchStatus>,
}

#[derive(PartialEq, Eq)]
enum Refused {
    Content([u8; 32]),
    Unreadable(String),
}

/// A file's size and modification time: if either changes while the file
/// is read, a writer is still at work.
type Stamp = Option<(u64, Option<SystemTime>)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()))
}

/// Waits until no change has come for [`SETTLE`]. Returns `false` when the
/// watcher is stopped.
fn settle(signals: &mpsc::Receiver<Signal>) -> bool {
    loop {
        match signals.recv_timeout(SETTLE) {
            Ok(Signal::Changed) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => return true,
            Ok(Signal::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
}

impl WatchState {
    fn run(mut self, signals: &mpsc::Receiver<Signal>) {
        loop {
            match signals.recv() {
                Ok(Signal::Changed) => {}
                Ok(Signal::Stop) | Err(_) => return,
            }
            loop {
                if !settle(signals) {
                    return;
                }
                if self.check() {
                    break;
                }
                // Still being written: look again after the next quiet
                // period, even if no further event comes.
            }
        }
    }

    /// Reads the file and loads it if its content is new. Returns `false`
    /// when the file changed while it was read (look again later).
    fn check(&mut self) -> bool {
        self.status.send_modify(|s| s.changes_seen += 1);
        self.follow_links();
        let before = stamp(&self.path);
        let bytes = match read_router_file(&self.path) {
            Ok(bytes) => bytes,
            // Removed, or between a removal and a rename: keep serving; the
            // new file is an event of its own.
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => return true,
            Err(e) => {
                self.refuse(Refused::Unreadable(e.to_string()), &e);
                return true;
            }
        };
        if stamp(&self.path) != before {
            return false;
        }
        let content: [u8; 32] = Sha256::digest(&bytes).into();
        if content == self.active_content {
            // Touched, or back to the active content after a refused one.
            if self.refused.take().is_some() {
                self.status.send_modify(|s| s.last_error = None);
            }
            return true;
        }
        if self.refused == Some(Refused::Content(content)) {
            return true; // Refused already, and reported.
        }
        self.status.send_modify(|s| s.load_attempts += 1);
        match self
            .engine
            .load_router(self.builder.clone(), RouterSource::Bytes(bytes.into()))
        {
            Ok(router) => {
                let identity = crate::router::HostRouter::identity(&router);
                let generation = self.engine.set_router(router);
                tracing::info!(router = %identity, generation, "router reloaded from {}", self.path.display());
                self.engine
                    .telemetry()
                    .reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.active_content = content;
                self.refused = None;
                self.status.send_modify(|s| {
                    s.active = identity;
                    s.generation = generation;
                    s.reloads += 1;
                    s.last_error = None;
                });
            }
            Err(e) => self.refuse(Refused::Content(content), &e),
        }
        true
    }

    fn refuse(&mut self, what: Refused, error: &Error) {
        if self.refused.as_ref() == Some(&what) {
            return;
        }
        self.refused = Some(what);
        self.engine
            .telemetry()
            .refused_reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(
            "router file {} refused, the active router keeps serving: {error}",
            self.path.display()
        );
        self.status.send_modify(|s| {
            s.failures += 1;
            s.last_error = Some(error.to_string());
        });
    }

    /// Keeps watching the folder the path resolves to, which changes when a
    /// symbolic link on the way is replaced (a Kubernetes ConfigMap update).
    fn follow_links(&mut self) {
        let folders = watched_folders(&self.path);
        if folders == self.folders {
            return;
        }
        for gone in self.folders.iter().filter(|f| !folders.contains(f)) {
            // It may no longer exist, which removed its watch already.
            let _ = self.watcher.unwatch(gone);
        }
        for new in folders.iter().filter(|f| !self.folders.contains(f)) {
            if let Err(e) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                tracing::warn!("cannot watch {} for changes of the router file: {e}", new.display());
            }
        }
        self.folders = folders;
    }
}
