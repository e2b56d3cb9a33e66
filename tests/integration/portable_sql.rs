//! Portable placeholders: one handler, with the same SQL text, runs on
//! PostgreSQL, MariaDB and SQLite, wherever a router sends it.

use dbroute::wasm::{Compilation, RouterSource, WasmRouter};
use dbroute::{Backend, Engine, Error, Hints, Model, params, sqlx::AssertSqlSafe};
use serde::Deserialize;
use serde_json::json;

use crate::support::{TestDb, engine_on};

#[derive(Model)]
#[dbroute(table = "notes")]
struct Note;

#[derive(Debug, Deserialize, PartialEq)]
struct NoteRow {
    id: i64,
    tag: String,
    body: Option<String>,
}

/// The handler: knows nothing of the backend its tenant is on.
async fn handler(engine: &Engine, tenant: &str) -> Vec<NoteRow> {
    let hints = Hints::new().with("tenant", tenant);
    // RETURNING reads the new id on PostgreSQL, MariaDB 10.5+ and SQLite.
    let id: i64 = engine
        .write::<Note>()
        .hints(&hints)
        .portable()
        .fetch_one_as(
            "INSERT INTO notes (tag, body) VALUES ($1, $2) RETURNING id",
            &params![tenant, "it's $1 -- and ? too"],
        )
        .await
        .unwrap();
    assert_eq!(id, 1, "{tenant}");
    // A second row through execute.
    let done = engine
        .write::<Note>()
        .hints(&hints)
        .portable()
        .execute(
            "INSERT INTO notes (body, tag) VALUES ($2, $1) /* $3 ? */",
            &params![format!("{tenant}-2"), None::<String>],
        )
        .await
        .unwrap();
    assert_eq!(done.rows_affected, 1);
    // A placeholder used twice and out of order; literals and comments
    // that look like placeholders are left alone.
    engine
        .read::<Note>()
        .hints(&hints)
        .portable()
        .fetch_all_as(
            "SELECT id, tag, body FROM notes -- $9 ?\n\
             WHERE (tag = $2 OR tag = $1 OR body = '$1') AND id <= $3 \
             ORDER BY id",
            &params![format!("{tenant}-2"), tenant, 10],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_same_handler_and_sql_run_wherever_the_router_sends_them() {
    let (main, pg, maria, lite) = (
        TestDb::sqlite(),
        TestDb::postgres().await,
        TestDb::mysql().await,
        TestDb::sqlite(),
    );
    let engine = Engine::builder()
        .connection("default", &main.url)
        .connection("tenant_pg", &pg.url)
        .connection("tenant_maria", &maria.url)
        .connection("tenant_lite", &lite.url)
        .build()
        .await
        .unwrap();
    for (name, db) in [("tenant_pg", &pg), ("tenant_maria", &maria), ("tenant_lite", &lite)] {
        let id = match db.backend {
            Backend::Postgres => "SERIAL PRIMARY KEY",
            Backend::MySql => "INTEGER AUTO_INCREMENT PRIMARY KEY",
            Backend::Sqlite => "INTEGER PRIMARY KEY",
        };
        engine
            .connection(name)
            .unwrap()
            .execute(
                AssertSqlSafe(format!(
                    "CREATE TABLE notes (id {id}, tag VARCHAR(40), body VARCHAR(80))"
                )),
                &[],
            )
            .await
            .unwrap();
    }
    let router = engine
        .load_router(
            WasmRouter::named("tenant")
                .config(json!({"tenants": {"pg": "tenant_pg", "maria": "tenant_maria", "lite": "tenant_lite"}}))
                .compilation(Compilation::Baseline),
            RouterSource::File(dbroute_example_routers::TENANT.into()),
        )
        .unwrap();
    engine.set_router(router);

    for (tenant, connection) in [("pg", "tenant_pg"), ("maria", "tenant_maria"), ("lite", "tenant_lite")] {
        let read = handler(&engine, tenant).await;
        assert_eq!(
            read,
            [
                NoteRow {
                    id: 1,
                    tag: tenant.into(),
                    body: Some("it's $1 -- and ? too".into())
                },
                NoteRow {
                    id: 2,
                    tag: format!("{tenant}-2"),
                    body: None
                },
            ],
            "{tenant}"
        );
        // The rows are where the router sent them, and nowhere else.
        for other in ["tenant_pg", "tenant_maria", "tenant_lite", "default"] {
            let tags: Vec<String> = match engine
                .connection(other)
                .unwrap()
                .fetch_all_as("SELECT tag FROM notes ORDER BY id", &[])
                .await
            {
                Ok(tags) => tags,
                // `default` has no notes table.
                Err(_) if other == "default" => Vec::new(),
                Err(e) => panic!("{other}: {e}"),
            };
            let mine = tags.iter().any(|t| t == tenant);
            assert_eq!(mine, other == connection, "{tenant} rows on {other}: {tags:?}");
        }
    }
}

#[tokio::test]
async fn portable_sql_on_mariadb_refuses_what_it_cannot_translate() {
    let db = TestDb::mysql().await;
    let engine = engine_on(&db).await;
    let conn = engine.connection("default").unwrap().portable();
    let err = conn.execute("SELECT ?", &params![1]).await.unwrap_err();
    assert!(matches!(err, Error::PortableSql { .. }), "{err:?}");
    assert!(err.to_string().contains("$1"), "{err}");
    let err = conn.execute("SELECT $2", &params![1]).await.unwrap_err();
    assert!(err.to_string().contains("$2, but 1 parameter was given"), "{err}");
    // Without `portable`, MySQL's own `?` still runs as written.
    let row = engine
        .connection("default")
        .unwrap()
        .fetch_one("SELECT ? + 1 AS n", &params![1])
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("n"), 2);
}

#[tokio::test]
async fn postgres_runs_portable_sql_as_written_dollar_bodies_included() {
    let db = TestDb::postgres().await;
    let engine = Engine::builder()
        .connection("default", &db.url)
        .portable_sql(true)
        .build()
        .await
        .unwrap();
    let conn = engine.connection("default").unwrap();
    assert!(conn.is_portable());
    conn.execute(
        "CREATE FUNCTION add_one(integer) RETURNS integer AS $$ SELECT $1 + 1 $$ LANGUAGE SQL",
        &[],
    )
    .await
    .unwrap();
    let (n, s): (i64, String) = engine
        .read::<Note>()
        .fetch_one_as("SELECT add_one(CAST($1 AS integer)) AS n, '$2' AS s", &params![41])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((n, s.as_str()), (42, "$2"));
}
