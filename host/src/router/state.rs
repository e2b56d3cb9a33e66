//! The connections' state as routers are told it (ABI 1.2): per
//! connection, its role, its health and, for a replica, its lag. The
//! engine makes a snapshot when something in it may have changed (a health
//! check, a lag measurement, a connection added or removed) and hands it to
//! each router's [`HostRouter::state_changed`](super::HostRouter::state_changed);
//! never on the routing path.

use std::fmt;
use std::sync::Arc;

use crate::connection::replication::{ReplicaLag, Role};
use crate::connection::stats::Health;
use crate::name::ConnectionName;

/// One connection's state, as routers are told it.
///
/// # Examples
///
/// ```
/// use dbroute::ConnectionName;
/// use dbroute::router::ConnectionState;
/// use dbroute::stats::{Health, Role};
///
/// let replica = ConnectionState::new(ConnectionName::new("replica")?, Role::Replica { of: ConnectionName::DEFAULT })
///     .with_health(Health::Healthy)
///     .with_lag(Some(120), Some(4096));
/// assert_eq!(replica.role.replica_of(), Some(ConnectionName::DEFAULT));
/// assert_eq!((replica.lag_ms, replica.lag_bytes), (Some(120), Some(4096)));
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionState {
    /// The connection's registered name.
    pub name: ConnectionName,
    /// A primary, or a replica of which connection.
    pub role: Role,
    /// The result of its last health check, lag measurement or statement
    /// when the snapshot was made.
    pub health: Health,
    /// How far behind its primary a replica is, in milliseconds: 0 when
    /// it has replayed everything its primary had written; otherwise the
    /// time since the last transaction it replayed was committed
    /// (PostgreSQL; an upper bound of the real lag), or the server's
    /// `Seconds_Behind_Master` (MySQL/MariaDB). `None`: a primary, or a
    /// replica not measured yet or whose last measurement failed.
    pub lag_ms: Option<u64>,
    /// How many bytes of WAL a replica has still to replay (PostgreSQL).
    /// `None`: a primary, MySQL/MariaDB, or a replica not measured yet or
    /// whose last measurement failed.
    pub lag_bytes: Option<u64>,
}

impl ConnectionState {
    /// A connection's state: health unknown, lag unknown.
    pub fn new(name: ConnectionName, role: Role) -> Self {
        ConnectionState {
            name,
            role,
            health: Health::Unknown,
            lag_ms: None,
            lag_bytes: None,
        }
    }

    /// With this health.
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    /// With this lag, in milliseconds and in bytes (`None`: unknown).
    pub fn with_lag(mut self, ms: Option<u64>, bytes: Option<u64>) -> Self {
        self.lag_ms = ms;
        self.lag_bytes = bytes;
        self
    }

    /// The lag a router is told for a replica's last measurement (`None`:
    /// not measured yet): nothing when it failed; 0 ms when no byte (no
    /// transaction, MariaDB) is left to replay (PostgreSQL's time since the
    /// last replayed transaction grows on an idle primary although the
    /// replica is not behind).
    pub(crate) fn with_measurement(self, lag: Option<&ReplicaLag>) -> Self {
        let Some(lag) = lag.filter(|lag| lag.is_known()) else {
            return self.with_lag(None, None);
        };
        let ms = match lag.has_to_replay() {
            Some(false) => Some(0),
            _ => lag
                .time_behind
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        };
        self.with_lag(ms, lag.bytes_behind)
    }
}

/// A snapshot of every registered connection's state, in the engine's
/// order (the default first), as routers are told it: through
/// [`HostRouter::state_changed`](super::HostRouter::state_changed)
/// natively, through the `dbroute_state` export (ABI 1.2,
/// `docs/ABI.md`) in WebAssembly. Cheap to clone.
///
/// # Examples
///
/// ```
/// use dbroute::ConnectionName;
/// use dbroute::router::{ConnectionState, ConnectionStates};
/// use dbroute::stats::{Health, Role};
///
/// let states = ConnectionStates::new(vec![
///     ConnectionState::new(ConnectionName::DEFAULT, Role::Primary).with_health(Health::Healthy),
///     ConnectionState::new(ConnectionName::new("replica")?, Role::Replica { of: ConnectionName::DEFAULT })
///         .with_lag(Some(0), Some(0)),
/// ]);
/// assert_eq!(states.get("replica").and_then(|s| s.lag_ms), Some(0));
/// assert_eq!(states.connections().len(), 2);
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Clone)]
pub struct ConnectionStates(Arc<Inner>);

struct Inner {
    connections: Vec<ConnectionState>,
    /// The `dbroute_state` input, built once.
    abi_json: String,
}

impl ConnectionStates {
    /// A snapshot of these connections' states.
    pub fn new(connections: Vec<ConnectionState>) -> Self {
        let abi_json = crate::router::wasm::abi::state_input(&connections);
        ConnectionStates(Arc::new(Inner { connections, abi_json }))
    }

    /// Every connection's state.
    pub fn connections(&self) -> &[ConnectionState] {
        &self.0.connections
    }

    /// The state of the connection registered as `name`.
    pub fn get(&self, name: &str) -> Option<&ConnectionState> {
        self.0.connections.iter().find(|c| c.name.as_str() == name)
    }

    /// The input of `dbroute_state` (the ABI's JSON).
    pub(crate) fn abi_json(&self) -> &str {
        &self.0.abi_json
    }
}

impl PartialEq for ConnectionStates {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.connections == other.0.connections
    }
}

impl Eq for ConnectionStates {}

impl fmt::Debug for ConnectionStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0.connections).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn measured(bytes: Option<u64>, time: Option<Duration>, error: Option<&str>) -> ReplicaLag {
        ReplicaLag {
            replica: ConnectionName::from_static("replica"),
            primary: ConnectionName::DEFAULT,
            measured_at: SystemTime::now(),
            bytes_behind: bytes,
            transactions_behind: None,
            time_behind: time,
            replay_paused: Some(false),
            error: error.map(str::to_owned),
            positions: None,
        }
    }

    #[test]
    fn the_lag_a_router_is_told() {
        let replica = || {
            ConnectionState::new(
                ConnectionName::from_static("replica"),
                Role::Replica {
                    of: ConnectionName::DEFAULT,
                },
            )
        };
        let lag = |m: Option<ReplicaLag>| {
            let state = replica().with_measurement(m.as_ref());
            (state.lag_ms, state.lag_bytes)
        };
        // Not measured yet, or the measurement failed: unknown.
        assert_eq!(lag(None), (None, None));
        assert_eq!(lag(Some(measured(None, None, Some("down")))), (None, None));
        // Nothing left to replay: 0 ms, however long ago the last
        // transaction was.
        assert_eq!(
            lag(Some(measured(Some(0), Some(Duration::from_secs(90)), None))),
            (Some(0), Some(0))
        );
        // Behind: the time since the last replayed transaction.
        assert_eq!(
            lag(Some(measured(Some(512), Some(Duration::from_millis(1500)), None))),
            (Some(1500), Some(512))
        );
        // MySQL: seconds behind, no bytes.
        assert_eq!(
            lag(Some(measured(None, Some(Duration::from_secs(3)), None))),
            (Some(3000), None)
        );
        // Nothing replayed since it started: the bytes alone.
        assert_eq!(lag(Some(measured(Some(64), None, None))), (None, Some(64)));
        // MariaDB: no transaction left to apply is 0 ms; some left, its
        // seconds behind.
        let maria = |transactions, time| ReplicaLag {
            transactions_behind: Some(transactions),
            ..measured(None, time, None)
        };
        assert_eq!(lag(Some(maria(0, Some(Duration::from_secs(4))))), (Some(0), None));
        assert_eq!(lag(Some(maria(2, Some(Duration::from_secs(4))))), (Some(4000), None));
    }

    #[test]
    fn snapshots_compare_by_content() {
        let one = ConnectionStates::new(vec![ConnectionState::new(ConnectionName::DEFAULT, Role::Primary)]);
        let same = ConnectionStates::new(vec![ConnectionState::new(ConnectionName::DEFAULT, Role::Primary)]);
        let other = ConnectionStates::new(vec![
            ConnectionState::new(ConnectionName::DEFAULT, Role::Primary).with_health(Health::Healthy),
        ]);
        assert_eq!(one, same);
        assert_ne!(one, other);
        assert!(one.abi_json().starts_with(r#"{"connections":[{"name":"default""#));
    }
}
