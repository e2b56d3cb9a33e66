//! Telling routers the connections' state (ABI 1.2): a snapshot made from
//! the registry after each health check, lag measurement and connection
//! change, handed to the active routers when it differs from the last one
//! they were given (or the chain was swapped since). Never on the routing
//! path.

use std::sync::PoisonError;

use crate::router::{ConnectionState, ConnectionStates};
use crate::stats::Role;

use super::Engine;

/// What the active chain was last told: the state, and the chain's
/// generation then.
pub(super) type LastTold = Option<(ConnectionStates, u64)>;

impl Engine {
    /// The connections' state as routers are told it now: for each
    /// registered connection (the default first), its role, its health
    /// (as the last health check, lag measurement or statement left it)
    /// and, for a replica, its last measured lag.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::Engine;
    /// use dbroute::stats::{Health, Role};
    ///
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
    /// let states = engine.connection_states();
    /// let default = states.get("default").unwrap();
    /// assert_eq!((default.role, default.lag_ms), (Role::Primary, None));
    /// engine.check_health(std::time::Duration::from_secs(5)).await;
    /// assert_eq!(engine.connection_states().get("default").unwrap().health, Health::Healthy);
    /// # Ok(()) }
    /// ```
    pub fn connection_states(&self) -> ConnectionStates {
        let registry = self.inner.registry.snapshot();
        let connections = registry
            .names()
            .into_iter()
            .filter_map(|name| registry.get(&name).cloned())
            .map(|entry| {
                let role = entry.replica_of().map_or(Role::Primary, |of| Role::Replica { of });
                let lag = entry.replica_of().and_then(|_| entry.stats().replication());
                ConnectionState::new(entry.name(), role)
                    .with_health(entry.stats().health())
                    .with_measurement(lag.as_ref())
            })
            .collect();
        ConnectionStates::new(connections)
    }

    /// Tells the active routers the connections' state, if it changed
    /// since they were last told (or the chain was swapped since).
    /// Serialised with the telling of connection changes.
    pub(super) fn state_may_have_changed(&self) {
        let _serial = self.inner.notify.lock().unwrap_or_else(PoisonError::into_inner);
        self.tell_state_locked();
    }

    /// [`Engine::state_may_have_changed`], the caller holding `notify`.
    pub(super) fn tell_state_locked(&self) {
        let states = self.connection_states();
        let active = self.inner.routers.load();
        let mut last = self.inner.last_told.lock().unwrap_or_else(PoisonError::into_inner);
        if last
            .as_ref()
            .is_some_and(|(told, generation)| *told == states && *generation == active.generation)
        {
            return;
        }
        for router in active.chain.routers() {
            router.state_changed(&states);
        }
        *last = Some((states, active.generation));
    }
}
