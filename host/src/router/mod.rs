//! Routers: the trait every router implements (native Rust and WebAssembly
//! alike), the answers they give, and the chain that asks them in order.

pub(crate) mod chain;
pub(crate) mod sdk;
pub(crate) mod state;
pub(crate) mod wasm;
pub(crate) mod watch;

use std::fmt;
use std::sync::Arc;

pub use crate::error::Fault;
use crate::model::{Hints, ModelInfo};
use crate::name::ConnectionName;

/// Whether an operation reads or writes (serialized `"read"` or
/// `"write"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// A read: `db_for_read`.
    Read,
    /// A write: `db_for_write`.
    Write,
}

impl RouteKind {
    /// `read` or `write`, as in the router ABI.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Read => "read",
            RouteKind::Write => "write",
        }
    }
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One routed operation, as a router sees it.
///
/// # Examples
///
/// A router that sends an operation back to the connection its row came
/// from, when the caller says where that was (as Django's routers do with
/// the `instance` hint):
///
/// ```
/// use dbroute::{ConnectionName, Hints, ModelInfo};
/// use dbroute::router::{RouteDecision, Fault, RouteKind, RouteRequest, HostRouter, RouterIdentity};
///
/// #[derive(Debug)]
/// struct Sticky;
///
/// impl HostRouter for Sticky {
///     fn identity(&self) -> RouterIdentity {
///         RouterIdentity::native("sticky")
///     }
///     fn db_for_read(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
///         Ok(op.origin.copied().map_or(RouteDecision::NoOpinion, RouteDecision::Use))
///     }
/// }
///
/// const OTHER: ConnectionName = ConnectionName::from_static("other");
/// let user = ModelInfo::new("User");
/// let op = RouteRequest {
///     kind: RouteKind::Read,
///     model: &user,
///     hints: &Hints::new(),
///     origin: Some(&OTHER),
/// };
/// assert_eq!(Sticky.db_for_read(&op), Ok(RouteDecision::Use(OTHER)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// Read or write.
    pub kind: RouteKind,
    /// The model.
    pub model: &'a ModelInfo,
    /// The caller's hints.
    pub hints: &'a Hints,
    /// The operation's origin: the registered connection the row or object
    /// it is about was read from, when the caller said
    /// ([`Routed::origin`](crate::Routed::origin)). When no router has an
    /// opinion, the operation goes there instead of to `default`. Routers
    /// may use it too (WebAssembly routers get it as the input's `origin`
    /// field, see `docs/ABI.md`).
    pub origin: Option<&'a ConnectionName>,
}

/// One side of an `allow_relation` question.
#[derive(Debug, Clone, Copy)]
pub struct RelationSide<'a> {
    /// The object's model.
    pub model: &'a ModelInfo,
    /// The connection the object lives on; `None` for an object that is
    /// not saved yet (Django's `obj._state.db is None`).
    pub db: Option<ConnectionName>,
}

/// May two objects on these connections be related?
#[derive(Debug, Clone, Copy)]
pub struct RelationRequest<'a> {
    /// The first object.
    pub a: RelationSide<'a>,
    /// The second object.
    pub b: RelationSide<'a>,
    /// The caller's hints.
    pub hints: &'a Hints,
}

/// May this model's schema (or this app's migrations) be created on this
/// connection?
#[derive(Debug, Clone, Copy)]
pub struct MigrateRequest<'a> {
    /// The connection.
    pub db: ConnectionName,
    /// What would be migrated: one model, or an app as a whole.
    pub target: MigrateTarget<'a>,
    /// The caller's hints.
    pub hints: &'a Hints,
}

impl<'a> MigrateRequest<'a> {
    /// The model, when the question is about one (`None` for
    /// [`MigrateTarget::App`]).
    ///
    /// ```
    /// use dbroute::{ConnectionName, Hints, ModelInfo};
    /// use dbroute::router::{MigrateTarget, MigrateRequest};
    ///
    /// let (event, hints) = (ModelInfo::new("Event"), Hints::new());
    /// let m = MigrateRequest { db: ConnectionName::DEFAULT, target: MigrateTarget::Model(&event), hints: &hints };
    /// assert!(m.model().is_some_and(|model| model.name() == "Event"));
    /// ```
    pub fn model(&self) -> Option<&'a ModelInfo> {
        match self.target {
            MigrateTarget::Model(model) => Some(model),
            MigrateTarget::App(_) => None,
        }
    }

    /// The app label: the app asked about, or the model's app (`None` for a
    /// model without one). Django's `allow_migrate(db, app_label, ...)`.
    ///
    /// ```
    /// use dbroute::{ConnectionName, Hints, ModelInfo};
    /// use dbroute::router::{MigrateTarget, MigrateRequest};
    ///
    /// let hints = Hints::new();
    /// let event = ModelInfo::new("Event").with_app("metrics");
    /// let of_model = MigrateRequest { db: ConnectionName::DEFAULT, target: MigrateTarget::Model(&event), hints: &hints };
    /// let of_app = MigrateRequest { db: ConnectionName::DEFAULT, target: MigrateTarget::App("metrics"), hints: &hints };
    /// assert_eq!(of_model.app(), Some("metrics"));
    /// assert_eq!(of_app.app(), Some("metrics"));
    /// assert_eq!(of_model.model().map(ModelInfo::name), Some("Event"));
    /// assert!(of_app.model().is_none());
    /// ```
    pub fn app(&self) -> Option<&'a str> {
        match self.target {
            MigrateTarget::Model(model) => model.app(),
            MigrateTarget::App(app) => Some(app),
        }
    }
}

/// What an `allow_migrate` question is about: Django asks
/// `allow_migrate(db, app_label, model_name=None, **hints)`, with a model
/// for a model's operations and with the app label alone for the others
/// (a `RunSQL` or `RunPython` migration operation, say).
///
/// ```
/// use dbroute::ModelInfo;
/// use dbroute::router::MigrateTarget;
///
/// let event = ModelInfo::new("Event").with_app("metrics");
/// assert!(matches!(MigrateTarget::from(&event), MigrateTarget::Model(m) if m.name() == "Event"));
/// let app = MigrateTarget::App("metrics");
/// assert!(matches!(app, MigrateTarget::App("metrics")));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum MigrateTarget<'a> {
    /// One model's schema.
    Model(&'a ModelInfo),
    /// An app label, no model.
    App(&'a str),
}

impl<'a> From<&'a ModelInfo> for MigrateTarget<'a> {
    fn from(model: &'a ModelInfo) -> Self {
        MigrateTarget::Model(model)
    }
}

/// A router's answer for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// No opinion: ask the next router; when none has one, use the
    /// operation's origin, else `default`.
    NoOpinion,
    /// Use this connection.
    Use(ConnectionName),
    /// Refuse the operation, with a message for the caller. There is no
    /// fallback.
    Refuse(String),
}

impl RouteDecision {
    /// "Use this connection", checking the name.
    ///
    /// # Errors
    ///
    /// [`Fault::MalformedName`] when `name` breaks the naming rules.
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::router::RouteDecision;
    /// assert!(RouteDecision::use_connection("replica").is_ok());
    /// assert!(RouteDecision::use_connection("not valid").is_err());
    /// ```
    pub fn use_connection(name: &str) -> Result<RouteDecision, Fault> {
        match ConnectionName::from_bytes(name.as_bytes()) {
            Ok(name) => Ok(RouteDecision::Use(name)),
            Err(problem) => Err(Fault::MalformedName {
                name: crate::name::printable(name),
                reason: problem.describe(),
            }),
        }
    }
}

/// Who a router is: its name and, for a WebAssembly router, the SHA-256 of
/// its module. Errors and reports name routers this way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RouterIdentity(Arc<IdentityInner>);

#[derive(PartialEq, Eq, Hash)]
struct IdentityInner {
    name: Box<str>,
    hash: Option<[u8; 32]>,
}

impl RouterIdentity {
    /// A native router's identity: a name, no hash.
    pub fn native(name: impl Into<Box<str>>) -> Self {
        RouterIdentity(Arc::new(IdentityInner {
            name: name.into(),
            hash: None,
        }))
    }

    pub(crate) fn wasm(name: impl Into<Box<str>>, hash: [u8; 32]) -> Self {
        RouterIdentity(Arc::new(IdentityInner {
            name: name.into(),
            hash: Some(hash),
        }))
    }

    /// The router's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The module's SHA-256 as 64 hex digits (`None` for a native router).
    pub fn content_hash(&self) -> Option<String> {
        self.0.hash.as_ref().map(|h| hex(h))
    }
}

/// `bytes` as lowercase hex digits, two per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serializes as `{"name": ..., "sha256": ...}` (`sha256`: the module's
/// 64 hex digits, `null` for a native router).
impl serde::Serialize for RouterIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut identity = s.serialize_struct("RouterIdentity", 2)?;
        identity.serialize_field("name", self.name())?;
        identity.serialize_field("sha256", &self.content_hash())?;
        identity.end()
    }
}

impl fmt::Display for RouterIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.content_hash() {
            Some(hash) => write!(f, "router `{}` (sha256:{})", self.name(), &hash[..16]),
            None => write!(f, "router `{}` (native)", self.name()),
        }
    }
}

impl fmt::Debug for RouterIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A router: decides which connection each operation uses.
///
/// Native Rust routers and WebAssembly routers ([`WasmRouter`]) implement
/// the same trait, so one chain can mix them; a router written with
/// `dbroute-sdk` runs natively through [`SdkRouter`]. Every method must be
/// cheap: it runs on every routed operation.
///
/// # Examples
///
/// ```
/// use dbroute::ConnectionName;
/// use dbroute::router::{RouteDecision, Fault, RouteRequest, HostRouter, RouterIdentity};
///
/// /// Reads go to the replica, writes to the primary.
/// #[derive(Debug)]
/// struct ReplicaRouter;
///
/// impl HostRouter for ReplicaRouter {
///     fn identity(&self) -> RouterIdentity {
///         RouterIdentity::native("replica")
///     }
///     fn db_for_read(&self, _op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
///         const REPLICA: ConnectionName = ConnectionName::from_static("replica");
///         Ok(RouteDecision::Use(REPLICA))
///     }
///     fn db_for_write(&self, _op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
///         Ok(RouteDecision::Use(ConnectionName::DEFAULT))
///     }
/// }
///
/// let chain = dbroute::router::RouterChain::from(ReplicaRouter);
/// assert_eq!(chain.len(), 1);
/// ```
///
/// [`WasmRouter`]: crate::wasm::WasmRouter
/// [`SdkRouter`]: crate::router::SdkRouter
pub trait HostRouter: Send + Sync + fmt::Debug + 'static {
    /// The router's name and content hash, for errors and reports.
    fn identity(&self) -> RouterIdentity;

    /// The connection to read this model from.
    ///
    /// # Errors
    ///
    /// A [`Fault`] when the router misbehaved.
    fn db_for_read(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault>;

    /// The connection to write this model to.
    ///
    /// # Errors
    ///
    /// A [`Fault`] when the router misbehaved.
    fn db_for_write(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        let _ = op;
        Ok(RouteDecision::NoOpinion)
    }

    /// May two objects on these connections be related? `None`: no opinion.
    /// A side's `db` is `None` for an object not saved yet.
    ///
    /// # Errors
    ///
    /// A [`Fault`] when the router misbehaved.
    fn allow_relation(&self, relation: &RelationRequest<'_>) -> Result<Option<bool>, Fault> {
        let _ = relation;
        Ok(None)
    }

    /// May this model's schema (or, for [`MigrateTarget::App`], this app's
    /// migrations) be created on this connection? `None`: no opinion.
    ///
    /// # Errors
    ///
    /// A [`Fault`] when the router misbehaved.
    fn allow_migrate(&self, migration: &MigrateRequest<'_>) -> Result<Option<bool>, Fault> {
        let _ = migration;
        Ok(None)
    }

    /// Told when connections are added or removed, with the new names. A
    /// WebAssembly router makes new instances, initialised with them.
    fn connections_changed(&self, names: &[ConnectionName]) {
        let _ = names;
    }

    /// Told the connections' state (role, health, a replica's lag) when it
    /// changes, and once when the router joins an engine's chain; never
    /// per decision. A router whose answers depend on it keeps what it
    /// needs; the default ignores it. A WebAssembly router of ABI 1.2 that
    /// exports `dbroute_state` tells its instances (each before its next
    /// call) and forgets its cached answers; an [`SdkRouter`] whose router
    /// reads the state ([`dbroute_sdk::Router::CONNECTION_STATE`]) tells
    /// its instances too.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use dbroute::ConnectionName;
    /// use dbroute::router::{ConnectionState, ConnectionStates, Fault, HostRouter, RouteDecision, RouteRequest, RouterIdentity};
    /// use dbroute::stats::{Health, Role};
    ///
    /// /// Reads go to `replica` while it is healthy.
    /// #[derive(Debug, Default)]
    /// struct WhileHealthy(Mutex<bool>);
    ///
    /// impl HostRouter for WhileHealthy {
    ///     fn identity(&self) -> RouterIdentity {
    ///         RouterIdentity::native("while-healthy")
    ///     }
    ///     fn db_for_read(&self, _: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
    ///         Ok(if *self.0.lock().unwrap() { RouteDecision::use_connection("replica")? } else { RouteDecision::NoOpinion })
    ///     }
    ///     fn state_changed(&self, state: &ConnectionStates) {
    ///         *self.0.lock().unwrap() = state.get("replica").is_some_and(|r| r.health == Health::Healthy);
    ///     }
    /// }
    ///
    /// let router = WhileHealthy::default();
    /// let replica = ConnectionState::new(ConnectionName::new("replica")?, Role::Replica { of: ConnectionName::DEFAULT });
    /// router.state_changed(&ConnectionStates::new(vec![replica.with_health(Health::Healthy)]));
    /// assert!(*router.0.lock().unwrap());
    /// # Ok::<(), dbroute::Error>(())
    /// ```
    ///
    /// [`SdkRouter`]: crate::router::SdkRouter
    fn state_changed(&self, state: &ConnectionStates) {
        let _ = state;
    }
}

pub use chain::{RouterChain, RouterStatus};
pub use sdk::{SdkRouter, SdkRouterBuilder};
pub use state::{ConnectionState, ConnectionStates};
