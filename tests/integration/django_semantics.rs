//! Django's routing semantics (its `ConnectionRouter`, as of Django 5.2)
//! where users expect them:
//!
//! - **origin**: an operation on a row read from a connection goes back to
//!   that connection when no router has an opinion (Django's `instance`
//!   hint, `instance._state.db`), after the router chain and before
//!   `default`; `using` still wins; an unknown origin is an error; a
//!   transaction still pins the operation. Routers see the origin: native
//!   ones as `RouteRequest::origin`, WebAssembly ones as the input's `origin`
//!   (ABI 1.1), and the answer cache keys on it;
//! - **allow_relation** with an unsaved side: without an opinion, the two
//!   sides' connections are compared, an unsaved one's being none;
//! - **allow_migrate** with an app label and no model;
//! - routers built for ABI 1.0 answer as before: they are never sent the
//!   inputs they could not read, and every reference router answers every
//!   case the same with an origin as without one.

use dbroute::router::{
    Fault, HostRouter, MigrateRequest, MigrateTarget, RelationRequest, RouteDecision, RouteKind, RouteRequest,
    RouterIdentity, SdkRouter,
};
use dbroute::sqlx::AssertSqlSafe;
use dbroute::wasm::{Compilation, RouterSource, WasmRouter};
use dbroute::{
    ConnectionFactory, ConnectionName, Engine, Error, Hints, ModelInfo, RouteOptions, TransactionRouting, params,
};
use dbroute_example_routers as routers;
use dbroute_sdk as sdk;

use crate::support::{Fixed, TestDb, fixture, per_backend};
use crate::{components, conformance};

fn user() -> ModelInfo {
    ModelInfo::new("User").with_table("users").with_app("auth")
}

fn name(name: &str) -> ConnectionName {
    ConnectionName::new(name).expect("a connection name")
}

/// Sees the origin: a row from `other` is written to `archive`; no opinion
/// otherwise.
#[derive(Debug)]
struct ArchivesWhatComesFromOther;

impl HostRouter for ArchivesWhatComesFromOther {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("archives-what-comes-from-other")
    }
    fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::NoOpinion)
    }
    fn db_for_write(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(match op.origin {
            Some(origin) if *origin == "other" => RouteDecision::Use(name("archive")),
            _ => RouteDecision::NoOpinion,
        })
    }
}

/// `default`, `other` and `archive`: three databases of `db`'s backend.
async fn three_databases(db: &TestDb) -> (TestDb, TestDb) {
    (TestDb::new(db.backend).await, TestDb::new(db.backend).await)
}

async fn names_on(engine: &Engine, connection: &str) -> Vec<String> {
    engine
        .connection(connection)
        .unwrap()
        .fetch_all("SELECT name FROM users ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("name"))
        .collect()
}

per_backend!(
    a_row_read_from_other_is_written_back_to_other,
    |db: TestDb| async move {
        let (other, archive) = three_databases(&db).await;
        let engine = Engine::builder()
            .connection("default", &db.url)
            .connection("other", &other.url)
            .connection("archive", &archive.url)
            .add_router(Fixed::answers(Some("other"), None))
            .build()
            .await
            .unwrap();
        for connection in ["default", "other", "archive"] {
            let conn = engine.connection(connection).unwrap();
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(40))", &[])
                .await
                .unwrap();
            let insert = format!("INSERT INTO users (id, name) VALUES (1, {})", db.p(1));
            conn.execute(AssertSqlSafe(insert), &params![connection]).await.unwrap();
        }
        let model = user();
        let update_sql = format!("UPDATE users SET name = {} WHERE id = {}", db.p(1), db.p(2));
        let update = || AssertSqlSafe(update_sql.clone());

        // Read the row where the router reads it: `other`. Its origin is the
        // connection the read ran on.
        let read = engine.read_model(&model).connection().unwrap();
        let row = read.fetch_one("SELECT id, name FROM users", &[]).await.unwrap();
        assert_eq!(row.get::<String, _>("name"), "other");
        let origin = read.name();
        assert_eq!(origin, "other");

        // Saved again with its origin, no router having an opinion on writes:
        // back on `other`, not on `default`.
        let id: i64 = row.get("id");
        let saved = engine
            .write_model(&model)
            .origin(origin.as_str())
            .execute(update(), &params!["saved with its origin", id])
            .await
            .unwrap();
        assert_eq!(saved.rows_affected, 1);
        assert_eq!(names_on(&engine, "other").await, ["saved with its origin"]);
        assert_eq!(names_on(&engine, "default").await, ["default"]);
        // Without it, as before: `default`.
        engine
            .write_model(&model)
            .execute(update(), &params!["saved without", id])
            .await
            .unwrap();
        assert_eq!(names_on(&engine, "default").await, ["saved without"]);
        assert_eq!(names_on(&engine, "other").await, ["saved with its origin"]);

        // A router with an opinion on writes decides: the origin comes after it.
        engine.set_router(Fixed::answers(None, Some("archive")));
        engine
            .write_model(&model)
            .origin("other")
            .execute(update(), &params!["the router's choice", id])
            .await
            .unwrap();
        assert_eq!(names_on(&engine, "archive").await, ["the router's choice"]);
        assert_eq!(names_on(&engine, "other").await, ["saved with its origin"]);

        // `using` wins over both.
        engine
            .write_model(&model)
            .origin("other")
            .using("default")
            .execute(update(), &params!["using wins", id])
            .await
            .unwrap();
        assert_eq!(names_on(&engine, "default").await, ["using wins"]);
        assert_eq!(names_on(&engine, "other").await, ["saved with its origin"]);
        assert_eq!(names_on(&engine, "archive").await, ["the router's choice"]);
    }
);

/// An engine on three in-memory SQLite connections.
async fn memory_engine() -> Engine {
    Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("other", "sqlite::memory:")
        .connection("archive", "sqlite::memory:")
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_resolution_order_is_transaction_using_router_origin_default() {
    let engine = memory_engine().await;
    let model = user();
    let no = Hints::new();
    let from_other = RouteOptions::new().origin("other");
    let resolved = |routed: dbroute::Routed<'_>| routed.connection().map(|c| c.name().to_string());

    // No router: the origin, else `default`; reads and writes alike.
    assert_eq!(engine.db_for_read_with(&model, &no, &from_other).unwrap(), "other");
    assert_eq!(engine.db_for_write_with(&model, &no, &from_other).unwrap(), "other");
    assert_eq!(
        engine.db_for_write_with(&model, &no, &RouteOptions::new()).unwrap(),
        "default"
    );
    assert_eq!(engine.db_for_write(&model, &no).unwrap(), "default");
    assert_eq!(resolved(engine.read_model(&model).origin("other")).unwrap(), "other");
    // `default` is a connection like another: an origin may name it.
    assert_eq!(
        resolved(engine.read_model(&model).origin("default")).unwrap(),
        "default"
    );

    // `using` wins over the origin.
    assert_eq!(
        resolved(engine.write_model(&model).origin("other").using("archive")).unwrap(),
        "archive"
    );

    // A router with an opinion wins over the origin; one without does not.
    engine.set_router(Fixed::answers(None, Some("archive")));
    assert_eq!(engine.db_for_write_with(&model, &no, &from_other).unwrap(), "archive");
    assert_eq!(engine.db_for_read_with(&model, &no, &from_other).unwrap(), "other");
    assert_eq!(
        resolved(engine.write_model(&model).origin("other").using("default")).unwrap(),
        "default"
    );

    // A router that decides by the origin.
    engine.set_router(ArchivesWhatComesFromOther);
    assert_eq!(engine.db_for_write_with(&model, &no, &from_other).unwrap(), "archive");
    let from_default = RouteOptions::new().origin("default");
    assert_eq!(engine.db_for_write_with(&model, &no, &from_default).unwrap(), "default");
    assert_eq!(resolved(engine.write_model(&model).origin("other")).unwrap(), "archive");
}

#[tokio::test]
async fn an_unknown_origin_is_an_error() {
    let engine = memory_engine().await;
    let model = user();
    let no = Hints::new();
    let nowhere = RouteOptions::new().origin("nowhere");
    let unknown = |result: dbroute::Result<String>| match result {
        Err(Error::UnknownConnection { name, requested_by, .. }) => {
            assert_eq!(name, "nowhere");
            assert_eq!(requested_by, "origin()");
        }
        other => panic!("expected UnknownConnection, got {other:?}"),
    };
    unknown(engine.db_for_read_with(&model, &no, &nowhere).map(|n| n.to_string()));
    unknown(engine.db_for_write_with(&model, &no, &nowhere).map(|n| n.to_string()));
    unknown(
        engine
            .write_model(&model)
            .origin("nowhere")
            .connection()
            .map(|c| c.name().to_string()),
    );
    // Whatever the router says: an origin is checked whenever it is given.
    engine.set_router(Fixed::answers(None, Some("archive")));
    unknown(engine.db_for_write_with(&model, &no, &nowhere).map(|n| n.to_string()));
    // Even inside a transaction, which it would not move.
    let in_tx = engine
        .transaction()
        .run(|_| async { engine.write_model(&model).origin("nowhere").connection().map(|_| ()) })
        .await;
    assert!(matches!(in_tx, Err(Error::UnknownConnection { .. })), "{in_tx:?}");
    // Not a name at all.
    let bad = engine.write_model(&model).origin("no spaces").connection();
    assert!(matches!(bad, Err(Error::InvalidName { .. })), "{bad:?}");
    // A factory makes an origin it knows, as it makes a `using` name.
    let dir = tempfile::tempdir().unwrap();
    let template = format!("sqlite://{}/{{name}}.db?mode=rwc", dir.path().display());
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection_factory(ConnectionFactory::from_template(template))
        .build()
        .await
        .unwrap();
    let made = engine.db_for_write_with(&model, &no, &RouteOptions::new().origin("tenant_7"));
    assert_eq!(made.unwrap(), "tenant_7");
}

#[tokio::test]
async fn inside_a_transaction_the_origin_does_not_move_the_operation() {
    let engine = memory_engine().await;
    let model = user();
    // The default routing (writes checked): a write no router has an
    // opinion on runs in the transaction, whatever its origin.
    let pinned = engine
        .transaction()
        .run(|_| async {
            let conn = engine.write_model(&model).origin("other").connection()?;
            Ok::<_, Error>((conn.name().to_string(), conn.in_transaction()))
        })
        .await
        .unwrap();
    assert_eq!(pinned, ("default".to_owned(), true));

    // Every operation checked: one no router has an opinion on must belong
    // to its origin (else `default`): its origin on another connection is
    // refused, not moved.
    let strict = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("other", "sqlite::memory:")
        .transaction_routing(TransactionRouting::CheckAll)
        .build()
        .await
        .unwrap();
    let refused = strict
        .transaction()
        .run(|_| async { strict.write_model(&model).origin("other").connection().map(|_| ()) })
        .await;
    assert!(
        matches!(&refused, Err(Error::CrossConnection { transaction, requested }) if transaction == "default" && requested == "other"),
        "{refused:?}"
    );
    let joined = strict
        .transaction()
        .on("other")
        .run(|_| async {
            let conn = strict.write_model(&model).origin("other").connection()?;
            Ok::<_, Error>(conn.name().to_string())
        })
        .await
        .unwrap();
    assert_eq!(joined, "other");
}

/// A router in WebAssembly text that reads the ABI 1.1 inputs, exporting
/// `dbroute_abi_minor` when `minor` is true (else it is a 1.0 router):
///
/// - reads and writes go to `from_<origin>` when the input has an origin;
///   no opinion without one;
/// - allow_migrate: no opinion when the input has a model; no (0) for an
///   app asked about alone;
/// - allow_relation: yes (1) when a side is unsaved (`null` in the input),
///   no opinion otherwise.
///
/// It declares itself deterministic: its answers are cached.
fn origin_router_wat(minor: bool) -> String {
    let minor = if minor {
        r#"(func (export "dbroute_abi_minor") (result i32) (i32.const 1))"#
    } else {
        ""
    };
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\"origin\":\"")
  (data (i32.const 16) "\"model\":")
  (data (i32.const 32) "null")
  (data (i32.const 64) "from_")
  (func (export "dbroute_abi_version") (result i32) (i32.const 1))
  {minor}
  (func (export "dbroute_deterministic") (result i32) (i32.const 1))
  (func (export "dbroute_input") (param i32) (result i32) (i32.const 4096))

  ;; The offset of the first $n bytes at $pat in [$ptr, $ptr + $len), or -1.
  (func $find (param $ptr i32) (param $len i32) (param $pat i32) (param $n i32) (result i32)
    (local $i i32) (local $j i32)
    (block $none
      (loop $outer
        (br_if $none (i32.gt_s (i32.add (local.get $i) (local.get $n)) (local.get $len)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $inner
            (if (i32.ge_u (local.get $j) (local.get $n)) (then (return (local.get $i))))
            (br_if $mismatch
              (i32.ne
                (i32.load8_u (i32.add (i32.add (local.get $ptr) (local.get $i)) (local.get $j)))
                (i32.load8_u (i32.add (local.get $pat) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const -1))

  ;; "from_" then the origin's name (up to its closing quote), at 64.
  (func $decide (param $ptr i32) (param $len i32) (result i64)
    (local $at i32) (local $n i32)
    (local.set $at (call $find (local.get $ptr) (local.get $len) (i32.const 0) (i32.const 10)))
    (if (i32.lt_s (local.get $at) (i32.const 0)) (then (return (i64.const 0))))
    (local.set $at (i32.add (i32.add (local.get $ptr) (local.get $at)) (i32.const 10)))
    (block $end
      (loop $scan
        (br_if $end (i32.eq (i32.load8_u (i32.add (local.get $at) (local.get $n))) (i32.const 34)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $scan)))
    (memory.copy (i32.const 69) (local.get $at) (local.get $n))
    (i64.or (i64.const 0x0000004000000000) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 5)))))

  (func (export "db_for_read") (param i32 i32) (result i64) (call $decide (local.get 0) (local.get 1)))
  (func (export "db_for_write") (param i32 i32) (result i64) (call $decide (local.get 0) (local.get 1)))

  (func (export "allow_migrate") (param $ptr i32) (param $len i32) (result i32)
    (if (result i32) (i32.ge_s (call $find (local.get $ptr) (local.get $len) (i32.const 16) (i32.const 8)) (i32.const 0))
      (then (i32.const -1))
      (else (i32.const 0))))

  (func (export "allow_relation") (param $ptr i32) (param $len i32) (result i32)
    (if (result i32) (i32.ge_s (call $find (local.get $ptr) (local.get $len) (i32.const 32) (i32.const 4)) (i32.const 0))
      (then (i32.const 1))
      (else (i32.const -1)))))"#
    )
}

/// An engine whose connections include `from_other` and `from_archive`,
/// routed by [`origin_router_wat`].
async fn origin_router_engine(minor: bool) -> (Engine, WasmRouter) {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("other", "sqlite::memory:")
        .connection("archive", "sqlite::memory:")
        .connection("from_other", "sqlite::memory:")
        .connection("from_archive", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    let router = engine
        .load_router(
            WasmRouter::named(if minor { "origin-1.1" } else { "origin-1.0" }),
            RouterSource::Bytes(origin_router_wat(minor).into_bytes().into()),
        )
        .unwrap();
    engine.set_router(router.clone());
    (engine, router)
}

#[tokio::test]
async fn the_origin_reaches_a_wasm_router_and_its_answer_cache_tells_origins_apart() {
    let (engine, router) = origin_router_engine(true).await;
    assert!(router.info().deterministic);
    assert_eq!(router.info().abi_minor, 1);
    assert!(router.info().exports.contains(&"dbroute_abi_minor"));
    let model = user();
    let hints = Hints::new().with("tenant", "acme");
    // Each origin twice, interleaved: the second answers come from the
    // answer cache, and each is its own origin's (the model and hints are
    // the same: only the origin tells the inputs apart).
    for round in 0..3 {
        for (origin, expected) in [("other", "from_other"), ("archive", "from_archive")] {
            let options = RouteOptions::new().origin(origin);
            assert_eq!(
                engine.db_for_write_with(&model, &hints, &options).unwrap(),
                expected,
                "round {round}"
            );
            assert_eq!(
                engine.db_for_read_with(&model, &Hints::new(), &options).unwrap(),
                expected,
                "round {round}"
            );
            let routed = engine.write_model(&model).origin(origin).connection().unwrap();
            assert_eq!(routed.name(), expected, "round {round}");
        }
        // No origin: no opinion, `default`; also after the origins' answers
        // were cached.
        assert_eq!(engine.db_for_write(&model, &hints).unwrap(), "default", "round {round}");
    }
    // The same through the router alone, with the host's cache in front.
    for origin in ["other", "archive", "other"] {
        let origin_name = name(origin);
        let op = RouteRequest {
            kind: RouteKind::Write,
            model: &model,
            hints: &hints,
            origin: Some(&origin_name),
        };
        assert_eq!(
            router.db_for_write(&op),
            Ok(RouteDecision::Use(name(&format!("from_{origin}"))))
        );
    }
    // Without the answer cache: the same answers.
    let uncached = engine
        .load_router(
            WasmRouter::named("origin-uncached").answer_cache(false),
            RouterSource::Bytes(origin_router_wat(true).into_bytes().into()),
        )
        .unwrap();
    let (archive, other) = (name("archive"), name("other"));
    let op = |origin| RouteRequest {
        kind: RouteKind::Read,
        model: &model,
        hints: &hints,
        origin: Some(origin),
    };
    assert_eq!(
        uncached.db_for_read(&op(&archive)),
        Ok(RouteDecision::Use(name("from_archive")))
    );
    assert_eq!(
        uncached.db_for_read(&op(&other)),
        Ok(RouteDecision::Use(name("from_other")))
    );
}

#[tokio::test]
async fn the_origin_reaches_a_native_router_and_an_sdk_router() {
    let engine = memory_engine().await;
    let model = user();
    let no = Hints::new();
    // Native: `ArchivesWhatComesFromOther` reads `RouteRequest::origin`.
    engine.set_router(ArchivesWhatComesFromOther);
    let from_other = RouteOptions::new().origin("other");
    assert_eq!(engine.db_for_write_with(&model, &no, &from_other).unwrap(), "archive");

    // A dbroute-sdk router run natively reads `Operation::origin()` from
    // the very input bytes a WebAssembly instance gets.
    #[derive(Default)]
    struct Sticky;
    impl sdk::Router for Sticky {
        fn db_for_read(&mut self, _: &sdk::Operation<'_>) -> sdk::Decision<'_> {
            sdk::Decision::no_opinion()
        }
        fn db_for_write<'a>(&'a mut self, op: &'a sdk::Operation<'_>) -> sdk::Decision<'a> {
            match op.origin() {
                Some("other") => sdk::Decision::use_connection("archive"),
                Some(origin) => sdk::Decision::refuse(format!("not from {origin}")),
                None => sdk::Decision::no_opinion(),
            }
        }
    }
    let sticky = SdkRouter::<Sticky>::builder("sticky").build_for(&engine).unwrap();
    engine.set_router(sticky);
    assert_eq!(engine.db_for_write_with(&model, &no, &from_other).unwrap(), "archive");
    assert_eq!(engine.db_for_write(&model, &no).unwrap(), "default");
    let refused = engine.db_for_write_with(&model, &no, &RouteOptions::new().origin("archive"));
    assert!(
        matches!(&refused, Err(Error::RouterRefused { message, .. }) if message == "not from archive"),
        "{refused:?}"
    );
    // Reads: no opinion, so the origin.
    assert_eq!(engine.db_for_read_with(&model, &no, &from_other).unwrap(), "other");
}

/// Says yes to any relation with an unsaved side, no opinion otherwise.
#[derive(Debug)]
struct UnsavedIsFine;

impl HostRouter for UnsavedIsFine {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("unsaved-is-fine")
    }
    fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::NoOpinion)
    }
    fn allow_relation(&self, relation: &RelationRequest<'_>) -> Result<Option<bool>, Fault> {
        Ok((relation.a.db.is_none() || relation.b.db.is_none()).then_some(true))
    }
}

#[tokio::test]
async fn allow_relation_with_an_unsaved_side_compares_as_django_does() {
    let engine = memory_engine().await;
    let (book, author) = (ModelInfo::new("Book"), ModelInfo::new("Author"));
    let no = Hints::new();
    let relate = |engine: &Engine, a: Option<&str>, b: Option<&str>| {
        engine.allow_relation((&book, a), (&author, b), &no).unwrap()
    };
    // No router: `obj1._state.db == obj2._state.db`.
    assert!(relate(&engine, Some("other"), Some("other")));
    assert!(!relate(&engine, Some("default"), Some("other")));
    assert!(!relate(&engine, Some("default"), None), "saved and unsaved");
    assert!(!relate(&engine, None, Some("other")), "unsaved and saved");
    assert!(relate(&engine, None, None), "two unsaved objects: None == None");
    // An unknown connection on a saved side is still an error.
    assert!(matches!(
        engine.allow_relation((&book, Some("nowhere")), (&author, None), &no),
        Err(Error::UnknownConnection { .. })
    ));

    // A native router that says yes.
    engine.set_router(UnsavedIsFine);
    assert!(relate(&engine, Some("default"), None));
    assert!(relate(&engine, None, Some("archive")));
    assert!(!relate(&engine, Some("default"), Some("other")), "no opinion: compared");

    // A WebAssembly router of ABI 1.1 is asked, and sees `"db": null`.
    let (wasm_engine, _) = origin_router_engine(true).await;
    assert!(relate(&wasm_engine, Some("default"), None));
    assert!(!relate(&wasm_engine, Some("default"), Some("other")));
    // One of ABI 1.0 could not read a null connection: it is not asked,
    // and the engine compares (it would have said yes).
    let (old_engine, old) = origin_router_engine(false).await;
    assert_eq!(old.info().abi_minor, 0);
    assert!(!relate(&old_engine, Some("default"), None));
    assert!(relate(&old_engine, None, None));
}

/// The `metrics` app, and its `Event` model, live on `analytics` only.
#[derive(Debug)]
struct MetricsOnAnalytics;

impl HostRouter for MetricsOnAnalytics {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("metrics-on-analytics")
    }
    fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        Ok(RouteDecision::NoOpinion)
    }
    fn allow_migrate(&self, migration: &MigrateRequest<'_>) -> Result<Option<bool>, Fault> {
        Ok((migration.app() == Some("metrics")).then_some(migration.db == "analytics"))
    }
}

#[tokio::test]
async fn allow_migrate_with_an_app_label_alone() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("analytics", "sqlite::memory:")
        .add_router(MetricsOnAnalytics)
        .build()
        .await
        .unwrap();
    let no = Hints::new();
    // Native: the app alone, and a model of the app, the same way.
    assert!(engine.allow_migrate_app("analytics", "metrics", &no).unwrap());
    assert!(!engine.allow_migrate_app("default", "metrics", &no).unwrap());
    assert!(
        engine.allow_migrate_app("default", "auth", &no).unwrap(),
        "no opinion: yes"
    );
    let event = ModelInfo::new("Event").with_app("metrics");
    assert!(!engine.allow_migrate("default", &event, &no).unwrap());
    assert!(engine.allow_migrate("analytics", &event, &no).unwrap());
    assert!(matches!(
        engine.allow_migrate_app("nowhere", "metrics", &no),
        Err(Error::UnknownConnection { .. })
    ));

    // A WebAssembly router of ABI 1.1 gets `"app"` and no `"model"`: it
    // says no to apps alone, and has no opinion on models.
    let (wasm, router) = origin_router_engine(true).await;
    assert!(!wasm.allow_migrate_app("default", "metrics", &no).unwrap());
    assert!(wasm.allow_migrate("default", &event, &no).unwrap());
    let app_only = MigrateRequest {
        db: ConnectionName::DEFAULT,
        target: MigrateTarget::App("metrics"),
        hints: &no,
    };
    assert_eq!(router.allow_migrate(&app_only), Ok(Some(false)));
    // One of ABI 1.0 could not read it: it is not asked (yes, by default).
    let (old_engine, old) = origin_router_engine(false).await;
    assert!(old_engine.allow_migrate_app("default", "metrics", &no).unwrap());
    assert_eq!(old.allow_migrate(&app_only), Ok(None));
}

/// `all_exports.wat`, a router of ABI 1.0 with `allow_relation` and
/// `allow_migrate`, is asked exactly what it was asked before.
#[tokio::test]
async fn a_router_of_abi_1_0_is_asked_only_what_it_can_read() {
    let engine = Engine::builder()
        .connection("default", "sqlite::memory:")
        .connection("replica", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    let router = engine
        .load_router(
            WasmRouter::named("all-exports").config(serde_json::json!("replica")),
            RouterSource::File(fixture("routers/all_exports.wat")),
        )
        .unwrap();
    assert_eq!(router.info().abi_minor, 0);
    assert!(!router.info().exports.contains(&"dbroute_abi_minor"));
    engine.set_router(router);
    let no = Hints::new();
    // Its allow_migrate says no on `replica`: for a model, as before; for
    // an app alone it is not asked, so yes.
    let event = ModelInfo::new("Event");
    assert!(!engine.allow_migrate("replica", &event, &no).unwrap());
    assert!(engine.allow_migrate_app("replica", "metrics", &no).unwrap());
    // Its allow_relation says yes to a model named "Yes...": with an
    // unsaved side it is not asked, and the engine compares.
    let (yes, author) = (ModelInfo::new("Yes"), ModelInfo::new("Author"));
    assert!(
        engine
            .allow_relation((&yes, Some("default")), (&author, Some("replica")), &no)
            .unwrap()
    );
    assert!(
        !engine
            .allow_relation((&yes, Some("default")), (&author, None), &no)
            .unwrap()
    );
    // An origin in its input changes none of its answers.
    let user = user();
    let from_default = RouteOptions::new().origin("default");
    assert_eq!(engine.db_for_read_with(&user, &no, &from_default).unwrap(), "replica");
    assert_eq!(engine.db_for_write_with(&user, &no, &from_default).unwrap(), "default");
}

/// Every reference router (Rust, C, Zig, AssemblyScript and the WAT one
/// as core modules; Python, JavaScript and Rust as components) answers
/// every case of the conformance table the same with an origin in its
/// input as without one, and, but the WAT one (which has no
/// allow_migrate), reads an `allow_migrate` input of an app alone: an app
/// is not `Event`, so no on `analytics` and no opinion elsewhere.
#[test]
fn every_reference_router_reads_the_inputs_of_abi_1_1() {
    let table = conformance::table();
    let runtime = dbroute::wasm::RouterRuntime::new(conformance::limits()).expect("router runtime");
    let no = Hints::new();
    let mut problems = Vec::new();
    for &(language, path) in routers::languages() {
        let Some(path) = path else {
            continue; // Its toolchain is missing: the conformance suite says so.
        };
        // A component takes seconds to compile: from the tests' shared
        // compiled-router cache.
        let component = components::is_component_file(path);
        let (runtime, compilation) = if component {
            components::warm(path);
            (components::shared_runtime(), Compilation::Optimized)
        } else {
            (&runtime, Compilation::Tiered)
        };
        for case in table.cases.iter().filter(|c| c.init.is_none()) {
            let router = WasmRouter::named(format!("{language}-reference"))
                .config(case.config.clone())
                .connections(&table.connections)
                .compilation(compilation)
                .load_file(runtime, path)
                .unwrap_or_else(|e| panic!("{language} / {}: {e}", case.name));
            let (model, hints) = (case.model(), case.hints());
            for kind in [RouteKind::Read, RouteKind::Write] {
                let ask = |origin: Option<&str>| {
                    let origin = origin.map(name);
                    let op = RouteRequest {
                        kind,
                        model: &model,
                        hints: &hints,
                        origin: origin.as_ref(),
                    };
                    match kind {
                        RouteKind::Read => router.db_for_read(&op),
                        RouteKind::Write => router.db_for_write(&op),
                    }
                };
                let without = ask(None);
                for origin in ["tenant_zurich", "analytics", "default"] {
                    let with = ask(Some(origin));
                    if with != without {
                        problems.push(format!(
                            "{language} / {} / {kind} from {origin}: {with:?}, without an origin {without:?}",
                            case.name
                        ));
                    }
                }
            }
            if language == "wat" {
                continue;
            }
            if router.info().abi_minor < 1 {
                problems.push(format!("{language}: does not export dbroute_abi_minor = 1"));
            }
            for (db, expected) in [("analytics", Some(false)), ("default", None), ("replica", None)] {
                let migration = MigrateRequest {
                    db: name(db),
                    target: MigrateTarget::App("metrics"),
                    hints: &no,
                };
                let got = router.allow_migrate(&migration);
                if got != Ok(expected) {
                    problems.push(format!(
                        "{language} / {}: allow_migrate of the app alone on {db}: expected {expected:?}, got {got:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
