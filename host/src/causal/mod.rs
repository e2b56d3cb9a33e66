//! Read-your-writes and replica failover: the policies, the causal token
//! a service hands its clients, and the scope that carries one back.
//!
//! After a write on a primary (a routed write, or a committed
//! transaction), the engine reads the primary's position (one extra
//! round trip; PostgreSQL: its WAL position; MariaDB: the sequence number
//! of its `@@gtid_binlog_pos` in its GTID domain) and keeps it for the
//! task that wrote. A read the routers send to a replica of that primary,
//! in the same task, goes there only if the replica has replayed past that
//! position: compared with the replica's last known replayed position (an
//! atomic load), else asked (`pg_last_wal_replay_lsn()`,
//! `@@gtid_slave_pos`), else waited for up to [`ReadYourWrites::wait`]
//! (MariaDB: `MASTER_GTID_WAIT`), else the read goes to the replica's own
//! primary. Across tasks and service instances, a [`CausalToken`] carries
//! the position: see [`scope`] and `docs/replicas.md`.

pub(crate) mod positions;
mod token;
pub(crate) mod tracker;

use std::time::Duration;

pub use token::CausalToken;
pub(crate) use token::{Kind, Position};

tokio::task_local! {
    /// The tokens the current task's reads wait for.
    static AFTER: CausalToken;
}

/// Whether reads see earlier writes, and how long they may wait for a
/// replica to replay them. On by default, without waiting: a replica that
/// has not replayed a write is skipped for the read, which goes to its
/// primary.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dbroute::causal::{BadTokens, ReadYourWrites};
///
/// let policy = ReadYourWrites::on().wait(Duration::from_millis(20)).bad_tokens(BadTokens::Ignore);
/// assert!(policy.is_on());
/// assert_eq!(policy.max_wait(), Duration::from_millis(20));
/// assert_eq!(ReadYourWrites::default(), ReadYourWrites::on());
/// assert!(!ReadYourWrites::off().is_on());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadYourWrites {
    on: bool,
    wait: Duration,
    bad_tokens: BadTokens,
}

impl Default for ReadYourWrites {
    fn default() -> Self {
        ReadYourWrites::on()
    }
}

impl ReadYourWrites {
    /// Writes are followed and tokens honoured; a replica behind a read's
    /// position is skipped at once.
    pub const fn on() -> Self {
        ReadYourWrites {
            on: true,
            wait: Duration::ZERO,
            bad_tokens: BadTokens::Refuse,
        }
    }

    /// Nothing is followed: no extra round trip after a write, reads go
    /// where the routers send them, [`Engine::causal_token`](crate::Engine::causal_token)
    /// is `None` and tokens are not checked.
    pub const fn off() -> Self {
        ReadYourWrites {
            on: false,
            wait: Duration::ZERO,
            bad_tokens: BadTokens::Refuse,
        }
    }

    /// Waits up to `up_to` for a replica to replay a read's position
    /// (asking it every few milliseconds) before sending the read to the
    /// replica's primary. `Duration::ZERO` (the default): no waiting.
    pub const fn wait(mut self, up_to: Duration) -> Self {
        self.wait = up_to;
        self
    }

    /// What a token that is not valid for this engine does (see
    /// [`BadTokens`]).
    pub const fn bad_tokens(mut self, policy: BadTokens) -> Self {
        self.bad_tokens = policy;
        self
    }

    /// Whether writes are followed and tokens honoured.
    pub const fn is_on(&self) -> bool {
        self.on
    }

    /// How long a read may wait for a replica.
    pub const fn max_wait(&self) -> Duration {
        self.wait
    }

    /// What a bad token does.
    pub const fn bad_token_policy(&self) -> BadTokens {
        self.bad_tokens
    }
}

/// What a causal token that is not valid for this engine does: one that is
/// malformed, cut short, altered, of an unknown version, of another
/// database cluster (another system identifier, another MariaDB server id
/// or domain), or naming a position its primary has not reached. Whatever
/// the policy, such a token never sends a write anywhere: writes go where
/// the routers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadTokens {
    /// [`Error::CausalToken`](crate::Error::CausalToken), saying what is
    /// wrong (the default).
    #[default]
    Refuse,
    /// Logged (a warning) and ignored: the read runs as if no token had
    /// been given.
    Ignore,
}

/// What a read the routers send to a replica does when the replica is
/// unavailable: unhealthy (its last statement or check found it
/// unreachable), lagging past its limit
/// ([`EngineBuilder::replica_max_lag`](crate::EngineBuilder::replica_max_lag)),
/// or found unreachable by the read itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaFailover {
    /// The read runs on the replica anyway (and fails if it cannot be
    /// reached), except that a replica past its lag limit is
    /// [`Error::ReplicaUnavailable`](crate::Error::ReplicaUnavailable). The
    /// default, as for [`ReadFailure`](crate::ReadFailure).
    #[default]
    Fail,
    /// The read goes to the replica's own primary (the connection it was
    /// declared a replica of), never anywhere else; the replica is used
    /// again as soon as a measurement or health check finds it back.
    Primary,
}

/// Runs `future` with `token`'s positions to wait for: every read inside
/// (in this task) that the routers send to a replica goes there only once
/// the replica has replayed past the token's position in its cluster.
/// Scopes nest, the higher position winning; `None` adds nothing. Tasks
/// spawned inside do not inherit it.
///
/// Get the token from the client's request with
/// [`Engine::accept_token`](crate::Engine::accept_token).
///
/// # Examples
///
/// ```no_run
/// # #![allow(dead_code)]
/// use dbroute::{Engine, causal};
///
/// // A request handler: the client sent back the token of its last write.
/// async fn handle(engine: &Engine, header: Option<&str>) -> dbroute::Result<()> {
///     let token = match header {
///         Some(text) => engine.accept_token(text).await?,
///         None => None,
///     };
///     causal::scope(token, async {
///         // Reads here see the client's write, on whichever instance it
///         // was made.
///     })
///     .await;
///     Ok(())
/// }
/// # fn main() {}
/// ```
pub async fn scope<F: Future>(token: Option<CausalToken>, future: F) -> F::Output {
    match token {
        None => future.await,
        Some(token) => {
            let merged = match carried() {
                Some(outer) => outer.merge(&token),
                None => token,
            };
            AFTER.scope(merged, future).await
        }
    }
}

/// The token of the scopes the current task is inside, merged.
pub(crate) fn carried() -> Option<CausalToken> {
    AFTER.try_with(Clone::clone).ok()
}

/// `f` of the token the current task's scopes carry (`None`: no token).
#[inline]
pub(crate) fn with_carried<R>(f: impl FnOnce(&CausalToken) -> R) -> Option<R> {
    AFTER.try_with(f).ok()
}
