//! How status types serialize what serde has no plain form for: durations
//! as milliseconds (a float), times as milliseconds since the Unix epoch,
//! connection names and router identities as strings.

use std::time::{Duration, SystemTime};

use serde::Serializer;

/// `Some(duration)` as milliseconds, `None` as `null`.
pub(crate) fn optional_millis<S: Serializer>(duration: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => s.serialize_f64(d.as_secs_f64() * 1000.0),
        None => s.serialize_none(),
    }
}

/// A time as milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_millis<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    s.serialize_u64(since.as_millis() as u64)
}
