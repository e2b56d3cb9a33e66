//! Raw SQL on a named connection, the same on all three backends.

use dbroute::{Backend, Engine, Error, Value, params, sqlx::AssertSqlSafe};

use crate::support::{TestDb, engine_on, per_backend};

fn sql(text: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(text)
}

per_backend!(
    execute_and_fetch_bind_parameters_and_read_rows,
    |db: TestDb| async move {
        let engine = engine_on(&db).await;
        let conn = engine.connection("default").unwrap();
        let id_type = match db.backend {
            Backend::Postgres => "SERIAL PRIMARY KEY",
            Backend::MySql => "INTEGER AUTO_INCREMENT PRIMARY KEY",
            _ => "INTEGER PRIMARY KEY",
        };
        conn.execute(
        sql(format!(
            "CREATE TABLE people (id {id_type}, name VARCHAR(100) NOT NULL, age INTEGER, score DOUBLE PRECISION, active BOOLEAN, photo {})",
            if db.backend == Backend::Postgres { "BYTEA" } else { "BLOB" }
        )),
        &[],
    )
    .await
    .unwrap();
        let insert = format!(
            "INSERT INTO people (name, age, score, active, photo) VALUES ({}, {}, {}, {}, {})",
            db.p(1),
            db.p(2),
            db.p(3),
            db.p(4),
            db.p(5)
        );
        let done = conn
            .execute(sql(insert.clone()), &params!["ada", 36, 9.5, true, vec![1u8, 2, 3]])
            .await
            .unwrap();
        assert_eq!(done.rows_affected, 1);
        if db.backend != Backend::Postgres {
            assert_eq!(done.last_insert_id, Some(1));
        }
        // A NULL parameter, and an injection attempt that must stay a value.
        conn.execute(
            sql(insert),
            &params![
                "x'); DROP TABLE people; --",
                None::<i64>,
                None::<f64>,
                false,
                None::<Vec<u8>>
            ],
        )
        .await
        .unwrap();

        let rows = conn
            .fetch_all(
                "SELECT id, name, age, score, active, photo FROM people ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        let ada = &rows[0];
        assert_eq!(ada.get::<i64, _>("id"), 1);
        assert_eq!(ada.get::<i32, _>(0), 1);
        assert_eq!(ada.get::<String, _>("name"), "ada");
        assert_eq!(ada.get::<i64, _>("age"), 36);
        assert_eq!(ada.get::<f64, _>("score"), 9.5);
        assert!(ada.get::<bool, _>("active"));
        assert_eq!(ada.get::<Vec<u8>, _>("photo"), vec![1, 2, 3]);
        let other = &rows[1];
        assert_eq!(other.get::<String, _>(1), "x'); DROP TABLE people; --");
        assert_eq!(other.get::<Option<i64>, _>("age"), None);
        assert_eq!(other.get::<Option<f64>, _>("score"), None);
        assert_eq!(other.values().unwrap()[5], Value::Null);

        let by_name = format!("SELECT name FROM people WHERE name = {}", db.p(1));
        let one = conn.fetch_one(sql(by_name.clone()), &params!["ada"]).await.unwrap();
        assert_eq!(one.get::<String, _>("name"), "ada");
        assert!(
            conn.fetch_optional(sql(by_name.clone()), &params!["nobody"])
                .await
                .unwrap()
                .is_none()
        );
        let missing = conn.fetch_one(sql(by_name), &params!["nobody"]).await.unwrap_err();
        assert!(matches!(missing, Error::RowNotFound { .. }), "{missing}");

        let count = conn.fetch_one("SELECT COUNT(*) AS n FROM people", &[]).await.unwrap();
        assert_eq!(count.get::<i64, _>("n"), 2);
        // Reading a column that is not there, or as the wrong type, says so.
        let err = count.try_get::<i64, _>("nope").unwrap_err().to_string();
        assert!(err.contains("no such column") && err.contains('n'), "{err}");
        let err = ada.try_get::<i64, _>("name").unwrap_err().to_string();
        assert!(err.contains("text") && err.contains("i64"), "{err}");
    }
);

per_backend!(a_bad_statement_names_the_connection, |db: TestDb| async move {
    let engine = engine_on(&db).await;
    let err = engine
        .connection("default")
        .unwrap()
        .execute("SELECT * FROM table_that_does_not_exist", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{err:?}");
    assert!(err.to_string().starts_with("connection `default`"), "{err}");
});

per_backend!(the_typed_pool_is_handed_out, |db: TestDb| async move {
    let engine = engine_on(&db).await;
    let conn = engine.connection("default").unwrap();
    assert_eq!(conn.backend(), db.backend);
    match db.backend {
        Backend::Postgres => {
            let pool = conn.pool().as_postgres().expect("a PgPool");
            let one: i32 = dbroute::sqlx::query_scalar("SELECT 1").fetch_one(pool).await.unwrap();
            assert_eq!(one, 1);
        }
        Backend::MySql => {
            let pool = conn.pool().as_mysql().expect("a MySqlPool");
            let one: i64 = dbroute::sqlx::query_scalar("SELECT 1").fetch_one(pool).await.unwrap();
            assert_eq!(one, 1);
        }
        _ => {
            let pool = conn.pool().as_sqlite().expect("a SqlitePool");
            let one: i64 = dbroute::sqlx::query_scalar("SELECT 1").fetch_one(pool).await.unwrap();
            assert_eq!(one, 1);
        }
    }
});

per_backend!(
    one_statement_takes_parameters_of_changing_types,
    |db: TestDb| async move {
        // One pooled connection, so the driver's statement cache is shared by
        // every run of the same SQL text: a statement prepared for one set of
        // parameter types must not decode another set wrongly.
        let engine = dbroute::Engine::builder()
            .connection_with("default", &db.url, dbroute::PoolSettings::new().max_connections(1))
            .build()
            .await
            .unwrap();
        let conn = engine.connection("default").unwrap();
        conn.execute("CREATE TABLE mixed (n INTEGER, x DOUBLE PRECISION)", &[])
            .await
            .unwrap();
        let insert = sql(format!("INSERT INTO mixed (n, x) VALUES ({}, {})", db.p(1), db.p(2)));
        let insert = || sql(insert.0.clone());
        conn.execute(insert(), &params![None::<i64>, None::<f64>])
            .await
            .unwrap();
        conn.execute(insert(), &params![7, 3]).await.unwrap();
        conn.execute(insert(), &params![8, 9.5]).await.unwrap();
        conn.execute(insert(), &params![None::<i64>, 2.25]).await.unwrap();
        let rows = conn.fetch_all("SELECT n, x FROM mixed", &[]).await.unwrap();
        let got: Vec<(Option<i64>, Option<f64>)> = rows.iter().map(|r| (r.get("n"), r.get("x"))).collect();
        assert_eq!(
            got,
            [
                (None, None),
                (Some(7), Some(3.0)),
                (Some(8), Some(9.5)),
                (None, Some(2.25))
            ]
        );
    }
);

/// A statement's future is moved (copied in full) as it is awaited, once per
/// layer, and a service holds one per operation in flight. sqlx's pool
/// acquire alone is about 8.5 KiB on PostgreSQL: held inline, it made every
/// statement's future over 17 KiB. A future handed to an `async fn`, kept
/// in a local or in a `match` scrutinee while another is awaited is stored
/// twice: that doubled a handle's statement (1.3 KiB) and a routed read
/// (2.6 KiB). The bounds catch either coming back, not a few bytes.
#[tokio::test]
async fn statement_futures_stay_small() {
    const HANDLE: usize = 1 << 10;
    const ROUTED: usize = 3 << 9;
    #[derive(dbroute::Model)]
    struct User;
    use dbroute::Model;
    let db = TestDb::sqlite();
    let engine = engine_on(&db).await;
    let conn = engine.connection("default").unwrap();
    let p = params![1];
    let sizes = [
        ("execute", HANDLE, std::mem::size_of_val(&conn.execute("SELECT $1", &p))),
        (
            "fetch_all",
            HANDLE,
            std::mem::size_of_val(&conn.fetch_all("SELECT $1", &p)),
        ),
        (
            "fetch_optional",
            HANDLE,
            std::mem::size_of_val(&conn.fetch_optional("SELECT $1", &p)),
        ),
        (
            "fetch_one",
            HANDLE,
            std::mem::size_of_val(&conn.fetch_one("SELECT $1", &p)),
        ),
        (
            "routed fetch_one",
            ROUTED,
            std::mem::size_of_val(&engine.read_model(User::model_info()).fetch_one("SELECT $1", &p)),
        ),
        (
            "routed execute",
            ROUTED,
            std::mem::size_of_val(&engine.write_model(User::model_info()).execute("SELECT $1", &p)),
        ),
    ];
    for (statement, most, size) in sizes {
        assert!(size <= most, "{statement}'s future is {size} bytes (at most {most})");
    }
    // They are futures: run one to be sure they were not just built.
    assert_eq!(conn.fetch_one("SELECT $1", &p).await.unwrap().get::<i64, _>(0), 1);
}

#[tokio::test]
async fn a_statement_says_which_connection_ran_it() {
    let engine = Engine::builder()
        .connection("primary", "sqlite::memory:")
        .connection("archive", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    let model = dbroute::ModelInfo::new("Note");
    let done = engine
        .write_model(&model)
        .execute("CREATE TABLE notes (x INTEGER)", &[])
        .await
        .unwrap();
    assert_eq!(done.connection, "primary", "the default connection's own name");
    let done = engine
        .write_model(&model)
        .using("archive")
        .execute("CREATE TABLE notes (x INTEGER)", &[])
        .await
        .unwrap();
    assert_eq!(done.connection, "archive");
}
