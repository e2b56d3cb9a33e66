//! The demo's scenarios. Each one sets the routers it needs, plays
//! operations through the engine, and proves its claims from the rows it
//! finds (or does not find) in each database.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dbroute::router::{Fault, HostRouter};
use dbroute::wasm::Expectation;
use dbroute::{Error, Hints};

use super::routers::{ANALYTICS_SPLIT, MAINTENANCE, MAINTENANCE_MESSAGE, REPLICA_SPLIT, RUNAWAY};
use super::{Demo, Play, Report, Scenario};

/// Every scenario, in the order they are played. To add one, write an
/// `async fn(&Demo, &mut Report) -> anyhow::Result<()>` and list it here.
pub(crate) fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            key: "replica",
            title: "reads to the replica and writes to the primary",
            needs: &["replica"],
            play: |demo, report| -> Play<'_> { Box::pin(replica(demo, report)) },
        },
        Scenario {
            key: "analytics",
            title: "a model kept in its own database",
            needs: &["analytics"],
            play: |demo, report| -> Play<'_> { Box::pin(analytics(demo, report)) },
        },
        Scenario {
            key: "cache",
            title: "a cache connection beside the primary, with allow_migrate",
            needs: &["cache"],
            play: |demo, report| -> Play<'_> { Box::pin(cache(demo, report)) },
        },
        Scenario {
            key: "transaction",
            title: "a transaction is pinned to one connection: reads stay in it, misrouted writes are refused",
            needs: &["replica", "analytics"],
            play: |demo, report| -> Play<'_> { Box::pin(transaction(demo, report)) },
        },
        Scenario {
            key: "hot-swap",
            title: "hot swap of the router during a stream of queries, with zero failures",
            needs: &["replica", "analytics"],
            play: |demo, report| -> Play<'_> { Box::pin(hot_swap(demo, report)) },
        },
        Scenario {
            key: "refusal",
            title: "a router refuses an operation: it fails and nothing is written",
            needs: &[],
            play: |demo, report| -> Play<'_> { Box::pin(refusal(demo, report)) },
        },
        Scenario {
            key: "time-budget",
            title: "a router that never returns is stopped by its time budget",
            needs: &["replica"],
            play: |demo, report| -> Play<'_> { Box::pin(time_budget(demo, report)) },
        },
    ]
}

/// `found` as `a (1), b (2)`, or `nowhere`.
fn places(found: &[(String, i64)]) -> String {
    if found.is_empty() {
        return "found nowhere".to_owned();
    }
    let list: Vec<String> = found.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    format!("found in {}", list.join(", "))
}

/// Scenario 1: the classic primary/replica split.
async fn replica(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    let router = demo.example_router(
        "replica",
        dbroute_example_routers::REPLICA,
        serde_json::Value::Null,
        vec![
            Expectation::read("User").answers("replica"),
            Expectation::write("User").answers("default"),
        ],
    )?;
    report.note(format!(
        "{} (Rust, example-routers/replica, {} bytes of Wasm): reads -> replica, writes -> default",
        router.identity(),
        router.info().size
    ));
    demo.engine.set_router(router);
    let user = Demo::model("User", "dbroute_demo_users");
    let default = demo.real_name("default");

    // The demo has no replication: give the replica a row of its own, so
    // a read shows where it was served from.
    let seeded = demo.seed("replica", &user, "grace (only on the replica)").await?;
    report.op("replica", "seed (direct, no router)", &user, seeded);
    let (written_on, rows) = demo.write(&user, "ada").await?;
    report.op(&written_on, "write", &user, rows);
    let (read_on, labels) = demo.read(&user).await?;
    report.op(&read_on, "read", &user, labels.len());

    report.claim(
        written_on == default,
        "the write was routed to `default`",
        format!("went to `{written_on}`"),
    );
    let found = demo.locate(&user, "ada").await?;
    report.claim(
        found == [(default.clone(), 1)],
        "the written row is in `default` and not in `replica`",
        places(&found),
    );
    report.claim(
        read_on == "replica",
        "the read was routed to `replica`",
        format!("went to `{read_on}`"),
    );
    report.claim(
        labels == ["grace (only on the replica)"],
        "the read returned the replica's own row, not the one just written to `default`",
        format!("read {labels:?}"),
    );
    Ok(())
}

/// A model kept in its own database: the `analytics` example router.
async fn analytics(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    let router = demo.example_router(
        "analytics",
        dbroute_example_routers::ANALYTICS,
        serde_json::Value::Null,
        vec![
            Expectation::write("Event").answers("analytics"),
            Expectation::write("User").has_no_opinion(),
        ],
    )?;
    report.note(format!(
        "{} (Rust, example-routers/analytics): Event reads and writes on `analytics`, no opinion on anything else",
        router.identity()
    ));
    demo.engine.set_router(router);
    let (event, user) = (
        Demo::model("Event", "dbroute_demo_events"),
        Demo::model("User", "dbroute_demo_users"),
    );
    let default = demo.real_name("default");
    let (event_on, rows) = demo.write(&event, "page-view").await?;
    report.op(&event_on, "write", &event, rows);
    let (user_on, rows) = demo.write(&user, "linus").await?;
    report.op(&user_on, "write", &user, rows);
    let (read_on, labels) = demo.read(&event).await?;
    report.op(&read_on, "read", &event, labels.len());
    let found = demo.locate(&event, "page-view").await?;
    report.claim(
        found == [("analytics".to_owned(), 1)],
        "the Event row is in `analytics` only",
        places(&found),
    );
    let found = demo.locate(&user, "linus").await?;
    report.claim(
        found == [(default.clone(), 1)],
        "the User row (no opinion) is in `default` only",
        places(&found),
    );
    report.claim(
        read_on == "analytics" && labels == ["page-view"],
        "reading Event reads `analytics`",
        format!("read {labels:?} from `{read_on}`"),
    );
    Ok(())
}

/// A cache connection beside the primary: the `cache` example router, with
/// `allow_migrate` keeping Snapshot's table on the cache only.
async fn cache(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    let router = demo.example_router(
        "cache",
        dbroute_example_routers::CACHE,
        serde_json::Value::Null,
        vec![Expectation::read("Snapshot").answers("cache")],
    )?;
    report.note(format!(
        "{} (Rust, example-routers/cache): Snapshot on `cache`, whose backend here is {}",
        router.identity(),
        demo.engine.connection("cache")?.backend()
    ));
    demo.engine.set_router(router);
    let snapshot = Demo::model("Snapshot", "dbroute_demo_snapshots");
    let (written_on, rows) = demo.write(&snapshot, "daily-totals").await?;
    report.op(&written_on, "write", &snapshot, rows);
    let (read_on, labels) = demo.read(&snapshot).await?;
    report.op(&read_on, "read", &snapshot, labels.len());
    let found = demo.locate(&snapshot, "daily-totals").await?;
    report.claim(
        found == [("cache".to_owned(), 1)],
        "the Snapshot row is in `cache` only",
        places(&found),
    );
    let hints = Hints::new();
    let on_cache = demo.engine.allow_migrate("cache", &snapshot, &hints)?;
    let on_default = demo.engine.allow_migrate("default", &snapshot, &hints)?;
    let user_on_cache = demo
        .engine
        .allow_migrate("cache", &Demo::model("User", "dbroute_demo_users"), &hints)?;
    report.claim(
        on_cache && !on_default && !user_on_cache,
        "allow_migrate keeps Snapshot's table on `cache` only, and other tables off it",
        format!("Snapshot on cache: {on_cache}, on default: {on_default}; User on cache: {user_on_cache}"),
    );
    Ok(())
}

/// Scenario: transactions pin reads to their connection and refuse a write
/// the router sends elsewhere.
async fn transaction(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    let router = demo.router(
        "replica-split",
        REPLICA_SPLIT,
        vec![Expectation::read("Order").answers("replica")],
    )?;
    demo.engine.set_router(router);
    let order = Demo::model("Order", "dbroute_demo_orders");
    let default = demo.real_name("default");
    let router_says = demo.engine.db_for_read(&order, &Hints::new())?.to_string();
    report.note(format!(
        "router: replica-split, which sends reads of Order to `{router_says}` and writes to `default`"
    ));

    // 1. A transaction on the default connection: the routed read joins
    //    it, and sees the row written in it before the commit.
    let ((w_on, w_rows), (r_on, labels)) = demo
        .engine
        .transaction()
        .run(|_tx| async {
            let written = demo.write(&order, "order-1").await?;
            let read = demo.read(&order).await?;
            anyhow::Ok((written, read))
        })
        .await?;
    report.op(&w_on, "write (in transaction)", &order, w_rows);
    report.op(&r_on, "read (in transaction)", &order, labels.len());
    report.op(&default, "commit", &order, "-");

    // 2. A transaction on `analytics`: the router sends writes of Order to
    //    `default`, so the write is refused rather than misplaced.
    let misrouted = demo
        .engine
        .transaction()
        .on("analytics")
        .run(|_tx| async { demo.write(&order, "order-2").await })
        .await;
    report.op("analytics", "write (in transaction on analytics): refused", &order, 0);
    report.op("analytics", "rollback", &order, "-");

    // 3. A transaction whose work fails is rolled back.
    let before_failure = std::cell::Cell::new(None);
    let failed: anyhow::Result<()> = demo
        .engine
        .transaction()
        .run(|_tx| async {
            before_failure.set(Some(demo.write(&order, "order-3").await?));
            anyhow::bail!("simulated failure")
        })
        .await;
    let (f_on, f_rows) = before_failure.take().unwrap_or_else(|| ("-".to_owned(), 0));
    report.op(&f_on, "write (in transaction), then fail", &order, f_rows);
    report.op(&f_on, "rollback", &order, "-");

    report.claim(
        r_on == default,
        "the read inside the transaction ran on the transaction's connection, not the router's `replica`",
        format!("ran on `{r_on}`"),
    );
    report.claim(
        labels == ["order-1"],
        "it saw the transaction's own uncommitted row",
        format!("read {labels:?}"),
    );
    let found = demo.locate(&order, "order-1").await?;
    report.claim(
        found == [(default.clone(), 1)],
        "after the commit the row is in `default` only",
        places(&found),
    );
    let found = demo.locate(&order, "order-2").await?;
    let refusal = match &misrouted {
        Ok(_) => "it was not refused".to_owned(),
        Err(e) => e.to_string(),
    };
    let cross = misrouted
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<dbroute::Error>())
        .is_some_and(|e| matches!(e, dbroute::Error::CrossConnection { .. }));
    report.claim(
        cross && found.is_empty(),
        "the write the router sends to `default`, inside the transaction on `analytics`, was refused: the row is in no database",
        format!("{refusal}; {}", places(&found)),
    );
    let found = demo.locate(&order, "order-3").await?;
    report.claim(
        failed.is_err() && f_on == default && found.is_empty(),
        "the failed transaction was rolled back: the row it wrote is in no database",
        places(&found),
    );
    Ok(())
}

/// What the query streams of the hot-swap scenario counted.
#[derive(Debug, Default)]
struct Stream {
    reads: AtomicU64,
    writes: AtomicU64,
    failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Stream {
    fn attempts(&self) -> (u64, u64) {
        let failures = self.failures.load(Ordering::Relaxed);
        (
            self.reads.load(Ordering::Relaxed) + failures,
            self.writes.load(Ordering::Relaxed) + failures,
        )
    }

    fn failed(&self, error: &anyhow::Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_failure.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| error.to_string());
    }
}

/// Scenario 3: swapping routers while queries run never fails one.
async fn hot_swap(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    const SWAPS: u64 = 20;
    const HOT_SWAP_LABEL: &str = "hot-swap write";
    let event = Demo::model("Event", "dbroute_demo_events");
    let to_replica = demo.router(
        "replica-split",
        REPLICA_SPLIT,
        vec![Expectation::read("Event").answers("replica")],
    )?;
    let to_analytics = demo.router(
        "analytics-split",
        ANALYTICS_SPLIT,
        vec![Expectation::read("Event").answers("analytics")],
    )?;
    let first_generation = demo.engine.set_router(to_replica.clone());
    let before = demo.engine.decision_counts();
    report.note(format!(
        "two tasks stream routed reads and writes of Event while the main task swaps \
         replica-split (reads -> replica) and analytics-split (reads -> analytics) {SWAPS} times"
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let stream = Arc::new(Stream::default());
    let reader = {
        let (demo, event, stop, stream) = (demo.clone(), event.clone(), stop.clone(), stream.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match demo.read(&event).await {
                    Ok(_) => stream.reads.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        stream.failed(&e);
                        0
                    }
                };
            }
        })
    };
    let writer = {
        let (demo, event, stop, stream) = (demo.clone(), event.clone(), stop.clone(), stream.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match demo.write(&event, HOT_SWAP_LABEL).await {
                    Ok(_) => stream.writes.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        stream.failed(&e);
                        0
                    }
                };
            }
        })
    };

    let started = Instant::now();
    let mut stalled = None;
    for i in 0..SWAPS {
        let next = if i % 2 == 0 { &to_analytics } else { &to_replica };
        demo.engine.set_router(next.clone());
        // Let both streams make progress under each router.
        let (reads, writes) = stream.attempts();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (r, w) = stream.attempts();
            if r >= reads + 3 && w > writes {
                break;
            }
            if Instant::now() > deadline {
                stalled = Some(i + 1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if stalled.is_some() {
            break;
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    reader.await.context("the reading task")?;
    writer.await.context("the writing task")?;

    let generations = demo.engine.router_status().generation - first_generation;
    let reads = stream.reads.load(Ordering::Relaxed);
    let writes = stream.writes.load(Ordering::Relaxed);
    let failures = stream.failures.load(Ordering::Relaxed);
    let after = demo.engine.decision_counts();
    let default = demo.engine.default_name();
    let mut rows = Vec::new();
    let (mut replica_reads, mut analytics_reads, mut default_writes, mut other_writes) = (0, 0, 0, 0);
    for count in &after {
        let old = before.iter().find(|c| c.connection == count.connection);
        let (r, w) = (
            count.reads - old.map_or(0, |c| c.reads),
            count.writes - old.map_or(0, |c| c.writes),
        );
        match count.connection.as_str() {
            "replica" => replica_reads = r,
            "analytics" => analytics_reads = r,
            _ => {}
        }
        if count.connection == default {
            default_writes = w;
        } else {
            other_writes += w;
        }
        rows.push(vec![count.connection.to_string(), r.to_string(), w.to_string()]);
    }
    report.note(format!(
        "{generations} swaps in {took:.0?}; {reads} reads and {writes} writes; decisions per connection \
         (engine.decision_counts()):"
    ));
    report.table(vec!["connection", "reads", "writes"], rows);

    let first_failure = stream.first_failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
    report.claim(
        failures == 0,
        "no query failed during the swaps",
        match first_failure {
            Some(error) => format!("{failures} failed, first: {error}"),
            None => format!("{} queries, 0 failures", reads + writes),
        },
    );
    report.claim(
        stalled.is_none() && generations == SWAPS,
        format!("the router was swapped {SWAPS} times while the queries ran"),
        match stalled {
            Some(at) => format!("the queries stalled at swap {at}"),
            None => format!("generation advanced by {generations}"),
        },
    );
    report.claim(
        replica_reads > 0 && analytics_reads > 0,
        "both routers served reads: some went to `replica`, some to `analytics`",
        format!("replica: {replica_reads}, analytics: {analytics_reads}"),
    );
    let in_default = demo.count("default", &event, HOT_SWAP_LABEL).await?;
    let found = demo.locate(&event, HOT_SWAP_LABEL).await?;
    report.claim(
        default_writes == writes && other_writes == 0 && in_default == writes as i64 && found.len() == 1,
        "every write went to `default`, as both routers say, and every written row is there",
        format!("{writes} writes, {}", places(&found)),
    );
    Ok(())
}

/// Scenario 4: a refusal fails the operation; there is no fallback.
async fn refusal(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    let router = demo.router(
        "maintenance",
        MAINTENANCE,
        vec![
            Expectation::write("Archive").is_refused(),
            Expectation::read("Archive").has_no_opinion(),
        ],
    )?;
    demo.engine.set_router(router);
    report.note("router: maintenance, which refuses every write and has no opinion on reads");
    let archive = Demo::model("Archive", "dbroute_demo_archive");
    let default = demo.real_name("default");

    let written = demo.write(&archive, "archived-1").await;
    let refusal = match written.as_ref().map_err(|e| e.downcast_ref::<Error>()) {
        Err(Some(Error::RouterRefused { message, .. })) => Some(message.clone()),
        _ => None,
    };
    report.op("-", "write", &archive, "refused");
    let (read_on, labels) = demo.read(&archive).await?;
    report.op(&read_on, "read", &archive, labels.len());

    report.claim(
        refusal.as_deref() == Some(MAINTENANCE_MESSAGE),
        "the write failed with the router's own message",
        match &written {
            Err(e) => format!("error: {e}"),
            Ok((on, _)) => format!("it succeeded on `{on}`"),
        },
    );
    let found = demo.locate(&archive, "archived-1").await?;
    report.claim(
        found.is_empty(),
        "nothing was written anywhere: a refusal never falls back",
        places(&found),
    );
    report.claim(
        read_on == default,
        "the read, on which the router has no opinion, went to `default`",
        format!("went to `{read_on}`"),
    );
    Ok(())
}

/// Scenario 5: the time budget stops a router that never returns.
async fn time_budget(demo: &Demo, report: &mut Report) -> anyhow::Result<()> {
    let router = demo.router("runaway", RUNAWAY, vec![Expectation::read("User").answers("replica")])?;
    demo.engine.set_router(router);
    let budget = demo.engine.router_runtime()?.limits().get_time_budget();
    report.note(format!(
        "router: runaway, whose db_for_write is an endless loop; time budget per call: {budget:?}"
    ));
    let user = Demo::model("User", "dbroute_demo_users");

    let started = Instant::now();
    let written = demo.write(&user, "runaway write").await;
    let took = started.elapsed();
    let timed_out = matches!(
        written.as_ref().map_err(|e| e.downcast_ref::<Error>()),
        Err(Some(Error::RouterFault {
            fault: Fault::Timeout { .. },
            ..
        }))
    );
    report.op("-", "write", &user, "stopped");
    let (read_on, labels) = demo.read(&user).await?;
    report.op(&read_on, "read (next call)", &user, labels.len());

    report.claim(
        timed_out,
        "the write failed with a time-budget fault",
        match &written {
            Err(e) => format!("error: {e}"),
            Ok((on, _)) => format!("it succeeded on `{on}`"),
        },
    );
    report.claim(
        took < budget + Duration::from_secs(1),
        "it was stopped promptly",
        format!("after {took:.1?}"),
    );
    let found = demo.locate(&user, "runaway write").await?;
    report.claim(
        found.is_empty(),
        "the write was sent nowhere: a fault never picks a connection",
        places(&found),
    );
    report.claim(
        read_on == "replica",
        "the router keeps serving: the next read was answered (by a fresh instance)",
        format!("went to `{read_on}`"),
    );
    Ok(())
}
