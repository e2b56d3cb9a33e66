//! The compiled-router cache: a router compiled once is read back from
//! disk, by this engine or a new one, and a damaged or unsafe cache is
//! never run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dbroute::router::HostRouter;
use dbroute::wasm::{RouterLimits, RouterRuntime, RouterSource, Tier, WasmRouter};
use dbroute::{Config, Engine, Error, Hints, ModelInfo};

use crate::support::{FIRST_TIER, OPTIMIZED_WITHIN, reference_connections};

async fn engine(dir: &Path) -> Engine {
    reference_connections()
        .compiled_router_cache(dir)
        .build()
        .await
        .unwrap()
}

/// Loads the reference router, and waits until it runs optimized code (the
/// optimizing compiler stores it in the cache first).
fn load(engine: &Engine) -> WasmRouter {
    load_file(engine, "reference", dbroute_example_routers::REFERENCE)
}

/// Loads the router at `path` as `name`, as [`load`] does.
fn load_file(engine: &Engine, name: &str, path: &str) -> WasmRouter {
    let router = engine
        .load_router(WasmRouter::named(name), RouterSource::File(path.into()))
        .unwrap();
    assert_eq!(router.wait_until_optimized(OPTIMIZED_WITHIN), Tier::Optimized);
    router
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

async fn routes_reads_to_replica(engine: &Engine, router: WasmRouter) {
    engine.set_router(router);
    let user = ModelInfo::new("User");
    assert_eq!(engine.db_for_read(&user, &Hints::new()).unwrap(), "replica");
    assert_eq!(engine.db_for_write(&user, &Hints::new()).unwrap(), "default");
}

#[tokio::test]
async fn a_router_compiled_once_is_read_back_by_a_new_engine() {
    let dir = tempfile::tempdir().unwrap();
    let first = engine(dir.path()).await;
    let compiled = load(&first);
    assert!(!compiled.info().compiled_from_cache);
    assert_eq!(
        compiled.info().compiled_by,
        FIRST_TIER,
        "loaded on baseline code, optimized after"
    );
    assert_eq!(cache_files(dir.path()).len(), 1, "one file per router and engine");
    routes_reads_to_replica(&first, compiled).await;

    // Another engine (as after a restart) finds it on disk.
    let second = engine(dir.path()).await;
    let cached = load(&second);
    assert!(cached.info().compiled_from_cache);
    assert_eq!(
        cached.info().compiled_by,
        Tier::Optimized,
        "optimized code from the start"
    );
    assert_eq!(cached.identity(), load(&first).identity(), "same bytes, same identity");
    routes_reads_to_replica(&second, cached).await;
    assert_eq!(cache_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_damaged_file_is_compiled_again_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    drop(load(&engine));
    let file = cache_files(dir.path()).pop().unwrap();
    let original = std::fs::read(&file).unwrap();

    // A flipped byte in the code, a truncated file, an empty one: each is
    // refused by its digest, compiled again, and stored whole again.
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x40;
    for damaged in [flipped, original[..original.len() / 3].to_vec(), Vec::new()] {
        std::fs::write(&file, &damaged).unwrap();
        let router = load(&engine);
        assert!(!router.info().compiled_from_cache, "a damaged file must not be used");
        routes_reads_to_replica(&engine, router).await;
        assert_eq!(std::fs::read(&file).unwrap(), original, "stored again, whole");
        assert!(load(&engine).info().compiled_from_cache);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_folder_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = RouterRuntime::with_compiled_cache(RouterLimits::default(), dir.path()).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Config { .. }), "{error:?}");
    assert!(
        text.contains("may be written by others") && text.contains("chmod 700"),
        "{text}"
    );

    // Through the engine, the first router load says the same.
    let engine = engine(dir.path()).await;
    let error = engine
        .load_router(
            WasmRouter::named("reference"),
            RouterSource::File(dbroute_example_routers::REFERENCE.into()),
        )
        .unwrap_err();
    assert!(error.to_string().contains("chmod 700"), "{error}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_missing_folder_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("compiled").join("routers");
    let engine = engine(&dir).await;
    drop(load(&engine));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(cache_files(&dir).len(), 1);
}

#[tokio::test]
async fn the_configuration_file_names_the_folder_relative_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
        compiled_router_cache = "compiled"

        [connections.default]
        url = "sqlite::memory:"
        [connections.replica]
        url = "sqlite::memory:"
        [connections.analytics]
        url = "sqlite::memory:"

        [[routers]]
        name = "reference"
        path = "{}"
        "#,
        dbroute_example_routers::REFERENCE
    );
    let config = Config::from_toml_str(&toml, dir.path()).unwrap();
    let engine = config.builder().build().await.unwrap();
    // The optimizing compiler stores the router in the background.
    let started = Instant::now();
    while cache_files(&dir.path().join("compiled")).is_empty() && started.elapsed() < OPTIMIZED_WITHIN {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(cache_files(&dir.path().join("compiled")).len(), 1);
    assert_eq!(
        engine.db_for_read(&ModelInfo::new("User"), &Hints::new()).unwrap(),
        "replica"
    );
}

#[tokio::test]
async fn prepared_instances_stay_within_the_idle_limit() {
    let engine = reference_connections()
        .router_limits(RouterLimits::new().idle_instances(5))
        .build()
        .await
        .unwrap();
    let router = load(&engine);
    assert_eq!(
        router.idle_instances(),
        1,
        "the instance the move to optimized code made"
    );
    assert_eq!(router.prepare_instances(3).unwrap(), 3);
    assert_eq!(router.prepare_instances(100).unwrap(), 5, "never above the limit");
    routes_reads_to_replica(&engine, router.clone()).await;
    assert_eq!(router.idle_instances(), 5);
}

/// The folder is bounded: storing a router removes the least recently
/// used files past 64, and a file read back counts as used.
#[tokio::test]
async fn storing_removes_the_least_recently_used_and_a_read_counts_as_use() {
    let dir = tempfile::tempdir().unwrap();
    load(&engine(dir.path()).await);
    let [reference] = cache_files(dir.path()).try_into().unwrap();
    // Seventy files of routers used a day ago, and the reference router,
    // last used two days ago.
    let day = Duration::from_secs(24 * 3600);
    let used = |path: &Path, ago: Duration| {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(std::time::SystemTime::now() - ago).unwrap();
    };
    let old: Vec<PathBuf> = (0..70u64)
        .map(|i| {
            let path = dir.path().join(format!("{i:064x}-0000000000000000.cwasm"));
            std::fs::write(&path, b"old").unwrap();
            used(&path, day + Duration::from_secs(60 * i));
            path
        })
        .collect();
    used(&reference, 2 * day);

    // A new engine reads the reference router back: used now.
    let second = engine(dir.path()).await;
    assert!(load(&second).info().compiled_from_cache);
    // Another router is compiled and stored: the folder is pruned.
    load_file(&second, "replica", dbroute_example_routers::REPLICA);
    let left = cache_files(dir.path());
    assert_eq!(left.len(), 64, "at most 64 files are kept");
    assert!(left.contains(&reference), "the router read back is kept");
    assert!(
        old[..62].iter().all(|path| left.contains(path)),
        "the 62 most recently used of the others are kept"
    );
    assert!(
        old[62..].iter().all(|path| !path.exists()),
        "the least recently used are removed"
    );
}
