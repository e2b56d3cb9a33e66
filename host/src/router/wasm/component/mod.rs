//! Router components: routers built against `wit/router.wit` (package
//! `dbroute:router@1`), the component form of the core-module ABI, for the
//! languages whose toolchains make components (Python, JavaScript, Rust
//! with wit-bindgen).
//!
//! A component is told from a core module by its bytes
//! ([`is_component`]). It runs under the same limits as a core module (the
//! time budget by epoch, re-armed on every call; memory through the
//! limiter; the stack), in instances pooled and kept per thread like core
//! modules', each in a store of its own with the [`sandbox`] for the WASI
//! functions its language's runtime calls. Arguments are lowered from a
//! per-instance buffer that is refilled in place, so an uncached decision
//! allocates only the answer's name.

pub(crate) mod sandbox;

use std::fmt::Write as _;
use std::sync::Arc;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{Engine, Store};

use self::sandbox::Sandbox;
use super::abi;
use super::instance::{HostState, Init, classify};
use super::runtime::RouterRuntime;
use crate::connection::replication::Role;
use crate::connection::stats::Health;
use crate::error::{Fault, LoadError};
use crate::model::{Hints, ModelInfo};
use crate::name::ConnectionName;
use crate::router::{ConnectionStates, MigrateTarget, RouteDecision, RouteKind};

/// The model of the read every new instance answers once before it serves
/// (docs/ABI.md, "Components"): its answer is discarded.
pub(crate) const WARM_UP_MODEL: &str = "dbroute.warm-up";

/// The exported interface, without its version.
pub(crate) const ROUTER_INTERFACE: &str = "dbroute:router/router";

/// Whether `bytes` are a component (binary, or WAT text that starts with
/// `(component`) rather than a core module.
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\0asm") {
        // The header's version and layer: a core module's layer is 0, a
        // component's 1.
        return bytes.get(6..8) == Some(&[1, 0]);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    // Skip whitespace and `;;` line comments before the first form.
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        match rest.strip_prefix(";;") {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, after)| after),
            None => break,
        }
    }
    rest.strip_prefix('(')
        .is_some_and(|form| form.trim_start().starts_with("component"))
}

/// What a store of a router component carries.
pub(crate) struct ComponentState {
    pub(crate) host: HostState,
    pub(crate) sandbox: Sandbox,
}

// The contract's types (wit/router.wit, interface `types`), as the host
// lowers and lifts them.

#[derive(ComponentType, Lower, Default)]
#[component(record)]
struct ModelArg {
    #[component(name = "name")]
    name: String,
    #[component(name = "table")]
    table: Option<String>,
    #[component(name = "app")]
    app: Option<String>,
    #[component(name = "tags")]
    tags: Vec<String>,
}

#[derive(ComponentType, Lower, Default)]
#[component(record)]
struct HintArg {
    #[component(name = "key")]
    key: String,
    #[component(name = "value")]
    value: String,
}

#[derive(ComponentType, Lower, Default)]
#[component(record)]
struct OperationArg {
    #[component(name = "model")]
    model: ModelArg,
    #[component(name = "hints")]
    hints: Vec<HintArg>,
    #[component(name = "origin")]
    origin: Option<String>,
}

#[derive(ComponentType, Lift)]
#[component(variant)]
enum DecisionOut {
    #[component(name = "no-opinion")]
    NoOpinion,
    #[component(name = "connection")]
    Connection(String),
    #[component(name = "refuse")]
    Refuse(String),
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct SideArg {
    #[component(name = "model")]
    model: ModelArg,
    #[component(name = "db")]
    db: Option<String>,
}

#[derive(ComponentType, Lower)]
#[component(variant)]
enum MigrationTargetArg {
    #[component(name = "model")]
    Model(ModelArg),
    #[component(name = "app")]
    App(String),
}

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(enum)]
#[repr(u8)]
enum RoleArg {
    #[component(name = "primary")]
    Primary,
    #[component(name = "replica")]
    Replica,
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct ConnectionStateArg {
    #[component(name = "name")]
    name: String,
    #[component(name = "role")]
    role: RoleArg,
    #[component(name = "replica-of")]
    replica_of: Option<String>,
    #[component(name = "healthy")]
    healthy: Option<bool>,
    #[component(name = "lag-ms")]
    lag_ms: Option<u64>,
    #[component(name = "lag-bytes")]
    lag_bytes: Option<u64>,
}

/// Sets `slot` to `value`, reusing its allocation.
#[inline]
fn set_text(slot: &mut String, value: &str) {
    slot.clear();
    slot.push_str(value);
}

#[inline]
fn set_optional(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(text), Some(value)) => set_text(text, value),
        (None, Some(value)) => *slot = Some(value.to_owned()),
        (_, None) => *slot = None,
    }
}

impl ModelArg {
    fn of(model: &ModelInfo) -> Self {
        let mut arg = ModelArg::default();
        arg.fill(model);
        arg
    }

    #[inline]
    fn fill(&mut self, model: &ModelInfo) {
        set_text(&mut self.name, model.name());
        set_optional(&mut self.table, model.table());
        set_optional(&mut self.app, model.app());
        let tags = model.tags();
        self.tags.truncate(tags.len());
        for (i, tag) in tags.enumerate() {
            match self.tags.get_mut(i) {
                Some(slot) => set_text(slot, tag),
                None => self.tags.push(tag.to_owned()),
            }
        }
    }
}

/// Fills `slots` with `hints`, values as JSON text, reusing allocations.
#[inline]
fn fill_hints(slots: &mut Vec<HintArg>, hints: &Hints) {
    let map = hints.as_map();
    slots.truncate(map.len());
    for (i, (key, value)) in map.iter().enumerate() {
        if slots.len() == i {
            slots.push(HintArg::default());
        }
        let slot = &mut slots[i];
        set_text(&mut slot.key, key);
        slot.value.clear();
        // Writing to a String cannot fail.
        let _ = write!(slot.value, "{value}");
    }
}

fn hint_args(hints: &Hints) -> Vec<HintArg> {
    let mut args = Vec::new();
    fill_hints(&mut args, hints);
    args
}

/// Where the contract's functions are in a component.
struct ExportIndices {
    init: ComponentExportIndex,
    deterministic: ComponentExportIndex,
    read: ComponentExportIndex,
    write: ComponentExportIndex,
    relation: ComponentExportIndex,
    migrate: ComponentExportIndex,
    state: ComponentExportIndex,
}

/// The contract's function names, as `wit/router.wit` gives them.
pub(crate) const FUNCTIONS: [&str; 7] = [
    "init",
    "deterministic",
    "db-for-read",
    "db-for-write",
    "allow-relation",
    "allow-migrate",
    "state-changed",
];

impl ExportIndices {
    fn find(component: &Component, engine: &Engine) -> Result<Self, LoadError> {
        let ty = component.component_type();
        let interface = ty
            .exports(engine)
            .map(|(name, _)| name)
            .find(|name| {
                name.split_once('@')
                    .is_some_and(|(base, version)| base == ROUTER_INTERFACE && version.starts_with("1."))
            })
            .ok_or(LoadError::MissingExport("dbroute:router/router@1"))?;
        let interface = component
            .get_export_index(None, interface)
            .ok_or(LoadError::MissingExport("dbroute:router/router@1"))?;
        let [init, deterministic, read, write, relation, migrate, state] = FUNCTIONS.map(|name| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or(LoadError::MissingExport(name))
        });
        Ok(ExportIndices {
            init: init?,
            deterministic: deterministic?,
            read: read?,
            write: write?,
            relation: relation?,
            migrate: migrate?,
            state: state?,
        })
    }
}

/// Everything needed to make instances of one compiled component: its
/// imports resolved against the sandbox, and where its functions are.
pub(crate) struct ComponentFactory {
    pre: InstancePre<ComponentState>,
    exports: ExportIndices,
}

impl ComponentFactory {
    /// Checks `component`'s imports and exports and resolves its imports.
    pub(crate) fn new(component: &Component) -> Result<Self, LoadError> {
        let engine = component.engine();
        sandbox::check_imports(component, engine)?;
        let exports = ExportIndices::find(component, engine)?;
        let mut linker = Linker::new(engine);
        sandbox::define_imports(&mut linker, component, engine)
            .and_then(|()| linker.instantiate_pre(component))
            .map(|pre| ComponentFactory { pre, exports })
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))
    }

    /// The compiled component.
    pub(crate) fn component(&self) -> &Component {
        self.pre.component()
    }

    /// Makes an instance and runs its `init`.
    pub(crate) fn instantiate(
        &self,
        runtime: &RouterRuntime,
        router: Arc<str>,
        init: &Init,
    ) -> Result<ComponentInstance, LoadError> {
        let mut store = Store::new(
            self.pre.component().engine(),
            ComponentState {
                host: HostState::new(runtime, router.clone(), true),
                sandbox: Sandbox::new(router),
            },
        );
        store.limiter(|state| &mut state.host);
        store.set_epoch_deadline(runtime.limits().budget_ticks());
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            let fault = classify(&e, &store.data().host);
            match fault {
                Fault::MemoryLimit { .. } | Fault::Timeout { .. } => LoadError::Instantiate(fault.to_string()),
                _ => LoadError::Instantiate(format!("{e:#}")),
            }
        })?;
        macro_rules! typed {
            ($index:ident, $name:literal) => {
                instance
                    .get_typed_func(&mut store, &self.exports.$index)
                    .map_err(|e| {
                        LoadError::Instantiate(format!(
                            "its export `{}` does not have the type wit/router.wit gives it: {e:#}",
                            $name
                        ))
                    })?
            };
        }
        let init_func: InitFunc = typed!(init, "init");
        let funcs = Funcs {
            deterministic: typed!(deterministic, "deterministic"),
            read: typed!(read, "db-for-read"),
            write: typed!(write, "db-for-write"),
            relation: typed!(relation, "allow-relation"),
            migrate: typed!(migrate, "allow-migrate"),
            state: typed!(state, "state-changed"),
        };
        let mut instance = ComponentInstance {
            store,
            funcs,
            op: Arc::new(OperationArg::default()),
        };
        let refused = instance
            .call(|store| init_func.call(store, (init.config_text().to_owned(), init.connection_names())))
            .map_err(LoadError::InitFault)?;
        if let (Err(message),) = refused {
            return Err(LoadError::InitRefused(abi::cut(&message, 1000)));
        }
        // A language runtime's first call costs up to a millisecond (its
        // caches, its first objects): one read of a model no service has,
        // its answer discarded, so that the instance's first decision does
        // not pay it.
        let warm_up = ModelInfo::new(WARM_UP_MODEL);
        instance
            .decide(RouteKind::Read, &warm_up, &Hints::new(), None)
            .map_err(|fault| {
                LoadError::Instantiate(format!(
                    "its warm-up read of the model `{WARM_UP_MODEL}` failed: {fault}"
                ))
            })?;
        Ok(instance)
    }
}

/// `init(config, connections) -> result<_, string>`.
type InitFunc = TypedFunc<(String, Vec<String>), (Result<(), String>,)>;

struct Funcs {
    deterministic: TypedFunc<(), (bool,)>,
    read: TypedFunc<(Arc<OperationArg>,), (DecisionOut,)>,
    write: TypedFunc<(Arc<OperationArg>,), (DecisionOut,)>,
    relation: TypedFunc<(SideArg, SideArg, Vec<HintArg>), (Option<bool>,)>,
    migrate: TypedFunc<(String, MigrationTargetArg, Vec<HintArg>), (Option<bool>,)>,
    state: TypedFunc<(Vec<ConnectionStateArg>,), ()>,
}

/// One live instance of a router component.
pub(crate) struct ComponentInstance {
    store: Store<ComponentState>,
    funcs: Funcs,
    /// The decision argument, refilled in place for every call (the call
    /// lowers it through a second reference, dropped when it returns).
    op: Arc<OperationArg>,
}

impl ComponentInstance {
    /// Runs `call` under a fresh time budget and output allowance.
    #[inline]
    fn call<R>(&mut self, call: impl FnOnce(&mut Store<ComponentState>) -> wasmtime::Result<R>) -> Result<R, Fault> {
        let ticks = self.store.data_mut().host.begin_call();
        self.store.set_epoch_deadline(ticks);
        self.store.data_mut().sandbox.start_call();
        let result = call(&mut self.store);
        self.store.data_mut().sandbox.end_call();
        result.map_err(|e| classify(&e, &self.store.data().host))
    }

    /// Whether the router declared itself deterministic.
    pub(crate) fn deterministic(&mut self) -> Result<bool, Fault> {
        let func = self.funcs.deterministic;
        self.call(|store| func.call(store, ())).map(|(yes,)| yes)
    }

    /// A read's or a write's decision.
    #[inline]
    pub(crate) fn decide(
        &mut self,
        kind: RouteKind,
        model: &ModelInfo,
        hints: &Hints,
        origin: Option<ConnectionName>,
    ) -> Result<RouteDecision, Fault> {
        // The only other reference is the one a call lowers from, dropped
        // when it returns: the buffer is reused.
        let op = match Arc::get_mut(&mut self.op) {
            Some(op) => op,
            None => {
                self.op = Arc::new(OperationArg::default());
                Arc::get_mut(&mut self.op).expect("a new Arc has one owner")
            }
        };
        op.model.fill(model);
        fill_hints(&mut op.hints, hints);
        set_optional(&mut op.origin, origin.as_ref().map(ConnectionName::as_str));
        let func = match kind {
            RouteKind::Read => self.funcs.read,
            RouteKind::Write => self.funcs.write,
        };
        let arg = self.op.clone();
        let (decision,) = self.call(|store| func.call(store, (arg,)))?;
        match decision {
            DecisionOut::NoOpinion => Ok(RouteDecision::NoOpinion),
            DecisionOut::Connection(name) => abi::decode_name(name.as_bytes()),
            DecisionOut::Refuse(message) => Ok(RouteDecision::Refuse(abi::cut(&message, 1000))),
        }
    }

    /// `allow-relation`.
    pub(crate) fn allow_relation(
        &mut self,
        a: (&ModelInfo, Option<ConnectionName>),
        b: (&ModelInfo, Option<ConnectionName>),
        hints: &Hints,
    ) -> Result<Option<bool>, Fault> {
        let side = |(model, db): (&ModelInfo, Option<ConnectionName>)| SideArg {
            model: ModelArg::of(model),
            db: db.map(|db| db.as_str().to_owned()),
        };
        let args = (side(a), side(b), hint_args(hints));
        let func = self.funcs.relation;
        self.call(|store| func.call(store, args)).map(|(answer,)| answer)
    }

    /// `allow-migrate`.
    pub(crate) fn allow_migrate(
        &mut self,
        db: ConnectionName,
        target: MigrateTarget<'_>,
        hints: &Hints,
    ) -> Result<Option<bool>, Fault> {
        let target = match target {
            MigrateTarget::Model(model) => MigrationTargetArg::Model(ModelArg::of(model)),
            MigrateTarget::App(app) => MigrationTargetArg::App(app.to_owned()),
        };
        let args = (db.as_str().to_owned(), target, hint_args(hints));
        let func = self.funcs.migrate;
        self.call(|store| func.call(store, args)).map(|(answer,)| answer)
    }

    /// `state-changed`.
    pub(crate) fn tell_state(&mut self, states: &ConnectionStates) -> Result<(), Fault> {
        let connections = states
            .connections()
            .iter()
            .map(|c| {
                let (role, replica_of) = match &c.role {
                    Role::Primary => (RoleArg::Primary, None),
                    Role::Replica { of } => (RoleArg::Replica, Some(of.as_str().to_owned())),
                };
                ConnectionStateArg {
                    name: c.name.as_str().to_owned(),
                    role,
                    replica_of,
                    healthy: match c.health {
                        Health::Unknown => None,
                        Health::Healthy => Some(true),
                        Health::Unhealthy => Some(false),
                    },
                    lag_ms: c.lag_ms,
                    lag_bytes: c.lag_bytes,
                }
            })
            .collect();
        let func = self.funcs.state;
        self.call(|store| func.call(store, (connections,)))
    }

    /// The instance's linear memory now, in bytes (all its memories).
    pub(crate) fn memory(&self) -> usize {
        self.store.data().host.memory()
    }
}
