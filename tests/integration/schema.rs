//! Schema on the right database: sqlx migrations per connection, and each
//! model's table on its routed write connection, on PostgreSQL, MariaDB and
//! SQLite, and on a mixed set-up (PostgreSQL default, SQLite cache).

use dbroute::router::{Fault, HostRouter, MigrateRequest, RouteDecision, RouteRequest, RouterIdentity};
use dbroute::schema::{CrossDatabase, ModelSchema, SchemaAction, SchemaProblem};
use dbroute::wasm::{RouterSource, WasmRouter};
use dbroute::{Backend, Engine, Error, ModelInfo, sqlx::AssertSqlSafe};

use crate::support::{TestDb, fixture, per_backend};

// ---- helpers ----

/// Whether `table` exists on `connection` (a query on it succeeds).
async fn has_table(engine: &Engine, connection: &str, table: &str) -> bool {
    let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    engine.connection(connection).unwrap().fetch_all(sql, &[]).await.is_ok()
}

/// Asserts `tables` exist on `connection` and nowhere else among `all`.
async fn assert_only_on(engine: &Engine, connection: &str, all: &[&str], tables: &[&str]) {
    for table in tables {
        for other in all {
            let expected = other == &connection;
            assert_eq!(
                has_table(engine, other, table).await,
                expected,
                "table `{table}` on `{other}`: expected {expected}"
            );
        }
    }
}

async fn engine_with(connections: &[(&str, &str)], router: Option<Placement>) -> Engine {
    let mut builder = Engine::builder();
    for (name, url) in connections {
        builder = builder.connection(*name, *url);
    }
    if let Some(router) = router {
        builder = builder.add_router(router);
    }
    builder.build().await.expect("engine")
}

fn problem(result: dbroute::Result<impl std::fmt::Debug>) -> SchemaProblem {
    match result {
        Err(Error::Schema { problem }) => *problem,
        other => panic!("expected Error::Schema, got {other:?}"),
    }
}

/// A native router: writes of the listed models go to their connection;
/// `allow_migrate` says no for the listed (connection, model) pairs.
#[derive(Debug, Default)]
struct Placement {
    writes: Vec<(&'static str, &'static str)>,
    deny: Vec<(&'static str, &'static str)>,
    every_write_to: Option<&'static str>,
}

impl Placement {
    fn write(mut self, model: &'static str, connection: &'static str) -> Self {
        self.writes.push((model, connection));
        self
    }
    fn deny(mut self, connection: &'static str, model: &'static str) -> Self {
        self.deny.push((connection, model));
        self
    }
}

impl HostRouter for Placement {
    fn identity(&self) -> RouterIdentity {
        RouterIdentity::native("placement")
    }
    fn db_for_read(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        self.db_for_write(op)
    }
    fn db_for_write(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        if let Some(all) = self.every_write_to {
            return RouteDecision::use_connection(all);
        }
        match self.writes.iter().find(|(m, _)| *m == op.model.name()) {
            Some((_, connection)) => RouteDecision::use_connection(connection),
            None => Ok(RouteDecision::NoOpinion),
        }
    }
    fn allow_migrate(&self, m: &MigrateRequest<'_>) -> Result<Option<bool>, Fault> {
        let denied = self
            .deny
            .iter()
            .any(|(db, model)| m.db == *db && m.model().is_some_and(|m| m.name() == *model));
        Ok(denied.then_some(false))
    }
}

/// users <- posts <- comments (by foreign keys), given in reverse order, and
/// an archive table with per-backend SQL holding two statements.
fn blog_models() -> Vec<ModelSchema> {
    vec![
        ModelSchema::new(ModelInfo::new("Comment").with_table("comments"))
            .create(
                "CREATE TABLE comments (id INTEGER PRIMARY KEY, post INTEGER, author INTEGER, \
                 FOREIGN KEY (post) REFERENCES posts (id), FOREIGN KEY (author) REFERENCES users (id))",
            )
            .references(["Post", "User"]),
        ModelSchema::new(ModelInfo::new("Post").with_table("posts"))
            .create("CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER, FOREIGN KEY (author) REFERENCES users (id))")
            .references(["User"]),
        ModelSchema::new(ModelInfo::new("User").with_table("users"))
            .create("CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50))"),
        ModelSchema::new(ModelInfo::new("Archive").with_table("archive"))
            .create(
                "CREATE TABLE archive (id INTEGER PRIMARY KEY, body VARCHAR(100)); \
                 CREATE INDEX archive_body ON archive (body)",
            )
            .create_for(
                Backend::Postgres,
                "CREATE TABLE archive (id BIGSERIAL PRIMARY KEY, body VARCHAR(100)); \
                 CREATE INDEX archive_body ON archive (body)",
            ),
    ]
}

// ---- migrations, per connection ----

per_backend!(
    migrations_run_per_connection_once_and_report_what_ran_where,
    |db: TestDb| async move {
        let auth = TestDb::new(db.backend).await;
        let engine = engine_with(&[("default", &db.url), ("auth", &auth.url)], None).await;
        let report = engine
            .migrate()
            .dir("default", fixture("migrations/shop"))
            .dir("auth", fixture("migrations/auth"))
            .run()
            .await
            .unwrap();
        let shop: Vec<(i64, &str)> = report
            .applied_on("default")
            .unwrap()
            .iter()
            .map(|m| (m.version, m.description.as_str()))
            .collect();
        assert_eq!(shop, [(1, "create widgets"), (2, "add color")]);
        assert_eq!(report.applied_on("auth").unwrap().len(), 1);
        assert_eq!(report.connections[0].backend, db.backend);
        assert_eq!(report.total_applied(), 3);
        let text = report.to_string();
        assert!(
            text.contains("default (") && text.contains("applied 2") && text.contains("1 create widgets"),
            "{text}"
        );

        // Each directory ran on its connection only; the second migration
        // ran after the first.
        let widget = AssertSqlSafe(format!(
            "INSERT INTO widgets (id, name, color) VALUES (1, {}, {})",
            db.p(1),
            db.p(2)
        ));
        let default = engine.connection("default").unwrap();
        default.execute(widget, &dbroute::params!["bolt", "red"]).await.unwrap();
        assert_only_on(&engine, "default", &["default", "auth"], &["widgets"]).await;
        assert_only_on(&engine, "auth", &["default", "auth"], &["accounts"]).await;

        // Again: nothing left to apply, and the report says so.
        let again = engine
            .migrate()
            .dir("default", fixture("migrations/shop"))
            .dir("auth", fixture("migrations/auth"))
            .run()
            .await
            .unwrap();
        assert_eq!(again.total_applied(), 0);
        assert_eq!(again.connections[0].already_applied, 2);
        assert_eq!(again.connections[1].already_applied, 1);
        assert!(again.to_string().contains("up to date, 2 already applied"), "{again}");
    }
);

per_backend!(
    a_failing_migration_names_its_connection_and_keeps_what_ran,
    |db: TestDb| async move {
        let engine = engine_with(&[("default", &db.url)], None).await;
        let error = engine
            .migrate()
            .dir("default", fixture("migrations/broken"))
            .run()
            .await
            .unwrap_err();
        let Error::Migrate { connection, dir, .. } = &error else {
            panic!("expected Error::Migrate, got {error:?}");
        };
        assert_eq!(connection, "default");
        assert!(dir.ends_with("broken"), "{dir}");
        let text = error.to_string();
        assert!(
            text.contains("connection `default`") && text.contains("run again"),
            "{text}"
        );
        assert!(
            has_table(&engine, "default", "gadgets").await,
            "the good migration stays"
        );
        assert!(!has_table(&engine, "default", "oops").await);
    }
);

#[tokio::test]
async fn every_directory_is_read_before_any_migration_runs() {
    let (a, b) = (TestDb::sqlite(), TestDb::sqlite());
    let engine = engine_with(&[("default", &a.url), ("auth", &b.url)], None).await;
    let missing = fixture("migrations/does-not-exist");
    let error = engine
        .migrate()
        .dir("default", fixture("migrations/shop"))
        .dir("auth", &missing)
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Migrate { connection, .. } if connection == "auth"),
        "{error:?}"
    );
    assert!(error.to_string().contains("does-not-exist"), "{error}");
    assert!(!has_table(&engine, "default", "widgets").await, "nothing ran");
}

#[tokio::test]
async fn the_selection_of_connections_is_checked() {
    let (a, b, c) = (TestDb::sqlite(), TestDb::sqlite(), TestDb::sqlite());
    let engine = engine_with(&[("default", &a.url), ("auth", &b.url), ("cache", &c.url)], None).await;
    let shop = fixture("migrations/shop");

    // One directory for all, restricted with `on`: only those run.
    let report = engine
        .migrate()
        .dir_for_all(&shop)
        .dir("auth", fixture("migrations/auth"))
        .on(["auth", "cache"])
        .run()
        .await
        .unwrap();
    let ran: Vec<&str> = report.connections.iter().map(|c| c.connection.as_str()).collect();
    assert_eq!(ran, ["auth", "cache"]);
    assert!(has_table(&engine, "auth", "accounts").await && !has_table(&engine, "auth", "widgets").await);
    assert!(has_table(&engine, "cache", "widgets").await);
    assert!(!has_table(&engine, "default", "widgets").await);

    // One directory for all, no `on`: every connection, the default first;
    // a connection's own directory wins.
    let report = engine
        .migrate()
        .dir_for_all(&shop)
        .dir("auth", fixture("migrations/auth"))
        .run()
        .await
        .unwrap();
    let ran: Vec<&str> = report.connections.iter().map(|c| c.connection.as_str()).collect();
    assert_eq!(ran, ["default", "auth", "cache"]);
    assert_eq!(report.applied_on("default").unwrap().len(), 2);
    assert_eq!(report.applied_on("cache").unwrap().len(), 0);
    assert_eq!(report.connections[1].already_applied, 1);

    // sqlx's checks hold: another directory on a migrated connection is
    // refused (its migration 1 is not the one applied).
    let error = engine.migrate().dir("auth", &shop).run().await.unwrap_err();
    assert!(
        error.to_string().contains("previously applied but has been modified"),
        "{error}"
    );

    // A selected connection without a directory, two directories for one,
    // no directory at all, a name that is not registered.
    let p = problem(
        engine
            .migrate()
            .dir("default", &shop)
            .on(["default", "auth"])
            .run()
            .await,
    );
    assert_eq!(
        p,
        SchemaProblem::NoMigrationDir {
            connection: "auth".into()
        }
    );
    let p = problem(engine.migrate().dir("default", &shop).dir("default", &shop).run().await);
    assert_eq!(
        p,
        SchemaProblem::DuplicateMigrationDir {
            connection: "default".into()
        }
    );
    assert_eq!(problem(engine.migrate().run().await), SchemaProblem::NothingToMigrate);
    let error = engine.migrate().dir("nope", &shop).run().await.unwrap_err();
    assert!(
        matches!(error, Error::UnknownConnection { ref name, .. } if name == "nope"),
        "{error:?}"
    );
}

// ---- tables on each model's write connection ----

per_backend!(
    create_all_puts_each_table_on_its_write_connection_in_reference_order,
    |db: TestDb| async move {
        let archive = TestDb::new(db.backend).await;
        let all = ["default", "archive"];
        let router = Placement::default().write("Archive", "archive");
        let engine = engine_with(&[("default", &db.url), ("archive", &archive.url)], Some(router)).await;
        let models = blog_models();

        let plan = engine.create_all(&models).plan().unwrap();
        assert!(!has_table(&engine, "default", "users").await, "plan changes nothing");
        let report = engine.create_all(&models).run().await.unwrap();
        assert_eq!(report, plan);
        assert_eq!(report.changed_on("default"), ["User", "Post", "Comment"]);
        assert_eq!(report.changed_on("archive"), ["Archive"]);
        assert!(report.entries.iter().all(|e| e.action == SchemaAction::Created));
        assert!(report.warnings.is_empty());
        assert_only_on(&engine, "default", &all, &["users", "posts", "comments"]).await;
        assert_only_on(&engine, "archive", &all, &["archive"]).await;

        // The foreign keys hold where the database enforces them: the
        // tables are related for real.
        let users = engine.connection("default").unwrap();
        users
            .execute("INSERT INTO users (id, name) VALUES (1, 'ada')", &[])
            .await
            .unwrap();
        users
            .execute("INSERT INTO posts (id, author) VALUES (1, 1)", &[])
            .await
            .unwrap();
        if db.backend != Backend::Sqlite {
            let orphan = users
                .execute("INSERT INTO posts (id, author) VALUES (2, 99)", &[])
                .await;
            assert!(orphan.is_err(), "the foreign key is enforced");
        }
        // The PostgreSQL SQL ran there (BIGSERIAL fills the id), the
        // fallback elsewhere; both statements (table and index) ran.
        let arch = engine.connection("archive").unwrap();
        if db.backend == Backend::Postgres {
            arch.execute("INSERT INTO archive (body) VALUES ('x')", &[])
                .await
                .unwrap();
        }

        // Drop: the reverse order (dropping users before posts would fail
        // on PostgreSQL and MariaDB).
        let report = engine.drop_all(&models).run().await.unwrap();
        assert_eq!(report.changed_on("default"), ["Comment", "Post", "User"]);
        assert_eq!(report.entries[0].model, "Archive");
        assert!(report.entries.iter().all(|e| e.action == SchemaAction::Dropped));
        for table in ["users", "posts", "comments"] {
            assert!(!has_table(&engine, "default", table).await, "{table}");
        }
        assert!(!has_table(&engine, "archive", "archive").await);
        // The default drop SQL is DROP TABLE IF EXISTS: again is harmless.
        engine.drop_all(&models).run().await.unwrap();
    }
);

per_backend!(
    allow_migrate_and_on_decide_which_tables_are_made,
    |db: TestDb| async move {
        let archive = TestDb::new(db.backend).await;
        let all = ["default", "archive"];
        let router = Placement::default()
            .write("Archive", "archive")
            .write("Audit", "default")
            .deny("default", "Audit");
        let engine = engine_with(&[("default", &db.url), ("archive", &archive.url)], Some(router)).await;
        let mut models = blog_models();
        models.push(
            ModelSchema::new(ModelInfo::new("Audit").with_table("audit")).create("CREATE TABLE audit (id INTEGER)"),
        );

        let report = engine.create_all(&models).on(["default"]).run().await.unwrap();
        assert_eq!(report.action("User"), Some(SchemaAction::Created));
        assert_eq!(report.action("Audit"), Some(SchemaAction::SkippedByAllowMigrate));
        assert_eq!(report.entry("Audit").unwrap().connection, "default");
        assert_eq!(report.action("Archive"), Some(SchemaAction::SkippedNotSelected));
        assert_eq!(report.entry("Archive").unwrap().connection, "archive");
        let text = report.to_string();
        assert!(text.contains("skipped-by-allow_migrate Audit on default"), "{text}");
        assert!(text.contains("skipped-not-selected Archive on archive"), "{text}");
        assert_only_on(&engine, "default", &all, &["users"]).await;
        for connection in all {
            assert!(!has_table(&engine, connection, "audit").await);
            assert!(!has_table(&engine, connection, "archive").await);
        }

        // Now the other connection only.
        let report = engine.create_all(&models).on(["archive"]).run().await.unwrap();
        assert_eq!(report.changed_on("archive"), ["Archive"]);
        assert_eq!(report.action("User"), Some(SchemaAction::SkippedNotSelected));
        assert_only_on(&engine, "archive", &all, &["archive"]).await;

        // Unknown names in `on` are errors.
        let error = engine.create_all(&models).on(["nope"]).run().await.unwrap_err();
        assert!(matches!(error, Error::UnknownConnection { .. }), "{error:?}");
    }
);

#[tokio::test]
async fn cross_database_references_are_refused_or_warned_as_chosen() {
    let (a, b) = (TestDb::sqlite(), TestDb::sqlite());
    let router = Placement::default().write("Snapshot", "cache");
    let engine = engine_with(&[("default", &a.url), ("cache", &b.url)], Some(router)).await;
    let models = [
        ModelSchema::new(ModelInfo::new("User").with_table("users")).create("CREATE TABLE users (id INTEGER)"),
        ModelSchema::new(ModelInfo::new("Snapshot").with_table("snapshots"))
            .create("CREATE TABLE snapshots (id INTEGER, user_id INTEGER)")
            .references(["User"]),
    ];

    // Refused by default, before anything is created.
    let error = engine.create_all(&models).run().await.unwrap_err();
    let text = error.to_string();
    let SchemaProblem::CrossDatabase(reference) = problem(Err::<(), _>(error)) else {
        panic!("expected a cross-database problem: {text}");
    };
    assert_eq!(
        (reference.model.as_str(), reference.connection.as_str()),
        ("Snapshot", "cache")
    );
    assert_eq!(
        (reference.references.as_str(), reference.referenced_connection.as_str()),
        ("User", "default")
    );
    assert!(
        text.contains("no database can enforce") && text.contains("CrossDatabase::Warn"),
        "{text}"
    );
    assert!(!has_table(&engine, "default", "users").await, "nothing was created");

    // Warned: created, and the warning is in the report.
    let report = engine
        .create_all(&models)
        .cross_database(CrossDatabase::Warn)
        .run()
        .await
        .unwrap();
    assert_eq!(report.warnings, [reference]);
    assert!(
        report.to_string().contains("warning: model `Snapshot` (on `cache`)"),
        "{report}"
    );
    assert_only_on(&engine, "default", &["default", "cache"], &["users"]).await;
    assert_only_on(&engine, "cache", &["default", "cache"], &["snapshots"]).await;

    // A drop does not care.
    engine.drop_all(&models).run().await.unwrap();
}

#[tokio::test]
async fn bad_model_sets_are_refused_before_anything_runs() {
    let db = TestDb::sqlite();
    let engine = engine_with(&[("default", &db.url)], None).await;
    let first =
        || ModelSchema::new(ModelInfo::new("First").with_table("first")).create("CREATE TABLE first (id INTEGER)");

    let cycle = [
        first(),
        ModelSchema::new(ModelInfo::new("A"))
            .create("CREATE TABLE a (id INTEGER)")
            .references(["B"]),
        ModelSchema::new(ModelInfo::new("B"))
            .create("CREATE TABLE b (id INTEGER)")
            .references(["A"]),
    ];
    let error = engine.create_all(&cycle).run().await.unwrap_err();
    assert!(error.to_string().contains("A -> B -> A"), "{error}");

    let unknown = [
        first(),
        ModelSchema::new(ModelInfo::new("A"))
            .create("SELECT 1")
            .references(["Ghost"]),
    ];
    let p = problem(engine.create_all(&unknown).run().await);
    assert!(matches!(p, SchemaProblem::UnknownReference { ref references, .. } if references == "Ghost"));

    // No SQL for this backend: only PostgreSQL's is given.
    let no_sql = [
        first(),
        ModelSchema::new(ModelInfo::new("PgOnly")).create_for(Backend::Postgres, "CREATE TABLE pg (id SERIAL)"),
    ];
    let p = problem(engine.create_all(&no_sql).run().await);
    assert_eq!(
        p,
        SchemaProblem::NoCreateSql {
            model: "PgOnly".into(),
            connection: "default".into(),
            backend: Backend::Sqlite
        }
    );
    // No table name and no drop SQL.
    let p = problem(engine.drop_all(&no_sql).run().await);
    assert_eq!(p, SchemaProblem::NoDropSql { model: "PgOnly".into() });

    assert!(!has_table(&engine, "default", "first").await, "nothing ran");

    // A statement the database refuses: named with its model and
    // connection.
    let bad = [ModelSchema::new(ModelInfo::new("Bad")).create("CREATE TABLE (")];
    let error = engine.create_all(&bad).run().await.unwrap_err();
    assert!(
        matches!(&error, Error::SchemaStatement { connection, model, action: "create", .. } if connection == "default" && model == "Bad"),
        "{error:?}"
    );
}

// ---- one database, two names ----

per_backend!(two_names_for_one_database_are_refused, |db: TestDb| async move {
    let router = Placement::default().write("Snapshot", "alias");
    let engine = engine_with(&[("default", &db.url), ("alias", &db.url)], Some(router)).await;
    let shop = fixture("migrations/shop");

    let p = problem(engine.migrate().dir_for_all(&shop).run().await);
    assert_eq!(
        p,
        SchemaProblem::SameDatabase {
            first: "default".into(),
            second: "alias".into()
        }
    );
    let text = p.to_string();
    assert!(text.contains("same database") && !text.contains(&db.url), "{text}");
    assert!(!has_table(&engine, "default", "widgets").await, "nothing ran");

    // Through one of them: fine.
    let report = engine.migrate().dir_for_all(&shop).on(["alias"]).run().await.unwrap();
    assert_eq!(report.total_applied(), 2);

    // Tables: the router writes one model through each name.
    let models = [
        ModelSchema::new(ModelInfo::new("User")).create("CREATE TABLE users (id INTEGER)"),
        ModelSchema::new(ModelInfo::new("Snapshot")).create("CREATE TABLE snapshots (id INTEGER)"),
    ];
    assert!(matches!(
        problem(engine.create_all(&models).run().await),
        SchemaProblem::SameDatabase { .. }
    ));
    assert!(!has_table(&engine, "default", "users").await, "nothing ran");
    let report = engine.create_all(&models).on(["default"]).run().await.unwrap();
    assert_eq!(report.changed_on("default"), ["User"]);
});

// ---- mixed back ends: PostgreSQL default, SQLite cache ----

const SNAPSHOT_SQLITE: &str = "CREATE TABLE IF NOT EXISTS snapshots (key TEXT PRIMARY KEY, body BLOB) WITHOUT ROWID";

fn mixed_models() -> Vec<ModelSchema> {
    vec![
        ModelSchema::new(ModelInfo::new("User").with_table("users"))
            .create_for(
                Backend::Postgres,
                "CREATE TABLE IF NOT EXISTS users (id SERIAL PRIMARY KEY, name TEXT)",
            )
            .create_for(
                Backend::Sqlite,
                "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)",
            ),
        ModelSchema::new(ModelInfo::new("Snapshot").with_table("snapshots"))
            .create_for(Backend::Sqlite, SNAPSHOT_SQLITE)
            .create_for(
                Backend::Postgres,
                "CREATE TABLE IF NOT EXISTS snapshots (key TEXT PRIMARY KEY, body BYTEA)",
            ),
    ]
}

async fn mixed_engine(pg: &TestDb, cache: &TestDb, first: Option<Placement>) -> Engine {
    let mut builder = Engine::builder()
        .connection("default", &pg.url)
        .connection("cache", &cache.url);
    if let Some(router) = first {
        builder = builder.add_router(router);
    }
    builder
        .add_wasm_router(
            WasmRouter::named("cache"),
            RouterSource::File(dbroute_example_routers::CACHE.into()),
        )
        .build()
        .await
        .expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_backends_put_snapshot_only_in_sqlite() {
    let (pg, cache) = (TestDb::postgres().await, TestDb::sqlite());
    let all = ["default", "cache"];
    let engine = mixed_engine(&pg, &cache, None).await;
    let models = mixed_models();

    let report = engine.create_all(&models).run().await.unwrap();
    assert_eq!(report.changed_on("default"), ["User"]);
    assert_eq!(report.changed_on("cache"), ["Snapshot"]);
    assert_only_on(&engine, "default", &all, &["users"]).await;
    assert_only_on(&engine, "cache", &all, &["snapshots"]).await;
    // Each got its backend's SQL: SERIAL fills the id on PostgreSQL.
    let default = engine.connection("default").unwrap();
    default
        .execute("INSERT INTO users (name) VALUES ('ada')", &[])
        .await
        .unwrap();

    // Per-connection migrations, each directory in its backend's dialect.
    let report = engine
        .migrate()
        .dir("default", fixture("migrations/postgres_only"))
        .dir("cache", fixture("migrations/sqlite_only"))
        .run()
        .await
        .unwrap();
    assert_eq!(report.connections[0].backend, Backend::Postgres);
    assert_eq!(report.connections[1].backend, Backend::Sqlite);
    assert_eq!(report.total_applied(), 2);
    assert_only_on(&engine, "default", &all, &["events"]).await;
    assert_only_on(&engine, "cache", &all, &["entries"]).await;
    engine.close().await;

    // A router before the cache router sends every write to `default`:
    // the cache router's allow_migrate still keeps Snapshot out of
    // PostgreSQL.
    let everything_to_default = Placement {
        every_write_to: Some("default"),
        ..Placement::default()
    };
    let engine = mixed_engine(&pg, &cache, Some(everything_to_default)).await;
    let report = engine.create_all(&models).run().await.unwrap();
    assert_eq!(report.action("User"), Some(SchemaAction::Created));
    assert_eq!(report.action("Snapshot"), Some(SchemaAction::SkippedByAllowMigrate));
    assert_eq!(report.entry("Snapshot").unwrap().connection, "default");
    assert!(!has_table(&engine, "default", "snapshots").await);
    engine.close().await;

    // Every write to `cache`: no other model's table is made there.
    let everything_to_cache = Placement {
        every_write_to: Some("cache"),
        ..Placement::default()
    };
    let engine = mixed_engine(&pg, &cache, Some(everything_to_cache)).await;
    let report = engine.create_all(&models).run().await.unwrap();
    assert_eq!(report.action("User"), Some(SchemaAction::SkippedByAllowMigrate));
    assert_eq!(report.entry("User").unwrap().connection, "cache");
    assert_eq!(report.action("Snapshot"), Some(SchemaAction::Created));
    assert!(!has_table(&engine, "cache", "users").await);
    engine.close().await;
}
