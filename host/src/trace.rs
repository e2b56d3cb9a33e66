//! Trace spans of routed operations and transactions, at `DEBUG` level:
//! `dbroute.operation` (target `dbroute::operation`) for each routed
//! statement, `dbroute.transaction` (target `dbroute::transaction`) for each
//! transaction, from its begin to its end. Each carries the operation
//! (`read` or `write`), the model, the connection chosen, who decided it
//! (`decided_by`: `router`, `using`, `transaction`, `origin`, `default`,
//! `fallback`), the router's name and module hash when a router decided,
//! the time taken (`elapsed_us`) and, on failure, the error.
//!
//! Off, they cost one check of the level filter: callers ask
//! [`operation_enabled`] or [`transaction_enabled`] first and, when off,
//! take their plain path (no span, no clock, no formatting).

use std::time::Instant;

use tracing::Span;
use tracing::field::{Empty, display};

use crate::engine::Decided;
use crate::error::Result;
use crate::name::ConnectionName;
use crate::router::RouteKind;

/// The target of routed operations' spans.
pub(crate) const OPERATION: &str = "dbroute::operation";
/// The target of transactions' spans.
pub(crate) const TRANSACTION: &str = "dbroute::transaction";

/// Whether routed operations are traced now.
#[inline]
pub(crate) fn operation_enabled() -> bool {
    tracing::enabled!(target: OPERATION, tracing::Level::DEBUG)
}

/// Whether transactions are traced now.
#[inline]
pub(crate) fn transaction_enabled() -> bool {
    tracing::enabled!(target: TRANSACTION, tracing::Level::DEBUG)
}

/// A routed operation's span, its connection not chosen yet.
pub(crate) fn operation_span(kind: RouteKind, model: &str) -> Span {
    tracing::debug_span!(
        target: OPERATION,
        "dbroute.operation",
        operation = kind.as_str(),
        model,
        connection = Empty,
        decided_by = Empty,
        router = Empty,
        router_sha256 = Empty,
        elapsed_us = Empty,
        error = Empty,
    )
}

/// A transaction's span, its connection not chosen yet; `model` is the
/// model it was routed for, if any.
pub(crate) fn transaction_span(kind: Option<RouteKind>, model: Option<&str>) -> Span {
    tracing::debug_span!(
        target: TRANSACTION,
        "dbroute.transaction",
        operation = kind.map(RouteKind::as_str),
        model,
        connection = Empty,
        decided_by = Empty,
        router = Empty,
        router_sha256 = Empty,
        elapsed_us = Empty,
        outcome = Empty,
        error = Empty,
    )
}

/// Records the connection chosen and who chose it.
pub(crate) fn record_decision(span: &Span, connection: ConnectionName, decided: Decided<'_>) {
    span.record("connection", connection.as_str());
    span.record("decided_by", decided.by.as_str());
    if let Some(router) = decided.router {
        let identity = router.identity();
        span.record("router", identity.name());
        if let Some(hash) = identity.content_hash() {
            span.record("router_sha256", hash.as_str());
        }
    }
}

/// Records where a read runs once settled for read-your-writes (a
/// replica's primary, when the replica could not serve it), when that is
/// not the connection decided.
pub(crate) fn record_settled(span: &Span, connection: ConnectionName) {
    span.record("connection", connection.as_str());
}

/// Records the time since `started` and, on failure, the error.
pub(crate) fn record_end<T>(span: &Span, started: Instant, result: &Result<T>) {
    span.record("elapsed_us", started.elapsed().as_micros() as u64);
    if let Err(error) = result {
        span.record("error", display(error));
    }
}

/// A transaction's span while it is open (`None`: not traced).
#[derive(Debug, Default)]
pub(crate) struct TransactionTrace(Option<(Span, Instant)>);

impl TransactionTrace {
    pub(crate) fn new(span: Span, started: Instant) -> Self {
        TransactionTrace(Some((span, started)))
    }

    /// The span, to run the transaction's work in.
    pub(crate) fn span(&self) -> Span {
        self.0.as_ref().map_or_else(Span::none, |(span, _)| span.clone())
    }

    /// Records how the transaction ended (`commit`, `rollback`, `dropped`)
    /// and closes its span.
    pub(crate) fn end<T>(&mut self, outcome: &'static str, result: &Result<T>) {
        if let Some((span, started)) = self.0.take() {
            span.record("outcome", outcome);
            record_end(&span, started, result);
        }
    }
}
