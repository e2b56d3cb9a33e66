//! Timestamps, dates, times, UUIDs and decimals bound and read on every
//! backend, and rows read as the service's own types (typed reads).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use dbroute::{Backend, Engine, Error, Model, Value, params, sqlx::AssertSqlSafe};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use crate::support::{TestDb, engine_on, per_backend};

#[derive(Model)]
#[dbroute(table = "users")]
struct User;

/// A user as a handler reads it, the same whichever backend the row is on.
#[derive(Debug, Deserialize, PartialEq)]
struct UserRow {
    id: i64,
    name: String,
    created_at: DateTime<Utc>,
    birthday: NaiveDate,
    wakes_at: NaiveTime,
    external_id: Uuid,
    balance: Decimal,
    active: bool,
    nickname: Option<String>,
}

/// The README's `users` table, with a column of each type, as each backend
/// spells it.
fn create_users(backend: Backend) -> String {
    let (id, created_at, uuid, decimal) = match backend {
        Backend::Postgres => ("SERIAL PRIMARY KEY", "TIMESTAMPTZ", "UUID", "NUMERIC(12, 2)"),
        Backend::MySql => (
            "INTEGER AUTO_INCREMENT PRIMARY KEY",
            "TIMESTAMP",
            "UUID",
            "DECIMAL(12, 2)",
        ),
        Backend::Sqlite => ("INTEGER PRIMARY KEY", "TIMESTAMP", "TEXT", "DECIMAL(12, 2)"),
    };
    format!(
        "CREATE TABLE users (id {id}, name VARCHAR(40) NOT NULL, created_at {created_at} NOT NULL, \
         birthday DATE NOT NULL, wakes_at TIME NOT NULL, external_id {uuid} NOT NULL, \
         balance {decimal} NOT NULL, active BOOLEAN NOT NULL, nickname VARCHAR(40))"
    )
}

fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap()
}

fn external_id() -> Uuid {
    Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8)
}

async fn engine_with_users(db: &TestDb) -> Engine {
    let engine = engine_on(db).await;
    engine
        .write::<User>()
        .execute(AssertSqlSafe(create_users(db.backend)), &[])
        .await
        .unwrap();
    engine
        .write::<User>()
        .portable()
        .execute(
            "INSERT INTO users (name, created_at, birthday, wakes_at, external_id, balance, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &params![
                "ada",
                created(),
                NaiveDate::from_ymd_opt(1815, 12, 10).unwrap(),
                NaiveTime::from_hms_opt(6, 30, 0).unwrap(),
                external_id(),
                Decimal::new(123_456, 2),
                true
            ],
        )
        .await
        .unwrap();
    engine
}

per_backend!(select_star_reads_every_column_type, |db: TestDb| async move {
    let engine = engine_with_users(&db).await;
    // The README's own read, on a table with a timestamp column.
    let rows = engine
        .read::<User>()
        .fetch_all("SELECT * FROM users", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let values = row.values().unwrap();
    assert_eq!(values[2], Value::TimestampTz(created()), "{row:?}");
    assert_eq!(values[3], Value::Date(NaiveDate::from_ymd_opt(1815, 12, 10).unwrap()));
    assert_eq!(values[4], Value::Time(NaiveTime::from_hms_opt(6, 30, 0).unwrap()));
    match db.backend {
        Backend::Postgres => assert_eq!(values[5], Value::Uuid(external_id())),
        // MariaDB's UUID type arrives as the bytes of its text (sqlx
        // cannot tell it from BINARY), SQLite's as text.
        Backend::MySql => assert_eq!(values[5], Value::Bytes(external_id().to_string().into_bytes())),
        Backend::Sqlite => assert_eq!(values[5], Value::Text(external_id().to_string())),
    }
    match db.backend {
        // SQLite stores a DECIMAL column's value as a float.
        Backend::Sqlite => assert_eq!(values[6], Value::Float(1234.56)),
        _ => assert_eq!(values[6], Value::Decimal(Decimal::new(123_456, 2))),
    }
    assert_eq!(row.get::<DateTime<Utc>, _>("created_at"), created());
    assert_eq!(row.get::<NaiveDateTime, _>("created_at"), created().naive_utc());
    assert_eq!(row.get::<Uuid, _>("external_id"), external_id());
    assert_eq!(row.get::<Decimal, _>("balance"), Decimal::new(123_456, 2));
    assert_eq!(row.get::<String, _>("birthday"), "1815-12-10");

    // Parameters of each type compare with the stored values.
    let found = engine
        .read::<User>()
        .portable()
        .fetch_optional(
            "SELECT id FROM users WHERE created_at = $1 AND birthday = $2 AND balance = $3",
            &params![
                created(),
                NaiveDate::from_ymd_opt(1815, 12, 10).unwrap(),
                Decimal::new(123_456, 2)
            ],
        )
        .await
        .unwrap();
    assert!(found.is_some(), "a bound timestamp, date and decimal must find the row");
});

per_backend!(rows_read_as_the_same_struct_everywhere, |db: TestDb| async move {
    let engine = engine_with_users(&db).await;
    let expected = UserRow {
        id: 1,
        name: "ada".into(),
        created_at: created(),
        birthday: NaiveDate::from_ymd_opt(1815, 12, 10).unwrap(),
        wakes_at: NaiveTime::from_hms_opt(6, 30, 0).unwrap(),
        external_id: external_id(),
        balance: Decimal::new(123_456, 2),
        active: true,
        nickname: None,
    };
    let users: Vec<UserRow> = engine
        .read::<User>()
        .fetch_all_as("SELECT * FROM users", &[])
        .await
        .unwrap();
    assert_eq!(users, [expected]);
    let one: UserRow = engine
        .read::<User>()
        .fetch_one_as("SELECT * FROM users", &[])
        .await
        .unwrap();
    assert_eq!(one.name, "ada");
    let none: Option<UserRow> = engine
        .read::<User>()
        .portable()
        .fetch_optional_as("SELECT * FROM users WHERE name = $1", &params!["nobody"])
        .await
        .unwrap();
    assert_eq!(none, None);
    // A tuple reads the columns in order; one column reads as a value
    // (COUNT is BIGINT or INTEGER, SUM a decimal on MySQL: both `i64`).
    let (id, name): (i32, String) = engine
        .read::<User>()
        .fetch_one_as("SELECT id, name FROM users", &[])
        .await
        .unwrap();
    assert_eq!((id, name.as_str()), (1, "ada"));
    let count: i64 = engine
        .read::<User>()
        .fetch_one_as("SELECT COUNT(*) FROM users", &[])
        .await
        .unwrap();
    assert_eq!(count, 1);
    let sum: i64 = engine
        .read::<User>()
        .fetch_one_as("SELECT SUM(id) FROM users", &[])
        .await
        .unwrap();
    assert_eq!(sum, 1);

    // Inside a transaction, through its handle.
    let tx = engine.transaction().for_write::<User>().begin().await.unwrap();
    let names: Vec<String> = tx
        .connection()
        .fetch_all_as("SELECT name FROM users", &[])
        .await
        .unwrap();
    assert_eq!(names, ["ada"]);
    tx.rollback().await.unwrap();
});

per_backend!(a_row_that_does_not_fit_says_why, |db: TestDb| async move {
    let engine = engine_with_users(&db).await;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct WithEmail {
        name: String,
        email: String,
    }
    let err = engine
        .read::<User>()
        .fetch_one_as::<WithEmail>("SELECT * FROM users", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RowType { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("WithEmail") && message.contains("email") && message.contains("created_at"),
        "{message}"
    );

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct NotNull {
        nickname: String,
    }
    let message = engine
        .read::<User>()
        .fetch_one_as::<NotNull>("SELECT nickname FROM users", &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("nickname") && message.contains("NULL") && message.contains("Option"),
        "{message}"
    );

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct NameAsNumber {
        name: i64,
    }
    let message = engine
        .read::<User>()
        .fetch_one_as::<NameAsNumber>("SELECT name FROM users", &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("column name") && message.contains("text"), "{message}");
});

#[tokio::test]
async fn a_time_without_zone_reads_as_naive_and_says_so_otherwise() {
    for db in [TestDb::postgres().await, TestDb::mysql().await] {
        let engine = engine_on(&db).await;
        let column = if db.backend == Backend::Postgres {
            "TIMESTAMP"
        } else {
            "DATETIME(6)"
        };
        let conn = engine.connection("default").unwrap().portable();
        conn.execute(AssertSqlSafe(format!("CREATE TABLE events (at {column})")), &[])
            .await
            .unwrap();
        let at = NaiveDate::from_ymd_opt(2024, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 6)
            .unwrap();
        conn.execute("INSERT INTO events VALUES ($1)", &params![at])
            .await
            .unwrap();
        let row = conn.fetch_one("SELECT at FROM events", &[]).await.unwrap();
        assert_eq!(row.value(0).unwrap(), Value::Timestamp(at), "{}", db.backend);
        let read: NaiveDateTime = conn.fetch_one_as("SELECT at FROM events", &[]).await.unwrap();
        assert_eq!(read, at);
        let message = conn
            .fetch_one_as::<DateTime<Utc>>("SELECT at FROM events", &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("without time zone"), "{message}");
    }
}

#[tokio::test]
async fn sqlite_reads_the_timestamps_it_writes_itself_as_utc() {
    let db = TestDb::sqlite();
    let engine = engine_on(&db).await;
    let conn = engine.connection("default").unwrap();
    conn.execute(
        "CREATE TABLE events (id INTEGER, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, note TEXT)",
        &[],
    )
    .await
    .unwrap();
    conn.execute("INSERT INTO events (id, note) VALUES (1, 'x')", &[])
        .await
        .unwrap();
    // Bound instants are stored as SQLite writes them: they compare with
    // CURRENT_TIMESTAMP as text.
    let earlier = Utc::now() - chrono::Duration::hours(1);
    let row = conn
        .fetch_one("SELECT at, at > $1 AS later FROM events", &params![earlier])
        .await
        .unwrap();
    let at: DateTime<Utc> = row.get("at");
    assert!((Utc::now() - at).num_seconds().abs() < 60, "{at}");
    assert!(row.get::<bool, _>("later"));
    // Text that is not a time stays text.
    conn.execute("UPDATE events SET at = 'soon'", &[]).await.unwrap();
    let row = conn.fetch_one("SELECT at FROM events", &[]).await.unwrap();
    assert_eq!(row.value(0).unwrap(), Value::Text("soon".into()));
}
