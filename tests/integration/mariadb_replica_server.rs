//! A MariaDB primary and a replica of it replicating by GTID, of the
//! test's own: one data folder made with `mariadb-install-db` in a
//! temporary folder and copied for the replica, two `mariadbd` on free
//! loopback ports (`--log-bin`, their own `--server-id` (their port),
//! `--gtid-strict-mode`), a replication user with a password on the
//! primary, and on the replica `CHANGE MASTER TO ... MASTER_USE_GTID =
//! slave_pos; START SLAVE`. Both servers are killed and the folder removed
//! when the pair is dropped, also when the test panics, and also when
//! starting fails halfway. The machine's own MariaDB (port 3306) is never
//! touched.
//!
//! Lag is made, not waited for: [`MariaDbPair::stop_applying`] stops the
//! replica's SQL thread (`STOP SLAVE SQL_THREAD`), so every transaction
//! committed on the primary after it is received but not applied until
//! [`MariaDbPair::start_applying`].
//!
//! Starting takes about five seconds, nearly all of it
//! `mariadb-install-db` (run once per pair; the replica starts from a copy
//! of the same folder, so both servers hold the same system tables and the
//! replica needs nothing but what the primary writes after).
//!
//! As root, the servers run as root (`--user=root`): the folder is the
//! test's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::Connection as _;

use crate::pg_server::{free_port, running_as_root};

/// How long a server may take to accept connections, or the replica to
/// catch up.
const WAIT: Duration = Duration::from_secs(60);

/// The replication user's password: the test's own servers, on loopback.
const REPLICATION_PASSWORD: &str = "dbroute-repl";

/// A MariaDB primary and its GTID replica, of this test only.
pub(crate) struct MariaDbPair {
    // Dropped in this order: both servers are killed, then the folder goes.
    replica: Server,
    primary: Server,
    _dir: tempfile::TempDir,
}

/// One `mariadbd`, killed when dropped.
struct Server {
    data: PathBuf,
    log: PathBuf,
    port: u16,
    server_id: u32,
    child: Mutex<Option<Child>>,
}

impl Server {
    /// Its server id is its port: unique among the servers on this machine,
    /// as a primary's must be for its GTIDs to name it (causal tokens are
    /// bound to it).
    fn new(dir: &Path, name: &str) -> Server {
        let port = free_port();
        Server {
            data: dir.join(name),
            log: dir.join(format!("{name}.err")),
            port,
            server_id: u32::from(port),
            child: Mutex::new(None),
        }
    }

    /// Starts `mariadbd` on its data folder (not waiting for it).
    fn spawn(&self) {
        let dir = self.data.parent().expect("a parent folder");
        let name = self.data.file_name().and_then(|n| n.to_str()).expect("a folder name");
        let mut command = Command::new(mariadbd());
        // --no-defaults first: no option file of the machine's server.
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join(format!("{name}.sock")).display()))
            .arg(format!("--pid-file={}", dir.join(format!("{name}.pid")).display()))
            .arg(format!("--log-error={}", self.log.display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .arg(format!("--server-id={}", self.server_id))
            .arg(format!("--log-bin={}", self.data.join("binlog").display()))
            .arg(format!("--relay-log={}", self.data.join("relay").display()))
            .arg("--log-slave-updates")
            .arg("--gtid-strict-mode=1")
            .arg("--skip-name-resolve")
            // Small and unsynced: a test's data, nothing to keep.
            .args([
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-flush-method=nosync",
                "--sync-binlog=0",
                "--max-connections=100",
                "--performance-schema=0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            command.arg("--user=root");
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start mariadbd: {e}"));
        *self.child() = Some(child);
    }

    /// Kills the server (SIGKILL, as a crash would) and reaps it.
    fn kill(&self) {
        if let Some(mut child) = self.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running process, if any (a lock poisoned by a panicking test
    /// still gives it, so that the server is killed all the same).
    fn child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Returns a connection once the server accepts one.
    async fn wait_ready(&self) -> sqlx::MySqlConnection {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(conn) = sqlx::MySqlConnection::connect(&self.url("mysql")).await {
                return conn;
            }
            let exited = self.child().as_mut().and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("mariadbd exited ({status}); its log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd on port {} did not accept connections within {WAIT:?}; its log:\n{}",
                self.port,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `mariadbd` on PATH, else where Debian puts it.
fn mariadbd() -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/libexec")])
    {
        let path = dir.join("mariadbd");
        if path.is_file() {
            return path;
        }
    }
    panic!("mariadbd not found: install the MariaDB server (mariadb-server)")
}

/// Makes a server's system tables in `data` (`mariadb-install-db`, else
/// `mysql_install_db`): root without a password, no test database.
fn install(data: &Path) {
    // Its own temporary folder: installs running at once in one folder
    // collide on their temporary tables.
    let tmp = data.parent().expect("a parent folder").join("tmp");
    std::fs::create_dir_all(&tmp).expect("a temporary folder");
    let mut last = None;
    for program in ["mariadb-install-db", "mysql_install_db"] {
        let mut command = Command::new(program);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-flush-method=nosync",
            ])
            .stdin(Stdio::null());
        if running_as_root() {
            command.arg("--user=root");
        }
        match command.output() {
            Ok(output) if output.status.success() => return,
            Ok(output) => panic!(
                "{program} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(e) => last = Some(format!("{program}: {e}")),
        }
    }
    panic!("cannot make a MariaDB data folder: {last:?}; install the MariaDB server (mariadb-server)")
}

impl MariaDbPair {
    /// Makes and starts the primary and the replica, links them by GTID and
    /// makes database `test` (created on the primary, replicated). Returns
    /// once the replica has applied everything the primary wrote.
    pub(crate) async fn start() -> MariaDbPair {
        let dir = tempfile::Builder::new()
            .prefix("dbroute-mariadb-")
            .tempdir()
            .expect("temporary folder");
        // Guarded before they start: a panic from here on kills them.
        let primary = Server::new(dir.path(), "primary");
        let mut replica = Server::new(dir.path(), "replica");
        while replica.port == primary.port {
            replica = Server::new(dir.path(), "replica");
        }
        let (data, copy) = (primary.data.clone(), replica.data.clone());
        tokio::task::spawn_blocking(move || {
            install(&data);
            let status = Command::new("cp").arg("-a").arg(&data).arg(&copy).status().expect("cp");
            assert!(status.success(), "cannot copy {} to {}", data.display(), copy.display());
        })
        .await
        .unwrap();
        primary.spawn();
        replica.spawn();
        let pair = MariaDbPair {
            replica,
            primary,
            _dir: dir,
        };
        let mut primary = pair.primary.wait_ready().await;
        let mut replica = pair.replica.wait_ready().await;
        for statement in [
            format!("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{REPLICATION_PASSWORD}'"),
            "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'".to_owned(),
            "CREATE DATABASE test".to_owned(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut primary)
                .await
                .expect("setting up the primary");
        }
        let link = format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
             MASTER_PASSWORD = '{REPLICATION_PASSWORD}', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
            pair.primary.port
        );
        for statement in [link, "START SLAVE".to_owned()] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut replica)
                .await
                .expect("linking the replica");
        }
        pair.wait_until_caught_up().await;
        pair
    }

    /// The URL of database `db` on the primary (as `root`, no password).
    pub(crate) fn primary_url(&self, db: &str) -> String {
        self.primary.url(db)
    }

    /// The URL of database `db` on the replica (as `root`, no password).
    pub(crate) fn replica_url(&self, db: &str) -> String {
        self.replica.url(db)
    }

    /// The replica's `@@server_id` (a read that returns it ran there).
    pub(crate) fn replica_server_id(&self) -> u32 {
        self.replica.server_id
    }

    /// Returns when the replica has applied every transaction the primary
    /// has written (`@@gtid_slave_pos` reaches the primary's
    /// `@@gtid_binlog_pos`).
    pub(crate) async fn wait_until_caught_up(&self) {
        let mut primary = self.primary.wait_ready().await;
        let mut replica = self.replica.wait_ready().await;
        let target: String = sqlx::query_scalar("SELECT CAST(@@gtid_binlog_pos AS CHAR)")
            .fetch_one(&mut primary)
            .await
            .expect("@@gtid_binlog_pos");
        let deadline = Instant::now() + WAIT;
        loop {
            let applied: String = sqlx::query_scalar("SELECT CAST(@@gtid_slave_pos AS CHAR)")
                .fetch_one(&mut replica)
                .await
                .expect("@@gtid_slave_pos");
            if applied == target {
                return;
            }
            if Instant::now() > deadline {
                let status = sqlx::raw_sql("SHOW SLAVE STATUS")
                    .fetch_optional(&mut replica)
                    .await
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_default();
                panic!(
                    "the replica did not reach {target:?} within {WAIT:?} (at {applied:?}); {status}; its log:\n{}",
                    self.replica.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the replica's SQL thread: from when this returns, nothing
    /// committed on the primary is applied on the replica (it is still
    /// received) until [`MariaDbPair::start_applying`].
    pub(crate) async fn stop_applying(&self) {
        self.on_replica("STOP SLAVE SQL_THREAD").await;
    }

    /// Starts the replica's SQL thread again: it catches up.
    pub(crate) async fn start_applying(&self) {
        self.on_replica("START SLAVE SQL_THREAD").await;
    }

    async fn on_replica(&self, statement: &'static str) {
        let mut replica = self.replica.wait_ready().await;
        sqlx::raw_sql(statement)
            .execute(&mut replica)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// Kills the replica (SIGKILL: every connection cut), as a crash would.
    pub(crate) fn kill_replica(&self) {
        self.replica.kill();
    }

    /// Starts the killed replica again, on the same port and data: it
    /// resumes replicating from its GTID position. Returns once it accepts
    /// connections.
    pub(crate) async fn restart_replica(&self) {
        self.replica.spawn();
        self.replica.wait_ready().await;
    }
}
