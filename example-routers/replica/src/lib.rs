//! The simplest router: every read goes to the `replica` connection, every
//! write to `default`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// Reads go to the replica, writes to the primary.
#[derive(Debug, Default)]
pub struct ReplicaRouter;

impl Router for ReplicaRouter {
    fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
        Decision::use_connection("replica")
    }

    fn db_for_write(&mut self, _op: &Operation<'_>) -> Decision<'_> {
        Decision::use_connection("default")
    }
}

dbroute_sdk::export_router!(ReplicaRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    #[test]
    fn reads_go_to_the_replica() {
        let mut router = ReplicaRouter;
        for input in [
            r#"{"op":"read","model":{"name":"User"}}"#,
            r#"{"op":"read","model":{"name":"Event","app":"metrics","tags":["readonly"]},"hints":{"tenant":"acme"}}"#,
        ] {
            assert_eq!(testing::read(&mut router, input), Answer::Use("replica".into()));
        }
    }

    #[test]
    fn writes_go_to_default() {
        let mut router = ReplicaRouter;
        let input = r#"{"op":"write","model":{"name":"User","table":"users"}}"#;
        assert_eq!(testing::write(&mut router, input), Answer::Use("default".into()));
    }

    #[test]
    fn no_opinion_on_relations_and_migrations() {
        let mut router = ReplicaRouter;
        let rel = r#"{"op":"relation","a":{"model":{"name":"Book"},"db":"default"},"b":{"model":{"name":"Author"},"db":"replica"},"hints":{}}"#;
        assert_eq!(testing::relation(&mut router, rel), None);
        let m = r#"{"op":"migrate","db":"replica","model":{"name":"User"},"hints":{}}"#;
        assert_eq!(testing::migrate(&mut router, m), None);
        const { assert!(!ReplicaRouter::DETERMINISTIC) };
    }
}
