//! The value types behind crate features (`chrono`, `uuid`,
//! `rust_decimal`): conversions into [`Value`], out of it
//! ([`FromValue`]), and their text forms (as SQLite stores them, and as
//! typed reads hand them to serde).
//!
//! Reading is lenient where SQLite makes it necessary: SQLite has no date,
//! UUID or decimal types, so each also reads from the text (or number) it
//! is stored as there.

#[cfg(feature = "chrono")]
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone as _, Utc};

use super::value::Value;
#[cfg(any(feature = "chrono", feature = "uuid", feature = "rust_decimal"))]
use super::value::{FromValue, mismatch};

/// The text of a value that has no text variant: ISO 8601 for times (an
/// instant in RFC 3339, with `Z`), the hyphenated form of a UUID, the
/// decimal's digits. `None` for the other variants.
pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        #[cfg(feature = "chrono")]
        Value::Timestamp(v) => Some(v.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        #[cfg(feature = "chrono")]
        Value::TimestampTz(v) => Some(v.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        #[cfg(feature = "chrono")]
        Value::Date(v) => Some(v.format("%Y-%m-%d").to_string()),
        #[cfg(feature = "chrono")]
        Value::Time(v) => Some(v.format("%H:%M:%S%.f").to_string()),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => Some(v.hyphenated().to_string()),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => Some(v.to_string()),
        _ => None,
    }
}

/// The text SQLite stores a value as: times as its date functions write
/// them (`YYYY-MM-DD HH:MM:SS.SSS`, an instant in UTC without an offset),
/// so that they compare with `CURRENT_TIMESTAMP`; other values as
/// [`as_text`].
#[cfg(all(
    feature = "sqlite",
    any(feature = "chrono", feature = "uuid", feature = "rust_decimal")
))]
pub(crate) fn sqlite_text(value: &Value) -> String {
    match value {
        #[cfg(feature = "chrono")]
        Value::Timestamp(v) => v.format("%F %T%.f").to_string(),
        #[cfg(feature = "chrono")]
        Value::TimestampTz(v) => v.naive_utc().format("%F %T%.f").to_string(),
        other => as_text(other).unwrap_or_default(),
    }
}

/// A value of a SQLite column declared `DATETIME`/`TIMESTAMP`, `DATE` or
/// `TIME` (sqlx's `type_name` for the declaration), read as its time type
/// when it parses as one; `None` to read it by its storage class.
#[cfg(all(feature = "sqlite", feature = "chrono"))]
pub(crate) fn sqlite_time<'r>(
    type_name: &str,
    raw: impl Fn() -> Option<sqlx::sqlite::SqliteValueRef<'r>>,
) -> Option<Value> {
    use sqlx::{Decode, Sqlite, TypeInfo as _, ValueRef as _};
    let is_text = || raw().is_some_and(|raw| raw.type_info().name() == "TEXT");
    match type_name {
        "DATETIME" => <DateTime<Utc> as Decode<Sqlite>>::decode(raw()?)
            .ok()
            .map(Value::TimestampTz),
        "DATE" if is_text() => <NaiveDate as Decode<Sqlite>>::decode(raw()?).ok().map(Value::Date),
        "TIME" if is_text() => <NaiveTime as Decode<Sqlite>>::decode(raw()?).ok().map(Value::Time),
        _ => None,
    }
}

macro_rules! value_from {
    ($($(#[$cfg:meta])* $t:ty => $variant:ident via $conv:expr),* $(,)?) => {$(
        $(#[$cfg])*
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant($conv(v))
            }
        }
    )*};
}
value_from! {
    #[cfg(feature = "chrono")] NaiveDateTime => Timestamp via |v| v,
    #[cfg(feature = "chrono")] DateTime<Utc> => TimestampTz via |v| v,
    #[cfg(feature = "chrono")] DateTime<chrono::FixedOffset> => TimestampTz via |v: DateTime<chrono::FixedOffset>| v.to_utc(),
    #[cfg(feature = "chrono")] NaiveDate => Date via |v| v,
    #[cfg(feature = "chrono")] NaiveTime => Time via |v| v,
    #[cfg(feature = "uuid")] uuid::Uuid => Uuid via |v| v,
    #[cfg(feature = "rust_decimal")] rust_decimal::Decimal => Decimal via |v| v,
}

/// Text as SQLite and the other databases write a date and time: RFC 3339,
/// or `YYYY-MM-DD HH:MM[:SS[.fff]]` with `T` or a space, with or without
/// an offset (`None` without one).
#[cfg(feature = "chrono")]
fn parse_datetime(text: &str) -> Option<(NaiveDateTime, Option<DateTime<Utc>>)> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some((dt.naive_utc(), Some(dt.to_utc())));
    }
    const NAIVE: [&str; 4] = ["%F %T%.f", "%FT%T%.f", "%F %R", "%FT%R"];
    const WITH_OFFSET: [&str; 4] = ["%F %T%.f%#z", "%FT%T%.f%#z", "%F %R%#z", "%FT%R%#z"];
    let trimmed = text.trim_end_matches(['Z', 'z']);
    if let Some(naive) = NAIVE
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(trimmed, format).ok())
    {
        // A trailing `Z` is UTC, said.
        let utc = (trimmed.len() != text.len()).then(|| naive.and_utc());
        return Some((naive, utc));
    }
    WITH_OFFSET
        .iter()
        .find_map(|format| DateTime::parse_from_str(text, format).ok())
        .map(|dt| (dt.naive_utc(), Some(dt.to_utc())))
}

/// A date and time without zone: a `TIMESTAMP`/`DATETIME` value, an
/// instant (its UTC date and time), text in one of the usual forms, or
/// Unix seconds.
#[cfg(feature = "chrono")]
impl FromValue for NaiveDateTime {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Timestamp(v) => Ok(*v),
            Value::TimestampTz(v) => Ok(v.naive_utc()),
            Value::Text(text) => parse_datetime(text)
                .map(|(naive, _)| naive)
                .ok_or_else(|| format!("holds {text:?}, which is not a date and time")),
            Value::Int(seconds) => DateTime::from_timestamp(*seconds, 0)
                .map(|v| v.naive_utc())
                .ok_or_else(|| mismatch(value, "NaiveDateTime")),
            other => Err(mismatch(other, "NaiveDateTime")),
        }
    }
}

/// An instant: a `TIMESTAMPTZ` value, text with an offset, text without
/// one taken as UTC (as SQLite writes `CURRENT_TIMESTAMP`), or Unix
/// seconds. A `TIMESTAMP`/`DATETIME` value (without zone) does not read as
/// an instant: read it as `NaiveDateTime`.
#[cfg(feature = "chrono")]
impl FromValue for DateTime<Utc> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::TimestampTz(v) => Ok(*v),
            Value::Text(text) => parse_datetime(text)
                .map(|(naive, utc)| utc.unwrap_or_else(|| naive.and_utc()))
                .ok_or_else(|| format!("holds {text:?}, which is not a date and time")),
            Value::Int(seconds) => Utc
                .timestamp_opt(*seconds, 0)
                .single()
                .ok_or_else(|| mismatch(value, "DateTime<Utc>")),
            Value::Timestamp(_) => Err(format!(
                "{}; it has no time zone: read it as chrono::NaiveDateTime",
                mismatch(value, "DateTime<Utc>")
            )),
            other => Err(mismatch(other, "DateTime<Utc>")),
        }
    }
}

/// A date: a `DATE` value, or `YYYY-MM-DD` text.
#[cfg(feature = "chrono")]
impl FromValue for NaiveDate {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Date(v) => Ok(*v),
            Value::Text(text) => {
                NaiveDate::parse_from_str(text, "%F").map_err(|_| format!("holds {text:?}, which is not a date"))
            }
            other => Err(mismatch(other, "NaiveDate")),
        }
    }
}

/// A time of day: a `TIME` value, or `HH:MM[:SS[.fff]]` text.
#[cfg(feature = "chrono")]
impl FromValue for NaiveTime {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Time(v) => Ok(*v),
            Value::Text(text) => ["%T%.f", "%R"]
                .iter()
                .find_map(|format| NaiveTime::parse_from_str(text, format).ok())
                .ok_or_else(|| format!("holds {text:?}, which is not a time")),
            other => Err(mismatch(other, "NaiveTime")),
        }
    }
}

/// A UUID: a `UUID` value, its text (any of the usual forms), or 16 bytes.
#[cfg(feature = "uuid")]
impl FromValue for uuid::Uuid {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Uuid(v) => Ok(*v),
            Value::Text(text) => {
                uuid::Uuid::parse_str(text).map_err(|e| format!("holds {text:?}, which is not a UUID: {e}"))
            }
            // 16 bytes (`BINARY(16)`), or the bytes of its text (MariaDB's
            // UUID type arrives so).
            Value::Bytes(bytes) => uuid::Uuid::from_slice(bytes)
                .or_else(|_| uuid::Uuid::try_parse_ascii(bytes))
                .map_err(|_| format!("holds {} bytes, neither the 16 of a UUID nor its text", bytes.len())),
            other => Err(mismatch(other, "Uuid")),
        }
    }
}

/// An exact decimal: a `NUMERIC`/`DECIMAL` value, an integer, decimal text,
/// or a float (SQLite stores a `NUMERIC` column's decimals as floats: the
/// float's shortest exact decimal).
#[cfg(feature = "rust_decimal")]
impl FromValue for rust_decimal::Decimal {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        use std::str::FromStr as _;
        match value {
            Value::Decimal(v) => Ok(*v),
            Value::Int(i) => Ok(rust_decimal::Decimal::from(*i)),
            Value::Text(text) => rust_decimal::Decimal::from_str(text)
                .or_else(|_| rust_decimal::Decimal::from_scientific(text))
                .map_err(|e| format!("holds {text:?}, which is not a decimal: {e}")),
            Value::Float(f) => rust_decimal::Decimal::try_from(*f).map_err(|e| format!("holds {f}: {e}")),
            other => Err(mismatch(other, "Decimal")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use super::*;

    #[cfg(feature = "chrono")]
    #[test]
    fn times_read_from_the_text_sqlite_stores() {
        let instant = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap();
        for text in [
            "2024-05-06 07:08:09",
            "2024-05-06T07:08:09Z",
            "2024-05-06T09:08:09+02:00",
            "2024-05-06 07:08:09.000",
        ] {
            assert_eq!(DateTime::<Utc>::from_value(&Value::from(text)), Ok(instant), "{text}");
            assert_eq!(
                NaiveDateTime::from_value(&Value::from(text)),
                Ok(instant.naive_utc()),
                "{text}"
            );
        }
        assert_eq!(
            DateTime::<Utc>::from_value(&Value::Int(instant.timestamp())),
            Ok(instant)
        );
        let naive = Value::Timestamp(instant.naive_utc());
        assert!(
            DateTime::<Utc>::from_value(&naive)
                .unwrap_err()
                .contains("NaiveDateTime")
        );
        assert!(NaiveDate::from_value(&Value::from("2024-13-01")).is_err());
        assert_eq!(
            NaiveTime::from_value(&Value::from("07:08")),
            Ok(NaiveTime::from_hms_opt(7, 8, 0).unwrap())
        );
        // The text forms round-trip.
        assert_eq!(as_text(&Value::TimestampTz(instant)).unwrap(), "2024-05-06T07:08:09Z");
        #[cfg(feature = "sqlite")]
        assert_eq!(sqlite_text(&Value::TimestampTz(instant)), "2024-05-06 07:08:09");
    }

    #[cfg(feature = "uuid")]
    #[test]
    fn uuids_read_from_text_and_bytes() {
        let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        assert_eq!(uuid::Uuid::from_value(&Value::from(id.to_string())), Ok(id));
        assert_eq!(uuid::Uuid::from_value(&Value::from(id.as_bytes().to_vec())), Ok(id));
        assert_eq!(
            uuid::Uuid::from_value(&Value::from(id.to_string().into_bytes())),
            Ok(id)
        );
        assert!(uuid::Uuid::from_value(&Value::from("nope")).is_err());
        assert_eq!(String::from_value(&Value::Uuid(id)), Ok(id.to_string()));
    }

    #[cfg(feature = "rust_decimal")]
    #[test]
    fn decimals_read_from_text_integers_and_floats() {
        use rust_decimal::Decimal;
        assert_eq!(Decimal::from_value(&Value::from("12.50")), Ok(Decimal::new(1250, 2)));
        assert_eq!(Decimal::from_value(&Value::Float(12.5)), Ok(Decimal::new(125, 1)));
        assert_eq!(Decimal::from_value(&Value::Int(3)), Ok(Decimal::from(3)));
        assert_eq!(f64::from_value(&Value::Decimal(Decimal::new(1250, 2))), Ok(12.5));
    }

    /// Without the value features, PostgreSQL's timestamp, UUID and
    /// numeric columns are errors that name the feature (CI runs this in
    /// its PostgreSQL-only build).
    #[cfg(all(
        feature = "postgres",
        not(any(feature = "chrono", feature = "uuid", feature = "rust_decimal"))
    ))]
    #[tokio::test]
    async fn without_its_feature_a_column_names_the_feature() {
        let engine = crate::Engine::builder()
            .connection("default", "postgres://postgres@127.0.0.1:5432/test")
            .build()
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        let row = engine
            .connection("default")
            .unwrap()
            .fetch_one(
                "SELECT now() AS created_at, gen_random_uuid() AS id, 1.5::numeric AS price, 'ok' AS fine",
                &[],
            )
            .await
            .unwrap();
        for (column, feature) in [("created_at", "chrono"), ("id", "uuid"), ("price", "rust_decimal")] {
            let e = row.try_get::<String, _>(column).unwrap_err().to_string();
            assert!(e.contains(column) && e.contains(&format!("`{feature}` feature")), "{e}");
        }
        assert_eq!(row.get::<String, _>("fine"), "ok");
        let e = row
            .deserialize::<(String, String, String, String)>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("`chrono` feature"), "{e}");
    }

    #[test]
    fn a_missing_feature_is_named() {
        let e = super::super::value::needs_feature("created_at", "TIMESTAMPTZ", "chrono", "x::text").to_string();
        assert!(
            e.contains("created_at") && e.contains("`chrono` feature") && e.contains("x::text"),
            "{e}"
        );
    }
}
