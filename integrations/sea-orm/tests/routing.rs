//! SeaORM entities routed by real compiled WebAssembly routers, against
//! real PostgreSQL and SQLite: rows are checked in the databases
//! themselves (through connections of their own), where they should be and
//! where they should not.

// The entities are written as SeaORM's generator writes them: `pub`, in
// modules of their own.
#![allow(unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use dbroute::wasm::{Compilation, RouterSource, WasmRouter};
use dbroute::{Engine, ModelInfo, PoolSettings};
use dbroute_sea_orm::{EntityRouter, RoutedDb, RoutedTransaction};
use futures_util::TryStreamExt as _;
use sea_orm::entity::prelude::*;
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{ConnectionTrait, RuntimeErr, Set, TransactionError, TransactionSession, TransactionTrait};

mod billing {
    pub mod invoice {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "invoices")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub customer: String,
            pub total: i64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

mod auth {
    pub mod user {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "users")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub name: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

/// Its module says nothing of billing: it is mapped there.
mod misc {
    pub mod payment {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "payments")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub amount: i64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

/// An entity whose table name is empty.
mod broken {
    pub mod nameless {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use auth::user;
use billing::invoice;
use misc::payment;

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A PostgreSQL database of this test's own, dropped afterwards (also when
/// the test panics).
struct PgDb {
    name: String,
    url: String,
}

impl PgDb {
    async fn new() -> PgDb {
        let name = format!("dbroute_seaorm_{}_{}", std::process::id(), unique());
        admin(&format!("CREATE DATABASE {name}")).await;
        PgDb {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime: do the async work on a thread of
        // its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(admin(&sql));
        })
        .join();
    }
}

async fn admin(sql: &str) {
    let mut c = sqlx::PgConnection::connect(POSTGRES_ADMIN)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .expect("admin statement");
}

const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

/// A MariaDB database of this test's own, dropped afterwards.
struct MyDb {
    name: String,
    url: String,
}

impl MyDb {
    async fn new() -> MyDb {
        let name = format!("dbroute_seaorm_my_{}_{}", std::process::id(), unique());
        mysql_admin(&format!("CREATE DATABASE {name}")).await;
        MyDb {
            url: format!("mysql://root@127.0.0.1:3306/{name}"),
            name,
        }
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(mysql_admin(&sql));
        })
        .join();
    }
}

async fn mysql_admin(sql: &str) {
    let mut c = sqlx::MySqlConnection::connect(MYSQL_ADMIN)
        .await
        .expect("MariaDB on 127.0.0.1:3306");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .expect("admin statement");
}

fn unique() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A SQLite file in a temporary folder (removed with it).
struct SqliteDb {
    url: String,
    _dir: tempfile::TempDir,
}

impl SqliteDb {
    fn new() -> SqliteDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        SqliteDb {
            url: format!("sqlite:{}?mode=rwc", dir.path().join("billing.db").display()),
            _dir: dir,
        }
    }
}

/// The rows of `sql` (one text column), read on a connection of the
/// test's own, not through dbroute.
async fn direct(url: &str, sql: &str) -> Vec<String> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.expect("PostgreSQL");
        sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("direct query")
    } else if url.starts_with("mysql") {
        let mut c = sqlx::MySqlConnection::connect(url).await.expect("MariaDB");
        sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("direct query")
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("SQLite");
        sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("direct query")
    }
}

/// The tables, with keys the database numbers (`$1`: the key's type).
const TABLES: &[&str] = &[
    "CREATE TABLE invoices (id $1 PRIMARY KEY, customer TEXT NOT NULL, total BIGINT NOT NULL)",
    "CREATE TABLE users (id $1 PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE payments (id $1 PRIMARY KEY, amount BIGINT NOT NULL)",
];

/// `default` on PostgreSQL, `billing` on SQLite, each with every table (so
/// that a row sent to the wrong one lands there instead of failing), and
/// the example `app` router (compiled to WebAssembly) active: a model whose
/// app names a connection goes there, reads and writes.
async fn billing_engine(pg: &PgDb, sqlite: &SqliteDb, settings: PoolSettings) -> Engine {
    app_engine(&pg.url, &sqlite.url, settings).await
}

/// `default` and `billing` on these URLs, as [`billing_engine`] makes
/// them.
async fn app_engine(default: &str, billing: &str, settings: PoolSettings) -> Engine {
    let engine = Engine::builder()
        .connection_with("default", default, settings)
        .connection("billing", billing)
        .build()
        .await
        .unwrap();
    for name in ["default", "billing"] {
        let db = engine.connection(name).unwrap();
        let key = match db.backend() {
            dbroute::Backend::Postgres => "SERIAL",
            dbroute::Backend::MySql => "INTEGER AUTO_INCREMENT",
            dbroute::Backend::Sqlite => "INTEGER",
        };
        for sql in TABLES {
            db.execute(sqlx::AssertSqlSafe(sql.replace("$1", key)), &[])
                .await
                .unwrap();
        }
    }
    let router = engine
        .load_router(
            WasmRouter::named("app").compilation(Compilation::Baseline),
            RouterSource::File(dbroute_example_routers::APP.into()),
        )
        .unwrap();
    engine.set_router(router);
    engine
}

fn entity_router(engine: &Engine) -> EntityRouter {
    EntityRouter::builder(engine.clone())
        .entity::<payment::Entity>(ModelInfo::new("Payment").with_app("billing"))
        .build()
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/routers")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_land_where_the_router_says() {
    let (pg, sqlite) = (PgDb::new().await, SqliteDb::new());
    let engine = billing_engine(&pg, &sqlite, PoolSettings::new()).await;
    let orm = entity_router(&engine);

    // The models the router sees.
    let model = orm.model::<invoice::Entity>().unwrap();
    assert_eq!(
        (model.name(), model.app(), model.table()),
        ("invoice", Some("billing"), Some("invoices"))
    );
    assert_eq!(orm.model::<user::Entity>().unwrap().app(), Some("auth"));

    // Writes.
    let db = orm.for_write::<invoice::Entity>().unwrap();
    assert_eq!(db.name().as_str(), "billing");
    for (customer, total) in [("acme", 120), ("globex", 80)] {
        invoice::ActiveModel {
            customer: Set(customer.into()),
            total: Set(total),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let db = orm.for_write::<user::Entity>().unwrap();
    assert_eq!(db.name().as_str(), "default");
    let ada = user::ActiveModel {
        name: Set("ada".into()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let mut ada: user::ActiveModel = ada.into();
    ada.name = Set("ada lovelace".into());
    ada.update(&db).await.unwrap();
    payment::ActiveModel {
        amount: Set(5),
        ..Default::default()
    }
    .insert(&orm.for_write::<payment::Entity>().unwrap())
    .await
    .unwrap();

    // Reads come back from where the rows are.
    let invoices = invoice::Entity::find()
        .filter(invoice::Column::Total.gt(100))
        .all(&orm.for_read::<invoice::Entity>().unwrap())
        .await
        .unwrap();
    assert_eq!(
        invoices.iter().map(|i| i.customer.as_str()).collect::<Vec<_>>(),
        ["acme"]
    );
    // Streamed, as rows arrive.
    let streamed: Vec<invoice::Model> = invoice::Entity::find()
        .stream(&orm.for_read::<invoice::Entity>().unwrap())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 2);
    let users = user::Entity::find()
        .all(&orm.for_read::<user::Entity>().unwrap())
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["ada lovelace"]
    );

    // In the databases themselves: each row where the router said, and
    // nowhere else.
    assert_eq!(
        direct(&sqlite.url, "SELECT customer FROM invoices ORDER BY customer").await,
        ["acme", "globex"]
    );
    assert_eq!(
        direct(&pg.url, "SELECT customer FROM invoices").await,
        Vec::<String>::new()
    );
    assert_eq!(direct(&pg.url, "SELECT name FROM users").await, ["ada lovelace"]);
    assert_eq!(
        direct(&sqlite.url, "SELECT name FROM users").await,
        Vec::<String>::new()
    );
    assert_eq!(
        direct(&sqlite.url, "SELECT CAST(amount AS TEXT) FROM payments").await,
        ["5"]
    );
    assert_eq!(
        direct(&pg.url, "SELECT CAST(amount AS TEXT) FROM payments").await,
        Vec::<String>::new()
    );

    // A delete goes there too.
    invoice::Entity::delete_many()
        .filter(invoice::Column::Customer.eq("globex"))
        .exec(&orm.for_write::<invoice::Entity>().unwrap())
        .await
        .unwrap();
    assert_eq!(direct(&sqlite.url, "SELECT customer FROM invoices").await, ["acme"]);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_run_on_dbroutes_own_pool() {
    let (pg, sqlite) = (PgDb::new().await, SqliteDb::new());
    // At most two connections to PostgreSQL: SeaORM's statements wait for
    // them rather than open more.
    let engine = billing_engine(&pg, &sqlite, PoolSettings::new().max_connections(2)).await;
    let orm = entity_router(&engine);
    let db = orm.for_read::<user::Entity>().unwrap();
    let reads = (0..24).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            db.execute_unprepared("SELECT pg_sleep(0.02)").await.unwrap();
        })
    });
    // SeaORM's own DatabaseConnection, made from the same pool.
    let same_pool = db.to_database_connection().unwrap();
    let more = (0..8).map(|_| {
        let db = same_pool.clone();
        tokio::spawn(async move {
            db.execute_unprepared("SELECT pg_sleep(0.02)").await.unwrap();
        })
    });
    for read in reads.chain(more).collect::<Vec<_>>() {
        read.await.unwrap();
    }
    let sessions = direct(
        &pg.url,
        &format!(
            "SELECT CAST(count(*) AS TEXT) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            pg.name
        ),
    )
    .await;
    assert_eq!(sessions, ["2"], "SeaORM ran on dbroute's pool of two");
    let status = engine.status();
    let default = status.iter().find(|s| s.name.as_str() == "default").unwrap();
    assert!(default.pool_size <= 2, "{default:?}");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_rolls_back_leaves_nothing() {
    let (pg, sqlite) = (PgDb::new().await, SqliteDb::new());
    let engine = billing_engine(&pg, &sqlite, PoolSettings::new()).await;
    let orm = entity_router(&engine);

    // Begun for the entity: on SQLite (billing).
    let txn = orm.begin_for_write::<invoice::Entity>().await.unwrap();
    assert_eq!(txn.connection_name().as_str(), "billing");
    for customer in ["acme", "globex"] {
        invoice::ActiveModel {
            customer: Set(customer.into()),
            total: Set(1),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .unwrap();
    }
    assert_eq!(
        invoice::Entity::find().all(&txn).await.unwrap().len(),
        2,
        "the transaction sees its rows"
    );
    let streamed: Vec<invoice::Model> = invoice::Entity::find()
        .stream(&txn)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 2, "so does a stream in it");
    txn.rollback().await.unwrap();
    assert_eq!(
        direct(&sqlite.url, "SELECT customer FROM invoices").await,
        Vec::<String>::new()
    );

    // SeaORM's transaction closure on PostgreSQL: pinned (another session
    // sees nothing meanwhile), and an error rolls it back.
    let db = orm.for_write::<user::Entity>().unwrap();
    let pg_url = pg.url.clone();
    let outcome = db
        .transaction::<_, (), DbErr>(|txn| {
            Box::pin(async move {
                for name in ["ada", "bob"] {
                    user::ActiveModel {
                        name: Set(name.into()),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await?;
                }
                assert_eq!(user::Entity::find().count(txn).await?, 2);
                assert_eq!(direct(&pg_url, "SELECT name FROM users").await, Vec::<String>::new());
                // A savepoint, rolled back: the outer rows stay.
                let inner = txn.begin().await?;
                user::ActiveModel {
                    name: Set("eve".into()),
                    ..Default::default()
                }
                .insert(&inner)
                .await?;
                inner.rollback().await?;
                assert_eq!(user::Entity::find().count(txn).await?, 2);
                Err(DbErr::Custom("changed my mind".into()))
            })
        })
        .await;
    assert!(
        matches!(&outcome, Err(TransactionError::Transaction(DbErr::Custom(m))) if m == "changed my mind"),
        "{outcome:?}"
    );
    assert_eq!(direct(&pg.url, "SELECT name FROM users").await, Vec::<String>::new());

    // A dbroute transaction (run), with SeaORM inside through the routed
    // API: its statements join it, and its error rolls everything back.
    let model = orm.model::<user::Entity>().unwrap();
    let inside = orm.clone();
    let failed: Result<(), dbroute_sea_orm::Error> = engine
        .transaction()
        .for_write_model(&model)
        .run(|conn| async move {
            let orm = inside;
            let db = orm.for_write::<user::Entity>()?;
            assert!(db.in_transaction());
            user::ActiveModel {
                name: Set("carol".into()),
                ..Default::default()
            }
            .insert(&db)
            .await?;
            conn.execute("INSERT INTO users (id, name) VALUES (99, 'dave')", &[])
                .await?;
            assert_eq!(
                user::Entity::find().count(&db).await?,
                2,
                "SeaORM and dbroute share the transaction"
            );
            Err(DbErr::Custom("abort".into()).into())
        })
        .await;
    assert!(
        matches!(&failed, Err(dbroute_sea_orm::Error::Db(DbErr::Custom(m))) if m == "abort"),
        "{failed:?}"
    );
    assert_eq!(direct(&pg.url, "SELECT name FROM users").await, Vec::<String>::new());

    // A dbroute transaction handle kept by the caller; SeaORM through its
    // connection; committed: the row is there.
    let tx = engine.transaction().for_write_model(&model).begin().await.unwrap();
    let db = RoutedDb::from(tx.connection());
    user::ActiveModel {
        name: Set("frank".into()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    assert_eq!(direct(&pg.url, "SELECT name FROM users").await, Vec::<String>::new());
    tx.commit().await.unwrap();
    assert_eq!(direct(&pg.url, "SELECT name FROM users").await, ["frank"]);

    // Dropped unfinished: rolled back.
    {
        let txn = RoutedTransaction::from(engine.transaction().on("billing").begin().await.unwrap());
        txn.execute_unprepared("INSERT INTO invoices (customer, total) VALUES ('dropped', 1)")
            .await
            .unwrap();
    }
    assert_eq!(
        direct(&sqlite.url, "SELECT customer FROM invoices").await,
        Vec::<String>::new()
    );

    // No DatabaseConnection inside a transaction: it would run outside.
    let tx = engine.transaction().on("default").begin().await.unwrap();
    let error = RoutedDb::from(tx.connection()).to_database_connection().unwrap_err();
    assert!(error.to_string().contains("inside a transaction"), "{error}");
    drop(tx);

    // Finished: a further statement is a clear error.
    let txn = orm.begin_for_write::<user::Entity>().await.unwrap();
    let handle = RoutedDb::from(txn.transaction().connection());
    TransactionSession::commit(txn).await.unwrap();
    let after = user::Entity::find().all(&handle).await.unwrap_err();
    assert!(after.to_string().contains("already finished"), "{after}");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_errors_are_clear_db_errs() {
    let (pg, sqlite) = (PgDb::new().await, SqliteDb::new());
    let engine = Engine::builder()
        .connection("default", &pg.url)
        .connection("replica", &sqlite.url)
        .build()
        .await
        .unwrap();
    let orm = EntityRouter::builder(engine.clone())
        .entity::<invoice::Entity>(ModelInfo::new("FaultyArchive"))
        .build()
        .unwrap();

    // The router refuses: reads and writes of `FaultyArchive`.
    let refuses = engine
        .load_router(WasmRouter::named("refuses"), RouterSource::File(fixture("refuses.wat")))
        .unwrap();
    engine.set_router(refuses);
    for error in [
        orm.for_read::<invoice::Entity>().unwrap_err(),
        orm.for_write::<invoice::Entity>().unwrap_err(),
        orm.begin_for_write::<invoice::Entity>().await.unwrap_err(),
    ] {
        let DbErr::Conn(RuntimeErr::Internal(message)) = &error else {
            panic!("not a connection error: {error:?}");
        };
        assert!(message.contains("refused"), "{message}");
        assert!(message.contains("archived models are read-only"), "{message}");
        assert!(message.contains("FaultyArchive"), "{message}");
    }
    // The same router's answer for another entity stands.
    assert_eq!(orm.for_read::<user::Entity>().unwrap().name().as_str(), "replica");

    // The router names a connection nobody registered.
    let unknown = engine
        .load_router(
            WasmRouter::named("unknown"),
            RouterSource::File(fixture("unknown_connection.wat")),
        )
        .unwrap();
    engine.set_router(unknown);
    let error = orm.for_write::<user::Entity>().unwrap_err();
    assert!(matches!(error, DbErr::Conn(_)), "{error:?}");
    assert!(error.to_string().contains("analytics"), "{error}");
    let error = orm.connection("nowhere").unwrap_err();
    assert!(error.to_string().contains("nowhere"), "{error}");

    // An entity with no table name.
    let error = orm.for_read::<broken::nameless::Entity>().unwrap_err();
    assert!(
        matches!(&error, DbErr::Custom(m) if m.contains("has no table name") && m.contains("nameless")),
        "{error:?}"
    );

    // Bad mappings.
    let empty = EntityRouter::builder(engine.clone())
        .entity::<user::Entity>(ModelInfo::new(" "))
        .build()
        .unwrap_err();
    assert!(
        matches!(empty, dbroute_sea_orm::Error::EmptyModelName { .. }),
        "{empty}"
    );

    // A statement's own error stays SeaORM's (with sqlx's error inside).
    engine.set_router(dbroute::router::RouterChain::new());
    let db = orm.connection("default").unwrap();
    let error = db.execute_unprepared("SELECT * FROM no_such_table").await.unwrap_err();
    assert!(matches!(&error, DbErr::Exec(RuntimeErr::SqlxError(_))), "{error:?}");

    // Isolation levels: PostgreSQL sets them; SQLite says it cannot.
    let txn = orm
        .connection("default")
        .unwrap()
        .begin_with_config(Some(sea_orm::IsolationLevel::Serializable), None)
        .await
        .unwrap();
    let level = txn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_setting('transaction_isolation') AS level",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(level.try_get::<String>("", "level").unwrap(), "serializable");
    txn.rollback().await.unwrap();
    let error = orm
        .connection("replica")
        .unwrap()
        .begin_with_config(Some(sea_orm::IsolationLevel::Serializable), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("isolation level"), "{error}");
    engine.close().await;
}

/// MariaDB too: SeaORM reads the new key from MySQL's last insert id there
/// (no `RETURNING`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_on_mariadb() {
    let (my, sqlite) = (MyDb::new().await, SqliteDb::new());
    let engine = app_engine(&sqlite.url, &my.url, PoolSettings::new()).await;
    let orm = entity_router(&engine);

    let db = orm.for_write::<invoice::Entity>().unwrap();
    assert_eq!(db.name().as_str(), "billing");
    let acme = invoice::ActiveModel {
        customer: Set("acme".into()),
        total: Set(120),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    assert_eq!(acme.id, 1);
    let txn = db.begin().await.unwrap();
    invoice::ActiveModel {
        customer: Set("globex".into()),
        total: Set(1),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .unwrap();
    txn.rollback().await.unwrap();
    let found = invoice::Entity::find_by_id(acme.id)
        .one(&orm.for_read::<invoice::Entity>().unwrap())
        .await
        .unwrap();
    assert_eq!(found.map(|i| i.total), Some(120));

    assert_eq!(direct(&my.url, "SELECT customer FROM invoices").await, ["acme"]);
    assert_eq!(
        direct(&sqlite.url, "SELECT customer FROM invoices").await,
        Vec::<String>::new()
    );
    engine.close().await;
}
