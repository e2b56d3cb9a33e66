//! The trait a router implements.

use alloc::string::String;

use crate::{Config, Connections, Decision, Migration, Operation, Relation, State};

/// A router: the policy that tells the host which connection each operation
/// uses.
///
/// Implement it, derive (or implement) [`Default`], and export the type with
/// [`export_router!`](crate::export_router). One value of the type lives in
/// each instance of the module: the host makes it with `Default`, calls
/// [`init`](Router::init) once, then asks it about operations, one at a
/// time. State kept in `self` (a counter, a cache) is per instance and is
/// lost when the host discards the instance.
///
/// Only [`db_for_read`](Router::db_for_read) must be written; every other
/// method has no opinion by default.
///
/// # Examples
///
/// ```
/// use dbroute_sdk::prelude::*;
///
/// /// Reads go to the replica, writes to the primary.
/// #[derive(Default)]
/// struct ReplicaRouter;
///
/// impl Router for ReplicaRouter {
///     const DETERMINISTIC: bool = true;
///
///     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
///         Decision::use_connection("replica")
///     }
///
///     fn db_for_write(&mut self, _op: &Operation<'_>) -> Decision<'_> {
///         Decision::use_connection("default")
///     }
/// }
///
/// dbroute_sdk::export_router!(ReplicaRouter);
///
/// let mut router = ReplicaRouter;
/// let read = dbroute_sdk::testing::read(&mut router, r#"{"op":"read","model":{"name":"User"}}"#);
/// assert_eq!(read.connection(), Some("replica"));
/// ```
///
/// A decision may borrow from the operation; spell out the lifetime then:
///
/// ```
/// use dbroute_sdk::prelude::*;
///
/// /// Each app has a connection of its own name.
/// #[derive(Default)]
/// struct AppRouter;
///
/// impl Router for AppRouter {
///     fn db_for_read<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
///         match op.model().app() {
///             Some(app) => Decision::use_connection(app),
///             None => Decision::no_opinion(),
///         }
///     }
/// }
/// # let answer = dbroute_sdk::testing::read(&mut AppRouter, r#"{"model":{"name":"U","app":"auth"}}"#);
/// # assert_eq!(answer.connection(), Some("auth"));
/// ```
pub trait Router {
    /// `true` declares that every answer depends only on the call's input and
    /// the init config, never on state kept in `self`: the host may then
    /// cache answers and skip calls. Exported as `dbroute_deterministic`.
    const DETERMINISTIC: bool = false;

    /// `true` declares that the router reads the connections' state (ABI
    /// 1.2): the host then calls [`state`](Router::state) when the state
    /// changes and before an instance's first decision, and (for a
    /// deterministic router) forgets its cached answers when it changes.
    /// Exported as `dbroute_abi_minor` returning 2 (1 when `false`: the
    /// host never tells the router the state, as for routers built before
    /// 1.2).
    const CONNECTION_STATE: bool = false;

    /// Called once per instance, before any other method, with the router's
    /// configuration (`null` when none was given) and the names of the
    /// registered connections.
    ///
    /// Keep what you need in `self`: `config` and `connections` borrow an
    /// input buffer that the next call reuses.
    ///
    /// # Errors
    ///
    /// Return a message to refuse: the router then fails to load, with that
    /// message.
    fn init(&mut self, config: &Config<'_>, connections: &Connections<'_>) -> Result<(), String> {
        let _ = (config, connections);
        Ok(())
    }

    /// Told the connections' state (each connection's role, health and,
    /// for a replica, its lag), when [`CONNECTION_STATE`](Router::CONNECTION_STATE)
    /// is `true`: after [`init`](Router::init), before the first decision
    /// that comes after a change. Keep it in `self`; until the first call
    /// the router knows no state (answer as with no information: the
    /// primary, or no opinion). Default: ignored.
    ///
    /// ```
    /// use dbroute_sdk::prelude::*;
    ///
    /// /// Reads go to the replica while it is healthy.
    /// #[derive(Default)]
    /// struct WhileHealthy {
    ///     state: State,
    /// }
    ///
    /// impl Router for WhileHealthy {
    ///     const CONNECTION_STATE: bool = true;
    ///
    ///     fn state(&mut self, state: State) {
    ///         self.state = state;
    ///     }
    ///
    ///     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
    ///         match self.state.get("replica") {
    ///             Some(replica) if replica.healthy() == Some(true) => Decision::use_connection("replica"),
    ///             _ => Decision::no_opinion(),
    ///         }
    ///     }
    /// }
    ///
    /// let mut router = WhileHealthy::default();
    /// let read = r#"{"op":"read","model":{"name":"User"}}"#;
    /// assert_eq!(dbroute_sdk::testing::read(&mut router, read).connection(), None);
    /// dbroute_sdk::testing::state(&mut router, r#"{"connections":[{"name":"replica","role":"replica","replica_of":"default","healthy":true,"lag_ms":0,"lag_bytes":0}]}"#);
    /// assert_eq!(dbroute_sdk::testing::read(&mut router, read).connection(), Some("replica"));
    /// ```
    fn state(&mut self, state: State) {
        let _ = state;
    }

    /// The connection to read `op`'s model from.
    fn db_for_read<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a>;

    /// The connection to write `op`'s model to. Default: no opinion.
    fn db_for_write<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
        let _ = op;
        Decision::no_opinion()
    }

    /// May the two objects of `rel`, on their connections, be related?
    /// `Some(true)`, `Some(false)`, or `None` for no opinion (the default).
    fn allow_relation(&mut self, rel: &Relation<'_>) -> Option<bool> {
        let _ = rel;
        None
    }

    /// May `m`'s model have its schema created on `m.db()`? `Some(true)`,
    /// `Some(false)`, or `None` for no opinion (the default).
    fn allow_migrate(&mut self, m: &Migration<'_>) -> Option<bool> {
        let _ = m;
        None
    }
}
