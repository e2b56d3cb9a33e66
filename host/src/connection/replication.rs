//! Replicas: which connection streams from which ([`Role`]), the checks a
//! declaration must pass when the engine is built, and measuring how far a
//! replica is behind its primary ([`ReplicaLag`]): on PostgreSQL from WAL
//! positions, on MySQL/MariaDB from `SHOW REPLICA STATUS` (and, on
//! MariaDB, from GTID positions).
//!
//! Measuring runs statements on both connections' pools; it is never on
//! the routing path (the engine measures in the background, or when
//! [`Engine::measure_replication`](crate::Engine::measure_replication) is
//! called).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::gtid;
use super::handle::Connection;
use super::registry::ConnectionEntry;
use super::url::Backend;
use super::value::{Row, Value};
use crate::error::{Error, Result};
use crate::name::ConnectionName;

/// What a connection is in replication, as declared when the engine was
/// built (the engine does not discover it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
#[non_exhaustive]
pub enum Role {
    /// Not declared a replica: a primary, or a database on its own.
    Primary,
    /// Declared a replica of another registered connection: reads the
    /// same data, some time behind, and refuses writes.
    Replica {
        /// The connection it streams from (its registered name).
        #[serde(rename = "replica_of")]
        of: ConnectionName,
    },
}

impl Role {
    /// The connection this one is a replica of, if it is one.
    pub fn replica_of(&self) -> Option<ConnectionName> {
        match self {
            Role::Primary => None,
            Role::Replica { of } => Some(*of),
        }
    }
}

/// One measurement of how far a replica is behind the connection it
/// streams from: see
/// [`Engine::measure_replication`](crate::Engine::measure_replication).
///
/// A measurement that failed has `error` set and every reading `None`:
/// check `error` first. A `None` reading with no error means the backend
/// does not report it, or has nothing to report yet (below, per field).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use std::time::Duration;
/// use dbroute::Engine;
///
/// let engine = Engine::builder()
///     .connection("default", "postgres://app@127.0.0.1:5432/app")
///     .connection("replica", "postgres://app@127.0.0.1:5433/app")
///     .replica_of("replica", "default")
///     .build()
///     .await?;
/// for lag in engine.measure_replication(Duration::from_secs(2)).await {
///     match (&lag.error, lag.bytes_behind) {
///         (Some(error), _) => eprintln!("{}: lag unknown: {error}", lag.replica),
///         (None, Some(bytes)) => println!("{} is {bytes} bytes behind {}", lag.replica, lag.primary),
///         (None, None) => println!("{}: {:?} behind", lag.replica, lag.time_behind),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct ReplicaLag {
    /// The replica.
    pub replica: ConnectionName,
    /// The connection it was declared a replica of.
    pub primary: ConnectionName,
    /// When the measurement finished.
    #[serde(rename = "measured_at_unix_ms", serialize_with = "crate::serialize::unix_millis")]
    pub measured_at: SystemTime,
    /// PostgreSQL: how many bytes of WAL the replica has still to replay,
    /// `pg_wal_lsn_diff` of the primary's `pg_current_wal_lsn()` (or, when
    /// the primary is itself a replica, its `pg_last_wal_replay_lsn()`)
    /// and the replica's `pg_last_wal_replay_lsn()`, read in that order (0
    /// when the replica caught up in between). `0`: it has replayed
    /// everything the primary had written. MySQL/MariaDB: always `None`
    /// (see `transactions_behind`).
    pub bytes_behind: Option<u64>,
    /// MariaDB: how many transactions of the primary's GTID domain the
    /// replica has still to apply: the sequence number of the primary's
    /// `@@gtid_binlog_pos` in its `@@gtid_domain_id`, less that of the
    /// replica's `@@gtid_slave_pos`, read in that order (0 when the
    /// replica caught up in between). `0`: it has applied every
    /// transaction the primary had written. PostgreSQL and MySQL: `None`.
    pub transactions_behind: Option<u64>,
    /// PostgreSQL: the time since the last transaction the replica
    /// replayed was committed on the primary (`now() -
    /// pg_last_xact_replay_timestamp()`); `None` before the replica has
    /// replayed any transaction since it started. On a primary with no
    /// writes this grows although the replica is not behind: read it with
    /// `bytes_behind`. MySQL/MariaDB: `Seconds_Behind_Master` (or
    /// `Seconds_Behind_Source`) of `SHOW REPLICA STATUS`, the server's
    /// estimate; `None` when replication is not running.
    #[serde(rename = "time_behind_ms", serialize_with = "crate::serialize::optional_millis")]
    pub time_behind: Option<Duration>,
    /// Whether replaying is paused (PostgreSQL: `pg_is_wal_replay_paused()`)
    /// or stopped (MySQL/MariaDB: the SQL thread is not running).
    pub replay_paused: Option<bool>,
    /// Why the measurement failed: the replica or its primary could not be
    /// reached in time, or the replica is not one. Never holds credentials.
    pub error: Option<String>,
    /// The primary's position and the replica's replayed one, as read
    /// (for read-your-writes): PostgreSQL WAL positions, MariaDB sequence
    /// numbers in the primary's GTID domain.
    pub(crate) positions: Option<(u64, u64)>,
}

impl ReplicaLag {
    /// Whether the measurement succeeded (`error` is `None`).
    pub fn is_known(&self) -> bool {
        self.error.is_none()
    }

    /// Whether the replica had something left to replay, as far as the
    /// positions tell (`None`: the backend reports no positions, MySQL).
    pub(crate) fn has_to_replay(&self) -> Option<bool> {
        match (self.bytes_behind, self.transactions_behind) {
            (Some(bytes), _) => Some(bytes > 0),
            (None, Some(transactions)) => Some(transactions > 0),
            (None, None) => None,
        }
    }

    fn failed(replica: ConnectionName, primary: ConnectionName, error: String) -> Self {
        ReplicaLag {
            replica,
            primary,
            measured_at: SystemTime::now(),
            bytes_behind: None,
            transactions_behind: None,
            time_behind: None,
            replay_paused: None,
            error: Some(error),
            positions: None,
        }
    }
}

/// What a successful measurement read.
#[derive(Debug, Default)]
struct Reading {
    bytes_behind: Option<u64>,
    transactions_behind: Option<u64>,
    time_behind: Option<Duration>,
    replay_paused: Option<bool>,
    positions: Option<(u64, u64)>,
}

/// Checks the declared replicas against the registered connections and
/// returns them, replica → primary, by registered name (`default` stands
/// for the default connection).
///
/// # Errors
///
/// [`Error::ReplicaOf`]: a name that is not registered, a replica of
/// itself, two primaries for one replica, a SQLite replica, a replica on
/// another backend than its primary, or a cycle.
pub(crate) fn check_declarations(
    connections: &[(ConnectionName, Backend)],
    default: ConnectionName,
    declared: &[(String, String)],
) -> Result<HashMap<ConnectionName, ConnectionName>> {
    let backend_of = |name: ConnectionName| connections.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    let registered = || {
        let names: Vec<&str> = connections.iter().map(|(n, _)| n.as_str()).collect();
        names.join(", ")
    };
    let mut replicas: HashMap<ConnectionName, ConnectionName> = HashMap::new();
    // In declaration order, so that a cycle is reported the same way every
    // time.
    let mut order = Vec::new();
    for (replica, primary) in declared {
        let resolve = |name: &str| -> Result<ConnectionName> {
            let name = ConnectionName::new(name)?;
            Ok(if name.is_default() { default } else { name })
        };
        let (replica, primary) = (resolve(replica)?, resolve(primary)?);
        let refuse = |reason: String| Error::ReplicaOf {
            replica: replica.to_string(),
            primary: primary.to_string(),
            reason,
        };
        let Some(replica_backend) = backend_of(replica) else {
            return Err(refuse(format!(
                "no connection `{replica}` is registered (registered: {}); register it, or fix the name",
                registered()
            )));
        };
        let Some(primary_backend) = backend_of(primary) else {
            return Err(refuse(format!(
                "no connection `{primary}` is registered (registered: {}); name the registered connection it streams from",
                registered()
            )));
        };
        if replica == primary {
            return Err(refuse(
                "a connection cannot be a replica of itself; name the connection it streams from".into(),
            ));
        }
        if replica_backend == Backend::Sqlite {
            return Err(refuse(
                "SQLite has no replication; remove this replica_of (two SQLite connections are two databases)".into(),
            ));
        }
        if replica_backend != primary_backend {
            return Err(refuse(format!(
                "`{replica}` is on {replica_backend} but `{primary}` on {primary_backend}; a replica is on its primary's backend"
            )));
        }
        match replicas.insert(replica, primary) {
            Some(earlier) if earlier != primary => {
                return Err(refuse(format!(
                    "it is already declared a replica of `{earlier}`; a replica streams from one connection, declare it once"
                )));
            }
            Some(_) => {}
            None => order.push(replica),
        }
    }
    for start in &order {
        let mut path = vec![*start];
        let mut at = *start;
        while let Some(next) = replicas.get(&at).copied() {
            if next == *start {
                path.push(next);
                let cycle: Vec<&str> = path.iter().map(ConnectionName::as_str).collect();
                return Err(Error::ReplicaOf {
                    replica: start.to_string(),
                    primary: replicas[start].to_string(),
                    reason: format!(
                        "the declarations make a cycle ({}); a chain of replicas must end at a connection that is not a replica",
                        cycle.join(" → ")
                    ),
                });
            }
            if path.contains(&next) {
                break; // A cycle further on, reported from its own start.
            }
            path.push(next);
            at = next;
        }
    }
    Ok(replicas)
}

/// Measures how far `replica` is behind `primary` (`None`: no longer
/// registered), within `timeout`. Never fails: a failure is the
/// measurement's `error`.
pub(crate) async fn measure(
    replica: &Arc<ConnectionEntry>,
    primary_name: ConnectionName,
    primary: Option<&Arc<ConnectionEntry>>,
    timeout: Duration,
) -> ReplicaLag {
    let Some(primary) = primary else {
        return ReplicaLag::failed(
            replica.name(),
            primary_name,
            format!(
                "its primary `{primary_name}` is no longer registered; register it again or remove `{}`",
                replica.name()
            ),
        );
    };
    let replica_conn = Connection::new(replica.clone(), None);
    let primary_conn = Connection::new(primary.clone(), None);
    let deadline = tokio::time::Instant::now() + timeout;
    let reading = match replica.url().backend() {
        Backend::Postgres => postgres(&replica_conn, &primary_conn, deadline, timeout).await,
        Backend::MySql => mysql(&replica_conn, &primary_conn, deadline, timeout).await,
        // Refused when the engine is built.
        Backend::Sqlite => Err("SQLite has no replication".to_owned()),
    };
    match reading {
        Ok(reading) => ReplicaLag {
            replica: replica.name(),
            primary: primary.name(),
            measured_at: SystemTime::now(),
            bytes_behind: reading.bytes_behind,
            transactions_behind: reading.transactions_behind,
            time_behind: reading.time_behind,
            replay_paused: reading.replay_paused,
            error: None,
            positions: reading.positions,
        },
        Err(error) => ReplicaLag::failed(replica.name(), primary.name(), error),
    }
}

/// Runs one statement of a measurement on `on`, by `deadline` (the
/// measurement's whole `timeout`): the error names the connection that did
/// not answer, which is then marked unhealthy (a server that cannot
/// answer a measurement in time is skipped for reads under
/// `ReplicaFailover::Primary`, and a primary fails writes fast).
async fn within<T>(
    deadline: tokio::time::Instant,
    timeout: Duration,
    on: &Connection,
    statement: impl Future<Output = Result<T>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout_at(deadline, statement).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            on.entry().stats().set_health(false);
            Err(format!("`{}` did not answer within {timeout:?}", on.name()))
        }
    }
}

/// The primary's position first, then the replica's: a replica that
/// replays between the two reads shows less lag, never more than it had.
async fn postgres(
    replica: &Connection,
    primary: &Connection,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> std::result::Result<Reading, String> {
    let text = |e: Error| e.to_string();
    let upstream = primary.fetch_one(
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
         ELSE pg_current_wal_lsn() END)::text AS lsn",
        &[],
    );
    let upstream = within(deadline, timeout, primary, upstream).await?;
    let row = replica.fetch_one(
        "SELECT pg_is_in_recovery() AS in_recovery, \
         pg_last_wal_replay_lsn()::text AS replayed, \
         EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_replay, \
         CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused",
        &[],
    );
    let row = within(deadline, timeout, replica, row).await?;
    let in_recovery: bool = row.try_get("in_recovery").map_err(text)?;
    if !in_recovery {
        return Err(format!(
            "`{}` is not a replica: it is not in recovery (pg_is_in_recovery() is false); \
             point it at a standby, or remove its replica_of",
            replica.name()
        ));
    }
    let lsn = |row: &Row, column: &str, of: &Connection| -> std::result::Result<u64, String> {
        let value: Option<String> = row.try_get(column).map_err(text)?;
        let value = value.ok_or_else(|| format!("`{}` reports no WAL position", of.name()))?;
        parse_lsn(&value).ok_or_else(|| format!("`{}` reports the WAL position {value:?}, not X/Y", of.name()))
    };
    let upstream = lsn(&upstream, "lsn", primary)?;
    let replayed = lsn(&row, "replayed", replica)?;
    let since_replay: Option<f64> = row.try_get("since_replay").map_err(text)?;
    Ok(Reading {
        bytes_behind: Some(upstream.saturating_sub(replayed)),
        transactions_behind: None,
        // A clock behind the primary's would make it negative.
        time_behind: since_replay.map(|s| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)),
        replay_paused: row.try_get("paused").map_err(text)?,
        positions: Some((upstream, replayed)),
    })
}

/// `SHOW REPLICA STATUS` (MariaDB 10.5.1 and later, MySQL 8.0.22 and
/// later), whose columns are named after masters and slaves on MariaDB and
/// after sources and replicas on MySQL; on MariaDB, first the primary's
/// GTID position (`@@gtid_binlog_pos`, in its `@@gtid_domain_id`), then
/// the replica's (`@@gtid_slave_pos`), as on PostgreSQL: a replica that
/// applies between the two reads shows less lag, never more.
async fn mysql(
    replica: &Connection,
    primary: &Connection,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> std::result::Result<Reading, String> {
    let upstream = within(deadline, timeout, primary, gtid::binlog_position(primary)).await?;
    let applied = match upstream {
        Some((domain, _)) => within(deadline, timeout, replica, gtid::applied(replica, domain)).await?,
        None => None,
    };
    let row = replica.fetch_optional("SHOW REPLICA STATUS", &[]);
    let row = within(deadline, timeout, replica, row).await?;
    let Some(row) = row else {
        return Err(format!(
            "`{}` is not a replica: SHOW REPLICA STATUS returned no row; \
             set up replication on it, or remove its replica_of",
            replica.name()
        ));
    };
    let column = |names: &[&str]| {
        row.columns()
            .position(|c| names.contains(&c))
            .and_then(|i| row.value(i).ok())
    };
    let seconds = column(&["Seconds_Behind_Master", "Seconds_Behind_Source"]).and_then(|v| unsigned(&v));
    let sql_running = column(&["Slave_SQL_Running", "Replica_SQL_Running"]).and_then(|v| text(&v));
    let positions = upstream
        .zip(applied)
        .map(|((_, upstream), applied)| (upstream, applied));
    Ok(Reading {
        bytes_behind: None,
        transactions_behind: positions.map(|(upstream, applied)| upstream.saturating_sub(applied)),
        time_behind: seconds.map(Duration::from_secs),
        replay_paused: sql_running.map(|running| !running.eq_ignore_ascii_case("yes")),
        positions,
    })
}

/// A cell of a `SHOW` statement as a number, however the server typed it.
fn unsigned(value: &Value) -> Option<u64> {
    match value {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Text(_) | Value::Bytes(_) => text(value)?.trim().parse().ok(),
        _ => None,
    }
}

/// A cell of a `SHOW` statement as text, however the server typed it.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

/// A PostgreSQL WAL position, `X/Y` (two hexadecimal halves of a 64-bit
/// byte position).
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let high = u32::from_str_radix(high, 16).ok()?;
    let low = u32::from_str_radix(low, 16).ok()?;
    Some((u64::from(high) << 32) | u64::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ConnectionName {
        ConnectionName::new(s).unwrap()
    }

    fn check(declared: &[(&str, &str)]) -> Result<HashMap<ConnectionName, ConnectionName>> {
        let connections = [
            (name("main"), Backend::Postgres),
            (name("r1"), Backend::Postgres),
            (name("r2"), Backend::Postgres),
            (name("maria"), Backend::MySql),
            (name("lite"), Backend::Sqlite),
            (name("lite2"), Backend::Sqlite),
        ];
        let declared: Vec<_> = declared.iter().map(|(r, p)| (r.to_string(), p.to_string())).collect();
        check_declarations(&connections, name("main"), &declared)
    }

    fn reason(declared: &[(&str, &str)]) -> String {
        match check(declared) {
            Err(Error::ReplicaOf { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn parses_wal_positions() {
        assert_eq!(parse_lsn("0/3000000"), Some(0x300_0000));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_lsn("3000000"), None);
        assert_eq!(parse_lsn("0/xyz"), None);
    }

    #[test]
    fn reads_show_cells_however_typed() {
        assert_eq!(unsigned(&Value::Int(7)), Some(7));
        assert_eq!(unsigned(&Value::Text("12".into())), Some(12));
        assert_eq!(unsigned(&Value::Bytes(b"3".to_vec())), Some(3));
        assert_eq!(unsigned(&Value::Null), None);
        assert_eq!(unsigned(&Value::Int(-1)), None);
        assert_eq!(text(&Value::Bytes(b"Yes".to_vec())).as_deref(), Some("Yes"));
    }

    #[test]
    fn accepts_replicas_and_chains_and_resolves_default() {
        let replicas = check(&[("r1", "default"), ("r2", "r1"), ("r1", "main")]).unwrap();
        assert_eq!(replicas[&name("r1")], name("main"));
        assert_eq!(replicas[&name("r2")], name("r1"));
        assert_eq!(replicas.len(), 2);
        assert!(check(&[]).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_cannot_hold() {
        assert!(reason(&[("r1", "nowhere")]).contains("no connection `nowhere`"));
        assert!(reason(&[("nowhere", "main")]).contains("no connection `nowhere`"));
        assert!(reason(&[("r1", "r1")]).contains("itself"));
        assert!(reason(&[("main", "default")]).contains("itself"));
        assert!(reason(&[("lite", "lite2")]).contains("SQLite has no replication"));
        assert!(reason(&[("maria", "main")]).contains("on mysql but `main` on postgres"));
        assert!(reason(&[("r1", "main"), ("r1", "r2")]).contains("already declared a replica of `main`"));
        let cycle = reason(&[("r1", "r2"), ("r2", "main"), ("main", "r1")]);
        assert!(cycle.contains("cycle") && cycle.contains(" → "), "{cycle}");
        assert!(matches!(check(&[("r1", "bad name")]), Err(Error::InvalidName { .. })));
    }
}
