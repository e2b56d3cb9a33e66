//! Unit-test a router natively, through the same code the module runs.
//!
//! Each helper takes the JSON input exactly as the host would write it,
//! runs it through the SDK's parser and the router, and returns what the
//! host would get. Malformed input behaves as in a module too: reads,
//! writes and init are refused with a message; `allow_relation` and
//! `allow_migrate` fault (here: panic).
//!
//! ```
//! use dbroute_sdk::prelude::*;
//! use dbroute_sdk::testing::{self, Answer};
//!
//! #[derive(Default)]
//! struct ReadOnlyGuard;
//!
//! impl Router for ReadOnlyGuard {
//!     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
//!         Decision::no_opinion()
//!     }
//!
//!     fn db_for_write(&mut self, op: &Operation<'_>) -> Decision<'_> {
//!         if op.model().has_tag("readonly") {
//!             Decision::refuse("read-only")
//!         } else {
//!             Decision::use_connection("default")
//!         }
//!     }
//! }
//!
//! let mut router: ReadOnlyGuard = testing::init(r#"{"config":null,"connections":["default"]}"#).unwrap();
//! let write = r#"{"op":"write","model":{"name":"Rate","tags":["readonly"]}}"#;
//! assert_eq!(testing::write(&mut router, write), Answer::Refuse("read-only".into()));
//! assert_eq!(testing::read(&mut router, r#"{"op":"read","model":{"name":"Rate"}}"#), Answer::NoOpinion);
//! assert_eq!(testing::read(&mut router, "{").refusal(), Some("malformed input: expected a string (at byte 1)"));
//! ```

use alloc::string::String;

use crate::export::{self, Reply};
use crate::{OpKind, Router, Value};

/// What the host gets back from a read or a write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Use this connection.
    Use(String),
    /// No opinion.
    NoOpinion,
    /// The operation is refused, with this message.
    Refuse(String),
}

impl Answer {
    /// The connection, if the answer is one.
    pub fn connection(&self) -> Option<&str> {
        match self {
            Answer::Use(name) => Some(name),
            _ => None,
        }
    }

    /// The refusal's message, if the answer is one.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Answer::Refuse(message) => Some(message),
            _ => None,
        }
    }
}

/// Makes a router as the host does: `R::default()`, then
/// [`Router::init`] with `input`, the init JSON
/// (`{"config": ..., "connections": [...]}`).
///
/// # Errors
///
/// The refusal's message, when the router refuses to load (or the input is
/// malformed).
pub fn init<R: Router + Default>(input: &str) -> Result<R, String> {
    let mut router = R::default();
    let mut out = String::new();
    match export::init(&mut router, input.as_bytes(), &mut out) {
        Reply::NoOpinion => Ok(router),
        _ => Err(out),
    }
}

/// Asks `router` where to read, as `db_for_read` would.
///
/// # Panics
///
/// When the router answers a malformed connection name, which the host
/// treats as a router fault.
pub fn read<R: Router>(router: &mut R, input: &str) -> Answer {
    decide(router, OpKind::Read, input)
}

/// Asks `router` where to write, as `db_for_write` would.
///
/// # Panics
///
/// When the router answers a malformed connection name, which the host
/// treats as a router fault.
pub fn write<R: Router>(router: &mut R, input: &str) -> Answer {
    decide(router, OpKind::Write, input)
}

fn decide<R: Router>(router: &mut R, kind: OpKind, input: &str) -> Answer {
    let (reply, out) = export::decide(router, kind, input.as_bytes(), |reply, text| (reply, text.into_owned()));
    match reply {
        Reply::NoOpinion => Answer::NoOpinion,
        Reply::Refuse => Answer::Refuse(out),
        Reply::Use if is_connection_name(&out) => Answer::Use(out),
        Reply::Use => panic!("router fault: {out:?} is not a connection name (1 to 64 bytes of A-Z a-z 0-9 _ - .)"),
    }
}

/// Asks `router` the `allow_relation` question in `input`.
///
/// # Panics
///
/// When `input` is malformed: the module would fault.
pub fn relation<R: Router>(router: &mut R, input: &str) -> Option<bool> {
    export::relation(router, input.as_bytes()).unwrap_or_else(|e| panic!("router fault: allow_relation: {e}"))
}

/// Asks `router` the `allow_migrate` question in `input`.
///
/// # Panics
///
/// When `input` is malformed: the module would fault.
pub fn migrate<R: Router>(router: &mut R, input: &str) -> Option<bool> {
    export::migrate(router, input.as_bytes()).unwrap_or_else(|e| panic!("router fault: allow_migrate: {e}"))
}

/// Tells `router` the connections' state in `input` (the `dbroute_state`
/// JSON), as the host does for a router whose
/// [`CONNECTION_STATE`](Router::CONNECTION_STATE) is `true` (see
/// [`Router::state`] for an example).
///
/// # Panics
///
/// When `input` is malformed: the module would fault.
pub fn state<R: Router>(router: &mut R, input: &str) {
    export::state(router, input.as_bytes()).unwrap_or_else(|e| panic!("router fault: dbroute_state: {e}"))
}

/// Reads one JSON value, to try [`Value`]'s accessors.
///
/// ```
/// let v = dbroute_sdk::testing::value(r#"{"replicas": ["r1", "r2"]}"#);
/// assert_eq!(v.get("replicas").map(|r| r.items().count()), Some(2));
/// ```
///
/// # Panics
///
/// When `json` is not one well-formed JSON value.
pub fn value(json: &str) -> Value<'_> {
    crate::json::parse_value(json).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `name` has the form of a connection name: 1 to 64 bytes of
/// `A-Z a-z 0-9 _ - .` (ABI, "Results").
fn is_connection_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
