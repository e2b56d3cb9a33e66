//! A router file watched by `Engine::watch_router`: reloaded once per new
//! content, never on reads, through symbolic links (a Kubernetes ConfigMap),
//! a refused content reported once.

use std::path::Path;
use std::time::Duration;

use dbroute::wasm::{RouterWatcher, WasmRouter, WatchStatus};
use dbroute::{Engine, Hints, ModelInfo};

use crate::hot_swap::{engine_with, fixed_router_wat};

/// Longer than the watcher's settle time many times over: a reload that
/// was going to happen has happened by then.
const QUIET: Duration = Duration::from_secs(1);

async fn wait_for(watcher: &RouterWatcher, what: &str, done: impl FnMut(&WatchStatus) -> bool) -> WatchStatus {
    let mut changes = watcher.subscribe();
    tokio::time::timeout(Duration::from_secs(10), changes.wait_for(done))
        .await
        .unwrap_or_else(|_| panic!("{what} within 10 s: {:?}", watcher.status()))
        .unwrap()
        .clone()
}

fn reads_go_to(engine: &Engine) -> String {
    engine
        .db_for_read(&ModelInfo::new("User"), &Hints::new())
        .unwrap()
        .to_string()
}

/// Writes `content` to `path` as deploy tools do: a temporary file renamed
/// into place.
fn deploy(path: &Path, content: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, content).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_is_followed_by_no_further_loads() {
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.wat");
    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("watched"), &path).unwrap();
    assert_eq!(reads_go_to(&engine), "c0");
    let first = watcher.status();

    deploy(&path, &fixed_router_wat("c1"));
    let reloaded = wait_for(&watcher, "reloaded", |s| s.reloads == 1).await;
    assert_eq!(reads_go_to(&engine), "c1");
    assert_ne!(reloaded.active, first.active, "the content hash changed");
    assert!(reloaded.generation > first.generation);
    assert_eq!(reloaded.load_attempts, 1);

    // Loading the router read the file: that must not start another load.
    tokio::time::sleep(2 * QUIET).await;
    let idle = watcher.status();
    assert_eq!(idle, reloaded, "the watcher did something while nothing changed");
    assert_eq!(engine.router_status().generation, reloaded.generation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_file_is_not_a_change() {
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.wat");
    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("watched"), &path).unwrap();
    let before = watcher.status();
    for _ in 0..100 {
        std::fs::read(&path).unwrap();
    }
    tokio::time::sleep(QUIET).await;
    let after = watcher.status();
    // Not even looked at: reads are filtered out before the content hash.
    assert_eq!(after.changes_seen, 0, "{after:?}");
    assert_eq!(after, before);

    // The watcher does watch: a real change is seen.
    deploy(&path, &fixed_router_wat("c1"));
    wait_for(&watcher, "a real change reloaded", |s| s.reloads == 1).await;
    assert_eq!(reads_go_to(&engine), "c1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_written_again_are_not_compiled() {
    let engine = engine_with(&["default", "c0"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.wat");
    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("watched"), &path).unwrap();
    let generation = engine.router_status().generation;

    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    wait_for(&watcher, "the write seen", |s| s.changes_seen >= 1).await;
    tokio::time::sleep(QUIET).await;
    let seen = watcher.status();
    assert_eq!(seen.load_attempts, 0, "{seen:?}");
    assert_eq!(seen.reloads, 0);
    assert_eq!(engine.router_status().generation, generation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_update_reloads_once() {
    // Kubernetes mounts a ConfigMap as `router.wat -> ..data/router.wat`,
    // `..data -> ..<timestamp>`; an update writes a new timestamped folder
    // and swaps `..data` by renaming a new link over it.
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path();
    let version = |name: &str, content: &str| {
        std::fs::create_dir(mount.join(name)).unwrap();
        std::fs::write(mount.join(name).join("router.wat"), content).unwrap();
    };
    version("..2026_12_06_10_00_00.1", &fixed_router_wat("c0"));
    std::os::unix::fs::symlink("..2026_12_06_10_00_00.1", mount.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/router.wat", mount.join("router.wat")).unwrap();
    let watcher = engine
        .watch_router(WasmRouter::named("configmap"), mount.join("router.wat"))
        .unwrap();
    assert_eq!(reads_go_to(&engine), "c0");

    let update = |name: &str, content: &str, old: &str| {
        version(name, content);
        std::os::unix::fs::symlink(name, mount.join("..data_tmp")).unwrap();
        std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
        std::fs::remove_dir_all(mount.join(old)).unwrap();
    };
    update(
        "..2026_12_06_10_05_00.2",
        &fixed_router_wat("c1"),
        "..2026_12_06_10_00_00.1",
    );
    wait_for(&watcher, "reloaded", |s| s.reloads == 1).await;
    assert_eq!(reads_go_to(&engine), "c1");
    tokio::time::sleep(QUIET).await;
    let status = watcher.status();
    assert_eq!(
        (status.reloads, status.load_attempts, status.failures),
        (1, 1, 0),
        "{status:?}"
    );

    // The next update is seen too: the watch follows the new folder.
    update(
        "..2026_12_06_10_10_00.3",
        &fixed_router_wat("c0"),
        "..2026_12_06_10_05_00.2",
    );
    wait_for(&watcher, "reloaded again", |s| s.reloads == 2).await;
    assert_eq!(reads_go_to(&engine), "c0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_target_edited_in_place_in_another_folder_reloads() {
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let (links, targets) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let target = targets.path().join("current.wat");
    std::fs::write(&target, fixed_router_wat("c0")).unwrap();
    let link = links.path().join("router.wat");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("linked"), &link).unwrap();

    std::fs::write(&target, fixed_router_wat("c1")).unwrap();
    wait_for(&watcher, "reloaded", |s| s.reloads == 1).await;
    assert_eq!(reads_go_to(&engine), "c1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_in_two_halves_ends_loaded_with_at_most_one_refusal() {
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.wat");
    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("watched"), &path).unwrap();

    let new = fixed_router_wat("c1");
    let (first_half, second_half) = new.split_at(new.len() / 2);
    std::fs::write(&path, first_half).unwrap();
    tokio::time::sleep(QUIET).await;
    // Meanwhile the old router serves.
    assert_eq!(reads_go_to(&engine), "c0");
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, second_half.as_bytes()).unwrap();
    drop(file);

    let status = wait_for(&watcher, "the complete file loaded", |s| s.reloads == 1).await;
    assert_eq!(reads_go_to(&engine), "c1");
    assert!(status.failures <= 1, "{status:?}");
    assert_eq!(status.last_error, None, "the complete file's load clears the error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_is_reported_once_and_the_old_router_serves() {
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.wat");
    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("watched"), &path).unwrap();
    let active = watcher.status().active;

    let broken = "(module (memory (export \"memory\") 1) (func (export \"dbroute_abi";
    deploy(&path, broken);
    let refused = wait_for(&watcher, "the refusal reported", |s| s.failures == 1).await;
    assert!(
        refused.last_error.as_deref().unwrap_or_default().contains("refused"),
        "{refused:?}"
    );
    assert_eq!(refused.active, active);
    assert_eq!(reads_go_to(&engine), "c0");
    assert_eq!(engine.router_status().routers[0], active);

    // The same broken content deployed again, touched, read: no new report.
    deploy(&path, broken);
    std::fs::write(&path, broken).unwrap();
    for _ in 0..10 {
        std::fs::read(&path).unwrap();
    }
    tokio::time::sleep(QUIET).await;
    let status = watcher.status();
    assert_eq!((status.failures, status.load_attempts), (1, 1), "{status:?}");
    assert!(status.changes_seen > refused.changes_seen, "the writes were seen");

    // Fixed: loaded, and the error is gone.
    deploy(&path, &fixed_router_wat("c1"));
    let fixed = wait_for(&watcher, "the fixed file loaded", |s| s.reloads == 1).await;
    assert_eq!(fixed.last_error, None);
    assert_eq!(reads_go_to(&engine), "c1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watcher_stops_and_the_router_stays() {
    let engine = engine_with(&["default", "c0", "c1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.wat");
    std::fs::write(&path, fixed_router_wat("c0")).unwrap();
    let watcher = engine.watch_router(WasmRouter::named("watched"), &path).unwrap();
    let generation = watcher.status().generation;
    drop(watcher);
    deploy(&path, &fixed_router_wat("c1"));
    tokio::time::sleep(QUIET).await;
    assert_eq!(reads_go_to(&engine), "c0");
    assert_eq!(engine.router_status().generation, generation);
}
