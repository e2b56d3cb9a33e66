//! A PostgreSQL server of the test's own: initdb'd into a temporary folder,
//! listening on a free loopback port with trust authentication, that a test
//! can kill (`pg_ctl stop -m immediate`) and start again on the same port
//! and data, and that is stopped and removed when dropped.
//!
//! It uses the machine's PostgreSQL binaries (the newest
//! `/usr/lib/postgresql/*/bin`, or the folder in `DBROUTE_PG_BIN`). initdb
//! refuses to run as root: as root, every command runs as the `postgres`
//! user through `runuser`, which is given the temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a start or a stop may take before the helper gives up.
const CTL_WAIT_SECS: &str = "60";

/// A second PostgreSQL server, of this test only.
pub(crate) struct PgServer {
    ctl: Arc<Ctl>,
    // Removed (after the server is stopped) when the server is dropped.
    _dir: tempfile::TempDir,
}

/// What running `pg_ctl` needs: cheap to hand to a blocking thread. (Also
/// used by `replica_server.rs`.)
pub(crate) struct Ctl {
    pub(crate) bin: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) socket_dir: PathBuf,
    pub(crate) port: u16,
    /// `Some("postgres")` when running as root.
    pub(crate) run_as: Option<&'static str>,
}

/// The folder of the newest installed PostgreSQL's binaries.
pub(crate) fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("DBROUTE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL's initdb and pg_ctl: install postgresql, or set DBROUTE_PG_BIN")
}

/// A temporary folder for servers' data, and the user they run as: as
/// root, `postgres` (PostgreSQL refuses to run as root), who then owns the
/// folder.
pub(crate) fn server_folder(prefix: &str) -> (tempfile::TempDir, Option<&'static str>) {
    let run_as = running_as_root().then_some("postgres");
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary folder");
    if let Some(user) = run_as {
        let status = Command::new("chown")
            .arg(format!("{user}:"))
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "cannot give {} to {user}", dir.path().display());
    }
    (dir, run_as)
}

pub(crate) fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

impl Ctl {
    /// Makes a new cluster in its data folder: superuser `postgres`, trust
    /// authentication, UTF-8, no fsync.
    pub(crate) fn initdb(&self) {
        let data = self.data.display().to_string();
        self.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
    }

    pub(crate) fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        // The postgres user may not be allowed into the test's folder.
        command
            .current_dir(self.data.parent().unwrap_or_else(|| Path::new("/")))
            .stdin(Stdio::null());
        command
    }

    /// Runs `program args`; panics with its output when it fails.
    pub(crate) fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!(
                "{program} {args:?} failed ({}):\n{}{}\nserver log:\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    pub(crate) fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -F -c max_connections=60 -c shared_buffers=16MB",
            self.port,
            self.socket_dir.display()
        );
        let (data, log) = (self.data.display().to_string(), self.log.display().to_string());
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                CTL_WAIT_SECS,
                "-D",
                &data,
                "-l",
                &log,
                "-o",
                &options,
            ],
        );
    }

    pub(crate) fn stop(&self, mode: &str) {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["stop", "-w", "-t", CTL_WAIT_SECS, "-m", mode, "-D", &data]);
    }

    pub(crate) fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .args(["status", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl PgServer {
    /// initdb's a new cluster in a temporary folder and starts it on a free
    /// loopback port. Blocking: takes a second or two.
    pub(crate) fn start() -> PgServer {
        let bin = find_bin();
        let (dir, run_as) = server_folder("dbroute-pg-");
        let ctl = Ctl {
            bin,
            data: dir.path().join("data"),
            log: dir.path().join("server.log"),
            socket_dir: dir.path().to_path_buf(),
            port: free_port(),
            run_as,
        };
        ctl.initdb();
        ctl.start();
        PgServer {
            ctl: Arc::new(ctl),
            _dir: dir,
        }
    }

    /// The URL of database `db` on this server (as user `postgres`).
    pub(crate) fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.ctl.port)
    }

    /// The port the server listens on.
    pub(crate) fn port(&self) -> u16 {
        self.ctl.port
    }

    /// Kills the server the hard way (`pg_ctl stop -m immediate`: no
    /// checkpoint, every connection cut), as a crash would. Returns when it
    /// is down.
    pub(crate) async fn kill(&self) {
        let ctl = self.ctl.clone();
        tokio::task::spawn_blocking(move || ctl.stop("immediate"))
            .await
            .expect("pg_ctl stop");
    }

    /// Starts the server again, on the same port and data. Returns when it
    /// accepts connections, and how long that took.
    pub(crate) async fn restart(&self) -> Duration {
        let ctl = self.ctl.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || ctl.start())
            .await
            .expect("pg_ctl start");
        started.elapsed()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.ctl.is_running() {
            // Immediate: the test is over, nothing to keep.
            let _ = self
                .ctl
                .command("pg_ctl")
                .args(["stop", "-w", "-m", "immediate", "-D"])
                .arg(&self.ctl.data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
