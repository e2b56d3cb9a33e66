//! Each app's models live on the connection named after the app (a model
//! whose `app` is `billing` goes to `billing`), reads and writes, when such
//! a connection exists; anything else has no opinion. Deterministic: the
//! host may cache its answers.
//!
//! The answer is the model's own `app` text, borrowed from the input: the
//! host reads it there, with no copy.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// One connection per app.
#[derive(Debug, Default)]
pub struct AppRouter {
    connections: Vec<String>,
}

impl AppRouter {
    fn route<'a>(&self, op: &'a Operation<'_>) -> Decision<'a> {
        match op.model().app() {
            Some(app) if self.connections.iter().any(|c| c == app) => Decision::use_connection(app),
            _ => Decision::no_opinion(),
        }
    }
}

impl Router for AppRouter {
    const DETERMINISTIC: bool = true;

    fn init(&mut self, _config: &Config<'_>, connections: &Connections<'_>) -> Result<(), String> {
        self.connections = connections.iter().map(|name| name.into_owned()).collect();
        Ok(())
    }

    fn db_for_read<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
        self.route(op)
    }

    fn db_for_write<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
        self.route(op)
    }
}

dbroute_sdk::export_router!(AppRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    fn router() -> AppRouter {
        testing::init(r#"{"config":null,"connections":["default","billing"]}"#).unwrap()
    }

    #[test]
    fn an_app_with_a_connection_goes_there() {
        let mut router = router();
        let input = r#"{"op":"read","model":{"name":"Invoice","app":"billing"},"hints":{}}"#;
        assert_eq!(testing::read(&mut router, input), Answer::Use("billing".into()));
        assert_eq!(testing::write(&mut router, input), Answer::Use("billing".into()));
    }

    #[test]
    fn other_models_have_no_opinion() {
        let mut router = router();
        for model in [r#"{"name":"User","app":"auth"}"#, r#"{"name":"User"}"#] {
            let input = format!(r#"{{"op":"read","model":{model}}}"#);
            assert_eq!(testing::read(&mut router, &input), Answer::NoOpinion, "{model}");
        }
    }
}
