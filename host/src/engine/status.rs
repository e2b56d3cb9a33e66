//! What the engine reports: connection status and health, replicas' lag,
//! and decision counts.

use std::time::Duration;

use crate::connection::handle::Connection;
use crate::connection::replication::{self, ReplicaLag};
use crate::connection::stats::ConnectionStatus;
use crate::error::Error;
use crate::name::ConnectionName;
use crate::route_stats::{RouteCount, RouteStats};

use super::Engine;

/// How many decisions chose one connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecisionCount {
    /// The connection.
    pub connection: ConnectionName,
    /// Reads routed to it.
    pub reads: u64,
    /// Writes routed to it.
    pub writes: u64,
}

impl Engine {
    /// A snapshot of every connection: pool, statements, latency, errors,
    /// health, decisions, role and (for a replica) its last measured lag,
    /// provisioning. After the registered connections
    /// (the default first), the connections the factory made whose
    /// [provisioning hook](crate::ConnectionFactory::provision) failed
    /// (unregistered: [`ProvisionState::Failed`](crate::stats::ProvisionState::Failed), unhealthy, the hook's
    /// message as last error), until the factory makes them again.
    pub fn status(&self) -> Vec<ConnectionStatus> {
        let registry = self.inner.registry.snapshot();
        let default = registry.default_entry().name();
        let mut status: Vec<ConnectionStatus> = registry
            .names()
            .into_iter()
            .filter_map(|name| registry.get(&name).cloned())
            .map(|entry| ConnectionStatus::of(&entry, entry.name() == default))
            .collect();
        let failed = self.failed_provisions();
        status.extend(failed.into_iter().filter(|failed| registry.get(&failed.name).is_none()));
        status
    }

    /// Checks every connection now (`SELECT 1`, within `timeout`) and
    /// returns the [`Engine::status`] with the results. A connection whose
    /// provisioning hook has not succeeded yet is not checked (its hook
    /// runs on its first real statement). Routers that read the
    /// connections' state are then told it, if it changed (see
    /// [`Engine::connection_states`]).
    pub async fn check_health(&self, timeout: Duration) -> Vec<ConnectionStatus> {
        let snapshot = self.inner.registry.snapshot_full();
        let checks = snapshot.entries().filter(|entry| entry.is_provisioned()).map(|entry| {
            let connection = Connection::new(entry.clone(), None);
            async move {
                match tokio::time::timeout(timeout, connection.execute("SELECT 1", &[])).await {
                    Ok(Ok(_)) => entry.stats().set_health(true),
                    Ok(Err(_)) => entry.stats().set_health(false),
                    Err(_) => {
                        entry.stats().set_health(false);
                        let timed_out = Error::PoolTimedOut {
                            connection: entry.name().to_string(),
                            timeout,
                        };
                        entry.stats().record_error(&entry.explain(timed_out).await);
                    }
                }
            }
        });
        for check in checks {
            check.await;
        }
        self.state_may_have_changed();
        self.status()
    }

    /// Measures every replica's lag now (each within `timeout`), keeps each
    /// measurement for [`Engine::status`], and returns them, in the order
    /// of [`Engine::status`]. A replica that cannot be measured (its server
    /// or its primary's is down, it is not a replica) is reported with its
    /// [`error`](ReplicaLag::error). Empty when no replica is declared (see
    /// [`EngineBuilder::replica_of`](crate::EngineBuilder::replica_of)).
    ///
    /// Routers that read the connections' state are then told it, if a
    /// measurement changed it (see [`Engine::connection_states`]). The
    /// engine also measures in the background, every second by
    /// default ([`EngineBuilder::replication_check_every`](crate::EngineBuilder::replication_check_every)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use std::time::Duration;
    /// use dbroute::Engine;
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// // No replica declared: nothing to measure.
    /// assert!(engine.measure_replication(Duration::from_secs(1)).await.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn measure_replication(&self, timeout: Duration) -> Vec<ReplicaLag> {
        let registry = self.inner.registry.snapshot_full();
        let mut measured = Vec::new();
        for name in registry.names() {
            let Some(replica) = registry.get(&name) else { continue };
            let Some(primary) = replica.replica_of() else { continue };
            let lag = replication::measure(replica, primary, registry.get(&primary), timeout).await;
            self.observe_replication(replica, &lag);
            replica.stats().set_replication(lag.clone());
            measured.push(lag);
        }
        if !measured.is_empty() {
            self.state_may_have_changed();
        }
        measured
    }

    /// Decisions counted per connection since the engine started.
    pub fn decision_counts(&self) -> Vec<DecisionCount> {
        let registry = self.inner.registry.snapshot();
        registry
            .names()
            .into_iter()
            .filter_map(|name| registry.get(&name).map(|e| (name, e)))
            .map(|(connection, e)| {
                let (reads, writes) = e.decisions();
                DecisionCount {
                    connection,
                    reads,
                    writes,
                }
            })
            .collect()
    }

    /// Decisions counted per route, when the engine was built with
    /// [`EngineBuilder::route_stats`](crate::EngineBuilder::route_stats) (empty otherwise).
    pub fn route_stats(&self) -> Vec<RouteCount> {
        self.inner
            .route_stats
            .as_ref()
            .map(RouteStats::snapshot)
            .unwrap_or_default()
    }

    /// Writes the decisions counted per route (see
    /// [`Engine::route_stats`]) as an operations file for `dbroute diff
    /// --ops`: one JSON object a line for each operation (`op`, `model`,
    /// its `app`, `table` and `tags`, `hints` and `origin`) with its `count` of
    /// decisions, merged over router generations and connections, the most
    /// frequent first. `dbroute diff` then shows how a new router would
    /// route what the service really runs, weighted by how often. Returns
    /// how many lines it wrote (none when route stats are off).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use dbroute::{Engine, Hints, ModelInfo};
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .route_stats(true)
    ///     .build()
    ///     .await?;
    /// let invoice = ModelInfo::new("Invoice").with_app("billing");
    /// let acme = Hints::new().with("tenant", "acme");
    /// engine.db_for_read(&invoice, &acme)?;
    /// engine.db_for_read(&invoice, &acme)?;
    ///
    /// let mut ops = Vec::new();
    /// engine.write_route_operations(&mut ops)?;
    /// assert_eq!(
    ///     String::from_utf8(ops).unwrap(),
    ///     "{\"op\":\"read\",\"model\":\"Invoice\",\"app\":\"billing\",\"hints\":{\"tenant\":\"acme\"},\"count\":2}\n"
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_route_operations(&self, out: impl std::io::Write) -> std::io::Result<usize> {
        crate::route_stats::write_operations(&self.route_stats(), out)
    }
}
