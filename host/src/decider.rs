//! Who decided the connection of an operation: a router, an explicit
//! `using`, the open transaction, the operation's origin, `default`, or the
//! fallback of a read whose router faulted. Counted per connection and
//! named in the operation's trace span and in the
//! `dbroute_decisions_total` metric.

use crate::router::RouteKind;

/// Who decided an operation's connection (the resolution order's step that
/// answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decider {
    /// A router of the active chain named it.
    Router,
    /// An explicit `using` named it.
    Using,
    /// The open transaction pinned it.
    Transaction,
    /// No router had an opinion; the operation's origin.
    Origin,
    /// No router had an opinion and no origin was given: `default`.
    Default,
    /// The router faulted on a read, and the engine's read policy fell
    /// back to `default`.
    Fallback,
}

impl Decider {
    /// Every decider, in the order of their counters.
    pub(crate) const ALL: [Decider; 6] = [
        Decider::Router,
        Decider::Using,
        Decider::Transaction,
        Decider::Origin,
        Decider::Default,
        Decider::Fallback,
    ];

    /// How many counters a connection keeps: one per decider and kind.
    pub(crate) const COUNTERS: usize = 2 * Decider::ALL.len();

    /// Its name, as in metrics' `decided_by` label and trace spans.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Decider::Router => "router",
            Decider::Using => "using",
            Decider::Transaction => "transaction",
            Decider::Origin => "origin",
            Decider::Default => "default",
            Decider::Fallback => "fallback",
        }
    }

    /// The counter of a decision of `kind` by this decider.
    #[inline]
    pub(crate) const fn counter(self, kind: RouteKind) -> usize {
        2 * self as usize
            + match kind {
                RouteKind::Read => 0,
                RouteKind::Write => 1,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decision_has_a_counter_of_its_own() {
        let mut seen = Vec::new();
        for decider in Decider::ALL {
            for kind in [RouteKind::Read, RouteKind::Write] {
                let i = decider.counter(kind);
                assert!(i < Decider::COUNTERS);
                assert!(!seen.contains(&i), "{decider:?} {kind:?}");
                seen.push(i);
            }
        }
    }
}
