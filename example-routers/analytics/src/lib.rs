//! Sends the `Event` model, reads and writes, to the `analytics` connection;
//! has no opinion about anything else. Deterministic: the host may cache its
//! answers.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// `Event` lives on `analytics`.
#[derive(Debug, Default)]
pub struct AnalyticsRouter;

impl AnalyticsRouter {
    fn route(op: &Operation<'_>) -> Decision<'static> {
        if op.model().name() == "Event" {
            Decision::use_connection("analytics")
        } else {
            Decision::no_opinion()
        }
    }
}

impl Router for AnalyticsRouter {
    const DETERMINISTIC: bool = true;

    fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
        Self::route(op)
    }

    fn db_for_write(&mut self, op: &Operation<'_>) -> Decision<'_> {
        Self::route(op)
    }
}

dbroute_sdk::export_router!(AnalyticsRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    #[test]
    fn events_go_to_analytics() {
        let mut router = AnalyticsRouter;
        let read = r#"{"op":"read","model":{"name":"Event","app":"metrics"},"hints":{}}"#;
        let write = r#"{"op":"write","model":{"name":"Event"}}"#;
        assert_eq!(testing::read(&mut router, read), Answer::Use("analytics".into()));
        assert_eq!(testing::write(&mut router, write), Answer::Use("analytics".into()));
    }

    #[test]
    fn other_models_have_no_opinion() {
        let mut router = AnalyticsRouter;
        for name in ["User", "event", "Events", "EventLog"] {
            let input = format!(r#"{{"op":"read","model":{{"name":"{name}"}}}}"#);
            assert_eq!(testing::read(&mut router, &input), Answer::NoOpinion, "{name}");
            assert_eq!(testing::write(&mut router, &input), Answer::NoOpinion, "{name}");
        }
    }

    #[test]
    fn is_deterministic() {
        const { assert!(AnalyticsRouter::DETERMINISTIC) };
    }
}
