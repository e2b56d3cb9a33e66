//! Replicas on MariaDB, against a real primary and a replica of it
//! replicating by GTID (`mariadb_replica_server.rs`): lag measured, and
//! read-your-writes, causal tokens and failover by GTID. Lag is made by
//! stopping the replica's SQL thread, never by sleeping; every read says
//! where it ran (`@@server_id` in its own row: 1 the primary, 2 the
//! replica).

use std::time::Duration;

use dbroute::Engine;

use crate::mariadb_replica_server::MariaDbPair;

/// The replica's lag, measured with its SQL thread stopped: behind by the
/// transactions committed since, applying stopped, shown in
/// `Engine::status()`; then caught up once it applies again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_measured_by_gtid_with_the_sql_thread_stopped() {
    let pair = MariaDbPair::start().await;
    let engine = Engine::builder()
        .connection("primary", pair.primary_url("test"))
        .connection("replica", pair.replica_url("test"))
        .replica_of("replica", "primary")
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let primary = engine.connection("primary").unwrap();
    primary
        .execute("CREATE TABLE items (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    pair.wait_until_caught_up().await;

    let lag = engine.measure_replication(Duration::from_secs(5)).await.remove(0);
    assert!(lag.is_known(), "{lag:?}");
    assert_eq!(lag.transactions_behind, Some(0), "{lag:?}");
    assert_eq!(lag.replay_paused, Some(false), "{lag:?}");
    assert_eq!(lag.time_behind, Some(Duration::ZERO), "{lag:?}");

    pair.stop_applying().await;
    for id in 1..=3 {
        primary
            .execute("INSERT INTO items (id) VALUES (?)", &dbroute::params![id])
            .await
            .unwrap();
    }
    let lag = engine.measure_replication(Duration::from_secs(5)).await.remove(0);
    assert!(lag.is_known(), "{lag:?}");
    assert_eq!(lag.transactions_behind, Some(3), "{lag:?}");
    assert_eq!(lag.replay_paused, Some(true), "{lag:?}");
    // Seconds_Behind_Master is NULL while the SQL thread is stopped.
    assert_eq!(lag.time_behind, None, "{lag:?}");
    let status = engine.status();
    let replica = status.iter().find(|s| s.name == "replica").unwrap();
    assert_eq!(replica.replication.as_ref(), Some(&lag), "{replica:?}");

    pair.start_applying().await;
    pair.wait_until_caught_up().await;
    let lag = engine.measure_replication(Duration::from_secs(5)).await.remove(0);
    assert_eq!(lag.transactions_behind, Some(0), "{lag:?}");
    assert_eq!(lag.replay_paused, Some(false), "{lag:?}");
    engine.close().await;
}
