//! Reading positions and cluster identities (PostgreSQL: WAL positions and
//! system identifiers; MariaDB: GTID sequence numbers, and the primary's
//! domain and server id), and what happens around a write on a cluster's
//! primary: failing fast when it is known down, and keeping the position
//! of the write once it committed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::tracker::{CausalRole, Cluster};
use crate::connection::gtid;
use crate::connection::handle::Connection;
use crate::connection::pool::connect_error;
use crate::connection::registry::ConnectionEntry;
use crate::connection::replication::parse_lsn;
use crate::connection::stats::Health;
use crate::connection::url::Backend;
use crate::error::{Error, Result};

/// How long a probe of a primary known to be down may take.
const PROBE: Duration = Duration::from_secs(2);

fn lsn_of(row: &crate::Row, column: &str, on: &Connection) -> Result<u64> {
    let text: Option<String> = row.try_get(column)?;
    text.as_deref().and_then(parse_lsn).ok_or_else(|| Error::Config {
        origin: format!("connection `{}`", on.name()),
        message: format!("the server reports no WAL position ({text:?}); is it PostgreSQL, and the right role?"),
    })
}

/// The primary's current position, and the cluster's identity when
/// `with_system_id` (MariaDB: always). PostgreSQL: `pg_current_wal_lsn()`
/// (with `synchronous_commit` on, at or past the end of every transaction
/// committed before). MariaDB: the sequence number of `@@gtid_binlog_pos`
/// in the primary's `@@gtid_domain_id` (at or past every transaction
/// committed before: the binary log is written before a commit returns).
pub(crate) async fn current(
    primary: &Connection,
    cluster: &Cluster,
    with_system_id: bool,
) -> Result<(u64, Option<u64>)> {
    if cluster.backend != Backend::Postgres {
        let (id, sequence) = gtid::identity_and_position(primary).await?;
        return Ok((sequence, Some(id)));
    }
    if with_system_id {
        let row = primary
            .fetch_one(
                "SELECT pg_current_wal_lsn()::text AS lsn, system_identifier AS id FROM pg_control_system()",
                &[],
            )
            .await?;
        let id: i64 = row.try_get("id")?;
        Ok((lsn_of(&row, "lsn", primary)?, Some(id as u64)))
    } else {
        let row = primary
            .fetch_one("SELECT pg_current_wal_lsn()::text AS lsn", &[])
            .await?;
        Ok((lsn_of(&row, "lsn", primary)?, None))
    }
}

/// The position a replica has replayed: PostgreSQL's
/// `pg_last_wal_replay_lsn()`, MariaDB's `@@gtid_slave_pos` in the
/// cluster's domain.
pub(crate) async fn replayed(replica: &Connection, cluster: &Cluster) -> Result<u64> {
    if cluster.backend != Backend::Postgres {
        let domain = cluster.system_id.get().map_or(0, |id| gtid::domain_of(*id));
        return gtid::applied(replica, domain).await?.ok_or_else(|| Error::Config {
            origin: format!("connection `{}`", replica.name()),
            message: "the server has no @@gtid_slave_pos: read-your-writes on MySQL/MariaDB needs MariaDB's GTIDs; \
                      turn read-your-writes off for this engine"
                .to_owned(),
        });
    }
    let row = replica
        .fetch_one("SELECT pg_last_wal_replay_lsn()::text AS lsn", &[])
        .await?;
    lsn_of(&row, "lsn", replica)
}

/// A cluster's identity, asked of `on`: PostgreSQL's system identifier
/// (the same on a primary and its replicas); MariaDB's domain and server
/// id (the primary's only: ask nothing else).
pub(crate) async fn system_id(on: &Connection, cluster: &Cluster) -> Result<u64> {
    if cluster.backend != Backend::Postgres {
        return Ok(gtid::identity_and_position(on).await?.0);
    }
    let row = on
        .fetch_one("SELECT system_identifier AS id FROM pg_control_system()", &[])
        .await?;
    let id: i64 = row.try_get("id")?;
    Ok(id as u64)
}

/// After a write committed on `entry` (an autocommit statement, or a
/// transaction's commit): when it is a cluster's primary whose writes are
/// followed, reads its position (one round trip; the cluster's identity
/// too, the first time, and on MariaDB each time, in the same statement)
/// and keeps it for the current task. Never fails: the write is done; a
/// position that cannot be read is logged and counted, and that write is
/// not waited for.
///
/// A write on any other connection returns at once, allocating nothing:
/// only the round trip's future is boxed (kept out of every caller's).
pub(crate) async fn after_write(entry: &Arc<ConnectionEntry>) {
    let Some(CausalRole::Primary(cluster)) = entry.causal() else {
        return;
    };
    if !cluster.tracks_writes || cluster.no_gtids.load(Ordering::Relaxed) {
        return;
    }
    Box::pin(read_position(entry, cluster)).await;
}

/// [`after_write`]'s round trip, for a primary whose writes are followed.
async fn read_position(entry: &Arc<ConnectionEntry>, cluster: &Cluster) {
    let primary = Connection::new(entry.clone(), None);
    match current(&primary, cluster, !cluster.system_id.initialized()).await {
        // A MariaDB primary without a binary log: no GTID to wait for.
        Ok((0, _)) => lost(
            cluster,
            &Error::Config {
                origin: format!("connection `{}`", cluster.primary),
                message: "its @@gtid_binlog_pos is empty: the primary of a replica needs a binary log (--log-bin)"
                    .to_owned(),
            },
        ),
        Ok((lsn, id)) => {
            if let Some(id) = id {
                let _ = cluster.system_id.set(id);
            }
            cluster.record_write(lsn);
            cluster.counters.writes_tracked.increment();
        }
        Err(error) if gtid::not_mariadb(&error) => {
            cluster.counters.positions_lost.increment();
            if !cluster.no_gtids.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    connection = %cluster.primary,
                    "the primary has no MariaDB GTIDs (a MySQL server?): its writes are not followed, \
                     and reads on its replicas may not see them; turn read-your-writes off for this engine"
                );
            }
        }
        Err(error) => lost(cluster, &error),
    }
}

fn lost(cluster: &Cluster, error: &Error) {
    cluster.counters.positions_lost.increment();
    tracing::warn!(
        connection = %cluster.primary,
        "a write committed, but its position could not be read: reads may not see it on a replica: {error}"
    );
}

/// Before a write on `entry`: when it is a cluster's primary known to be
/// down (unhealthy: its last statement or check could not reach it), one
/// direct connection attempt
/// (bounded) instead of the pool's retries until its acquire timeout, so
/// that the write fails fast with the reason, naming the connection. The
/// write is never sent anywhere else.
pub(crate) async fn fail_fast(entry: &ConnectionEntry) -> Result<()> {
    if !matches!(entry.causal(), Some(CausalRole::Primary(_))) || entry.stats().health() != Health::Unhealthy {
        return Ok(());
    }
    let probe = entry.settings().get_acquire_timeout().min(PROBE);
    let error = match tokio::time::timeout(probe, Box::pin(entry.pool().connect_once())).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(source)) => connect_error(
            entry.name(),
            entry.url(),
            entry.pool().missing_database(&source),
            source,
        ),
        Err(_) => Error::PoolTimedOut {
            connection: entry.name().to_string(),
            timeout: probe,
        },
    };
    entry.stats().record_error(&error);
    Err(error)
}
