//! Spreads reads over the replicas listed in its configuration, in turn:
//!
//! ```json
//! {"replicas": ["replica1", "replica2"]}
//! ```
//!
//! The counter is per instance (the host may run several), so the spread
//! is even per instance, not globally. Init refuses a missing or empty list,
//! and a replica that is not a registered connection. Writes: no opinion.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// Reads in turn from each replica.
#[derive(Debug, Default)]
pub struct RoundRobinRouter {
    replicas: Vec<String>,
    next: usize,
}

impl Router for RoundRobinRouter {
    fn init(&mut self, config: &Config<'_>, connections: &Connections<'_>) -> Result<(), String> {
        let replicas = config.str_list("replicas")?;
        if replicas.is_empty() {
            return Err("config.replicas must list at least one replica".into());
        }
        if let Some(unknown) = replicas.iter().find(|r| !connections.contains(r)) {
            return Err(format!("replica \"{unknown}\" is not a registered connection"));
        }
        self.replicas = replicas;
        Ok(())
    }

    fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
        let i = self.next;
        self.next = (i + 1) % self.replicas.len().max(1);
        match self.replicas.get(i) {
            Some(replica) => Decision::use_connection(replica),
            None => Decision::no_opinion(),
        }
    }
}

dbroute_sdk::export_router!(RoundRobinRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    const READ: &str = r#"{"op":"read","model":{"name":"User"}}"#;

    fn init(config: &str) -> Result<RoundRobinRouter, String> {
        testing::init(&format!(
            r#"{{"config":{config},"connections":["default","replica1","replica2","replica3"]}}"#
        ))
    }

    #[test]
    fn reads_take_turns() {
        let mut r = init(r#"{"replicas":["replica1","replica2","replica3"]}"#).unwrap();
        let got: Vec<Answer> = (0..7).map(|_| testing::read(&mut r, READ)).collect();
        let want: Vec<Answer> = [
            "replica1", "replica2", "replica3", "replica1", "replica2", "replica3", "replica1",
        ]
        .into_iter()
        .map(|name| Answer::Use(name.into()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn one_replica_gets_everything() {
        let mut r = init(r#"{"replicas":["replica2"]}"#).unwrap();
        for _ in 0..3 {
            assert_eq!(testing::read(&mut r, READ), Answer::Use("replica2".into()));
        }
    }

    #[test]
    fn each_instance_counts_for_itself() {
        let config = r#"{"replicas":["replica1","replica2"]}"#;
        let (mut a, mut b) = (init(config).unwrap(), init(config).unwrap());
        assert_eq!(testing::read(&mut a, READ).connection(), Some("replica1"));
        assert_eq!(testing::read(&mut a, READ).connection(), Some("replica2"));
        assert_eq!(testing::read(&mut b, READ).connection(), Some("replica1"));
    }

    #[test]
    fn writes_have_no_opinion() {
        let mut r = init(r#"{"replicas":["replica1"]}"#).unwrap();
        let write = r#"{"op":"write","model":{"name":"User"}}"#;
        assert_eq!(testing::write(&mut r, write), Answer::NoOpinion);
        const { assert!(!RoundRobinRouter::DETERMINISTIC) };
    }

    #[test]
    fn init_refuses_bad_replica_lists() {
        let refusal = |config: &str| init(config).err().unwrap();
        let empty = "config.replicas must list at least one replica";
        assert_eq!(refusal("null"), empty);
        assert_eq!(refusal("{}"), empty);
        assert_eq!(refusal(r#"{"replicas":[]}"#), empty);
        assert_eq!(refusal(r#"{"replicas":null}"#), empty);
        assert_eq!(
            refusal(r#"{"replicas":"replica1"}"#),
            "config.replicas must be an array of strings"
        );
        assert_eq!(
            refusal(r#"{"replicas":["replica1","replica9"]}"#),
            r#"replica "replica9" is not a registered connection"#
        );
    }
}
