//! Transactions pinned to one connection, on all three backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dbroute::{Backend, Engine, Error, ModelInfo, TransactionRouting, params, sqlx::AssertSqlSafe};

use crate::support::{Fixed, TestDb, per_backend};

fn item() -> ModelInfo {
    ModelInfo::new("Item").with_table("items")
}

/// `default` and `other` on two fresh databases of the same backend, with
/// an `items` table on each.
async fn two_databases(db: &TestDb) -> (Engine, TestDb) {
    let other = TestDb::new(db.backend).await;
    let engine = Engine::builder()
        .connection_with("default", &db.url, dbroute::PoolSettings::new().max_connections(4))
        .connection("other", &other.url)
        .build()
        .await
        .unwrap();
    for name in ["default", "other"] {
        engine
            .connection(name)
            .unwrap()
            .execute("CREATE TABLE items (tag VARCHAR(40))", &[])
            .await
            .unwrap();
    }
    (engine, other)
}

async fn count(engine: &Engine, connection: &str, tag: &str) -> i64 {
    let conn = engine.connection(connection).unwrap();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM items WHERE tag = {}",
        conn.backend().placeholder(1)
    );
    conn.fetch_one(AssertSqlSafe(sql), &params![tag])
        .await
        .unwrap()
        .get("n")
}

fn insert(engine_backend: dbroute::Backend) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!(
        "INSERT INTO items (tag) VALUES ({})",
        engine_backend.placeholder(1)
    ))
}

per_backend!(uncommitted_writes_are_visible_inside_only, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let tx = engine.transaction().begin().await.unwrap();
    tx.connection()
        .execute(insert(db.backend), &params!["a"])
        .await
        .unwrap();
    let inside: i64 = tx
        .connection()
        .fetch_one("SELECT COUNT(*) AS n FROM items", &[])
        .await
        .unwrap()
        .get("n");
    assert_eq!(inside, 1);
    assert_eq!(count(&engine, "default", "a").await, 0, "visible outside before commit");
    tx.commit().await.unwrap();
    assert_eq!(count(&engine, "default", "a").await, 1);
});

per_backend!(rollback_and_drop_leave_nothing, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let tx = engine.transaction().on("other").begin().await.unwrap();
    assert_eq!(tx.connection_name(), "other");
    tx.connection()
        .execute(insert(db.backend), &params!["r"])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    {
        let tx = engine.transaction().on("other").begin().await.unwrap();
        tx.connection()
            .execute(insert(db.backend), &params!["d"])
            .await
            .unwrap();
        // dropped unfinished
    }
    assert_eq!(count(&engine, "other", "r").await, 0);
    assert_eq!(count(&engine, "other", "d").await, 0);
    // The pool is healthy after the drop.
    engine
        .connection("other")
        .unwrap()
        .execute(insert(db.backend), &params!["ok"])
        .await
        .unwrap();
    assert_eq!(count(&engine, "other", "ok").await, 1);
});

per_backend!(savepoints_nest, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let tx = engine.transaction().begin().await.unwrap();
    tx.connection()
        .execute(insert(db.backend), &params!["outer"])
        .await
        .unwrap();
    let inner = tx.savepoint().await.unwrap();
    assert!(inner.is_nested());
    inner
        .connection()
        .execute(insert(db.backend), &params!["inner-rolled-back"])
        .await
        .unwrap();
    inner.rollback().await.unwrap();
    let inner = tx.savepoint().await.unwrap();
    inner
        .connection()
        .execute(insert(db.backend), &params!["inner-kept"])
        .await
        .unwrap();
    inner.commit().await.unwrap();
    {
        let dropped = tx.savepoint().await.unwrap();
        dropped
            .connection()
            .execute(insert(db.backend), &params!["inner-dropped"])
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(count(&engine, "default", "outer").await, 1);
    assert_eq!(count(&engine, "default", "inner-kept").await, 1);
    assert_eq!(count(&engine, "default", "inner-rolled-back").await, 0);
    assert_eq!(count(&engine, "default", "inner-dropped").await, 0);
});

per_backend!(
    reads_are_pinned_and_a_misrouted_write_is_refused,
    |db: TestDb| async move {
        let (engine, _other) = two_databases(&db).await;
        // Reads to `other` (a "replica"), writes to default.
        let calls = Arc::new(AtomicUsize::new(0));
        engine.set_router(Fixed {
            read: Some("other"),
            write: Some("default"),
            calls: calls.clone(),
        });
        let model = item();
        let backend = db.backend;
        let e = engine.clone();
        let seen = engine
            .transaction()
            .for_write_model(&model)
            .run(|tx| async move {
                assert_eq!(tx.name(), "default", "db_for_write chose the connection");
                e.write_model(&item())
                    .execute(insert(backend), &params!["mine"])
                    .await?;
                // The read stays in the transaction (the router would say
                // `other`), so it sees the transaction's own row.
                let row = e
                    .read_model(&item())
                    .fetch_one("SELECT COUNT(*) AS n FROM items", &[])
                    .await?;
                // A swap while the transaction is open: the router now
                // sends writes to `other`. The write is refused, not
                // silently put on the transaction's connection.
                e.set_router(Fixed {
                    read: Some("other"),
                    write: Some("other"),
                    calls: Arc::default(),
                });
                let err = e
                    .write_model(&item())
                    .execute(insert(backend), &params!["misplaced"])
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&err, Error::CrossConnection { transaction, requested }
                        if transaction == "default" && requested == "other"),
                    "{err}"
                );
                Ok::<i64, Error>(row.get("n"))
            })
            .await
            .unwrap();
        assert_eq!(seen, 1, "the read inside the transaction saw its own write");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "asked at BEGIN and for the write, not for the read"
        );
        assert_eq!(count(&engine, "default", "mine").await, 1);
        assert_eq!(count(&engine, "default", "misplaced").await, 0);
        assert_eq!(count(&engine, "other", "misplaced").await, 0);
    }
);

per_backend!(
    pin_all_puts_every_statement_in_the_transaction,
    |db: TestDb| async move {
        let (_engine, other) = two_databases(&db).await;
        let engine = Engine::builder()
            .connection("default", &db.url)
            .connection("other", &other.url)
            .transaction_routing(TransactionRouting::PinAll)
            .add_router(Fixed {
                read: Some("other"),
                write: Some("other"),
                calls: Arc::default(),
            })
            .build()
            .await
            .unwrap();
        let backend = db.backend;
        let e = engine.clone();
        engine
            .transaction()
            .run(|_| async move {
                e.write_model(&item())
                    .execute(insert(backend), &params!["pinned"])
                    .await?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        assert_eq!(count(&engine, "default", "pinned").await, 1);
        assert_eq!(count(&engine, "other", "pinned").await, 0);
    }
);

per_backend!(sqlx_runs_inside_the_transaction, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let backend = db.backend;
    let sql = insert(backend).0;
    for (tag, commit) in [("rolled-back", false), ("committed", true)] {
        let tx = engine.transaction().begin().await.unwrap();
        // sqlx's own API on the transaction's connection, then dbroute's.
        match backend {
            Backend::Postgres => {
                let mut conn = tx.postgres().await.unwrap();
                dbroute::sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(tag)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Backend::MySql => {
                let mut conn = tx.mysql().await.unwrap();
                dbroute::sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(tag)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Backend::Sqlite => {
                let mut conn = tx.sqlite().await.unwrap();
                dbroute::sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(tag)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        }
        tx.connection().execute(insert(backend), &params![tag]).await.unwrap();
        let wrong = match backend {
            Backend::Sqlite => tx.postgres().await.map(drop),
            _ => tx.sqlite().await.map(drop),
        };
        assert!(
            matches!(&wrong, Err(Error::WrongBackend { backend: b, .. }) if *b == backend),
            "{wrong:?}"
        );
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
    }
    assert_eq!(count(&engine, "default", "rolled-back").await, 0);
    assert_eq!(count(&engine, "default", "committed").await, 2);
});

per_backend!(the_closure_form_joins_commits_and_rolls_back, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let backend = db.backend;
    let e = engine.clone();
    engine
        .transaction()
        .run(|_tx| async move {
            // Joins without being handed the transaction.
            e.write_model(&item()).execute(insert(backend), &params!["ok"]).await?;
            e.connection("default")?
                .execute(insert(backend), &params!["ok"])
                .await?;
            // Another task does not inherit it: it sees nothing uncommitted.
            let e2 = e.clone();
            let outside = tokio::spawn(async move {
                assert!(!e2.connection("default").unwrap().in_transaction());
                count(&e2, "default", "ok").await
            })
            .await
            .unwrap();
            assert_eq!(outside, 0);
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(count(&engine, "default", "ok").await, 2);

    let e = engine.clone();
    let result: Result<(), Error> = engine
        .transaction()
        .run(|tx| async move {
            tx.execute(insert(backend), &params!["failed"]).await?;
            e.connection("default")?
                .execute("INSERT INTO no_such_table VALUES (1)", &[])
                .await?;
            Ok(())
        })
        .await;
    assert!(matches!(result, Err(Error::Query { .. })));
    assert_eq!(count(&engine, "default", "failed").await, 0);

    // A panic rolls back too.
    let e = engine.clone();
    let panicked = tokio::spawn(async move {
        let e2 = e.clone();
        e.transaction()
            .run(|tx| async move {
                tx.execute(insert(backend), &params!["panicked"]).await?;
                let _ = &e2;
                panic!("boom");
                #[allow(unreachable_code)]
                Ok::<(), Error>(())
            })
            .await
    })
    .await;
    assert!(panicked.is_err());
    assert_eq!(count(&engine, "default", "panicked").await, 0);

    // Nested closures are savepoints.
    let e = engine.clone();
    engine
        .transaction()
        .run(|tx| async move {
            tx.execute(insert(backend), &params!["outer"]).await?;
            let inner: Result<(), Error> = e
                .transaction()
                .run(|inner| async move {
                    inner.execute(insert(backend), &params!["inner"]).await?;
                    Err(Error::Closed)
                })
                .await;
            assert!(inner.is_err());
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(count(&engine, "default", "outer").await, 1);
    assert_eq!(count(&engine, "default", "inner").await, 0);
});

per_backend!(transactions_never_span_databases, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let e = engine.clone();
    engine
        .transaction()
        .run(|_tx| async move {
            let err = e.connection("other").unwrap_err();
            assert!(matches!(err, Error::CrossConnection { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("`default`") && text.contains("`other`"), "{text}");
            let err = e.read_model(&item()).using("other").connection().unwrap_err();
            assert!(matches!(err, Error::CrossConnection { .. }), "{err}");
            let err = e.transaction().on("other").begin().await.unwrap_err();
            assert!(matches!(err, Error::CrossConnection { .. }), "{err}");
            // Naming its own connection is fine, also by the alias.
            assert!(e.connection("default")?.in_transaction());
            Ok::<_, Error>(())
        })
        .await
        .unwrap();

    // Checking all: a read the router would send elsewhere is an error too.
    let strict = Engine::builder()
        .connection("default", &db.url)
        .connection("other", &_other.url)
        .transaction_routing(TransactionRouting::CheckAll)
        .add_router(Fixed {
            read: Some("other"),
            write: None,
            calls: Arc::default(),
        })
        .build()
        .await
        .unwrap();
    let s = strict.clone();
    strict
        .transaction()
        .run(|_tx| async move {
            let err = s.read_model(&item()).connection().unwrap_err();
            assert!(
                matches!(&err, Error::CrossConnection { requested, .. } if requested == "other"),
                "{err}"
            );
            assert!(s.write_model(&item()).connection().is_ok());
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
});

per_backend!(many_transactions_on_a_small_pool, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let backend = db.backend;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move {
            let tag = format!("task-{i}");
            e.transaction()
                .run(|tx| {
                    let tag = tag.clone();
                    async move {
                        tx.execute(insert(backend), &params![tag.clone()]).await?;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        tx.execute(insert(backend), &params![tag.clone()]).await?;
                        let sql = format!("SELECT COUNT(*) AS n FROM items WHERE tag = {}", backend.placeholder(1));
                        let mine: i64 = tx.fetch_one(AssertSqlSafe(sql), &params![tag]).await?.get("n");
                        assert_eq!(mine, 2, "another transaction's statements leaked in");
                        Ok::<_, Error>(())
                    }
                })
                .await
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    })
    .await;
    assert!(all.is_ok(), "transactions deadlocked");
    for i in 0..24 {
        assert_eq!(count(&engine, "default", &format!("task-{i}")).await, 2);
    }
});

#[tokio::test]
async fn read_only_transactions_refuse_writes_where_supported() {
    let db = TestDb::postgres().await;
    let engine = Engine::builder().connection("default", &db.url).build().await.unwrap();
    engine
        .connection("default")
        .unwrap()
        .execute("CREATE TABLE items (tag TEXT)", &[])
        .await
        .unwrap();
    let tx = engine.transaction().for_read_model(&item()).begin().await.unwrap();
    let err = tx
        .connection()
        .execute("INSERT INTO items VALUES ('x')", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

/// Runs `sql` (binding `tag`) with sqlx's own API on the sqlx connection
/// `conn` lends; returns whether it was a transaction's connection.
async fn on_lent(conn: &dbroute::Connection, sql: &str, tag: &str) -> Result<bool, Error> {
    macro_rules! run {
        ($lent:expr) => {{
            let mut lent = $lent.await?;
            dbroute::sqlx::query(AssertSqlSafe(sql.to_owned()))
                .bind(tag.to_owned())
                .execute(&mut *lent)
                .await
                .unwrap();
            Ok(lent.in_transaction())
        }};
    }
    match conn.backend() {
        Backend::Postgres => run!(conn.postgres()),
        Backend::MySql => run!(conn.mysql()),
        Backend::Sqlite => run!(conn.sqlite()),
    }
}

per_backend!(a_routed_handle_lends_its_sqlx_connection, |db: TestDb| async move {
    let (engine, _other) = two_databases(&db).await;
    let backend = db.backend;
    let sql = insert(backend).0;

    // Outside a transaction: a connection from the pool.
    let conn = engine.write_model(&item()).connection().unwrap();
    assert!(!on_lent(&conn, &sql, "pooled").await.unwrap());
    let wrong = match backend {
        Backend::Sqlite => conn.postgres().await.map(drop),
        _ => conn.sqlite().await.map(drop),
    };
    assert!(
        matches!(&wrong, Err(Error::WrongBackend { backend: b, .. }) if *b == backend),
        "{wrong:?}"
    );

    // Inside a transaction (run): the routed handle lends the
    // transaction's connection, so the error rolls its statement back.
    let failed = engine
        .transaction()
        .for_write_model(&item())
        .run(|_| async {
            let conn = engine.write_model(&item()).connection()?;
            assert!(on_lent(&conn, &sql, "inside").await?);
            Err::<(), _>(Error::Closed)
        })
        .await;
    assert!(matches!(failed, Err(Error::Closed)), "{failed:?}");

    // Connection::begin: a transaction on the handle's connection, and a
    // savepoint on a transaction's handle.
    let tx = conn.begin().await.unwrap();
    assert!(on_lent(&tx.connection(), &sql, "begun").await.unwrap());
    let inner = tx.connection().begin().await.unwrap();
    assert!(inner.is_nested());
    assert!(on_lent(&inner.connection(), &sql, "savepoint").await.unwrap());
    inner.rollback().await.unwrap();
    tx.commit().await.unwrap();

    for (tag, n) in [("pooled", 1), ("inside", 0), ("begun", 1), ("savepoint", 0)] {
        assert_eq!(count(&engine, "default", tag).await, n, "{tag}");
    }
});
