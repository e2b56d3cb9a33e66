//! The connections' state (ABI 1.2): what `dbroute_state` is told, read by
//! the SDK's own scanner into plain owned values a router can keep.

use alloc::string::String;
use alloc::vec::Vec;

use crate::Kind;
use crate::json::{Cursor, InputError, Result};

/// The state of every registered connection, as the host last told it: see
/// [`Router::state`](crate::Router::state). Owned: keep it in the router.
///
/// ```
/// use dbroute_sdk::State;
///
/// let state = State::parse(
///     r#"{"connections":[
///         {"name":"default","role":"primary","replica_of":null,"healthy":true,"lag_ms":null,"lag_bytes":null},
///         {"name":"replica","role":"replica","replica_of":"default","healthy":true,"lag_ms":40,"lag_bytes":8192}]}"#,
/// )
/// .unwrap();
/// let replica = state.get("replica").unwrap();
/// assert_eq!((replica.replica_of(), replica.lag_ms()), (Some("default"), Some(40)));
/// assert!(state.get("default").unwrap().replica_of().is_none());
/// assert_eq!(state.replicas().count(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    connections: Vec<ConnectionState>,
}

/// One connection's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionState {
    name: String,
    replica_of: Option<String>,
    healthy: Option<bool>,
    lag_ms: Option<u64>,
    lag_bytes: Option<u64>,
}

impl ConnectionState {
    /// The connection's registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection it is a replica of; `None` for a primary.
    pub fn replica_of(&self) -> Option<&str> {
        self.replica_of.as_deref()
    }

    /// Whether it is a replica.
    pub fn is_replica(&self) -> bool {
        self.replica_of.is_some()
    }

    /// Whether its last health check (or lag measurement, or statement)
    /// succeeded; `None` when it has not been checked yet.
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// A replica's lag in milliseconds (0: it has replayed everything);
    /// `None` for a primary, or when it is not known (not measured yet, or
    /// the last measurement failed).
    pub fn lag_ms(&self) -> Option<u64> {
        self.lag_ms
    }

    /// The bytes of WAL a replica has still to replay (PostgreSQL); `None`
    /// when not known.
    pub fn lag_bytes(&self) -> Option<u64> {
        self.lag_bytes
    }
}

impl State {
    /// Every connection's state, in the host's order (the default first).
    pub fn connections(&self) -> &[ConnectionState] {
        &self.connections
    }

    /// The state of the connection `name`.
    pub fn get(&self, name: &str) -> Option<&ConnectionState> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// The replicas, in the host's order.
    pub fn replicas(&self) -> impl Iterator<Item = &ConnectionState> {
        self.connections.iter().filter(|c| c.is_replica())
    }

    /// Reads the `dbroute_state` input, JSON text. Members it does not know
    /// are skipped (later minor versions may add some).
    ///
    /// # Errors
    ///
    /// A message saying what is malformed (`dbroute_state` then traps: the
    /// host drops the instance).
    pub fn parse(text: &str) -> core::result::Result<State, String> {
        parse(text).map_err(|e| {
            let mut message = String::new();
            e.write_to(&mut message);
            message
        })
    }
}

/// Reads the `dbroute_state` input.
pub(crate) fn parse(text: &str) -> Result<State> {
    let mut cur = Cursor::new(text);
    let mut list = None;
    cur.object(|cur, key| {
        if key.is("connections") {
            list = Some(cur.value()?);
        } else {
            cur.skip_value()?;
        }
        Ok(())
    })?;
    cur.finish()?;
    let bad = |what| InputError { offset: 0, what };
    let list = list.ok_or_else(|| bad("the state has no connections"))?;
    if list.kind() != Kind::Array {
        return Err(bad("the state's connections are not an array"));
    }
    let mut connections = Vec::new();
    for item in list.items() {
        if item.kind() != Kind::Object {
            return Err(bad("a connection's state is not an object"));
        }
        let name = item
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("a connection's state has no string name"))?;
        let optional = |key: &str| item.get(key).filter(|v| !v.is_null());
        let replica_of = match optional("replica_of") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| bad("a connection's replica_of is not a string"))?
                    .into_owned(),
            ),
        };
        let number = |key: &str, what| match optional(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| bad(what)),
        };
        let healthy = match optional("healthy") {
            None => None,
            Some(v) => Some(
                v.as_bool()
                    .ok_or_else(|| bad("a connection's healthy is not a boolean"))?,
            ),
        };
        connections.push(ConnectionState {
            name: name.into_owned(),
            replica_of,
            healthy,
            lag_ms: number("lag_ms", "a connection's lag_ms is not a whole number")?,
            lag_bytes: number("lag_bytes", "a connection's lag_bytes is not a whole number")?,
        });
    }
    Ok(State { connections })
}
