//! Routers written with `dbroute-sdk`, run natively: the SDK's dispatch
//! fed the very input bytes a WebAssembly instance of the router gets, in
//! a pool of initialised instances.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use dbroute_sdk::native::{Instance, Reply};

use super::wasm::abi;
use super::{
    ConnectionStates, HostRouter, MigrateRequest, RelationRequest, RouteDecision, RouteKind, RouteRequest,
    RouterIdentity,
};
use crate::engine::Engine;
use crate::error::{Error, Fault, LoadError, Result};
use crate::name::ConnectionName;

/// The idle instances an [`SdkRouter`] keeps for reuse: as many as a
/// WebAssembly router keeps by default.
const IDLE_INSTANCES: usize = 32;

/// A router written with `dbroute-sdk` (a type implementing
/// [`dbroute_sdk::Router`]), run natively inside the host instead of as
/// its WebAssembly build: for a service's unit tests, or for speed.
///
/// It gives the answers the router's WebAssembly build gives: each call
/// hands the SDK the input bytes the host writes into a WebAssembly
/// instance (the same JSON, built by the same code), and the SDK runs them
/// through the dispatch its exports run ([`dbroute_sdk::native`]); names
/// and refusal messages are checked and cut as a module's are.
///
/// Like a WebAssembly router, it keeps instances: each one a router made
/// with `Default` and initialised ([`dbroute_sdk::Router::init`]) with the
/// router's configuration and the connection names, called by one thread
/// at a time (no lock is held while it runs). Up to 32 idle instances are
/// kept; a call that finds none free makes one. When connections are
/// added or removed, later calls use new instances, initialised with the
/// new names.
///
/// A panic in the router does not reach the caller: the call fails with
/// [`Fault::Panic`] (an [`Error::RouterFault`] through the engine) and the
/// instance is dropped, as a trapped WebAssembly instance is. (The panic
/// hook still runs, and prints the panic by default. In a build with
/// `panic = "abort"`, a panic aborts the process: nothing can catch it.)
/// What it does not have: the sandbox and its limits (time, memory,
/// stack), the answer cache, hot-swapping from bytes. And the SDK's
/// [`log`](dbroute_sdk::log()) writes to standard error natively, not to
/// the host's log.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{Engine, Hints, ModelInfo};
/// use dbroute::router::SdkRouter;
/// use dbroute_sdk::prelude::*;
///
/// /// Reads go to the replica, writes to the primary, unless the
/// /// configuration names another replica.
/// #[derive(Default)]
/// struct ReplicaRouter {
///     replica: String,
/// }
///
/// impl Router for ReplicaRouter {
///     fn init(&mut self, config: &Config<'_>, connections: &Connections<'_>) -> Result<(), String> {
///         self.replica = config.str("replica")?.unwrap_or_else(|| "replica".to_owned());
///         if !connections.contains(&self.replica) {
///             return Err(format!("no connection `{}`", self.replica));
///         }
///         Ok(())
///     }
///
///     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
///         Decision::use_connection(&self.replica)
///     }
///
///     fn db_for_write(&mut self, _op: &Operation<'_>) -> Decision<'_> {
///         Decision::use_connection("default")
///     }
/// }
///
/// let router = SdkRouter::<ReplicaRouter>::builder("replica")
///     .connections(["default", "replica"])
///     .build()?;
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("replica", "sqlite::memory:")
///     .add_router(router)
///     .build()
///     .await?;
/// let user = ModelInfo::new("User");
/// assert_eq!(engine.db_for_read(&user, &Hints::new())?, "replica");
/// assert_eq!(engine.db_for_write(&user, &Hints::new())?, "default");
///
/// // Its init refuses a replica that is not a connection: a load error.
/// let refused = SdkRouter::<ReplicaRouter>::builder("replica")
///     .config(serde_json::json!({"replica": "elsewhere"}))
///     .build_for(&engine);
/// assert!(matches!(refused, Err(dbroute::Error::RouterLoad { .. })));
/// # Ok(()) }
/// ```
pub struct SdkRouter<R> {
    inner: Arc<Inner<R>>,
}

struct Inner<R> {
    identity: RouterIdentity,
    config: serde_json::Value,
    /// The instances of the current connections. Replaced, not changed,
    /// when connections change: a call in flight gives its instance back
    /// to the pool it took it from, which is dropped after it.
    pool: ArcSwap<Pool<R>>,
    /// Held while `pool` is replaced.
    replacing_pool: Mutex<()>,
    /// The connections' state instances are told before their next call,
    /// when the router reads it ([`dbroute_sdk::Router::CONNECTION_STATE`]),
    /// with its generation (from 1; 0: none).
    state: ArcSwap<(u64, Option<ConnectionStates>)>,
    /// `state`'s generation, compared with an instance's before each call.
    state_generation: AtomicU64,
    /// Held while `state` is replaced.
    telling: Mutex<()>,
}

/// An instance, and the generation of the connections' state it was told
/// (0: none).
struct Held<R> {
    instance: Instance<R>,
    told: u64,
}

/// Idle instances, all initialised with `init_input`.
struct Pool<R> {
    init_input: String,
    idle: ArrayQueue<Box<Held<R>>>,
}

impl<R> Pool<R> {
    fn new(init_input: String) -> Self {
        Pool {
            init_input,
            idle: ArrayQueue::new(IDLE_INSTANCES),
        }
    }
}

impl<R> Clone for SdkRouter<R> {
    /// Another handle on the same router (the same instances).
    fn clone(&self) -> Self {
        SdkRouter {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R> fmt::Debug for SdkRouter<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkRouter")
            .field("identity", &self.inner.identity)
            .field("router", &std::any::type_name::<R>())
            .field("idle_instances", &self.inner.pool.load().idle.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`SdkRouter`]: its name, its configuration, and the
/// connection names its `init` is told about. See [`SdkRouter`] for an
/// example.
pub struct SdkRouterBuilder<R> {
    name: String,
    config: serde_json::Value,
    connections: Vec<String>,
    router: PhantomData<fn() -> R>,
}

impl<R> Clone for SdkRouterBuilder<R> {
    fn clone(&self) -> Self {
        SdkRouterBuilder {
            name: self.name.clone(),
            config: self.config.clone(),
            connections: self.connections.clone(),
            router: PhantomData,
        }
    }
}

impl<R> fmt::Debug for SdkRouterBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkRouterBuilder")
            .field("name", &self.name)
            .field("router", &std::any::type_name::<R>())
            .field("config", &self.config)
            .field("connections", &self.connections)
            .finish()
    }
}

impl<R> SdkRouter<R>
where
    R: dbroute_sdk::Router + Default + Send + 'static,
{
    /// Starts building the router `R`, called `name` (its
    /// [`RouterIdentity::native`]).
    pub fn builder(name: impl Into<String>) -> SdkRouterBuilder<R> {
        SdkRouterBuilder {
            name: name.into(),
            config: serde_json::Value::Null,
            connections: Vec::new(),
            router: PhantomData,
        }
    }

    /// Idle instances now, ready for the next calls (at most 32).
    pub fn idle_instances(&self) -> usize {
        self.inner.pool.load().idle.len()
    }

    /// Runs `call` on an idle instance, or on a new one when none is idle;
    /// afterwards the instance is idle again, unless the call faulted or
    /// panicked: then it is dropped.
    #[inline]
    fn with_instance<T>(&self, call: impl FnOnce(&mut Instance<R>) -> Result<T, Fault>) -> Result<T, Fault> {
        let pool = self.inner.pool.load();
        let mut instance = match pool.idle.pop() {
            Some(instance) => instance,
            None => instantiate(&pool.init_input)
                .map_err(|e| Fault::Trap(format!("a new instance could not start: {e}")))?,
        };
        // Told the connections' state first when it is behind (never, for
        // a router that does not read it: the generation stays 0).
        let wanted = self.inner.state_generation.load(Ordering::Relaxed);
        let call = |held: &mut Held<R>| {
            if held.told != wanted {
                self.tell_state(held)?;
            }
            call(&mut held.instance)
        };
        match catch_unwind(AssertUnwindSafe(|| call(&mut instance))) {
            Ok(Ok(answer)) => {
                // A full pool drops the instance.
                let _ = pool.idle.push(instance);
                Ok(answer)
            }
            Ok(Err(fault)) => Err(fault),
            Err(payload) => {
                // The router's state may be half changed: never call it
                // again, and let no panic of its drop escape either.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(instance)));
                Err(Fault::Panic(panic_message::<R>(payload.as_ref())))
            }
        }
    }

    /// Tells `held` the connections' state it has not been told yet.
    #[cold]
    #[inline(never)]
    fn tell_state(&self, held: &mut Held<R>) -> Result<(), Fault> {
        let told = self.inner.state.load();
        if let (generation, Some(states)) = &**told {
            let len = write_input(&mut held.instance, &[states.abi_json().as_bytes()])?;
            held.instance.state(len);
            held.told = *generation;
        }
        Ok(())
    }

    /// One decision, from the input a WebAssembly instance would get.
    #[inline]
    fn decide(&self, kind: RouteKind, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        let input = abi::decision_input(kind, op.model, op.hints, op.origin);
        let kind = match kind {
            RouteKind::Read => dbroute_sdk::OpKind::Read,
            RouteKind::Write => dbroute_sdk::OpKind::Write,
        };
        self.with_instance(|instance| {
            let len = write_input(instance, input.pieces())?;
            instance.decide(kind, len, |reply, text| match reply {
                Reply::NoOpinion => Ok(RouteDecision::NoOpinion),
                Reply::Use => abi::decode_name(text.as_bytes()),
                Reply::Refuse => abi::decode_message(text.as_bytes()).map(RouteDecision::Refuse),
            })
        })
    }
}

impl<R> HostRouter for SdkRouter<R>
where
    R: dbroute_sdk::Router + Default + Send + 'static,
{
    fn identity(&self) -> RouterIdentity {
        self.inner.identity.clone()
    }

    #[inline]
    fn db_for_read(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        self.decide(RouteKind::Read, op)
    }

    #[inline]
    fn db_for_write(&self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        self.decide(RouteKind::Write, op)
    }

    fn allow_relation(&self, relation: &RelationRequest<'_>) -> Result<Option<bool>, Fault> {
        let input = abi::relation_input(
            (relation.a.model, relation.a.db),
            (relation.b.model, relation.b.db),
            relation.hints,
        );
        self.with_instance(|instance| {
            let len = write_input(instance, &[input.as_bytes()])?;
            Ok(instance.allow_relation(len))
        })
    }

    fn allow_migrate(&self, migration: &MigrateRequest<'_>) -> Result<Option<bool>, Fault> {
        let input = abi::migrate_input(migration.db, migration.target, migration.hints);
        self.with_instance(|instance| {
            let len = write_input(instance, &[input.as_bytes()])?;
            Ok(instance.allow_migrate(len))
        })
    }

    /// As a WebAssembly router does: later calls use new instances, made
    /// on demand and initialised with `names` (no router code runs here).
    fn connections_changed(&self, names: &[ConnectionName]) {
        let _replacing = self.inner.replacing_pool.lock().unwrap_or_else(PoisonError::into_inner);
        let init_input = abi::init_input(&self.inner.config, names);
        if init_input == self.inner.pool.load().init_input {
            return; // Its instances already know these connections.
        }
        self.inner.pool.store(Arc::new(Pool::new(init_input)));
    }

    /// When the router reads the connections' state: a state unlike the
    /// last one becomes the one every instance is told before its next
    /// call (no router code runs here).
    fn state_changed(&self, state: &ConnectionStates) {
        if !R::CONNECTION_STATE {
            return;
        }
        let _telling = self.inner.telling.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.state.load();
        if current.1.as_ref() == Some(state) {
            return;
        }
        let generation = current.0 + 1;
        self.inner.state.store(Arc::new((generation, Some(state.clone()))));
        self.inner.state_generation.store(generation, Ordering::Release);
    }
}

impl<R> SdkRouterBuilder<R>
where
    R: dbroute_sdk::Router + Default + Send + 'static,
{
    /// The router's configuration, handed to its `init` (default: `null`).
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// The connection names its `init` is told about (default: none).
    /// [`SdkRouterBuilder::build_for`] takes an engine's instead. An
    /// invalid name makes the build fail with [`Error::InvalidName`].
    pub fn connections<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.connections = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
        self
    }

    /// The router's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes a first instance, initialised with the configuration and the
    /// connection names given to [`SdkRouterBuilder::connections`], and
    /// returns the router. Give it to
    /// [`EngineBuilder::add_router`](crate::EngineBuilder::add_router) (with the
    /// names of the engine's connections), or to
    /// [`Engine::set_router`](crate::Engine::set_router).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for an invalid connection name;
    /// [`Error::RouterLoad`] when the router's `init` refuses
    /// ([`LoadError::InitRefused`], with its message) or panics
    /// ([`LoadError::InitFault`]).
    pub fn build(self) -> Result<SdkRouter<R>, Error> {
        let connections = self
            .connections
            .iter()
            .map(|n| ConnectionName::new(n))
            .collect::<Result<Vec<_>>>()?;
        let init_input = abi::init_input(&self.config, &connections);
        let first = instantiate::<R>(&init_input).map_err(|reason| Error::RouterLoad {
            router: self.name.clone(),
            reason,
        })?;
        let pool = Pool::new(init_input);
        let _ = pool.idle.push(first);
        let router = SdkRouter {
            inner: Arc::new(Inner {
                identity: RouterIdentity::native(self.name),
                config: self.config,
                pool: ArcSwap::from_pointee(pool),
                replacing_pool: Mutex::new(()),
                state: ArcSwap::from_pointee((0, None)),
                state_generation: AtomicU64::new(0),
                telling: Mutex::new(()),
            }),
        };
        tracing::info!(router = %router.inner.identity, "router loaded");
        Ok(router)
    }

    /// [`SdkRouterBuilder::build`], telling the router's `init` the
    /// connections registered in `engine` (as
    /// [`Engine::load_router`](crate::Engine::load_router) does for a
    /// WebAssembly router). It is not activated: pass it to
    /// [`Engine::set_router`](crate::Engine::set_router).
    ///
    /// # Errors
    ///
    /// As [`SdkRouterBuilder::build`].
    pub fn build_for(mut self, engine: &Engine) -> Result<SdkRouter<R>, Error> {
        self.connections = engine
            .connection_names()
            .iter()
            .map(ConnectionName::to_string)
            .collect();
        self.build()
    }
}

/// Makes an instance and runs its init with `init_input` (the init JSON a
/// WebAssembly instance gets).
fn instantiate<R>(init_input: &str) -> Result<Box<Held<R>>, LoadError>
where
    R: dbroute_sdk::Router + Default,
{
    let made = catch_unwind(AssertUnwindSafe(|| {
        let mut held = Box::new(Held {
            instance: Instance::<R>::new(),
            told: 0,
        });
        let len = write_input(&mut held.instance, &[init_input.as_bytes()]).map_err(LoadError::InitFault)?;
        match held.instance.init(len) {
            Ok(()) => Ok(held),
            Err(message) => {
                Err(abi::decode_message(message.as_bytes()).map_or_else(LoadError::InitFault, LoadError::InitRefused))
            }
        }
    }));
    made.unwrap_or_else(|payload| Err(LoadError::InitFault(Fault::Panic(panic_message::<R>(payload.as_ref())))))
}

/// Writes `pieces`, one after another, as the instance's next input;
/// returns its length.
#[inline]
fn write_input<R: dbroute_sdk::Router>(instance: &mut Instance<R>, pieces: &[&[u8]]) -> Result<usize, Fault> {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    let Some(buffer) = instance.input(len) else {
        return Err(Fault::InputAllocation { len });
    };
    let mut at = 0;
    for piece in pieces {
        buffer[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    Ok(len)
}

/// What a panic of the router `R` said, and that it was one.
fn panic_message<R>(payload: &(dyn Any + Send)) -> String {
    let said = crate::error::panic_text(payload);
    format!(
        "{} (the dbroute-sdk router {}, run natively; its instance was dropped)",
        abi::cut(said, abi::MAX_MESSAGE_LEN),
        std::any::type_name::<R>()
    )
}
