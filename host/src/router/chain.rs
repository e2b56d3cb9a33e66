//! The router chain: routers asked in order, the first opinion wins.

use std::sync::{Arc, Mutex};

use super::{HostRouter, MigrateRequest, RelationRequest, RouteDecision, RouteKind, RouteRequest, RouterIdentity};
use crate::error::{Error, Fault};
use crate::metrics::StripedCounters;
use crate::name::ConnectionName;

/// Routers asked in order; the first with an opinion decides.
///
/// # Examples
///
/// ```
/// use dbroute::router::{RouteDecision, Fault, RouteRequest, HostRouter, RouterChain, RouterIdentity};
///
/// #[derive(Debug)]
/// struct Nothing;
/// impl HostRouter for Nothing {
///     fn identity(&self) -> RouterIdentity { RouterIdentity::native("nothing") }
///     fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> { Ok(RouteDecision::NoOpinion) }
/// }
///
/// let chain = RouterChain::new().then(Nothing).then(Nothing);
/// assert_eq!(chain.len(), 2);
/// ```
#[derive(Clone, Default, Debug)]
pub struct RouterChain {
    routers: Vec<Arc<dyn HostRouter>>,
}

impl RouterChain {
    /// An empty chain: everything goes to `default`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a router.
    pub fn then(mut self, router: impl HostRouter) -> Self {
        self.routers.push(Arc::new(router));
        self
    }

    /// Appends a shared router.
    pub fn then_shared(mut self, router: Arc<dyn HostRouter>) -> Self {
        self.routers.push(router);
        self
    }

    /// The number of routers.
    pub fn len(&self) -> usize {
        self.routers.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    pub(crate) fn routers(&self) -> &[Arc<dyn HostRouter>] {
        &self.routers
    }
}

impl<R: HostRouter> From<R> for RouterChain {
    fn from(router: R) -> Self {
        RouterChain::new().then(router)
    }
}

/// What the chain decided for one operation.
pub(crate) enum ChainAnswer<'c> {
    /// A router named a connection.
    Use(ConnectionName, &'c Arc<dyn HostRouter>),
    /// No router had an opinion.
    Default,
}

/// What a router answered, counted per router of the active chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// It named a connection.
    Connection,
    /// It refused the operation.
    Refused,
    /// It faulted (trapped, ran past a limit, answered badly).
    Fault,
}

impl Answer {
    /// Every answer, in the order of their counters.
    pub(crate) const ALL: [Answer; 3] = [Answer::Connection, Answer::Refused, Answer::Fault];

    /// How many counters a router has: one per answer and kind.
    pub(crate) const COUNTERS: usize = 2 * Answer::ALL.len();

    /// Its name, as in metrics' `answer` label.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Answer::Connection => "connection",
            Answer::Refused => "refused",
            Answer::Fault => "fault",
        }
    }

    /// The counter of this answer to an operation of `kind`.
    #[inline]
    pub(crate) const fn counter(self, kind: RouteKind) -> usize {
        2 * self as usize
            + match kind {
                RouteKind::Read => 0,
                RouteKind::Write => 1,
            }
    }
}

/// The answers one router of a chain gave.
pub(crate) type AnswerCounts = StripedCounters<{ Answer::COUNTERS }>;

/// The chain that is active, its generation (bumped at every swap), and
/// what each of its routers answered (striped counters, read by the
/// metrics publisher).
#[derive(Debug)]
pub(crate) struct ActiveRouters {
    pub(crate) chain: RouterChain,
    pub(crate) generation: u64,
    answers: Box<[AnswerCounts]>,
    /// The answers already handed to the metrics publisher, per router.
    pub(crate) folded: Mutex<Vec<[u64; Answer::COUNTERS]>>,
}

impl ActiveRouters {
    pub(crate) fn new(chain: RouterChain, generation: u64) -> Self {
        let answers = chain.routers().iter().map(|_| AnswerCounts::default()).collect();
        let folded = Mutex::new(vec![[0; Answer::COUNTERS]; chain.len()]);
        ActiveRouters {
            chain,
            generation,
            answers,
            folded,
        }
    }

    /// Each router with the answers it gave, in chain order.
    pub(crate) fn answers(&self) -> impl Iterator<Item = (&Arc<dyn HostRouter>, [u64; Answer::COUNTERS])> {
        self.chain
            .routers()
            .iter()
            .zip(self.answers.iter().map(AnswerCounts::get_all))
    }

    /// Asks each router in order. Refusals and faults become errors naming
    /// the router; nothing is allocated unless something fails.
    #[inline]
    pub(crate) fn decide(&self, op: &RouteRequest<'_>) -> Result<ChainAnswer<'_>, (Error, bool)> {
        for (router, answers) in self.chain.routers().iter().zip(&self.answers) {
            let answer = match op.kind {
                RouteKind::Read => router.db_for_read(op),
                RouteKind::Write => router.db_for_write(op),
            };
            match answer {
                Ok(RouteDecision::NoOpinion) => continue,
                Ok(RouteDecision::Use(name)) => {
                    answers.increment(Answer::Connection.counter(op.kind));
                    return Ok(ChainAnswer::Use(name, router));
                }
                Ok(RouteDecision::Refuse(message)) => {
                    answers.increment(Answer::Refused.counter(op.kind));
                    return Err((
                        Error::RouterRefused {
                            router: router.identity(),
                            op: op.kind.as_str(),
                            model: op.model.name().to_owned(),
                            message,
                        },
                        false,
                    ));
                }
                Err(fault) => {
                    answers.increment(Answer::Fault.counter(op.kind));
                    return Err((fault_error(router, fault), true));
                }
            }
        }
        Ok(ChainAnswer::Default)
    }

    pub(crate) fn allow_relation(&self, relation: &RelationRequest<'_>) -> Result<Option<bool>, Error> {
        for router in self.chain.routers() {
            match router.allow_relation(relation) {
                Ok(None) => continue,
                Ok(answer) => return Ok(answer),
                Err(fault) => return Err(fault_error(router, fault)),
            }
        }
        Ok(None)
    }

    pub(crate) fn allow_migrate(&self, migration: &MigrateRequest<'_>) -> Result<Option<bool>, Error> {
        for router in self.chain.routers() {
            match router.allow_migrate(migration) {
                Ok(None) => continue,
                Ok(answer) => return Ok(answer),
                Err(fault) => return Err(fault_error(router, fault)),
            }
        }
        Ok(None)
    }
}

fn fault_error(router: &Arc<dyn HostRouter>, fault: Fault) -> Error {
    Error::RouterFault {
        router: router.identity(),
        fault,
    }
}

/// What is routing now: the chain's routers and the swap generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouterStatus {
    /// Bumped at every swap, starting at 0 for the chain the engine was
    /// built with.
    pub generation: u64,
    /// The active routers, in order (empty: everything goes to `default`).
    pub routers: Vec<RouterIdentity>,
}
