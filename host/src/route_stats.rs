//! Decisions counted per route: router generation, operation, model and
//! chosen connection. Opt-in ([`EngineBuilder::route_stats`]), because it
//! hashes the model's name on every decision.
//!
//! [`EngineBuilder::route_stats`]: crate::EngineBuilder::route_stats

use std::collections::HashMap;
use std::sync::Mutex;

use crate::name::ConnectionName;
use crate::router::RouteKind;
use crate::thread_slot::{self, SLOTS};

/// How many decisions took one route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct RouteCount {
    /// The router chain's generation when the decisions were made.
    pub generation: u64,
    /// Read or write.
    pub op: RouteKind,
    /// The model's name.
    pub model: String,
    /// The connection chosen.
    pub connection: ConnectionName,
    /// How many decisions.
    pub count: u64,
}

/// (generation, operation, connection) → model → count: the inner map is
/// searched by `&str`, so a known route allocates nothing.
type Routes = HashMap<(u64, RouteKind, ConnectionName), HashMap<Box<str>, u64, Hasher>, Hasher>;
type Hasher = foldhash::fast::RandomState;

/// One shard per thread slot (see [`thread_slot`]), so threads rarely meet
/// on one lock: a thread that owns its slot never does.
#[derive(Default)]
pub(crate) struct RouteStats {
    shards: [Mutex<Routes>; SLOTS],
}

impl RouteStats {
    pub(crate) fn record(&self, generation: u64, op: RouteKind, model: &str, connection: ConnectionName) {
        let mut map = self.shards[thread_slot::current().index()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let models = map.entry((generation, op, connection)).or_default();
        match models.get_mut(model) {
            Some(count) => *count += 1,
            None => {
                models.insert(model.into(), 1);
            }
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<RouteCount> {
        let mut merged: HashMap<(u64, RouteKind, ConnectionName, Box<str>), u64> = HashMap::new();
        for shard in &self.shards {
            let map = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((generation, op, connection), models) in map.iter() {
                for (model, count) in models {
                    *merged
                        .entry((*generation, *op, *connection, model.clone()))
                        .or_default() += count;
                }
            }
        }
        let mut out: Vec<RouteCount> = merged
            .into_iter()
            .map(|((generation, op, connection, model), count)| RouteCount {
                generation,
                op,
                model: model.into(),
                connection,
                count,
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_route_across_threads_and_sorts_the_snapshot() {
        let stats = RouteStats::default();
        let main = ConnectionName::new("main").unwrap();
        let replica = ConnectionName::new("replica").unwrap();
        // Twice as many threads as slots: some may share a shard.
        std::thread::scope(|s| {
            for _ in 0..2 * SLOTS {
                s.spawn(|| {
                    for _ in 0..10 {
                        stats.record(1, RouteKind::Read, "User", replica);
                        stats.record(1, RouteKind::Write, "User", main);
                    }
                    stats.record(2, RouteKind::Read, "Order", main);
                });
            }
        });
        let threads = 2 * SLOTS as u64;
        let route = |generation, op, model: &str, connection, count| RouteCount {
            generation,
            op,
            model: model.to_owned(),
            connection,
            count,
        };
        let mut expected = vec![
            route(1, RouteKind::Read, "User", replica, 10 * threads),
            route(1, RouteKind::Write, "User", main, 10 * threads),
            route(2, RouteKind::Read, "Order", main, threads),
        ];
        expected.sort();
        assert_eq!(stats.snapshot(), expected);
    }
}
