//! The router registry: a fleet of service instances follows routers
//! published in PostgreSQL (see `docs/fleet.md`).
//!
//! Publishers ([`RegistryClient`], or `dbroute publish`, `rollout`,
//! `rollback`) store router modules and roll versions out, to a canary
//! share of the instances or all of them; every engine built with
//! [`EngineBuilder::router_registry`](crate::EngineBuilder::router_registry)
//! loads the version it should run, `LISTEN`s for changes, loads each new
//! version through the same validation as any router, and reports what it
//! runs in the registry's `instances` table. Nothing on the routing path
//! touches the registry: a registry that is down leaves every instance
//! routing with the router it has.
//!
//! By file: `schema.rs` (the embedded migrations and the version check),
//! `plan.rs` (canary buckets and rollout states), `client.rs` (publishing
//! and reading), `follow.rs` (an engine following the registry),
//! `report.rs` (heartbeats and the info gauge), `error.rs`.

mod client;
mod error;
pub(crate) mod follow;
mod plan;
mod report;
mod schema;

pub use client::{DEFAULT_SCHEMA, FleetStatus, InstanceStatus, Publication, PublishedRouter, RegistryClient, Rollout};
pub use error::RegistryError;
pub use follow::RegistryStatus;
pub use plan::{RolloutState, canary_bucket};

use std::time::Duration;

/// How an engine follows a router registry: where it is, which service
/// and router this instance belongs to, and how often it reports.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dbroute::registry::RouterRegistry;
///
/// let registry = RouterRegistry::new("postgres://svc:secret@127.0.0.1/ops", "checkout")
///     .router("checkout-rules")
///     .instance_id("checkout-1")
///     .heartbeat_every(Duration::from_secs(5));
/// assert_eq!(registry.router_name(), "checkout-rules");
/// // The password never shows.
/// assert!(!format!("{registry:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct RouterRegistry {
    pub(crate) url: String,
    pub(crate) service: String,
    pub(crate) router: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) schema: String,
    pub(crate) heartbeat: Duration,
    pub(crate) compilation: crate::router::wasm::tiers::Compilation,
    pub(crate) fault_guard: Option<FaultGuard>,
}

/// When an instance gives up a new version by itself (see
/// [`RouterRegistry::fault_guard`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FaultGuard {
    pub(crate) max_rate: f64,
    pub(crate) min_calls: u64,
}

impl std::fmt::Debug for RouterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterRegistry")
            .field("url", &crate::connection::url::redact(&self.url))
            .field("service", &self.service)
            .field("router", &self.router_name())
            .field("instance_id", &self.instance_id)
            .field("schema", &self.schema)
            .field("heartbeat", &self.heartbeat)
            .field("compilation", &self.compilation)
            .field("fault_guard", &self.fault_guard)
            .finish()
    }
}

/// How often an instance reports unless told otherwise.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

impl RouterRegistry {
    /// The registry at `url` (PostgreSQL), for an instance of `service`,
    /// following the router named like the service, in schema
    /// [`DEFAULT_SCHEMA`], reporting every [`DEFAULT_HEARTBEAT`].
    pub fn new(url: impl Into<String>, service: impl Into<String>) -> RouterRegistry {
        RouterRegistry {
            url: url.into(),
            service: service.into(),
            router: None,
            instance_id: None,
            schema: DEFAULT_SCHEMA.into(),
            heartbeat: DEFAULT_HEARTBEAT,
            compilation: crate::router::wasm::tiers::Compilation::default(),
            fault_guard: None,
        }
    }

    /// The router this instance follows (default: the service's name).
    pub fn router(mut self, name: impl Into<String>) -> RouterRegistry {
        self.router = Some(name.into());
        self
    }

    /// This instance's id (default: host name, process id and a random
    /// suffix). It picks the instance's canary bucket
    /// ([`canary_bucket`]): keep it stable across restarts to keep an
    /// instance in or out of canaries.
    pub fn instance_id(mut self, id: impl Into<String>) -> RouterRegistry {
        self.instance_id = Some(id.into());
        self
    }

    /// The registry's schema (default [`DEFAULT_SCHEMA`]).
    pub fn schema(mut self, schema: impl Into<String>) -> RouterRegistry {
        self.schema = schema.into();
        self
    }

    /// How often the instance reports and re-reads the registry's state
    /// (default [`DEFAULT_HEARTBEAT`]); it also does both on every change.
    pub fn heartbeat_every(mut self, interval: Duration) -> RouterRegistry {
        self.heartbeat = interval.max(Duration::from_millis(50));
        self
    }

    /// How each version is compiled when it is loaded (default
    /// [`Compilation::Tiered`](crate::wasm::Compilation::Tiered): baseline
    /// code at once, optimized code from the background).
    pub fn compilation(mut self, compilation: crate::wasm::Compilation) -> RouterRegistry {
        self.compilation = compilation;
        self
    }

    /// A guard rail: once a version this instance took from a rollout has
    /// been called at least `min_calls` times and more than `max_rate` (0
    /// to 1) of those calls faulted, the instance goes back to the version
    /// before it by itself, records why in its `instances` row, and marks
    /// the rollout `failed` (so the whole fleet goes back too). The
    /// counters are checked every 100 ms (and at each heartbeat), without
    /// the registry; it is asked only when the guard trips. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::registry::RouterRegistry;
    /// // Back off a version when over 1% of at least 1000 calls fault.
    /// let registry = RouterRegistry::new("postgres://svc@127.0.0.1/ops", "checkout").fault_guard(0.01, 1000);
    /// # let _ = registry;
    /// ```
    pub fn fault_guard(mut self, max_rate: f64, min_calls: u64) -> RouterRegistry {
        self.fault_guard = Some(FaultGuard {
            max_rate: max_rate.clamp(0.0, 1.0),
            min_calls: min_calls.max(1),
        });
        self
    }

    /// The router this instance follows.
    pub fn router_name(&self) -> &str {
        self.router.as_deref().unwrap_or(&self.service)
    }
}
