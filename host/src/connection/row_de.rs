//! Typed reads: a [`Row`] read as any `T: DeserializeOwned` through serde.
//!
//! A struct's fields are the row's columns by name (serde's attributes
//! apply: `rename`, `default`, `flatten`…; extra columns are ignored); a
//! tuple's are the columns in order; a row of one column reads as a plain
//! value (`i64`, `String`, …). Each cell is converted as [`FromValue`]
//! converts it (an `INT4` reads as `i64`, `0`/`1` as `bool`, an integral
//! decimal as an integer), so one type reads the rows of every backend a
//! router may pick. A text cell read as a struct, map or sequence is parsed
//! as JSON (a `JSON`/`JSONB` column into a typed field).
//!
//! [`FromValue`]: super::value::FromValue

use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::value::{Columns, FromValue, Row, Value};
use crate::error::{Error, Result};

/// Reads `row` as `T`.
pub(crate) fn from_row<T: DeserializeOwned>(row: &Row) -> Result<T> {
    T::deserialize(RowDeserializer { row }).map_err(|e| e.into_error(std::any::type_name::<T>(), row))
}

/// Why a row did not read: the column, when one cell did not fit, and
/// what was wrong.
#[derive(Debug)]
pub(crate) struct DeError {
    column: Option<String>,
    message: String,
}

impl DeError {
    fn at(mut self, column: &str, holds: &str) -> Self {
        if self.column.is_none() {
            self.column = Some(column.to_owned());
            if holds == "NULL" && !self.message.contains("Option") {
                self.message = format!("{}; it is NULL: read it into an Option", self.message);
            } else if !holds.is_empty() && holds != "NULL" {
                self.message = format!("{} (it holds {holds})", self.message);
            }
        }
        self
    }

    fn into_error(self, target: &'static str, row: &Row) -> Error {
        let problem = match self.column {
            Some(column) => format!("column {column}: {}", self.message),
            None => format!(
                "{}; the row's columns are: {}",
                self.message,
                row.columns().collect::<Vec<_>>().join(", ")
            ),
        };
        Error::RowType { target, problem }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            column: None,
            message: msg.to_string(),
        }
    }
}

/// The cell at `position`, decoded, or why not.
fn cell(row: &Row, position: usize) -> std::result::Result<Value, DeError> {
    row.value(position).map_err(|e| match e {
        Error::Decode { column, problem } => DeError {
            column: Some(column),
            message: problem,
        },
        other => DeError {
            column: None,
            message: other.to_string(),
        },
    })
}

/// A whole row: a map of its columns, a sequence of its cells, or its one
/// cell.
struct RowDeserializer<'a> {
    row: &'a Row,
}

impl<'a> RowDeserializer<'a> {
    /// The row's only cell, for a row read as a plain value.
    fn single(&self) -> std::result::Result<(ValueDeserializer, &'a str), DeError> {
        let mut columns = self.row.columns();
        match (columns.next(), columns.next()) {
            (Some(name), None) => Ok((ValueDeserializer(cell(self.row, 0)?), name)),
            _ => Err(de::Error::custom(format_args!(
                "a row of {} columns does not read as a single value: read it as a struct or a tuple",
                self.row.len()
            ))),
        }
    }
}

/// Plain values read the only cell of a one-column row.
macro_rules! single_cell {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
            let (value, column) = self.single()?;
            let holds = value.0.kind();
            value.$method(visitor).map_err(|e| e.at(column, holds))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for RowDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_map(RowMap {
            row: self.row,
            columns: self.row.columns(),
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_seq(RowSeq {
            row: self.row,
            columns: self.row.columns(),
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        if self.row.len() == 1 {
            let (value, column) = self.single()?;
            let holds = value.0.kind();
            value.deserialize_option(visitor).map_err(|e| e.at(column, holds))
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        let (value, column) = self.single()?;
        let holds = value.0.kind();
        value
            .deserialize_enum(name, variants, visitor)
            .map_err(|e| e.at(column, holds))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    single_cell! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_identifier
    }
}

/// The row as a map: column name, then cell.
struct RowMap<'a> {
    row: &'a Row,
    columns: Columns<'a>,
    next: usize,
}

impl<'de> MapAccess<'de> for RowMap<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> std::result::Result<Option<K::Value>, DeError> {
        match self.columns.next() {
            Some(name) => seed.deserialize(BorrowedStrDeserializer::new(name)).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> std::result::Result<V::Value, DeError> {
        let position = self.next;
        self.next += 1;
        read_cell(self.row, position, seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.columns.len())
    }
}

/// The row as a sequence of cells.
struct RowSeq<'a> {
    row: &'a Row,
    columns: Columns<'a>,
    next: usize,
}

impl<'de> SeqAccess<'de> for RowSeq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> std::result::Result<Option<T::Value>, DeError> {
        if self.columns.next().is_none() {
            return Ok(None);
        }
        let position = self.next;
        self.next += 1;
        read_cell(self.row, position, seed).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.columns.len())
    }
}

/// The cell at `position` read by `seed`; an error names its column and
/// what it holds.
fn read_cell<'de, S: DeserializeSeed<'de>>(
    row: &Row,
    position: usize,
    seed: S,
) -> std::result::Result<S::Value, DeError> {
    let value = cell(row, position)?;
    let holds = value.kind();
    seed.deserialize(ValueDeserializer(value)).map_err(|e| {
        let column = row.columns().nth(position).unwrap_or_default();
        e.at(column, holds)
    })
}

/// One cell.
struct ValueDeserializer(Value);

/// The conversion of a cell to a number or boolean, as [`FromValue`] does
/// it; NULL only into an `Option`.
fn convert<T: FromValue>(value: Value) -> std::result::Result<T, DeError> {
    if value == Value::Null {
        return Err(de::Error::custom("is NULL: read it into an Option"));
    }
    T::from_owned(value).map_err(de::Error::custom)
}

/// Parses a text cell as JSON, for a struct, map or sequence.
fn json<'de, V: Visitor<'de>>(text: &str, visitor: V) -> std::result::Result<V::Value, DeError> {
    use serde::Deserializer as _;
    let not_json = |e: serde_json::Error| de::Error::custom(format_args!("its text is not the JSON expected: {e}"));
    serde_json::from_str::<serde_json::Value>(text)
        .map_err(not_json)?
        .deserialize_any(visitor)
        .map_err(not_json)
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Text(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            // Times, UUIDs and decimals as their text, which their own
            // `Deserialize` implementations parse.
            #[allow(unreachable_patterns)]
            other => visitor.visit_string(super::value_types::as_text(&other).unwrap_or_default()),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_bool(convert(self.0)?)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_i64(convert(self.0)?)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_i64(convert(self.0)?)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_i64(convert(self.0)?)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_i64(convert(self.0)?)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_u64(convert(self.0)?)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_u64(convert(self.0)?)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_u64(convert(self.0)?)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_u64(convert(self.0)?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_f64(convert(self.0)?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_f64(convert(self.0)?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            // `Vec<u8>` reads bytes as a sequence.
            Value::Bytes(bytes) => visitor.visit_seq(SeqDeserializer::new(bytes.into_iter())),
            Value::Text(text) => json(&text, visitor),
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            Value::Text(text) => json(&text, visitor),
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            // A unit variant stored as its name.
            Value::Text(text) => visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(text)),
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        match self.0 {
            // Text in a binary column (MariaDB sends its UUID type so), for
            // a type that reads text; 16 bytes stay bytes (a binary UUID).
            Value::Bytes(bytes) if bytes.len() != 16 => match String::from_utf8(bytes) {
                Ok(text) => visitor.visit_string(text),
                Err(e) => visitor.visit_byte_buf(e.into_bytes()),
            },
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf identifier
    }
}
