//! Decisions counted per route: router generation, operation, model (with
//! its app, table and tags), hints, origin and chosen connection. Opt-in
//! ([`EngineBuilder::route_stats`]), because it hashes the model's and the
//! hints' JSON on every decision.
//!
//! What is counted doubles as an operations file for `dbroute diff --ops`
//! ([`Engine::write_route_operations`]): the operations a service really
//! runs, weighted by how often, to try a new router on before rolling it
//! out.
//!
//! [`EngineBuilder::route_stats`]: crate::EngineBuilder::route_stats
//! [`Engine::write_route_operations`]: crate::Engine::write_route_operations

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::model::{Hints, ModelInfo};
use crate::name::ConnectionName;
use crate::router::RouteKind;
use crate::thread_slot::{self, SLOTS};

/// How many decisions took one route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteCount {
    /// The router chain's generation when the decisions were made.
    pub generation: u64,
    /// Read or write.
    pub op: RouteKind,
    /// The model's name.
    pub model: String,
    /// The model's app, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The model's table, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The model's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The operation's hints (empty when it had none, or when the model
    /// had more than [`MAX_HINT_SETS`] different ones on this route).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub hints: Map<String, Value>,
    /// The connection the operation's row came from, when it said
    /// ([`Routed::origin`](crate::Routed::origin)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<ConnectionName>,
    /// The connection chosen.
    pub connection: ConnectionName,
    /// How many decisions.
    pub count: u64,
}

/// How many different sets of hints are counted apart for one model on one
/// route (per thread slot); operations with further ones are counted with
/// no hints, so that a hint unique to each request (a user id, say) cannot
/// grow the counts without bound.
pub const MAX_HINT_SETS: usize = 256;

/// (generation, operation, origin, connection) → the model's JSON → the
/// hints' JSON ("" for none) → count: the maps are searched by `&str`, so
/// a known route allocates nothing.
type Routes = HashMap<RouteKey, HashMap<Box<str>, HintCounts, Hasher>, Hasher>;
type RouteKey = (u64, RouteKind, Option<ConnectionName>, ConnectionName);
type HintCounts = HashMap<Box<str>, u64, Hasher>;
type Hasher = foldhash::fast::RandomState;

/// One shard per thread slot (see [`thread_slot`]), so threads rarely meet
/// on one lock: a thread that owns its slot never does.
#[derive(Default)]
pub(crate) struct RouteStats {
    shards: [Mutex<Routes>; SLOTS],
}

impl RouteStats {
    pub(crate) fn record(
        &self,
        generation: u64,
        (op, model, hints, origin): (RouteKind, &ModelInfo, &Hints, Option<ConnectionName>),
        connection: ConnectionName,
    ) {
        let hints = if hints.is_empty() { "" } else { hints.abi_json() };
        let mut map = self.shards[thread_slot::current().index()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let models = map.entry((generation, op, origin, connection)).or_default();
        let model = model.abi_json();
        let counts = match models.get_mut(model) {
            Some(counts) => counts,
            None => models.entry(model.into()).or_default(),
        };
        if let Some(count) = counts.get_mut(hints) {
            *count += 1;
        } else if counts.len() < MAX_HINT_SETS {
            counts.insert(hints.into(), 1);
        } else {
            *counts.entry("".into()).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<RouteCount> {
        type Key = (RouteKey, Box<str>, Box<str>);
        let mut merged: HashMap<Key, u64> = HashMap::new();
        for shard in &self.shards {
            let map = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (route, models) in map.iter() {
                for (model, hint_counts) in models {
                    for (hints, count) in hint_counts {
                        *merged.entry((*route, model.clone(), hints.clone())).or_default() += count;
                    }
                }
            }
        }
        let mut keyed: Vec<(Key, u64)> = merged.into_iter().collect();
        // By generation, operation, model, connection, hints and origin.
        keyed.sort_unstable_by(|((a, a_model, a_hints), _), ((b, b_model, b_hints), _)| {
            fn origin(o: &Option<ConnectionName>) -> Option<&str> {
                o.as_ref().map(ConnectionName::as_str)
            }
            (a.0, a.1, a_model, a.3.as_str(), a_hints, origin(&a.2)).cmp(&(
                b.0,
                b.1,
                b_model,
                b.3.as_str(),
                b_hints,
                origin(&b.2),
            ))
        });
        keyed
            .into_iter()
            .map(|(((generation, op, origin, connection), model, hints), count)| {
                let model = ModelJson::parse(&model);
                RouteCount {
                    generation,
                    op,
                    model: model.name,
                    app: model.app,
                    table: model.table,
                    tags: model.tags,
                    hints: if hints.is_empty() {
                        Map::new()
                    } else {
                        serde_json::from_str(&hints).unwrap_or_default()
                    },
                    origin,
                    connection,
                    count,
                }
            })
            .collect()
    }
}

/// A model as the router ABI's JSON gives it (what the stats keep).
#[derive(serde::Deserialize)]
struct ModelJson {
    name: String,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

impl ModelJson {
    fn parse(json: &str) -> ModelJson {
        // The text is `ModelInfo::abi_json`, which always parses.
        serde_json::from_str(json).unwrap_or_else(|_| ModelJson {
            name: json.to_owned(),
            table: None,
            app: None,
            tags: Vec::new(),
        })
    }
}

/// One line of an operations file.
#[derive(serde::Serialize)]
struct OperationLine<'a> {
    op: RouteKind,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Map::is_empty")]
    hints: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    count: u64,
}

/// Writes `counts` as an operations file (`dbroute diff --ops`): one JSON
/// object a line for each operation, model and hints, with its `count` of
/// decisions over every generation and connection, the most frequent
/// first. Returns how many lines it wrote.
pub(crate) fn write_operations(counts: &[RouteCount], mut out: impl io::Write) -> io::Result<usize> {
    type Key<'a> = (
        RouteKind,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a [String],
        String,
        Option<&'a str>,
    );
    let mut operations: HashMap<Key<'_>, OperationLine<'_>> = HashMap::new();
    for route in counts {
        let key = (
            route.op,
            route.model.as_str(),
            route.app.as_deref(),
            route.table.as_deref(),
            route.tags.as_slice(),
            Value::Object(route.hints.clone()).to_string(),
            route.origin.as_ref().map(ConnectionName::as_str),
        );
        operations
            .entry(key)
            .or_insert_with(|| OperationLine {
                op: route.op,
                model: &route.model,
                app: route.app.as_deref(),
                table: route.table.as_deref(),
                tags: &route.tags,
                hints: &route.hints,
                origin: route.origin.as_ref().map(ConnectionName::as_str),
                count: 0,
            })
            .count += route.count;
    }
    let mut lines: Vec<(Key<'_>, OperationLine<'_>)> = operations.into_iter().collect();
    lines.sort_unstable_by(|(a, a_line), (b, b_line)| b_line.count.cmp(&a_line.count).then_with(|| a.cmp(b)));
    for (_, line) in &lines {
        serde_json::to_writer(&mut out, line)?;
        out.write_all(b"\n")?;
    }
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(generation: u64, op: RouteKind, model: &str, connection: ConnectionName, count: u64) -> RouteCount {
        RouteCount {
            generation,
            op,
            model: model.to_owned(),
            app: None,
            table: None,
            tags: Vec::new(),
            hints: Map::new(),
            origin: None,
            connection,
            count,
        }
    }

    #[test]
    fn counts_each_route_across_threads_and_sorts_the_snapshot() {
        let stats = RouteStats::default();
        let main = ConnectionName::new("main").unwrap();
        let replica = ConnectionName::new("replica").unwrap();
        let (user, order) = (ModelInfo::new("User"), ModelInfo::new("Order"));
        let none = Hints::new();
        // Twice as many threads as slots: some may share a shard.
        std::thread::scope(|s| {
            for _ in 0..2 * SLOTS {
                s.spawn(|| {
                    for _ in 0..10 {
                        stats.record(1, (RouteKind::Read, &user, &none, None), replica);
                        stats.record(1, (RouteKind::Write, &user, &none, None), main);
                    }
                    stats.record(2, (RouteKind::Read, &order, &none, None), main);
                });
            }
        });
        let threads = 2 * SLOTS as u64;
        assert_eq!(
            stats.snapshot(),
            [
                route(1, RouteKind::Read, "User", replica, 10 * threads),
                route(1, RouteKind::Write, "User", main, 10 * threads),
                route(2, RouteKind::Read, "Order", main, threads),
            ]
        );
    }

    #[test]
    fn keeps_the_models_app_table_tags_and_the_hints() {
        let stats = RouteStats::default();
        let main = ConnectionName::new("main").unwrap();
        let event = ModelInfo::new("Event")
            .with_app("metrics")
            .with_table("events")
            .with_tags(["append"]);
        let acme = Hints::new().with("tenant", "acme");
        stats.record(3, (RouteKind::Write, &event, &acme, None), main);
        stats.record(3, (RouteKind::Write, &event, &acme, None), main);
        stats.record(3, (RouteKind::Write, &event, &Hints::new(), None), main);
        let mut with_hints = route(3, RouteKind::Write, "Event", main, 2);
        with_hints.app = Some("metrics".into());
        with_hints.table = Some("events".into());
        with_hints.tags = vec!["append".into()];
        with_hints.hints.insert("tenant".into(), "acme".into());
        let mut without = with_hints.clone();
        without.hints = Map::new();
        without.count = 1;
        assert_eq!(stats.snapshot(), [without, with_hints]);
    }

    #[test]
    fn keeps_the_origin_apart_and_writes_it() {
        let stats = RouteStats::default();
        let (main, replica) = (
            ConnectionName::new("main").unwrap(),
            ConnectionName::new("replica").unwrap(),
        );
        let user = ModelInfo::new("User");
        let none = Hints::new();
        stats.record(1, (RouteKind::Write, &user, &none, Some(replica)), main);
        stats.record(1, (RouteKind::Write, &user, &none, None), main);
        let routes = stats.snapshot();
        let mut from_replica = route(1, RouteKind::Write, "User", main, 1);
        from_replica.origin = Some(replica);
        assert_eq!(routes, [route(1, RouteKind::Write, "User", main, 1), from_replica]);
        let mut out = Vec::new();
        assert_eq!(write_operations(&routes, &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"{"op":"write","model":"User","origin":"replica","count":1}"#),
            "{text}"
        );
    }

    #[test]
    fn hints_beyond_the_limit_are_counted_without_them() {
        let stats = RouteStats::default();
        let main = ConnectionName::new("main").unwrap();
        let user = ModelInfo::new("User");
        // On one thread: one shard.
        for id in 0..MAX_HINT_SETS + 10 {
            stats.record(1, (RouteKind::Read, &user, &Hints::new().with("user", id), None), main);
        }
        let routes = stats.snapshot();
        assert_eq!(routes.len(), MAX_HINT_SETS + 1);
        let without: Vec<&RouteCount> = routes.iter().filter(|r| r.hints.is_empty()).collect();
        assert_eq!(without.len(), 1);
        assert_eq!(without[0].count, 10);
        assert_eq!(routes.iter().map(|r| r.count).sum::<u64>(), MAX_HINT_SETS as u64 + 10);
    }

    #[test]
    fn the_operations_file_merges_generations_and_connections_most_frequent_first() {
        let main = ConnectionName::new("main").unwrap();
        let replica = ConnectionName::new("replica").unwrap();
        let mut tenant_read = route(1, RouteKind::Read, "Invoice", replica, 2);
        tenant_read.app = Some("billing".into());
        tenant_read.hints.insert("tenant".into(), "acme".into());
        let mut tenant_read_later = tenant_read.clone();
        tenant_read_later.generation = 2;
        tenant_read_later.connection = main;
        tenant_read_later.count = 5;
        let counts = [
            tenant_read,
            route(1, RouteKind::Write, "User", main, 3),
            tenant_read_later,
        ];
        let mut out = Vec::new();
        assert_eq!(write_operations(&counts, &mut out).unwrap(), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"op":"read","model":"Invoice","app":"billing","hints":{"tenant":"acme"},"count":7}"#,
                "\n",
                r#"{"op":"write","model":"User","count":3}"#,
                "\n",
            )
        );
    }
}
