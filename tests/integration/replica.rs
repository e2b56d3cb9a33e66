//! Replicas: declaring them (builder and configuration file, and what is
//! refused), and measuring their lag against a real PostgreSQL primary and
//! streaming replica (`replica_server.rs`), whose replay the test pauses to
//! make lag instead of waiting for it.

use std::time::{Duration, Instant};

use dbroute::stats::{ReplicaLag, Role};
use dbroute::{Config, Engine, Error, params};

use crate::replica_server::ReplicaCluster;
use crate::support::{TestDb, eventually};

/// A bound on what the test waits for (the replica catching up, a
/// background measurement): a safety net, reached only when it fails.
const WITHIN: Duration = Duration::from_secs(30);

/// Each measurement's own timeout.
const MEASURE: Duration = Duration::from_secs(5);

/// The measurement of `engine`'s replica `name`, each replica given
/// [`MEASURE`].
async fn measure(engine: &Engine, name: &str) -> ReplicaLag {
    measure_within(engine, name, MEASURE).await
}

/// The measurement of `engine`'s replica `name`, each replica given
/// `timeout`.
async fn measure_within(engine: &Engine, name: &str, timeout: Duration) -> ReplicaLag {
    let measured = engine.measure_replication(timeout).await;
    measured
        .into_iter()
        .find(|lag| lag.replica == name)
        .unwrap_or_else(|| panic!("no measurement of `{name}`"))
}

/// How many rows of `items` have `id` on `connection` (`None`: the table
/// is not there yet).
async fn rows_with(engine: &Engine, connection: &str, id: i64) -> Option<i64> {
    let db = engine.connection(connection).unwrap();
    db.fetch_one("SELECT count(*) AS n FROM items WHERE id = $1", &params![id])
        .await
        .ok()
        .map(|row| row.get("n"))
}

/// The whole story on one cluster, in steps (one cluster per file keeps
/// the test short): streaming works; paused replay makes lag the engine
/// measures and hides new rows; resumed replay brings both back to zero;
/// status reports the role and lag; the background measurement runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_replica_falls_behind_while_paused_and_catches_up() {
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let cluster_started = started.elapsed();

    let engine = Engine::builder()
        .connection("primary", cluster.primary_url("postgres"))
        .connection("replica", cluster.replica_url("postgres"))
        // `default` names the default connection, `primary`.
        .replica_of("replica", "default")
        // Only the measurements this test asks for.
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let primary = engine.connection("primary").unwrap();

    // 1. Streaming works: a row written on the primary shows on the replica.
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    primary
        .execute("INSERT INTO items VALUES ($1)", &params![1i64])
        .await
        .unwrap();
    eventually("row 1 on the replica", || async {
        (rows_with(&engine, "replica", 1).await == Some(1)).then_some(())
    })
    .await;
    let caught_up = eventually("the replica caught up", || async {
        let lag = measure(&engine, "replica").await;
        (lag.bytes_behind == Some(0)).then_some(lag)
    })
    .await;
    assert_eq!(caught_up.replica, "replica");
    assert_eq!(caught_up.primary, "primary");
    assert_eq!(caught_up.error, None);
    assert_eq!(caught_up.replay_paused, Some(false));
    // It replayed transactions (the CREATE and the INSERT): the time since
    // the last one is known.
    let since = caught_up.time_behind.expect("a replayed transaction's time");
    assert!(since < WITHIN, "{since:?}");

    // 2. Replay paused: writes on the primary make measured lag, and the
    //    replica does not show them.
    cluster.pause_replay().await;
    primary
        .execute("INSERT INTO items VALUES ($1)", &params![2i64])
        .await
        .unwrap();
    let behind = measure(&engine, "replica").await;
    assert_eq!(behind.error, None, "{behind:?}");
    let bytes = behind.bytes_behind.expect("bytes behind");
    assert!(bytes > 0, "{behind:?}");
    assert_eq!(behind.replay_paused, Some(true));
    assert_eq!(rows_with(&engine, "replica", 2).await, Some(0));
    assert_eq!(rows_with(&engine, "primary", 2).await, Some(1));
    // More writes: more bytes behind.
    primary
        .execute("INSERT INTO items SELECT generate_series(3, 1000)", &[])
        .await
        .unwrap();
    let further = measure(&engine, "replica").await;
    assert!(further.bytes_behind.unwrap() > bytes, "{further:?} after {behind:?}");
    assert!(further.measured_at >= behind.measured_at);

    // 3. Status shows each connection's role and the replica's last
    //    measurement.
    let status = engine.status();
    let of = |name: &str| status.iter().find(|s| s.name == name).unwrap();
    assert_eq!(of("primary").role, Role::Primary);
    assert_eq!(of("primary").replication, None);
    assert_eq!(
        of("replica").role,
        Role::Replica {
            of: "primary".parse().unwrap()
        }
    );
    assert_eq!(of("replica").role.replica_of().unwrap(), "primary");
    assert_eq!(of("replica").replication.as_ref(), Some(&further));

    // 4. Replay resumed: the lag comes back to zero, and with it the rows.
    cluster.resume_replay().await;
    let resumed = eventually("the replica caught up again", || async {
        let lag = measure(&engine, "replica").await;
        (lag.bytes_behind == Some(0)).then_some(lag)
    })
    .await;
    assert_eq!(resumed.replay_paused, Some(false));
    // Zero bytes behind a position read after the inserts: they are
    // replayed, with no waiting.
    assert_eq!(rows_with(&engine, "replica", 2).await, Some(1));
    assert_eq!(rows_with(&engine, "replica", 1000).await, Some(1));
    assert_eq!(engine.status()[1].replication.as_ref(), Some(&resumed));

    // 5. A replica of a server in recovery is measured against that
    //    server's replayed position (pg_current_wal_lsn() fails there): a
    //    second name for the replica, declared a replica of it, is 0 bytes
    //    behind it even while replay is paused.
    let chained = Engine::builder()
        .connection("primary", cluster.primary_url("postgres"))
        .connection("replica", cluster.replica_url("postgres"))
        .connection("same-replica", cluster.replica_url("postgres"))
        .replica_of("replica", "primary")
        .replica_of("same-replica", "replica")
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    cluster.pause_replay().await;
    primary
        .execute("INSERT INTO items VALUES ($1)", &params![1001i64])
        .await
        .unwrap();
    let measured = chained.measure_replication(MEASURE).await;
    assert_eq!(measured.len(), 2, "{measured:?}");
    let lag = |name: &str| measured.iter().find(|l| l.replica == name).unwrap();
    assert!(lag("replica").bytes_behind.unwrap() > 0, "{measured:?}");
    assert_eq!(lag("same-replica").bytes_behind, Some(0), "{measured:?}");
    assert_eq!(lag("same-replica").primary, "replica");
    cluster.resume_replay().await;
    chained.close().await;

    // 6. In the background: an engine that measures every 50 ms reports a
    //    measurement without being asked.
    let background = Engine::builder()
        .connection("primary", cluster.primary_url("postgres"))
        .connection("replica", cluster.replica_url("postgres"))
        .replica_of("replica", "primary")
        .replication_check_every(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let lag = eventually("a background measurement", || async {
        background.status()[1].replication.clone()
    })
    .await;
    assert!(lag.is_known(), "{lag:?}");
    background.close().await;
    engine.close().await;
    eprintln!(
        "replica scenario: cluster up and streaming in {cluster_started:?}, whole test {:?}",
        started.elapsed()
    );
}

/// A replica that cannot be measured is reported, with the reason, never a
/// panic: a server that is not a replica (PostgreSQL and MariaDB), a dead
/// server, a primary no longer registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_be_measured_is_reported() {
    let pg = TestDb::postgres().await;
    let engine = Engine::builder()
        .connection("default", &pg.url)
        .connection("primary", &pg.url)
        .connection("not-a-replica", &pg.url)
        // Its pool would keep trying for its acquire timeout, 10 s.
        .connection_with(
            "dead",
            "postgres://postgres@127.0.0.1:1/none",
            dbroute::PoolSettings::new().lazy(true),
        )
        .replica_of("not-a-replica", "primary")
        .replica_of("dead", "default")
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let not_a_replica = measure_within(&engine, "not-a-replica", Duration::from_millis(300)).await;
    let error = not_a_replica.error.as_deref().expect("an error");
    assert!(
        error.contains("not a replica") && error.contains("pg_is_in_recovery"),
        "{error}"
    );
    assert_eq!(
        (
            not_a_replica.bytes_behind,
            not_a_replica.time_behind,
            not_a_replica.replay_paused
        ),
        (None, None, None)
    );
    assert!(!not_a_replica.is_known());
    // The measurement's timeout bounds it, and names who did not answer.
    let short = Duration::from_millis(300);
    let dead = measure_within(&engine, "dead", short).await;
    let error = dead.error.as_deref().expect("an error");
    assert!(error.contains("`dead` did not answer within 300ms"), "{error}");
    assert!(started.elapsed() < MEASURE, "{:?}", started.elapsed());
    let status = engine.status();
    let dead_status = status.iter().find(|s| s.name == "dead").unwrap();
    assert_eq!(dead_status.replication.as_ref().unwrap().error, dead.error);

    // Its primary removed: reported as such.
    engine.remove_connection("primary").await.unwrap();
    let orphan = measure_within(&engine, "not-a-replica", short).await;
    let error = orphan.error.unwrap();
    assert!(error.contains("`primary` is no longer registered"), "{error}");
    engine.close().await;

    let maria = TestDb::mysql().await;
    let engine = Engine::builder()
        .connection("default", &maria.url)
        .connection("not-a-replica", &maria.url)
        .replica_of("not-a-replica", "default")
        .build()
        .await
        .unwrap();
    let lag = measure(&engine, "not-a-replica").await;
    let error = lag.error.as_deref().expect("an error");
    assert!(error.contains("SHOW REPLICA STATUS returned no row"), "{error}");
    engine.close().await;
}

/// `replica_of` in a configuration file, and the declarations the build
/// refuses, before it opens any connection.
#[tokio::test]
async fn replica_of_in_a_configuration_file_and_what_is_refused() {
    let base = std::path::Path::new(".");
    // Nothing listens on port 1: the pools are lazy, and a refusal comes
    // before any connection is tried.
    let config = |extra: &str| {
        // `extra`: top-level keys, before the first table.
        format!(
            "{extra}[connections.main]\nurl = \"postgres://app@127.0.0.1:1/app\"\n\
             [connections.replica]\nurl = \"postgres://app@127.0.0.1:1/app\"\n\
             [connections.other]\nurl = \"postgres://app@127.0.0.1:1/app\"\n\
             [connections.lite]\nurl = \"sqlite::memory:\"\n\
             [connections.lite2]\nurl = \"sqlite::memory:\"\n"
        )
    };
    let build = |text: String| async move {
        Config::from_toml_str(&text, base)?
            .builder()
            .connect_lazily()
            .build()
            .await
    };

    // Accepted: the role is in the status, the lag not measured yet.
    let text = config("replication_check_every_ms = 0\n").replace(
        "[connections.replica]\n",
        "[connections.replica]\nreplica_of = \"main\"\n",
    );
    assert_eq!(
        Config::from_toml_str(&text, base).unwrap().replicas(),
        [("replica", "main")]
    );
    let engine = build(text).await.unwrap();
    let status = engine.status();
    let replica = status.iter().find(|s| s.name == "replica").unwrap();
    assert_eq!(
        replica.role,
        Role::Replica {
            of: "main".parse().unwrap()
        }
    );
    assert_eq!(replica.replication, None);
    assert!(
        status
            .iter()
            .filter(|s| s.name != "replica")
            .all(|s| s.role == Role::Primary)
    );
    engine.close().await;

    let refused = |section: &'static str, primary: &'static str| {
        let text = config("").replace(
            &format!("[connections.{section}]\n"),
            &format!("[connections.{section}]\nreplica_of = \"{primary}\"\n"),
        );
        async move {
            match build(text).await {
                Err(Error::ReplicaOf { reason, .. }) => reason,
                Err(other) => panic!("{section} → {primary}: another error: {other}"),
                Ok(_) => panic!("{section} → {primary}: accepted"),
            }
        }
    };
    let unknown = refused("replica", "mian").await;
    assert!(unknown.contains("no connection `mian` is registered"), "{unknown}");
    let itself = refused("replica", "replica").await;
    assert!(itself.contains("itself"), "{itself}");
    let sqlite = refused("lite", "lite2").await;
    assert!(sqlite.contains("SQLite has no replication"), "{sqlite}");
    let backends = refused("replica", "lite").await;
    assert!(backends.contains("a replica is on its primary's backend"), "{backends}");

    // A cycle: main → replica → other → main.
    let text = config("")
        .replace("[connections.main]\n", "[connections.main]\nreplica_of = \"replica\"\n")
        .replace(
            "[connections.replica]\n",
            "[connections.replica]\nreplica_of = \"other\"\n",
        )
        .replace("[connections.other]\n", "[connections.other]\nreplica_of = \"main\"\n");
    let error = build(text).await.unwrap_err().to_string();
    assert!(
        error.contains("cycle (main → replica → other → main)") && error.contains("must end at"),
        "{error}"
    );

    // Not a string: the file is refused when parsed.
    let text = config("").replace("[connections.replica]\n", "[connections.replica]\nreplica_of = 3\n");
    assert!(matches!(Config::from_toml_str(&text, base), Err(Error::Config { .. })));
}
