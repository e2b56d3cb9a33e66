//! Values that cross the SQL boundary: bound parameters and the cells of
//! result rows, the same on every backend.

use std::fmt;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
#[cfg(feature = "mysql")]
use sqlx::mysql::{MySql, MySqlTypeInfo};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgTypeInfo, Postgres, types::Oid};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{Sqlite, SqliteTypeInfo};
use sqlx::{Column as _, Decode, Encode, Row as _, Type, TypeInfo as _, ValueRef as _};

use crate::error::{Error, Result};

/// One SQL value: a bound parameter, or a cell of a result row.
///
/// Timestamps, dates, times, UUIDs and exact decimals are variants behind
/// the crate features `chrono`, `uuid` and `rust_decimal` (on by default).
/// Which SQL type reads as which variant, per backend, is in `docs/sql.md`;
/// in short: PostgreSQL `TIMESTAMPTZ`, MySQL `TIMESTAMP` and SQLite columns
/// declared `DATETIME` or `TIMESTAMP` read as [`Value::TimestampTz`] (SQLite
/// text without an offset is UTC, as SQLite's own date functions write it);
/// PostgreSQL `TIMESTAMP` and MySQL `DATETIME` as [`Value::Timestamp`].
///
/// # Examples
///
/// ```
/// use dbroute::Value;
/// assert_eq!(Value::from(7), Value::Int(7));
/// assert_eq!(Value::from("ada"), Value::Text("ada".into()));
/// assert_eq!(Value::from(None::<i64>), Value::Null);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (any width that fits in 64 bits).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A date and time without time zone (PostgreSQL `TIMESTAMP`, MySQL
    /// `DATETIME`).
    #[cfg(feature = "chrono")]
    #[cfg_attr(docsrs, doc(cfg(feature = "chrono")))]
    Timestamp(chrono::NaiveDateTime),
    /// An instant, in UTC (PostgreSQL `TIMESTAMPTZ`, MySQL `TIMESTAMP`,
    /// SQLite `DATETIME`/`TIMESTAMP` columns).
    #[cfg(feature = "chrono")]
    #[cfg_attr(docsrs, doc(cfg(feature = "chrono")))]
    TimestampTz(chrono::DateTime<chrono::Utc>),
    /// A date (`DATE`).
    #[cfg(feature = "chrono")]
    #[cfg_attr(docsrs, doc(cfg(feature = "chrono")))]
    Date(chrono::NaiveDate),
    /// A time of day without time zone (`TIME`).
    #[cfg(feature = "chrono")]
    #[cfg_attr(docsrs, doc(cfg(feature = "chrono")))]
    Time(chrono::NaiveTime),
    /// A UUID (PostgreSQL `UUID`; bound as its hyphenated text on MySQL and
    /// SQLite).
    #[cfg(feature = "uuid")]
    #[cfg_attr(docsrs, doc(cfg(feature = "uuid")))]
    Uuid(uuid::Uuid),
    /// An exact decimal (PostgreSQL `NUMERIC`, MySQL `DECIMAL`; bound as
    /// text on SQLite).
    #[cfg(feature = "rust_decimal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rust_decimal")))]
    Decimal(rust_decimal::Decimal),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident via $conv:expr),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant($conv(v))
            }
        }
    )*};
}
value_from! {
    bool => Bool via |v| v,
    i8 => Int via i64::from,
    i16 => Int via i64::from,
    i32 => Int via i64::from,
    i64 => Int via |v| v,
    u8 => Int via i64::from,
    u16 => Int via i64::from,
    u32 => Int via i64::from,
    f32 => Float via f64::from,
    f64 => Float via |v| v,
    String => Text via |v| v,
    &str => Text via str::to_owned,
    &String => Text via String::clone,
    Vec<u8> => Bytes via |v| v,
    &[u8] => Bytes via <[u8]>::to_vec,
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds a parameter list for [`Connection::execute`](crate::Connection::execute)
/// and the fetch methods.
///
/// # Examples
///
/// ```
/// use dbroute::{params, Value};
/// let p = params![1, "ada", None::<i64>];
/// assert_eq!(p, [Value::Int(1), Value::Text("ada".into()), Value::Null]);
/// ```
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::Value::from($value)),*]
    };
}

/// Converts a [`Value`] into a Rust type, widening where no information is
/// lost (an `INT4` column reads as `i64`, `0`/`1` as `bool`).
pub trait FromValue: Sized {
    /// The conversion; `Err` says what did not fit.
    fn from_value(value: &Value) -> std::result::Result<Self, String>;

    /// The conversion of an owned value (a row's cell, decoded for this
    /// read): text and bytes move instead of being copied.
    fn from_owned(value: Value) -> std::result::Result<Self, String> {
        Self::from_value(&value)
    }
}

impl Value {
    /// What kind of value this is, for messages: "an integer", "text"…
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            #[cfg(feature = "chrono")]
            Value::Timestamp(_) => "a timestamp without time zone",
            #[cfg(feature = "chrono")]
            Value::TimestampTz(_) => "a timestamp with time zone",
            #[cfg(feature = "chrono")]
            Value::Date(_) => "a date",
            #[cfg(feature = "chrono")]
            Value::Time(_) => "a time",
            #[cfg(feature = "uuid")]
            Value::Uuid(_) => "a UUID",
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(_) => "a decimal",
        }
    }
}

pub(crate) fn mismatch(value: &Value, wanted: &str) -> String {
    format!("holds {}, which cannot be read as {wanted}", value.kind())
}

impl FromValue for Value {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        Ok(value.clone())
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(i64::from(*b)),
            // `SUM` of integers is a decimal on MySQL (and of BIGINTs on
            // PostgreSQL): a whole one reads as an integer.
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(d) if d.fract().is_zero() => {
                rust_decimal::prelude::ToPrimitive::to_i64(d).ok_or_else(|| mismatch(value, "i64"))
            }
            other => Err(mismatch(other, "i64")),
        }
    }
}

macro_rules! narrow_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value) -> std::result::Result<Self, String> {
                let wide = i64::from_value(value).map_err(|_| mismatch(value, stringify!($t)))?;
                <$t>::try_from(wide).map_err(|_| format!("holds {wide}, which does not fit in {}", stringify!($t)))
            }
        }
    )*};
}
narrow_int!(i8, i16, i32, u8, u16, u32, u64, usize);

impl FromValue for f64 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(d) => rust_decimal::prelude::ToPrimitive::to_f64(d).ok_or_else(|| mismatch(value, "f64")),
            other => Err(mismatch(other, "f64")),
        }
    }
}

impl FromValue for f32 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        f64::from_value(value).map(|f| f as f32)
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            other => Err(mismatch(other, "bool")),
        }
    }
}

/// Text; and the text of a timestamp, date, time (ISO 8601), UUID
/// (hyphenated) or decimal, which MySQL sent as text before they had
/// variants of their own.
impl FromValue for String {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => super::value_types::as_text(other).ok_or_else(|| mismatch(other, "String")),
        }
    }

    fn from_owned(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s),
            other => super::value_types::as_text(&other).ok_or_else(|| mismatch(&other, "String")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.clone().into_bytes()),
            other => Err(mismatch(other, "Vec<u8>")),
        }
    }

    fn from_owned(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Bytes(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            other => Err(mismatch(&other, "Vec<u8>")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }

    fn from_owned(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_owned(other).map(Some),
        }
    }
}

/// Selects a column by position or by name.
pub trait ColumnIndex: fmt::Display {
    /// The column's position in `row`, if it exists.
    fn position(&self, row: &Row) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, row: &Row) -> Option<usize> {
        (*self < row.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn position(&self, row: &Row) -> Option<usize> {
        row.columns().position(|c| c == *self)
    }
}

/// One result row, readable by column name or index on every backend.
///
/// It holds the driver's row as sqlx returned it, and decodes a column only
/// when it is read, into the type asked for: a row costs nothing for the
/// columns a caller does not read, and text moves out of the decoded value
/// without a copy.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// # let engine = dbroute::Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// # let db = engine.connection("default")?;
/// let row = db.fetch_one("SELECT 42 AS answer, 'ada' AS name", &[]).await?;
/// let answer: i64 = row.try_get("answer")?;
/// let name: String = row.try_get(1)?;
/// assert_eq!((answer, name.as_str()), (42, "ada"));
/// assert!(row.try_get::<i64, _>("missing").is_err());
/// assert_eq!(row.columns().collect::<Vec<_>>(), ["answer", "name"]);
/// # Ok(()) }
/// ```
pub struct Row {
    raw: RawRow,
}

/// The driver's row.
enum RawRow {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgRow),
    #[cfg(feature = "mysql")]
    MySql(sqlx::mysql::MySqlRow),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::sqlite::SqliteRow),
}

/// Runs `$body` with `$row` bound to the driver's row and `$decode` to its
/// backend's cell decoder.
macro_rules! on_row {
    ($raw:expr, |$row:ident, $decode:ident| $body:expr) => {
        match $raw {
            #[cfg(feature = "postgres")]
            RawRow::Postgres($row) => {
                let $decode = pg_value;
                $body
            }
            #[cfg(feature = "mysql")]
            RawRow::MySql($row) => {
                let $decode = mysql_value;
                $body
            }
            #[cfg(feature = "sqlite")]
            RawRow::Sqlite($row) => {
                let $decode = sqlite_value;
                $body
            }
        }
    };
}

#[cfg(feature = "postgres")]
impl From<sqlx::postgres::PgRow> for Row {
    fn from(row: sqlx::postgres::PgRow) -> Self {
        Row {
            raw: RawRow::Postgres(row),
        }
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::mysql::MySqlRow> for Row {
    fn from(row: sqlx::mysql::MySqlRow) -> Self {
        Row {
            raw: RawRow::MySql(row),
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::sqlite::SqliteRow> for Row {
    fn from(row: sqlx::sqlite::SqliteRow) -> Self {
        Row {
            raw: RawRow::Sqlite(row),
        }
    }
}

impl Row {
    /// Reads a column as `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the column does not exist or its value does not
    /// fit `T`.
    pub fn try_get<T: FromValue, I: ColumnIndex>(&self, index: I) -> Result<T> {
        let Some(position) = index.position(self) else {
            return Err(Error::Decode {
                column: index.to_string(),
                problem: format!(
                    "no such column; the row has: {}",
                    self.columns().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        T::from_owned(self.value(position)?).map_err(|problem| Error::Decode {
            column: index.to_string(),
            problem,
        })
    }

    /// Reads a column as `T`.
    ///
    /// # Panics
    ///
    /// When [`Row::try_get`] would fail.
    pub fn get<T: FromValue, I: ColumnIndex>(&self, index: I) -> T {
        self.try_get(index).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The column names, in order.
    pub fn columns(&self) -> Columns<'_> {
        Columns(match &self.raw {
            #[cfg(feature = "postgres")]
            RawRow::Postgres(row) => ColumnsOf::Postgres(row.columns().iter()),
            #[cfg(feature = "mysql")]
            RawRow::MySql(row) => ColumnsOf::MySql(row.columns().iter()),
            #[cfg(feature = "sqlite")]
            RawRow::Sqlite(row) => ColumnsOf::Sqlite(row.columns().iter()),
        })
    }

    /// The value of the column at `position`, decoded.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when there is no such column, or its SQL type is
    /// one [`Value`] cannot hold (the message says how to cast it).
    pub fn value(&self, position: usize) -> Result<Value> {
        on_row!(&self.raw, |row, decode| {
            let Some(column) = row.columns().get(position) else {
                return Err(Error::Decode {
                    column: position.to_string(),
                    problem: format!("no such column; the row has {}", row.len()),
                });
            };
            decode(row, position, column)
        })
    }

    /// Every value, decoded, in column order.
    ///
    /// # Errors
    ///
    /// As [`Row::value`].
    pub fn values(&self) -> Result<Vec<Value>> {
        (0..self.len()).map(|i| self.value(i)).collect()
    }

    /// Reads the row as `T` through serde: a struct's fields are the
    /// columns by name (serde's attributes apply; extra columns are
    /// ignored), a tuple's are the columns in order, and a row of one
    /// column reads as a plain value. Each cell converts as
    /// [`Row::try_get`] converts it, so one type reads the rows of every
    /// backend; NULL reads only into an `Option`; text read as a struct,
    /// map or sequence is parsed as JSON (a `JSON` column into a typed
    /// field). Timestamps, dates, times, UUIDs and decimals reach their
    /// types (`chrono`, `uuid`, `rust_decimal`) as their text:
    /// `DateTime<Utc>` reads an instant ([`Value::TimestampTz`]),
    /// `NaiveDateTime` a time without zone ([`Value::Timestamp`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// # let engine = dbroute::Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// # let db = engine.connection("default")?;
    /// #[derive(serde::Deserialize)]
    /// struct Answer {
    ///     answer: u8,
    ///     #[serde(rename = "who")]
    ///     name: String,
    /// }
    ///
    /// let row = db.fetch_one("SELECT 42 AS answer, 'ada' AS who", &[]).await?;
    /// let read: Answer = row.deserialize()?;
    /// assert_eq!((read.answer, read.name.as_str()), (42, "ada"));
    /// let (answer, name): (i64, String) = row.deserialize()?;
    /// assert_eq!((answer, name.as_str()), (42, "ada"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::RowType`] when the row does not read as `T`: the message
    /// names the column and what it holds, or the field the row lacks and
    /// the row's columns.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        super::row_de::from_row(self)
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        on_row!(&self.raw, |row, _decode| row.len())
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The column names of a [`Row`], in order (see [`Row::columns`]).
#[derive(Debug, Clone)]
pub struct Columns<'a>(ColumnsOf<'a>);

#[derive(Debug, Clone)]
enum ColumnsOf<'a> {
    #[cfg(feature = "postgres")]
    Postgres(std::slice::Iter<'a, sqlx::postgres::PgColumn>),
    #[cfg(feature = "mysql")]
    MySql(std::slice::Iter<'a, sqlx::mysql::MySqlColumn>),
    #[cfg(feature = "sqlite")]
    Sqlite(std::slice::Iter<'a, sqlx::sqlite::SqliteColumn>),
}

impl<'a> Iterator for Columns<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match &mut self.0 {
            #[cfg(feature = "postgres")]
            ColumnsOf::Postgres(columns) => columns.next().map(|c| c.name()),
            #[cfg(feature = "mysql")]
            ColumnsOf::MySql(columns) => columns.next().map(|c| c.name()),
            #[cfg(feature = "sqlite")]
            ColumnsOf::Sqlite(columns) => columns.next().map(|c| c.name()),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            #[cfg(feature = "postgres")]
            ColumnsOf::Postgres(columns) => columns.size_hint(),
            #[cfg(feature = "mysql")]
            ColumnsOf::MySql(columns) => columns.size_hint(),
            #[cfg(feature = "sqlite")]
            ColumnsOf::Sqlite(columns) => columns.size_hint(),
        }
    }
}

impl ExactSizeIterator for Columns<'_> {}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (i, column) in self.columns().enumerate() {
            match self.value(i) {
                Ok(value) => map.entry(&column, &value),
                Err(e) => map.entry(&column, &e.to_string()),
            };
        }
        map.finish()
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn unsupported(column: &str, type_name: &str, cast: &str) -> Error {
    Error::Decode {
        column: column.to_owned(),
        problem: format!(
            "has SQL type {type_name}, which dbroute's Row cannot read; cast it in the query ({cast}) or use the typed pool"
        ),
    }
}

/// A column of a type that `Value` reads only with a crate feature this
/// build lacks.
// Unused in a build that has every value feature, or no backend that
// needs one.
#[allow(dead_code)]
pub(crate) fn needs_feature(column: &str, type_name: &str, feature: &str, cast: &str) -> Error {
    Error::Decode {
        column: column.to_owned(),
        problem: format!(
            "has SQL type {type_name}, which dbroute reads only with its `{feature}` feature: enable it \
             (dbroute = {{ features = [\"{feature}\"] }}), or cast the column in the query ({cast})"
        ),
    }
}

/// The driver's value of the column at `position`.
fn raw_value<'r, R>(row: &'r R, position: usize, column: &str) -> Result<<R::Database as sqlx::Database>::ValueRef<'r>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get_raw(position).map_err(|e| decode_error(column, e.into()))
}

fn decode_error(column: &str, e: BoxDynError) -> Error {
    Error::Decode {
        column: column.to_owned(),
        problem: e.to_string(),
    }
}

#[cfg(feature = "postgres")]
fn pg_value(row: &sqlx::postgres::PgRow, position: usize, column: &sqlx::postgres::PgColumn) -> Result<Value> {
    let raw = raw_value(row, position, column.name())?;
    let column = column.name();
    if raw.is_null() {
        return Ok(Value::Null);
    }
    // The type, owned so that `raw` can be decoded: a copy of a small enum
    // (where copying its name into a `String` cost an allocation per value).
    let type_info = raw.type_info().into_owned();
    let decoded: std::result::Result<Value, BoxDynError> = match type_info.name() {
        "BOOL" => <bool as Decode<Postgres>>::decode(raw).map(Value::Bool),
        "INT2" => <i16 as Decode<Postgres>>::decode(raw).map(Value::from),
        "INT4" => <i32 as Decode<Postgres>>::decode(raw).map(Value::from),
        "INT8" => <i64 as Decode<Postgres>>::decode(raw).map(Value::from),
        "OID" => <Oid as Decode<Postgres>>::decode(raw).map(|o| Value::from(o.0)),
        "FLOAT4" => <f32 as Decode<Postgres>>::decode(raw).map(Value::from),
        "FLOAT8" => <f64 as Decode<Postgres>>::decode(raw).map(Value::from),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" | "UNKNOWN" | "JSON" => {
            <String as Decode<Postgres>>::decode(raw).map(Value::Text)
        }
        "JSONB" => {
            // Binary JSONB is a version byte, then the JSON text.
            <&[u8] as Decode<Postgres>>::decode(raw).and_then(|bytes| {
                std::str::from_utf8(bytes.get(1..).unwrap_or_default())
                    .map(|s| Value::Text(s.to_owned()))
                    .map_err(Into::into)
            })
        }
        "BYTEA" => <Vec<u8> as Decode<Postgres>>::decode(raw).map(Value::Bytes),
        #[cfg(feature = "chrono")]
        "TIMESTAMPTZ" => <chrono::DateTime<chrono::Utc> as Decode<Postgres>>::decode(raw).map(Value::TimestampTz),
        #[cfg(feature = "chrono")]
        "TIMESTAMP" => <chrono::NaiveDateTime as Decode<Postgres>>::decode(raw).map(Value::Timestamp),
        #[cfg(feature = "chrono")]
        "DATE" => <chrono::NaiveDate as Decode<Postgres>>::decode(raw).map(Value::Date),
        #[cfg(feature = "chrono")]
        "TIME" => <chrono::NaiveTime as Decode<Postgres>>::decode(raw).map(Value::Time),
        #[cfg(not(feature = "chrono"))]
        other @ ("TIMESTAMPTZ" | "TIMESTAMP" | "DATE" | "TIME") => {
            return Err(needs_feature(column, other, "chrono", "x::text"));
        }
        #[cfg(feature = "uuid")]
        "UUID" => <uuid::Uuid as Decode<Postgres>>::decode(raw).map(Value::Uuid),
        #[cfg(not(feature = "uuid"))]
        "UUID" => return Err(needs_feature(column, "UUID", "uuid", "x::text")),
        #[cfg(feature = "rust_decimal")]
        "NUMERIC" => <rust_decimal::Decimal as Decode<Postgres>>::decode(raw).map(Value::Decimal),
        #[cfg(not(feature = "rust_decimal"))]
        "NUMERIC" => return Err(needs_feature(column, "NUMERIC", "rust_decimal", "x::text")),
        other => return Err(unsupported(column, other, "x::text")),
    };
    decoded.map_err(|e| decode_error(column, e))
}

#[cfg(feature = "mysql")]
fn mysql_value(row: &sqlx::mysql::MySqlRow, position: usize, column: &sqlx::mysql::MySqlColumn) -> Result<Value> {
    let raw = raw_value(row, position, column.name())?;
    let column = column.name();
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info().into_owned();
    let decoded: std::result::Result<Value, BoxDynError> = match type_info.name() {
        "BOOLEAN" => <bool as Decode<MySql>>::decode(raw).map(Value::Bool),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
            <i64 as Decode<MySql>>::decode(raw).map(Value::from)
        }
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "BIGINT UNSIGNED" => {
            <u64 as Decode<MySql>>::decode(raw)
                .map(|wide| i64::try_from(wide).map_or_else(|_| Value::Text(wide.to_string()), Value::Int))
        }
        "FLOAT" => <f32 as Decode<MySql>>::decode(raw).map(Value::from),
        "DOUBLE" => <f64 as Decode<MySql>>::decode(raw).map(Value::from),
        #[cfg(feature = "rust_decimal")]
        "DECIMAL" => <rust_decimal::Decimal as Decode<MySql>>::decode(raw).map(Value::Decimal),
        // Sessions are in UTC (sqlx sets `time_zone = '+00:00'`): TIMESTAMP
        // is an instant, DATETIME a date and time without zone.
        #[cfg(feature = "chrono")]
        "TIMESTAMP" => <chrono::DateTime<chrono::Utc> as Decode<MySql>>::decode(raw).map(Value::TimestampTz),
        #[cfg(feature = "chrono")]
        "DATETIME" => <chrono::NaiveDateTime as Decode<MySql>>::decode(raw).map(Value::Timestamp),
        #[cfg(feature = "chrono")]
        "DATE" => <chrono::NaiveDate as Decode<MySql>>::decode(raw).map(Value::Date),
        #[cfg(feature = "chrono")]
        "TIME" => <chrono::NaiveTime as Decode<MySql>>::decode(raw).map(Value::Time),
        #[cfg(not(feature = "chrono"))]
        other @ ("TIMESTAMP" | "DATETIME" | "DATE" | "TIME") => {
            return Err(needs_feature(column, other, "chrono", "CAST(x AS CHAR)"));
        }
        // The binary protocol sends DECIMAL as text: without the
        // `rust_decimal` feature, it reads as text.
        #[cfg(not(feature = "rust_decimal"))]
        "DECIMAL" => mysql_text(raw),
        "VARCHAR" | "CHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" | "JSON" => {
            mysql_text(raw)
        }
        "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY" | "BIT" => {
            <Vec<u8> as Decode<MySql>>::decode(raw).map(Value::Bytes)
        }
        "NULL" => Ok(Value::Null),
        other => return Err(unsupported(column, other, "CAST(x AS CHAR)")),
    };
    decoded.map_err(|e| decode_error(column, e))
}

#[cfg(feature = "mysql")]
fn mysql_text(raw: sqlx::mysql::MySqlValueRef<'_>) -> std::result::Result<Value, BoxDynError> {
    <&[u8] as Decode<MySql>>::decode(raw)
        .and_then(|b| std::str::from_utf8(b).map(str::to_owned).map_err(Into::into))
        .map(Value::Text)
}

#[cfg(feature = "sqlite")]
fn sqlite_value(row: &sqlx::sqlite::SqliteRow, position: usize, column: &sqlx::sqlite::SqliteColumn) -> Result<Value> {
    let raw = raw_value(row, position, column.name())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    // A column declared DATETIME/TIMESTAMP, DATE or TIME holds text (or a
    // number) that reads as its time type when it parses as one (text
    // without an offset is UTC, as SQLite's date functions write it);
    // anything else keeps its storage class.
    #[cfg(feature = "chrono")]
    if let Some(value) = super::value_types::sqlite_time(column.type_info().name(), || {
        raw_value(row, position, column.name()).ok()
    }) {
        return Ok(value);
    }
    let column = column.name();
    // SQLite types values, not columns: read by the value's storage class.
    let type_info = raw.type_info().into_owned();
    let decoded: std::result::Result<Value, BoxDynError> = match type_info.name() {
        "INTEGER" | "BOOLEAN" | "INT8" => <i64 as Decode<Sqlite>>::decode(raw).map(Value::Int),
        "REAL" => <f64 as Decode<Sqlite>>::decode(raw).map(Value::Float),
        "BLOB" => <Vec<u8> as Decode<Sqlite>>::decode(raw).map(Value::Bytes),
        _ => <String as Decode<Sqlite>>::decode(raw).map(Value::Text),
    };
    decoded.map_err(|e| decode_error(column, e))
}

// ---- binding parameters ----

/// PostgreSQL's `unknown` pseudo-type: lets the server infer a NULL's type
/// from the statement.
#[cfg(feature = "postgres")]
const PG_UNKNOWN: Oid = Oid(705);

#[cfg(feature = "postgres")]
impl Type<Postgres> for Value {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(PG_UNKNOWN)
    }
    fn compatible(_: &PgTypeInfo) -> bool {
        true
    }
}

impl Value {
    /// About how many bytes the value takes encoded (the arguments buffer
    /// is sized once from it).
    fn encoded_size(&self) -> usize {
        match self {
            Value::Text(s) => s.len() + 4,
            Value::Bytes(b) => b.len() + 4,
            #[cfg(feature = "uuid")]
            Value::Uuid(_) => 40,
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(_) => 40,
            #[cfg(feature = "chrono")]
            Value::Timestamp(_) | Value::TimestampTz(_) => 32,
            _ => 8,
        }
    }
}

#[cfg(feature = "postgres")]
impl Encode<'_, Postgres> for Value {
    fn size_hint(&self) -> usize {
        self.encoded_size()
    }

    fn encode_by_ref(&self, buf: &mut sqlx::postgres::PgArgumentBuffer) -> std::result::Result<IsNull, BoxDynError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(v) => <bool as Encode<Postgres>>::encode_by_ref(v, buf),
            Value::Int(v) => <i64 as Encode<Postgres>>::encode_by_ref(v, buf),
            Value::Float(v) => <f64 as Encode<Postgres>>::encode_by_ref(v, buf),
            Value::Text(v) => <&str as Encode<Postgres>>::encode_by_ref(&v.as_str(), buf),
            Value::Bytes(v) => <&[u8] as Encode<Postgres>>::encode_by_ref(&v.as_slice(), buf),
            #[cfg(feature = "chrono")]
            Value::Timestamp(v) => <chrono::NaiveDateTime as Encode<Postgres>>::encode_by_ref(v, buf),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(v) => <chrono::DateTime<chrono::Utc> as Encode<Postgres>>::encode_by_ref(v, buf),
            #[cfg(feature = "chrono")]
            Value::Date(v) => <chrono::NaiveDate as Encode<Postgres>>::encode_by_ref(v, buf),
            #[cfg(feature = "chrono")]
            Value::Time(v) => <chrono::NaiveTime as Encode<Postgres>>::encode_by_ref(v, buf),
            #[cfg(feature = "uuid")]
            Value::Uuid(v) => <uuid::Uuid as Encode<Postgres>>::encode_by_ref(v, buf),
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(v) => <rust_decimal::Decimal as Encode<Postgres>>::encode_by_ref(v, buf),
        }
    }
    fn produces(&self) -> Option<PgTypeInfo> {
        Some(match self {
            Value::Null => PgTypeInfo::with_oid(PG_UNKNOWN),
            Value::Bool(_) => <bool as Type<Postgres>>::type_info(),
            Value::Int(_) => <i64 as Type<Postgres>>::type_info(),
            Value::Float(_) => <f64 as Type<Postgres>>::type_info(),
            Value::Text(_) => <&str as Type<Postgres>>::type_info(),
            Value::Bytes(_) => <&[u8] as Type<Postgres>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::Timestamp(_) => <chrono::NaiveDateTime as Type<Postgres>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(_) => <chrono::DateTime<chrono::Utc> as Type<Postgres>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::Date(_) => <chrono::NaiveDate as Type<Postgres>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::Time(_) => <chrono::NaiveTime as Type<Postgres>>::type_info(),
            #[cfg(feature = "uuid")]
            Value::Uuid(_) => <uuid::Uuid as Type<Postgres>>::type_info(),
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(_) => <rust_decimal::Decimal as Type<Postgres>>::type_info(),
        })
    }
}

#[cfg(feature = "mysql")]
impl Type<MySql> for Value {
    fn type_info() -> MySqlTypeInfo {
        <&str as Type<MySql>>::type_info()
    }
    fn compatible(_: &MySqlTypeInfo) -> bool {
        true
    }
}

#[cfg(feature = "mysql")]
impl Encode<'_, MySql> for Value {
    fn size_hint(&self) -> usize {
        self.encoded_size()
    }

    fn encode_by_ref(&self, buf: &mut Vec<u8>) -> std::result::Result<IsNull, BoxDynError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(v) => <bool as Encode<MySql>>::encode_by_ref(v, buf),
            Value::Int(v) => <i64 as Encode<MySql>>::encode_by_ref(v, buf),
            Value::Float(v) => <f64 as Encode<MySql>>::encode_by_ref(v, buf),
            Value::Text(v) => <&str as Encode<MySql>>::encode_by_ref(&v.as_str(), buf),
            Value::Bytes(v) => <&[u8] as Encode<MySql>>::encode_by_ref(&v.as_slice(), buf),
            #[cfg(feature = "chrono")]
            Value::Timestamp(v) => <chrono::NaiveDateTime as Encode<MySql>>::encode_by_ref(v, buf),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(v) => <chrono::DateTime<chrono::Utc> as Encode<MySql>>::encode_by_ref(v, buf),
            #[cfg(feature = "chrono")]
            Value::Date(v) => <chrono::NaiveDate as Encode<MySql>>::encode_by_ref(v, buf),
            #[cfg(feature = "chrono")]
            Value::Time(v) => <chrono::NaiveTime as Encode<MySql>>::encode_by_ref(v, buf),
            // Text, for CHAR(36) and MariaDB's UUID columns alike (a
            // BINARY(16) column takes `Value::Bytes(uuid.as_bytes().to_vec())`).
            #[cfg(feature = "uuid")]
            Value::Uuid(v) => {
                let mut text = uuid::Uuid::encode_buffer();
                let text: &str = v.hyphenated().encode_lower(&mut text);
                <&str as Encode<MySql>>::encode_by_ref(&text, buf)
            }
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(v) => <rust_decimal::Decimal as Encode<MySql>>::encode_by_ref(v, buf),
        }
    }
    fn produces(&self) -> Option<MySqlTypeInfo> {
        Some(match self {
            Value::Null | Value::Text(_) => <&str as Type<MySql>>::type_info(),
            Value::Bool(_) => <bool as Type<MySql>>::type_info(),
            Value::Int(_) => <i64 as Type<MySql>>::type_info(),
            Value::Float(_) => <f64 as Type<MySql>>::type_info(),
            Value::Bytes(_) => <&[u8] as Type<MySql>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::Timestamp(_) => <chrono::NaiveDateTime as Type<MySql>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(_) => <chrono::DateTime<chrono::Utc> as Type<MySql>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::Date(_) => <chrono::NaiveDate as Type<MySql>>::type_info(),
            #[cfg(feature = "chrono")]
            Value::Time(_) => <chrono::NaiveTime as Type<MySql>>::type_info(),
            #[cfg(feature = "uuid")]
            Value::Uuid(_) => <&str as Type<MySql>>::type_info(),
            #[cfg(feature = "rust_decimal")]
            Value::Decimal(_) => <rust_decimal::Decimal as Type<MySql>>::type_info(),
        })
    }
}

#[cfg(feature = "sqlite")]
impl Type<Sqlite> for Value {
    fn type_info() -> SqliteTypeInfo {
        <&str as Type<Sqlite>>::type_info()
    }
    fn compatible(_: &SqliteTypeInfo) -> bool {
        true
    }
}

#[cfg(feature = "sqlite")]
impl<'q> Encode<'q, Sqlite> for Value {
    fn size_hint(&self) -> usize {
        self.encoded_size()
    }

    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> std::result::Result<IsNull, BoxDynError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(v) => <bool as Encode<Sqlite>>::encode_by_ref(v, buf),
            Value::Int(v) => <i64 as Encode<Sqlite>>::encode_by_ref(v, buf),
            Value::Float(v) => <f64 as Encode<Sqlite>>::encode_by_ref(v, buf),
            Value::Text(v) => <String as Encode<Sqlite>>::encode_by_ref(v, buf),
            Value::Bytes(v) => <Vec<u8> as Encode<Sqlite>>::encode_by_ref(v, buf),
            // Text, as SQLite's date functions and sqlx write it: an instant
            // as UTC without an offset, so that it compares with
            // `CURRENT_TIMESTAMP`.
            #[cfg(any(feature = "chrono", feature = "uuid", feature = "rust_decimal"))]
            other => <String as Encode<Sqlite>>::encode(super::value_types::sqlite_text(other), buf),
        }
    }
}
