//! Routing by replica lag (ABI 1.2): reads go to a replica that is not
//! known to be unhealthy and whose lag is at most the configuration's
//! `max_lag_ms`, else to that replica's primary; writes go to the primary.
//! The cases are in `example-routers/lag-cases.json` (the C version:
//! `example-routers/c/lag.c`).
//!
//! - Configuration: `{"max_lag_ms": 500}` (a whole number of
//!   milliseconds; required).
//! - Reads: the first replica, in the host's order, whose `healthy` is not
//!   `false` and whose `lag_ms` is known and at most `max_lag_ms`; when
//!   none qualifies, the primary of the first replica. A lag that is not
//!   known (not measured yet, or the measurement failed) does not qualify.
//! - Writes: the primary the first replica streams from, up its chain to a
//!   connection that is not a replica.
//! - Before the host has told it any state, or when no replica is
//!   declared: no opinion (the host's `default`).
//!
//! Deterministic: the host caches its answers and forgets them when the
//! state changes.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// Reads to a replica within `max_lag_ms`, else to its primary.
#[derive(Debug, Default)]
pub struct LagRouter {
    max_lag_ms: u64,
    state: State,
}

impl LagRouter {
    /// The connection `name` streams from, up its chain to one that is not
    /// a replica (bounded: a cycle cannot be declared, but the walk stops
    /// anyway).
    fn root_of<'a>(&'a self, mut name: &'a str) -> &'a str {
        for _ in 0..self.state.connections().len() {
            match self.state.get(name).and_then(ConnectionState::replica_of) {
                Some(up) => name = up,
                None => break,
            }
        }
        name
    }
}

impl Router for LagRouter {
    const DETERMINISTIC: bool = true;
    const CONNECTION_STATE: bool = true;

    fn init(&mut self, config: &Config<'_>, _connections: &Connections<'_>) -> Result<(), String> {
        self.max_lag_ms = config
            .get("max_lag_ms")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| "config.max_lag_ms must be a whole number of milliseconds".to_owned())?;
        Ok(())
    }

    fn state(&mut self, state: State) {
        self.state = state;
    }

    fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
        let max = self.max_lag_ms;
        let usable = |r: &&ConnectionState| r.healthy() != Some(false) && r.lag_ms().is_some_and(|ms| ms <= max);
        if let Some(replica) = self.state.replicas().find(usable) {
            return Decision::use_connection(replica.name());
        }
        match self.state.replicas().next().and_then(ConnectionState::replica_of) {
            Some(primary) => Decision::use_connection(primary),
            None => Decision::no_opinion(),
        }
    }

    fn db_for_write(&mut self, _op: &Operation<'_>) -> Decision<'_> {
        match self.state.replicas().next() {
            Some(replica) => Decision::use_connection(self.root_of(replica.name())),
            None => Decision::no_opinion(),
        }
    }
}

dbroute_sdk::export_router!(LagRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    const READ: &str = r#"{"op":"read","model":{"name":"User"}}"#;
    const WRITE: &str = r#"{"op":"write","model":{"name":"User"}}"#;

    fn router() -> LagRouter {
        testing::init(r#"{"config":{"max_lag_ms":500},"connections":["default","replica"]}"#).unwrap()
    }

    fn state(replica_lag: &str, healthy: &str) -> String {
        format!(
            r#"{{"connections":[{{"name":"default","role":"primary","replica_of":null,"healthy":true,"lag_ms":null,"lag_bytes":null}},{{"name":"replica","role":"replica","replica_of":"default","healthy":{healthy},"lag_ms":{replica_lag},"lag_bytes":null}}]}}"#
        )
    }

    #[test]
    fn no_state_no_opinion() {
        let mut router = router();
        assert_eq!(testing::read(&mut router, READ), Answer::NoOpinion);
        assert_eq!(testing::write(&mut router, WRITE), Answer::NoOpinion);
    }

    #[test]
    fn reads_follow_the_lag() {
        let mut router = router();
        testing::state(&mut router, &state("100", "true"));
        assert_eq!(testing::read(&mut router, READ).connection(), Some("replica"));
        assert_eq!(testing::write(&mut router, WRITE).connection(), Some("default"));
        testing::state(&mut router, &state("501", "true"));
        assert_eq!(testing::read(&mut router, READ).connection(), Some("default"));
        testing::state(&mut router, &state("500", "null"));
        assert_eq!(testing::read(&mut router, READ).connection(), Some("replica"));
        testing::state(&mut router, &state("0", "false"));
        assert_eq!(testing::read(&mut router, READ).connection(), Some("default"));
        testing::state(&mut router, &state("null", "true"));
        assert_eq!(testing::read(&mut router, READ).connection(), Some("default"));
    }

    #[test]
    fn a_configuration_without_a_bound_is_refused() {
        let refused = testing::init::<LagRouter>(r#"{"config":null,"connections":["default"]}"#);
        assert_eq!(
            refused.err().as_deref(),
            Some("config.max_lag_ms must be a whole number of milliseconds")
        );
        const { assert!(LagRouter::DETERMINISTIC && LagRouter::CONNECTION_STATE) };
    }
}
