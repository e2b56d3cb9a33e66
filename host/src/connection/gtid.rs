//! MariaDB's global transaction IDs (`domain-server-sequence`): reading a
//! server's GTID positions, and the sequence number a position list holds
//! for one replication domain. With `gtid_strict_mode`, sequence numbers
//! grow strictly within a domain, so that in one domain a replica has
//! applied a transaction once its `@@gtid_slave_pos` reaches its sequence
//! number: what lag measurement and read-your-writes compare.

use super::handle::Connection;
use crate::error::{Error, Result};

/// The sequence number `position` (a GTID position list, as
/// `@@gtid_binlog_pos` gives it: `0-1-42,1-2-7`, maybe empty) holds for
/// `domain`: 0 when it names no GTID of that domain. `None`: not a GTID
/// position list.
pub(crate) fn sequence_in(position: &str, domain: u32) -> Option<u64> {
    let mut found = 0;
    for gtid in position.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let (d, _, sequence) = parse(gtid)?;
        if d == domain {
            found = found.max(sequence);
        }
    }
    Some(found)
}

/// One GTID, `domain-server-sequence`.
pub(crate) fn parse(gtid: &str) -> Option<(u32, u32, u64)> {
    let mut parts = gtid.trim().splitn(3, '-');
    let domain = parts.next()?.parse().ok()?;
    let server = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    Some((domain, server, sequence))
}

/// Whether the error is the server not knowing a MariaDB variable: a
/// MySQL server (no `@@gtid_binlog_pos`).
pub(crate) fn not_mariadb(error: &Error) -> bool {
    matches!(
        error,
        Error::Query { source: sqlx::Error::Database(db), .. } if db.message().contains("Unknown system variable")
    )
}

fn position_list(row: &crate::Row, column: &str, on: &Connection) -> Result<String> {
    let text: Option<String> = row.try_get(column)?;
    text.ok_or_else(|| Error::Config {
        origin: format!("connection `{}`", on.name()),
        message: format!("the server reports no {column}; is it MariaDB with GTIDs (10.0.2 or later)?"),
    })
}

fn sequence(list: &str, domain: u32, on: &Connection) -> Result<u64> {
    sequence_in(list, domain).ok_or_else(|| Error::Config {
        origin: format!("connection `{}`", on.name()),
        message: format!("the server reports the GTID position {list:?}, not domain-server-sequence"),
    })
}

/// The server's replication domain (`@@gtid_domain_id`) and the sequence
/// number its binary log holds for it (`@@gtid_binlog_pos`): on a primary,
/// at or past every transaction committed before. `None` on MySQL.
pub(crate) async fn binlog_position(on: &Connection) -> Result<Option<(u32, u64)>> {
    let row = match on
        .fetch_one(
            "SELECT CAST(@@gtid_binlog_pos AS CHAR) AS gtid_binlog_pos, \
             CAST(@@gtid_domain_id AS SIGNED) AS domain",
            &[],
        )
        .await
    {
        Ok(row) => row,
        Err(error) if not_mariadb(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    let domain: i64 = row.try_get("domain")?;
    let domain = u32::try_from(domain).unwrap_or_default();
    let list = position_list(&row, "gtid_binlog_pos", on)?;
    Ok(Some((domain, sequence(&list, domain, on)?)))
}

/// The sequence number of `domain` a replica has applied
/// (`@@gtid_slave_pos`). `None` on MySQL.
pub(crate) async fn applied(on: &Connection, domain: u32) -> Result<Option<u64>> {
    let row = match on
        .fetch_one("SELECT CAST(@@gtid_slave_pos AS CHAR) AS gtid_slave_pos", &[])
        .await
    {
        Ok(row) => row,
        Err(error) if not_mariadb(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    let list = position_list(&row, "gtid_slave_pos", on)?;
    Ok(Some(sequence(&list, domain, on)?))
}

/// A primary's identity for causal tokens, `@@gtid_domain_id` in the high
/// 32 bits and `@@server_id` in the low ones, with the sequence number of
/// its binary log in that domain.
pub(crate) async fn identity_and_position(on: &Connection) -> Result<(u64, u64)> {
    let row = on
        .fetch_one(
            "SELECT CAST(@@gtid_binlog_pos AS CHAR) AS gtid_binlog_pos, \
             CAST(@@gtid_domain_id AS SIGNED) AS domain, CAST(@@server_id AS SIGNED) AS server_id",
            &[],
        )
        .await?;
    let domain: i64 = row.try_get("domain")?;
    let server: i64 = row.try_get("server_id")?;
    let (domain, server) = (
        u32::try_from(domain).unwrap_or_default(),
        u32::try_from(server).unwrap_or_default(),
    );
    let list = position_list(&row, "gtid_binlog_pos", on)?;
    Ok((identity(domain, server), sequence(&list, domain, on)?))
}

/// Waits, on a replica, up to `timeout` for it to apply `gtid`
/// (`MASTER_GTID_WAIT`): whether it did.
pub(crate) async fn wait_for(on: &Connection, gtid: &str, timeout: std::time::Duration) -> Result<bool> {
    let row = on
        .fetch_one(
            "SELECT CAST(MASTER_GTID_WAIT(?, ?) AS SIGNED) AS waited",
            &[gtid.into(), super::value::Value::Float(timeout.as_secs_f64())],
        )
        .await?;
    let waited: Option<i64> = row.try_get("waited")?;
    Ok(waited == Some(0))
}

/// A MariaDB primary's identity in a token: its domain and server id.
pub(crate) const fn identity(domain: u32, server_id: u32) -> u64 {
    ((domain as u64) << 32) | server_id as u64
}

/// The domain of an [`identity`].
pub(crate) const fn domain_of(identity: u64) -> u32 {
    (identity >> 32) as u32
}

/// The server id of an [`identity`].
pub(crate) const fn server_of(identity: u64) -> u32 {
    identity as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_domain_of_a_position_list() {
        assert_eq!(sequence_in("0-1-42", 0), Some(42));
        assert_eq!(sequence_in("0-1-42,1-2-7", 1), Some(7));
        assert_eq!(sequence_in(" 0-1-42 , 1-2-7 ", 0), Some(42));
        assert_eq!(sequence_in("1-2-7", 0), Some(0));
        assert_eq!(sequence_in("", 0), Some(0));
        assert_eq!(sequence_in("0-1", 0), None);
        assert_eq!(sequence_in("0-1-x", 0), None);
        assert_eq!(sequence_in("a-b-c", 0), None);
        assert_eq!(parse("3-4-5"), Some((3, 4, 5)));
        let id = identity(3, 4_000_000_000);
        assert_eq!((domain_of(id), server_of(id)), (3, 4_000_000_000));
    }
}
