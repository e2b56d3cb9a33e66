//! `dbroute route ROUTER --op read --model User`: one decision, no database.

use std::process::ExitCode;

use dbroute::router::{HostRouter, RouteDecision, RouteKind, RouteRequest};
use dbroute::{ConnectionName, Error, Hints, ModelInfo};
use serde_json::json;

use crate::{Op, RouteArgs, fail};

pub(crate) fn run(args: &RouteArgs) -> ExitCode {
    let (_runtime, router) = match args.load.load() {
        Ok(loaded) => loaded,
        Err(error) => return fail(error),
    };
    let model = model_info(args);
    let hints = args.hints.clone().map(Hints::from).unwrap_or_default();
    let kind = match args.op {
        Op::Read => RouteKind::Read,
        Op::Write => RouteKind::Write,
    };
    if let Some(error) = args
        .origin
        .and_then(|origin| unknown_connection(args, origin, "--origin".to_owned()))
    {
        return fail(error);
    }
    let op = RouteRequest {
        kind,
        model: &model,
        hints: &hints,
        origin: args.origin.as_ref(),
    };
    let answer = match kind {
        RouteKind::Read => router.db_for_read(&op),
        RouteKind::Write => router.db_for_write(&op),
    };
    let (connection, decided_by) = match answer {
        Ok(RouteDecision::Use(name)) => {
            if let Some(error) = unknown_connection(args, name, router.identity().to_string()) {
                return fail(error);
            }
            (name, "router")
        }
        Ok(RouteDecision::NoOpinion) => match args.origin {
            Some(origin) => (origin, "origin"),
            None => (ConnectionName::DEFAULT, "default"),
        },
        Ok(RouteDecision::Refuse(message)) => {
            return fail(Error::RouterRefused {
                router: router.identity(),
                op: kind.as_str(),
                model: model.name().to_owned(),
                message,
            });
        }
        Err(fault) => {
            return fail(Error::RouterFault {
                router: router.identity(),
                fault,
            });
        }
    };
    if args.load.json {
        say!(
            "{}",
            json!({ "connection": connection.as_str(), "decided_by": decided_by })
        );
    } else {
        say!("{connection}");
    }
    ExitCode::SUCCESS
}

fn model_info(args: &RouteArgs) -> ModelInfo {
    let mut model = ModelInfo::new(args.model.clone());
    if let Some(table) = &args.table {
        model = model.with_table(table.clone());
    }
    if let Some(app) = &args.app {
        model = model.with_app(app.clone());
    }
    if !args.tags.is_empty() {
        model = model.with_tags(args.tags.iter().cloned());
    }
    model
}

/// With `--connections`, a name outside the list is an error, as it is in
/// an engine with those connections registered (`default` always names the
/// default connection). Without it, any well-formed name is accepted.
fn unknown_connection(args: &RouteArgs, name: ConnectionName, requested_by: String) -> Option<Error> {
    let registered = args.load.connections.as_ref()?;
    if name.is_default() || registered.contains(&name) {
        return None;
    }
    Some(Error::UnknownConnection {
        name: name.to_string(),
        requested_by,
        registered: registered.clone(),
    })
}
