//! Keeps the `Snapshot` model on the `cache` connection: its reads and
//! writes go there, its schema is created only there, and no other model's
//! schema is created there.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// `Snapshot` lives on `cache`, alone.
#[derive(Debug, Default)]
pub struct CacheRouter;

impl CacheRouter {
    fn route(op: &Operation<'_>) -> Decision<'static> {
        if op.model().name() == "Snapshot" {
            Decision::use_connection("cache")
        } else {
            Decision::no_opinion()
        }
    }
}

impl Router for CacheRouter {
    fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
        Self::route(op)
    }

    fn db_for_write(&mut self, op: &Operation<'_>) -> Decision<'_> {
        Self::route(op)
    }

    fn allow_migrate(&mut self, m: &Migration<'_>) -> Option<bool> {
        let on_cache = m.db() == "cache";
        if m.model().is_some_and(|model| model.name() == "Snapshot") {
            Some(on_cache)
        } else if on_cache {
            Some(false)
        } else {
            None
        }
    }
}

dbroute_sdk::export_router!(CacheRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    fn migrate(model: &str, db: &str) -> Option<bool> {
        let input = format!(r#"{{"op":"migrate","db":"{db}","model":{{"name":"{model}"}},"hints":{{}}}}"#);
        testing::migrate(&mut CacheRouter, &input)
    }

    #[test]
    fn snapshots_read_and_write_on_cache() {
        let mut router = CacheRouter;
        let input = r#"{"op":"read","model":{"name":"Snapshot","table":"snapshots"}}"#;
        assert_eq!(testing::read(&mut router, input), Answer::Use("cache".into()));
        assert_eq!(testing::write(&mut router, input), Answer::Use("cache".into()));
    }

    #[test]
    fn other_models_have_no_opinion() {
        let mut router = CacheRouter;
        let input = r#"{"op":"read","model":{"name":"User"},"hints":{"cache":true}}"#;
        assert_eq!(testing::read(&mut router, input), Answer::NoOpinion);
        assert_eq!(testing::write(&mut router, input), Answer::NoOpinion);
    }

    #[test]
    fn snapshot_schema_only_on_cache() {
        assert_eq!(migrate("Snapshot", "cache"), Some(true));
        assert_eq!(migrate("Snapshot", "default"), Some(false));
        assert_eq!(migrate("Snapshot", "replica"), Some(false));
    }

    #[test]
    fn no_other_schema_on_cache() {
        assert_eq!(migrate("User", "cache"), Some(false));
        assert_eq!(migrate("User", "default"), None);
    }

    #[test]
    fn no_opinion_on_relations() {
        let rel = r#"{"op":"relation","a":{"model":{"name":"Snapshot"},"db":"cache"},"b":{"model":{"name":"User"},"db":"default"},"hints":{}}"#;
        assert_eq!(testing::relation(&mut CacheRouter, rel), None);
    }
}
