//! A PostgreSQL primary and a streaming replica of it, of the test's own:
//! the primary initdb'd into a temporary folder, the replica copied from it
//! with `pg_basebackup -R` (which makes it a standby streaming from the
//! primary), each on a free loopback port with trust authentication. Both
//! are stopped (`pg_ctl stop -m immediate`) and the folder removed when the
//! cluster is dropped, also when the test panics, and also when starting
//! fails halfway.
//!
//! Lag is made, not waited for: [`ReplicaCluster::pause_replay`] stops the
//! replica from applying what it receives (`pg_wal_replay_pause()`), so
//! every write on the primary after it stays unreplayed until
//! [`ReplicaCluster::resume_replay`].
//!
//! It uses the binaries and the root handling of `pg_server.rs` (as root,
//! every command runs as the `postgres` user through `runuser`). Starting
//! takes about two seconds: no fsync, small buffers, a fast checkpoint for
//! the base backup.

use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::Connection as _;

use crate::pg_server::{Ctl, find_bin, free_port, server_folder};

/// How long the replica may take to start streaming or to pause.
const WAIT: Duration = Duration::from_secs(30);

/// A primary and its streaming replica, of this test only.
pub(crate) struct ReplicaCluster {
    // Dropped in this order: both servers stop, then the folder goes.
    replica: Server,
    primary: Server,
    _dir: tempfile::TempDir,
}

/// One server, stopped (immediately) when dropped.
struct Server(Ctl);

impl Drop for Server {
    fn drop(&mut self) {
        // Immediate: the test is over, nothing to keep. Fails harmlessly
        // when the server is not running.
        let _ = self
            .0
            .command("pg_ctl")
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(&self.0.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl ReplicaCluster {
    /// Makes and starts the primary, then the replica from a base backup
    /// of it. Blocking: about two seconds. Call
    /// [`ReplicaCluster::wait_until_streaming`] before relying on
    /// replication.
    pub(crate) fn start() -> ReplicaCluster {
        let bin = find_bin();
        let (dir, run_as) = server_folder("dbroute-replica-");
        let ctl = |name: &str, port: u16| Ctl {
            bin: bin.clone(),
            data: dir.path().join(name),
            log: dir.path().join(format!("{name}.log")),
            socket_dir: dir.path().to_path_buf(),
            port,
            run_as,
        };

        // Guarded before it starts: a panic from here on stops it.
        let primary = Server(ctl("primary", free_port()));
        primary.0.initdb();
        // PostgreSQL 15's defaults allow streaming replication (wal_level
        // replica, 10 WAL senders, hot standby) and initdb's trust rules
        // cover replication connections from 127.0.0.1.
        primary.0.start();

        // The primary listens already: its port cannot be picked again.
        let replica = Server(ctl("replica", free_port()));
        let (replica_data, primary_port) = (replica.0.data.display().to_string(), primary.0.port.to_string());
        primary.0.run(
            "pg_basebackup",
            &[
                "-D",
                &replica_data,
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                // standby.signal, and primary_conninfo pointing at the
                // primary: the copy starts as its streaming replica.
                "-R",
                "-X",
                "stream",
                // Without it the backup waits for a spread checkpoint.
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        // The same options as the primary's: a hot standby needs at least
        // its primary's max_connections.
        replica.0.start();
        ReplicaCluster {
            replica,
            primary,
            _dir: dir,
        }
    }

    /// The URL of database `db` on the primary (as user `postgres`).
    pub(crate) fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary.0.port)
    }

    /// The URL of database `db` on the replica (as user `postgres`).
    pub(crate) fn replica_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.replica.0.port)
    }

    /// Returns when the primary reports the replica streaming.
    pub(crate) async fn wait_until_streaming(&self) {
        let mut primary = connect(&self.primary_url("postgres")).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let streaming: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                    .fetch_one(&mut primary)
                    .await
                    .expect("pg_stat_replication");
            if streaming > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not start streaming within {WAIT:?}; its log:\n{}",
                std::fs::read_to_string(&self.replica.0.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pauses replay on the replica: from when this returns, nothing written
    /// on the primary is applied on the replica (it is still received)
    /// until [`ReplicaCluster::resume_replay`].
    pub(crate) async fn pause_replay(&self) {
        let mut replica = connect(&self.replica_url("postgres")).await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut replica)
            .await
            .expect("pg_wal_replay_pause");
        // The request alone stops replay before the next record; wait for
        // the startup process to confirm it all the same.
        let deadline = Instant::now() + WAIT;
        loop {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut replica)
                .await
                .expect("pg_get_wal_replay_pause_state");
            if state == "paused" {
                return;
            }
            assert!(Instant::now() < deadline, "replay not paused within {WAIT:?}: {state}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Kills the replica the hard way (`pg_ctl stop -m immediate`: every
    /// connection cut), as a crash would. Blocks this worker thread (a
    /// multi-threaded runtime's) until it is down.
    pub(crate) fn kill_replica(&self) {
        tokio::task::block_in_place(|| self.replica.0.stop("immediate"));
    }

    /// Kills the primary the hard way, as [`ReplicaCluster::kill_replica`]
    /// does the replica.
    pub(crate) fn kill_primary(&self) {
        tokio::task::block_in_place(|| self.primary.0.stop("immediate"));
    }

    /// Starts the killed replica again, on the same port and data: it
    /// recovers and streams again. Blocks as [`ReplicaCluster::kill_replica`].
    pub(crate) fn restart_replica(&self) {
        tokio::task::block_in_place(|| self.replica.0.start());
    }

    /// Resumes replay on the replica: it catches up with what it received.
    pub(crate) async fn resume_replay(&self) {
        let mut replica = connect(&self.replica_url("postgres")).await;
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut replica)
            .await
            .expect("pg_wal_replay_resume");
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}
