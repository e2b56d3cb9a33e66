//! Decisions counted per route: router generation, operation, model and
//! chosen connection. Opt-in ([`EngineBuilder::route_stats`]), because it
//! hashes the model's name on every decision.
//!
//! [`EngineBuilder::route_stats`]: crate::EngineBuilder::route_stats

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::name::ConnectionName;
use crate::router::OpKind;

/// How many decisions took one route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteCount {
    /// The router chain's generation when the decisions were made.
    pub generation: u64,
    /// Read or write.
    pub op: OpKind,
    /// The model's name.
    pub model: String,
    /// The connection chosen.
    pub connection: ConnectionName,
    /// How many decisions.
    pub count: u64,
}

/// (generation, operation, connection) → model → count: the inner map is
/// searched by `&str`, so a known route allocates nothing.
type Routes = HashMap<(u64, OpKind, ConnectionName), HashMap<Box<str>, u64, Hasher>, Hasher>;
type Hasher = foldhash::fast::RandomState;

const SHARDS: usize = 8;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SHARD: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// Per-thread shards, so threads rarely meet on one lock.
#[derive(Default)]
pub(crate) struct RouteStats {
    shards: [Mutex<Routes>; SHARDS],
}

impl RouteStats {
    pub(crate) fn record(&self, generation: u64, op: OpKind, model: &str, connection: ConnectionName) {
        let shard = SHARD.with(|s| *s);
        let mut map = self.shards[shard]
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
        let mut merged: HashMap<(u64, OpKind, ConnectionName, Box<str>), u64> = HashMap::new();
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
