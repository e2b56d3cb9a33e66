//! The registry of named connections: names, defaults, URLs, pools, and
//! changes at run time, on real databases.

use std::time::Duration;

use dbroute::{Backend, Config, Engine, Error, PoolSettings, params};

use crate::support::{TestDb, admin_execute};

#[tokio::test]
async fn backends_come_from_urls_and_sit_side_by_side() {
    let (pg, my, lite) = (TestDb::postgres().await, TestDb::mysql().await, TestDb::sqlite());
    let engine = Engine::builder()
        .connection("primary", &pg.url)
        .connection("legacy", my.url.replace("mysql://", "mariadb://"))
        .connection("cache", &lite.url)
        .build()
        .await
        .unwrap();
    assert_eq!(engine.connection("primary").unwrap().backend(), Backend::Postgres);
    assert_eq!(engine.connection("legacy").unwrap().backend(), Backend::MySql);
    assert_eq!(engine.connection("cache").unwrap().backend(), Backend::Sqlite);
    // The first one registered is the default, also under the name `default`.
    assert_eq!(engine.default_name(), "primary");
    assert_eq!(engine.connection("default").unwrap().name(), "primary");
    assert_eq!(engine.connection("primary").unwrap().name(), "primary");
    assert_eq!(engine.connection_names(), ["primary", "cache", "legacy"]);

    // A row written on one connection is on that database only.
    for name in ["primary", "legacy", "cache"] {
        engine
            .connection(name)
            .unwrap()
            .execute("CREATE TABLE marks (who VARCHAR(20))", &[])
            .await
            .unwrap();
    }
    let cache = engine.connection("cache").unwrap();
    cache
        .execute("INSERT INTO marks VALUES ($1)", &params!["cache"])
        .await
        .unwrap();
    for (name, expected) in [("primary", 0), ("legacy", 0), ("cache", 1)] {
        let n: i64 = engine
            .connection(name)
            .unwrap()
            .fetch_one("SELECT COUNT(*) AS n FROM marks", &[])
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, expected, "rows on {name}");
    }
    engine.close().await;
}

#[tokio::test]
async fn exactly_one_default() {
    let engine = Engine::builder()
        .connection("a", "sqlite::memory:")
        .connection("b", "sqlite::memory:")
        .default_connection("b")
        .build()
        .await
        .unwrap();
    assert_eq!(engine.default_name(), "b");
    assert_eq!(engine.connection("default").unwrap().name(), "b");

    let err = Engine::builder()
        .connection("a", "sqlite::memory:")
        .connection("b", "sqlite::memory:")
        .default_connection("a")
        .default_connection("b")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SecondDefault { .. }), "{err}");
    assert!(
        err.to_string().contains("`a`") && err.to_string().contains("`b`"),
        "{err}"
    );

    let err = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("primary", "sqlite::memory:")
        .default_connection("primary")
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");

    let err = Engine::builder().build().await.unwrap_err();
    assert!(matches!(err, Error::NoConnections), "{err}");
}

#[tokio::test]
async fn names_are_checked() {
    for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
        let err = Engine::builder()
            .connection(bad, "sqlite::memory:")
            .build()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
    }
    let err = Engine::builder()
        .connection("a", "sqlite::memory:")
        .connection("a", "sqlite::memory:")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateConnection { .. }), "{err}");
}

#[tokio::test]
async fn an_unknown_name_lists_the_registered_ones() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    let err = engine.connection("replcia").unwrap_err();
    assert!(matches!(err, Error::UnknownConnection { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("replcia") && text.contains("default, replica"), "{text}");
    let err = engine
        .read_model(&dbroute::ModelInfo::new("User"))
        .using("nope")
        .connection()
        .unwrap_err();
    assert!(err.to_string().contains("using()"), "{err}");
}

#[tokio::test]
async fn bad_urls_and_dead_servers_are_clear_errors() {
    let build = |url: &str| Engine::builder().connection("main", url).build();
    let err = build("oracle://h/db").await.unwrap_err();
    assert!(matches!(err, Error::UnsupportedScheme { .. }), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
    let err = build("postgres://user:hunter2@[::1/db").await.unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    let err = build("no-scheme").await.unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");

    // Nothing listens on port 1: connecting fails at once, naming the
    // connection, without the password.
    let err = Engine::builder()
        .connection_with(
            "main",
            "postgres://bob:hunter2@127.0.0.1:1/app",
            PoolSettings::new().acquire_timeout(Duration::from_secs(2)),
        )
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { .. } | Error::PoolTimedOut { .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("main") && !shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn credentials_never_show() {
    // Trust auth accepts any password, so this one connects.
    let pg = TestDb::postgres().await;
    let url = pg.url.replace("postgres@", "postgres:hunter2@");
    let engine = Engine::builder()
        .connection("default", format!("{url}?password=hunter2"))
        .build()
        .await
        .unwrap();
    let conn = engine.connection("default").unwrap();
    let err = conn.execute("SELEC 1", &[]).await.unwrap_err();
    for shown in [
        format!("{engine:?}"),
        format!("{conn:?}"),
        format!("{:?}", conn.pool()),
        format!("{err} {err:?}"),
        format!("{:?}", engine.connection_names()),
    ] {
        assert!(!shown.contains("hunter2"), "password shown: {shown}");
    }
    assert!(format!("{engine:?}").contains("***"), "{engine:?}");
}

#[tokio::test]
async fn pool_settings_are_applied() {
    let pg = TestDb::postgres().await;
    let engine = Engine::builder()
        .connection_with(
            "default",
            &pg.url,
            PoolSettings::new()
                .max_connections(2)
                .min_connections(1)
                .acquire_timeout(Duration::from_millis(300)),
        )
        .build()
        .await
        .unwrap();
    let conn = engine.connection("default").unwrap();
    // Hold both connections in two transactions: a third acquire times out,
    // naming the pool.
    let t1 = engine.transaction().begin().await.unwrap();
    let t2 = engine.transaction().begin().await.unwrap();
    assert!(conn.pool().size() <= 2);
    let err = conn.execute("SELECT 1", &[]).await.unwrap_err();
    assert!(matches!(err, Error::PoolTimedOut { .. }), "{err:?}");
    assert!(err.to_string().contains("`default`"), "{err}");
    t1.rollback().await.unwrap();
    t2.rollback().await.unwrap();
    conn.execute("SELECT 1", &[]).await.unwrap();

    // A lazy pool to a dead server builds, and fails on use.
    let lazy = Engine::builder()
        .connection_with(
            "default",
            "postgres://127.0.0.1:1/none",
            PoolSettings::new()
                .lazy(true)
                .acquire_timeout(Duration::from_millis(300)),
        )
        .build()
        .await
        .unwrap();
    assert!(
        lazy.connection("default")
            .unwrap()
            .execute("SELECT 1", &[])
            .await
            .is_err()
    );
}

/// A connection idle in the pool for longer than `test_idle_after` is
/// pinged before it is handed out, so one the server closed meanwhile is
/// replaced and the statement runs; one used more recently is handed out
/// without that round trip. Checking every time (`Duration::ZERO`) catches
/// it whenever.
#[tokio::test]
async fn idle_connections_are_checked_before_they_are_handed_out() {
    let pg = TestDb::postgres().await;
    let pid = async |conn: &dbroute::Connection| -> dbroute::Result<i64> {
        Ok(conn
            .fetch_one("SELECT pg_backend_pid()::int8 AS pid", &[])
            .await?
            .get("pid"))
    };
    let terminate = async |pid: i64| {
        admin_execute(Backend::Postgres, &format!("SELECT pg_terminate_backend({pid})")).await;
    };
    let one = |test_idle_after| PoolSettings::new().max_connections(1).test_idle_after(test_idle_after);
    let engine = Engine::builder()
        .connection_with("default", &pg.url, one(Some(Duration::from_millis(200))))
        .connection_with("always", &pg.url, one(Some(Duration::ZERO)))
        .build()
        .await
        .unwrap();
    let (default, always) = (
        engine.connection("default").unwrap(),
        engine.connection("always").unwrap(),
    );

    // Idle for longer than the threshold: checked, replaced, the
    // statement runs on a new backend.
    let first = pid(&default).await.unwrap();
    terminate(first).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = pid(&default).await.unwrap();
    assert_ne!(first, second);

    // Used a moment ago: handed out unchecked, so the closed connection
    // fails its statement (as it would have failed mid-statement), said
    // to be unreachable. The pool drops it; the next statement runs.
    terminate(second).await;
    let error = pid(&default).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    let third = pid(&default).await.unwrap();
    assert_ne!(third, second);

    // Checked every time: never handed out closed.
    let first = pid(&always).await.unwrap();
    terminate(first).await;
    assert_ne!(pid(&always).await.unwrap(), first);
    engine.close().await;
}

#[tokio::test]
async fn connections_change_at_run_time() {
    let (first, second) = (TestDb::sqlite(), TestDb::mysql().await);
    let engine = Engine::builder()
        .connection("default", &first.url)
        .build()
        .await
        .unwrap();
    engine
        .add_connection("reports", &second.url, PoolSettings::new())
        .await
        .unwrap();
    let reports = engine.connection("reports").unwrap();
    assert_eq!(reports.backend(), Backend::MySql);
    reports.execute("SELECT 1", &[]).await.unwrap();

    let err = engine
        .add_connection("reports", &second.url, PoolSettings::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateConnection { .. }), "{err}");
    let err = engine.remove_connection("default").await.unwrap_err();
    assert!(matches!(err, Error::RemoveDefault { .. }), "{err}");
    assert!(err.to_string().contains("reports"), "{err}");

    engine.remove_connection("reports").await.unwrap();
    assert!(matches!(
        engine.connection("reports"),
        Err(Error::UnknownConnection { .. })
    ));
    // The old handle's pool is closed: using it fails instead of hanging.
    assert!(reports.execute("SELECT 1", &[]).await.is_err());

    engine.close().await;
    assert!(matches!(engine.connection("default"), Err(Error::Closed)));
}

#[tokio::test]
async fn a_toml_file_builds_the_same_engine() {
    let (pg, lite) = (TestDb::postgres().await, TestDb::sqlite());
    // `cargo test` sets CARGO_PKG_NAME; trust auth ignores the password,
    // so it stands in for a secret from the environment.
    let url = pg.url.replace("postgres@", "postgres:${CARGO_PKG_NAME}@");
    let text = format!(
        r#"
        read_failure = "fall_back_to_default"
        [connections.primary]
        url = "{url}"
        default = true
        max_connections = 3
        acquire_timeout_ms = 2000
        [connections.cache]
        url = "{}"
        lazy = true
        "#,
        lite.url
    );
    assert!(
        std::env::var("CARGO_PKG_NAME").is_ok(),
        "cargo sets CARGO_PKG_NAME for tests"
    );
    let config = Config::from_toml_str(&text, std::path::Path::new(".")).unwrap();
    let engine = config.builder().build().await.unwrap();
    assert_eq!(engine.default_name(), "primary");
    assert_eq!(engine.connection("default").unwrap().backend(), Backend::Postgres);
    assert_eq!(engine.connection("cache").unwrap().backend(), Backend::Sqlite);
    engine
        .connection("cache")
        .unwrap()
        .execute("SELECT 1", &[])
        .await
        .unwrap();

    let err = Config::from_toml_str(
        "[connections.a]\nurl = \"${DBROUTE_SURELY_UNSET}\"\n",
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert!(matches!(err, Error::MissingEnvVar { .. }), "{err}");
}

#[tokio::test]
async fn connect_lazily_covers_connections_registered_after_it() {
    // Nothing listens on port 1: an eager pool would fail the build.
    let engine = Engine::builder()
        .connect_lazily()
        .connection("default", "sqlite::memory:")
        .connection_with(
            "dead",
            "postgres://bob:hunter2@127.0.0.1:1/app",
            PoolSettings::new().acquire_timeout(Duration::from_millis(300)),
        )
        .build()
        .await
        .expect("lazy connections are not opened at build");
    let err = engine
        .connection("dead")
        .unwrap()
        .execute("SELECT 1", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Connect { connection, .. } if connection == "dead"),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}
