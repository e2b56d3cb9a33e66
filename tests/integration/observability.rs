//! What a service sees of the engine: the `metrics` it publishes (whatever
//! the order in which the service installs its recorder) and the `tracing`
//! spans of routed operations and transactions.
//!
//! Each test installs its recorder or subscriber on its own thread (a
//! current-thread runtime, so every poll, and the engine's timer, run
//! there): tests running meanwhile in this binary do not reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbroute::router::{Fault, HostRouter, RouteDecision, RouteRequest, RouterIdentity};
use dbroute::{ConnectionFactory, ConnectionName, Engine, ModelInfo, params};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// `Order` goes to `obs_orders`; writes of `Secret` are refused; no opinion
/// on anything else.
#[derive(Debug)]
struct Orders;

impl HostRouter for Orders {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("orders")
    }
    fn db_for_read(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(match op.model.name() {
            "Order" => RouteDecision::Use(ConnectionName::from_static("obs_orders")),
            _ => RouteDecision::NoOpinion,
        })
    }
    fn db_for_write(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(match op.model.name() {
            "Secret" => RouteDecision::Refuse("secrets are read-only".into()),
            _ => self.db_for_read(op)?,
        })
    }
}

async fn engine(tenants: &std::path::Path) -> Engine {
    let engine = Engine::builder()
        .connection("obs_main", "sqlite::memory:")
        .connection("obs_orders", "sqlite::memory:")
        .add_router(Orders)
        .connection_factory(
            ConnectionFactory::from_template(format!("sqlite:{}/{{name}}.db", tenants.display())).max_connections(1),
        )
        .publish_metrics_every(Duration::from_millis(20))
        .build()
        .await
        .expect("engine");
    for name in ["obs_main", "obs_orders"] {
        let db = engine.connection(name).unwrap();
        db.execute("CREATE TABLE t (x INTEGER)", &[]).await.unwrap();
    }
    engine
}

/// Every sample of a Prometheus text page: `name{labels}` → value.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_recorder_installed_after_the_engine_sees_every_count() {
    let tenants = tempfile::tempdir().unwrap();
    let engine = engine(tenants.path()).await;
    let (order, user, secret) = (
        ModelInfo::new("Order"),
        ModelInfo::new("User"),
        ModelInfo::new("Secret"),
    );
    // Before any recorder: three decisions by the router, two by default,
    // one by `using`, two in a transaction, a refusal; two tenants made,
    // the first evicted when the second comes (at most one).
    for _ in 0..3 {
        engine
            .write_model(&order)
            .execute("INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap();
    }
    for _ in 0..2 {
        engine
            .read_model(&user)
            .fetch_all("SELECT x FROM t", &[])
            .await
            .unwrap();
    }
    engine
        .read_model(&user)
        .using("obs_orders")
        .fetch_all("SELECT x FROM t", &[])
        .await
        .unwrap();
    engine
        .transaction()
        .on("obs_orders")
        .run(|_| async {
            engine
                .write_model(&user)
                .execute("INSERT INTO t VALUES (2)", &[])
                .await?;
            engine.read_model(&order).fetch_all("SELECT x FROM t", &[]).await?;
            Ok::<_, dbroute::Error>(())
        })
        .await
        .unwrap();
    let refused = engine
        .write_model(&secret)
        .execute("INSERT INTO t VALUES (3)", &[])
        .await;
    assert!(
        matches!(refused, Err(dbroute::Error::RouterRefused { .. })),
        "{refused:?}"
    );
    for tenant in ["obs_t1", "obs_t2"] {
        engine.read_model(&user).using(tenant).connection().unwrap();
    }

    // The engine has published already, to no recorder.
    engine.publish_metrics();
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Now the service installs its recorder; it publishes nothing itself:
    // the engine's timer does.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _installed = metrics::set_default_local_recorder(&recorder);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let page = handle.render();
    let got = samples(&page);
    let sample = |series: &str| {
        got.get(series)
            .copied()
            .unwrap_or_else(|| panic!("no {series} in:\n{page}"))
    };
    let decisions = |connection: &str, operation: &str, by: &str| {
        sample(&format!(
            r#"dbroute_decisions_total{{connection="{connection}",operation="{operation}",decided_by="{by}"}}"#
        ))
    };
    assert_eq!(decisions("obs_orders", "write", "router"), 3.0);
    assert_eq!(decisions("obs_main", "read", "default"), 2.0);
    assert_eq!(decisions("obs_orders", "read", "using"), 1.0);
    assert_eq!(decisions("obs_orders", "write", "transaction"), 1.0);
    assert_eq!(decisions("obs_orders", "read", "transaction"), 1.0);
    assert_eq!(decisions("obs_t1", "read", "using"), 1.0);
    assert_eq!(
        sample(r#"dbroute_router_answers_total{router="orders",operation="write",answer="connection"}"#),
        3.0
    );
    assert_eq!(
        sample(r#"dbroute_router_answers_total{router="orders",operation="write",answer="refused"}"#),
        1.0
    );
    assert_eq!(sample("dbroute_factory_connections_made_total"), 2.0);
    assert_eq!(sample(r#"dbroute_factory_evictions_total{reason="limit"}"#), 1.0);
    // 2 tables, 3 + 2 + 1 statements, a transaction's 2.
    assert_eq!(
        sample(r#"dbroute_queries_total{connection="obs_orders"}"#),
        1.0 + 3.0 + 1.0 + 2.0
    );
    assert_eq!(
        sample(r#"dbroute_pool_connections{connection="obs_main",state="in_use"}"#),
        0.0
    );
    assert!(
        !page.contains("obs_main\",operation=\"write\""),
        "no write went to obs_main:\n{page}"
    );

    // Later counts reach it too, and the statement times are recorded from
    // now on (samples have no totals to catch up with).
    engine
        .write_model(&order)
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    engine.publish_metrics();
    let got = samples(&handle.render());
    assert_eq!(
        got[r#"dbroute_decisions_total{connection="obs_orders",operation="write",decided_by="router"}"#],
        4.0
    );
    assert_eq!(
        got[r#"dbroute_query_duration_seconds_count{connection="obs_orders"}"#],
        1.0
    );
    assert_eq!(
        got[r#"dbroute_pool_acquire_seconds_count{connection="obs_orders"}"#],
        1.0
    );
}

/// A span's name, and its fields by name.
type Seen = (String, HashMap<String, String>);

/// The spans a subscriber saw closed.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Seen>>>);

struct Open(HashMap<String, String>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        ctx.span(id).unwrap().extensions_mut().insert(Open(fields));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        values.record(&mut Fields(&mut extensions.get_mut::<Open>().unwrap().0));
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span.extensions_mut().remove::<Open>().unwrap().0;
        self.0.lock().unwrap().push((span.name().to_owned(), fields));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn routed_operations_and_transactions_are_spans_with_their_decision() {
    let tenants = tempfile::tempdir().unwrap();
    let engine = engine(tenants.path()).await;
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(
        spans
            .clone()
            .with_filter(tracing_subscriber::filter::Targets::new().with_target("dbroute", tracing::Level::DEBUG)),
    );
    let _subscribed = tracing::subscriber::set_default(subscriber);
    // With a single scoped dispatcher, tracing asks only the registering
    // thread's subscriber whether a new callsite is interesting (a span
    // first hit by another test's thread would be off for good); with a
    // second one it asks every one. And a callsite another thread hit while
    // these were being registered is asked again.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    tracing::callsite::rebuild_interest_cache();
    let (order, user, secret) = (
        ModelInfo::new("Order"),
        ModelInfo::new("User"),
        ModelInfo::new("Secret"),
    );

    engine
        .write_model(&order)
        .execute("INSERT INTO t VALUES ($1)", &params![7])
        .await
        .unwrap();
    engine
        .read_model(&user)
        .fetch_all("SELECT x FROM t", &[])
        .await
        .unwrap();
    engine
        .read_model(&user)
        .using("obs_orders")
        .fetch_one("SELECT 1", &[])
        .await
        .unwrap();
    let _ = engine
        .write_model(&secret)
        .execute("INSERT INTO t VALUES (3)", &[])
        .await;
    engine
        .transaction()
        .for_write_model(&order)
        .run(|_| async { engine.read_model(&user).fetch_optional("SELECT x FROM t", &[]).await })
        .await
        .unwrap();

    let spans = spans.0.lock().unwrap().clone();
    let field = |i: usize, name: &str| spans[i].1.get(name).cloned().unwrap_or_default();
    let names: Vec<_> = spans.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dbroute.operation",
            "dbroute.operation",
            "dbroute.operation",
            "dbroute.operation",
            "dbroute.operation",
            "dbroute.transaction"
        ],
        "{spans:?}"
    );
    // Decided by the router: its name is there.
    assert_eq!(field(0, "operation"), "write");
    assert_eq!(field(0, "model"), "Order");
    assert_eq!(field(0, "connection"), "obs_orders");
    assert_eq!(field(0, "decided_by"), "router");
    assert_eq!(field(0, "router"), "orders");
    assert!(field(0, "elapsed_us").parse::<u64>().is_ok(), "{:?}", spans[0]);
    assert_eq!(field(0, "error"), "");
    // No opinion: default; an explicit `using`.
    assert_eq!(
        (field(1, "connection").as_str(), field(1, "decided_by").as_str()),
        ("obs_main", "default")
    );
    assert_eq!(field(1, "router"), "");
    assert_eq!(
        (field(2, "connection").as_str(), field(2, "decided_by").as_str()),
        ("obs_orders", "using")
    );
    // Refused: no connection, the error.
    assert_eq!(field(3, "connection"), "");
    assert!(field(3, "error").contains("secrets are read-only"), "{:?}", spans[3]);
    assert!(field(3, "elapsed_us").parse::<u64>().is_ok());
    // Inside the transaction: pinned by it.
    assert_eq!(
        (field(4, "connection").as_str(), field(4, "decided_by").as_str()),
        ("obs_orders", "transaction")
    );
    // The transaction itself: routed for Order by the router, committed.
    assert_eq!(field(5, "model"), "Order");
    assert_eq!(field(5, "connection"), "obs_orders");
    assert_eq!(field(5, "decided_by"), "router");
    assert_eq!(field(5, "router"), "orders");
    assert_eq!(field(5, "outcome"), "commit");
    assert!(field(5, "elapsed_us").parse::<u64>().is_ok());
}
