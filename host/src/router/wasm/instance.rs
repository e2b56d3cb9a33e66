//! Router instances (one wasmtime store each) and the bounded pool that
//! reuses them. An instance is never called from two threads at once and is
//! discarded after any fault.
//!
//! An instance is taken from its thread's keep or from the pool for one
//! call, and kept or returned only if the call did not fault. Idle instances
//! per router (in the shards, plus those threads keep) never exceed the
//! limit, and at most half of it is kept by threads; a thread that exits
//! gives its instances back. A kept instance is used only while its pool is
//! the router's current one (new connections, and the move to optimized
//! code, make a new pool).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use wasmtime::{Caller, Engine, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc};

use super::component::{ComponentFactory, ComponentInstance};
use super::runtime::{Code, RouterLimits, RouterRuntime};
use super::{abi, kept};
use crate::error::{Fault, LoadError};
use crate::name::ConnectionName;
use crate::router::{
    ConnectionStates, MigrateRequest, RelationRequest, RouteDecision, RouteKind, RouteRequest, RouterIdentity,
};
use crate::thread_slot;

/// What a store carries: the limits a call runs under, whether the memory
/// ceiling was hit, how much memory the instance has, and the router's
/// name for its log lines.
pub(crate) struct HostState {
    memory_ceiling: usize,
    ceiling_hit: bool,
    /// The linear memory the instance's memories have grown to, in bytes
    /// (all of them: a component has several).
    memory: usize,
    /// Whether the store runs a component (several core instances,
    /// memories and tables) rather than a core module (one of each).
    component: bool,
    /// The time budget, in clock ticks, and as a duration for its fault.
    budget_ticks: u64,
    time_budget: Duration,
    router: Arc<str>,
}

impl HostState {
    /// The state of a new store of `router`, under the runtime's limits
    /// (a component's memory ceiling when `component`).
    pub(crate) fn new(runtime: &RouterRuntime, router: Arc<str>, component: bool) -> Self {
        let limits = runtime.limits();
        HostState {
            memory_ceiling: if component {
                limits.get_component_memory_ceiling()
            } else {
                limits.get_memory_ceiling()
            },
            ceiling_hit: false,
            memory: 0,
            component,
            budget_ticks: limits.budget_ticks(),
            time_budget: limits.get_time_budget(),
            router,
        }
    }

    /// Starts a call: no memory-ceiling hit left over from an earlier call
    /// (a router may cope with a refused `memory.grow`; a later trap is
    /// then not a memory-limit fault). Returns the time budget in ticks,
    /// for the store's epoch deadline.
    #[inline]
    pub(crate) fn begin_call(&mut self) -> u64 {
        self.ceiling_hit = false;
        self.budget_ticks
    }

    /// The linear memory the instance has, in bytes.
    pub(crate) fn memory(&self) -> usize {
        self.memory
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory.saturating_sub(current).saturating_add(desired);
        if total > self.memory_ceiling {
            self.ceiling_hit = true;
            return Ok(false);
        }
        self.memory = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        if self.component { 64 } else { 1 }
    }
    fn tables(&self) -> usize {
        if self.component { 64 } else { 8 }
    }
    fn memories(&self) -> usize {
        if self.component { 16 } else { 1 }
    }
}

/// The linker every core-module router is instantiated with: `dbroute.log`
/// only. For modules of `engine` (one per compiler tier).
pub(crate) fn linker(engine: &Engine) -> Linker<HostState> {
    let mut linker = Linker::new(engine);
    let defined = linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::IMPORT_LOG,
        |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            let Some(memory) = caller.get_export(abi::MEMORY).and_then(|e| e.into_memory()) else {
                return;
            };
            let (level, text) = abi::log_message(memory.data(&caller), level, ptr, len);
            let router = caller.data().router.clone();
            match level {
                tracing::Level::ERROR => tracing::error!(router = %router, "{text}"),
                tracing::Level::WARN => tracing::warn!(router = %router, "{text}"),
                tracing::Level::INFO => tracing::info!(router = %router, "{text}"),
                tracing::Level::DEBUG => tracing::debug!(router = %router, "{text}"),
                _ => tracing::trace!(router = %router, "{text}"),
            }
        },
    );
    // Defining one function in an empty linker cannot clash.
    debug_assert!(defined.is_ok());
    linker
}

/// Turns a wasmtime error from a router call into a fault.
pub(crate) fn classify(error: &wasmtime::Error, state: &HostState) -> Fault {
    if state.ceiling_hit {
        return Fault::MemoryLimit {
            limit: state.memory_ceiling,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Timeout {
            budget: state.time_budget,
        },
        Some(Trap::StackOverflow) => Fault::StackOverflow,
        Some(trap) => Fault::Trap(trap.to_string()),
        // A host function's error (a function the sandbox does not grant)
        // or a canonical ABI check: its own message, not the backtrace
        // wrapped around it.
        None => Fault::Trap(abi::cut(&error.root_cause().to_string(), 1000)),
    }
}

/// A store for instances of `module`, under the runtime's limits.
pub(crate) fn new_store(runtime: &RouterRuntime, module: &Module, router: Arc<str>) -> Store<HostState> {
    let mut store = Store::new(module.engine(), HostState::new(runtime, router, false));
    store.limiter(|state| state);
    store.set_epoch_deadline(runtime.limits().budget_ticks());
    store
}

/// What a router's instances are told at init: the ABI's JSON (for core
/// modules, and to compare), and its parts (for components).
#[derive(Debug, Clone)]
pub(crate) struct Init {
    abi_json: String,
    config_text: String,
    connections: Vec<String>,
}

impl PartialEq for Init {
    fn eq(&self, other: &Self) -> bool {
        self.abi_json == other.abi_json
    }
}

impl Init {
    /// The init of a router configured with `config`, for `connections`.
    pub(crate) fn new(config: &serde_json::Value, connections: &[ConnectionName]) -> Self {
        Init {
            abi_json: abi::init_input(config, connections),
            config_text: config.to_string(),
            connections: connections.iter().map(ConnectionName::to_string).collect(),
        }
    }

    /// The configuration as JSON text.
    pub(crate) fn config_text(&self) -> &str {
        &self.config_text
    }

    /// The connections' names.
    pub(crate) fn connection_names(&self) -> Vec<String> {
        self.connections.clone()
    }
}

/// One live instance of a router: a core module's or a component's.
pub(crate) struct RouterInstance {
    body: Body,
    /// The generation of the connections' state this instance was told
    /// (ABI 1.2); 0: none yet.
    told: u64,
    /// The calls it took (for recycling).
    calls: u64,
}

#[allow(
    clippy::large_enum_variant,
    reason = "instances are boxed in their pool; boxing a variant would add a pointer chase to every call"
)]
enum Body {
    Core(CoreInstance),
    Component(ComponentInstance),
}

/// A core module's instance: its store, and its exports looked up once.
struct CoreInstance {
    store: Store<HostState>,
    calls: Calls,
}

/// An instance's exports. Kept apart from the store so a call can borrow
/// both (cloning a `TypedFunc` is not free).
struct Calls {
    memory: Memory,
    input: TypedFunc<i32, i32>,
    read: Option<TypedFunc<(i32, i32), i64>>,
    write: Option<TypedFunc<(i32, i32), i64>>,
    relation: Option<TypedFunc<(i32, i32), i32>>,
    migrate: Option<TypedFunc<(i32, i32), i32>>,
    state: Option<TypedFunc<(i32, i32), i32>>,
}

/// Starts a call: a fresh time budget, and no memory-ceiling hit left over
/// from an earlier call.
#[inline]
fn start_call(store: &mut Store<HostState>) {
    let ticks = store.data_mut().begin_call();
    store.set_epoch_deadline(ticks);
}

/// Writes `pieces` as the next call's input; returns its pointer and length.
#[inline]
fn write_input(store: &mut Store<HostState>, calls: &Calls, pieces: &[&[u8]]) -> Result<(i32, i32), Fault> {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    let Ok(len32) = i32::try_from(len) else {
        return Err(Fault::InputAllocation { len });
    };
    let ptr = calls
        .input
        .call(&mut *store, len32)
        .map_err(|e| classify(&e, store.data()))?;
    if ptr == 0 {
        return Err(Fault::InputAllocation { len });
    }
    let data = calls.memory.data_mut(&mut *store);
    let start = ptr as u32 as usize;
    let Some(target) = start.checked_add(len).and_then(|end| data.get_mut(start..end)) else {
        return Err(Fault::OutOfBounds {
            ptr: ptr as u32,
            len: len as u32,
            memory: data.len(),
        });
    };
    let mut at = 0;
    for piece in pieces {
        target[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    Ok((ptr, len32))
}

impl CoreInstance {
    /// Calls an export that takes an input and returns an `i32`.
    fn call_i32(&mut self, func: TypedFunc<(i32, i32), i32>, input: &str) -> Result<i32, Fault> {
        let CoreInstance { store, calls } = self;
        start_call(store);
        let (ptr, len) = write_input(store, calls, &[input.as_bytes()])?;
        func.call(&mut *store, (ptr, len))
            .map_err(|e| classify(&e, store.data()))
    }
}

impl RouterInstance {
    /// Calls `db_for_read` / `db_for_write`; no opinion when a core module
    /// lacks the export.
    #[inline]
    pub(crate) fn decide(&mut self, op: &RouteRequest<'_>) -> Result<RouteDecision, Fault> {
        self.calls += 1;
        match &mut self.body {
            Body::Core(core) => {
                let CoreInstance { store, calls } = core;
                let func = match op.kind {
                    RouteKind::Read => calls.read.as_ref(),
                    RouteKind::Write => calls.write.as_ref(),
                };
                let Some(func) = func else {
                    return Ok(RouteDecision::NoOpinion);
                };
                let input = abi::decision_input(op.kind, op.model, op.hints, op.origin);
                start_call(store);
                let (ptr, len) = write_input(store, calls, input.pieces())?;
                let r = func
                    .call(&mut *store, (ptr, len))
                    .map_err(|e| classify(&e, store.data()))?;
                abi::decode_decision(r, calls.memory.data(&*store))
            }
            Body::Component(component) => component.decide(op.kind, op.model, op.hints, op.origin.cloned()),
        }
    }

    /// The generation of the connections' state this instance was told (0:
    /// none).
    #[inline]
    pub(crate) fn told(&self) -> u64 {
        self.told
    }

    /// Tells the instance `states`, the state of `generation`. The router's
    /// caller checked that the router is of ABI 1.2 (or a component).
    #[cold]
    pub(crate) fn tell_state(&mut self, generation: u64, states: &ConnectionStates) -> Result<(), Fault> {
        match &mut self.body {
            Body::Core(core) => {
                if let Some(func) = core.calls.state.clone() {
                    abi::decode_state(core.call_i32(func, states.abi_json())?)?;
                }
            }
            Body::Component(component) => component.tell_state(states)?,
        }
        self.told = generation;
        Ok(())
    }

    /// Calls `allow_relation`.
    pub(crate) fn allow_relation(&mut self, relation: &RelationRequest<'_>) -> Result<Option<bool>, Fault> {
        self.calls += 1;
        let a = (relation.a.model, relation.a.db);
        let b = (relation.b.model, relation.b.db);
        match &mut self.body {
            Body::Core(core) => {
                let Some(func) = core.calls.relation.clone() else {
                    return Ok(None);
                };
                let value = core.call_i32(func, &abi::relation_input(a, b, relation.hints))?;
                abi::decode_allow(abi::ALLOW_RELATION, value)
            }
            Body::Component(component) => component.allow_relation(a, b, relation.hints),
        }
    }

    /// Calls `allow_migrate`.
    pub(crate) fn allow_migrate(&mut self, migration: &MigrateRequest<'_>) -> Result<Option<bool>, Fault> {
        self.calls += 1;
        match &mut self.body {
            Body::Core(core) => {
                let Some(func) = core.calls.migrate.clone() else {
                    return Ok(None);
                };
                let input = abi::migrate_input(migration.db, migration.target, migration.hints);
                let value = core.call_i32(func, &input)?;
                abi::decode_allow(abi::ALLOW_MIGRATE, value)
            }
            Body::Component(component) => component.allow_migrate(migration.db, migration.target, migration.hints),
        }
    }

    /// Whether a component declared itself deterministic (`None` for a
    /// core module: its probe read that).
    pub(crate) fn component_deterministic(&mut self) -> Option<Result<bool, Fault>> {
        match &mut self.body {
            Body::Core(_) => None,
            Body::Component(component) => Some(component.deterministic()),
        }
    }

    /// Whether the instance has served its time: it took as many calls, or
    /// grew as much memory, as `limits` let an instance before it is
    /// replaced by a fresh one.
    #[inline]
    pub(crate) fn worn_out(&self, limits: &RouterLimits) -> bool {
        let memory = match &self.body {
            Body::Core(core) => core.store.data().memory(),
            Body::Component(component) => component.memory(),
        };
        self.calls >= limits.get_recycle_after_calls() || memory > limits.get_recycle_above_memory()
    }
}

/// How a factory makes instances: of a core module, or of a component.
enum Maker {
    Core(InstancePre<HostState>),
    Component(ComponentFactory),
}

/// Everything needed to make instances of one compiled router with one set
/// of connections: the type-checked code, and the init.
pub(crate) struct InstanceFactory {
    pub(crate) runtime: RouterRuntime,
    maker: Maker,
    pub(crate) identity: RouterIdentity,
    pub(crate) init: Init,
}

impl InstanceFactory {
    pub(crate) fn new(
        runtime: &RouterRuntime,
        code: &Code,
        identity: RouterIdentity,
        init: Init,
    ) -> Result<Self, LoadError> {
        let maker = match code {
            Code::Module(module) => Maker::Core(
                linker(module.engine())
                    .instantiate_pre(module)
                    .map_err(|e| LoadError::Instantiate(e.to_string()))?,
            ),
            Code::Component(component) => Maker::Component(ComponentFactory::new(component)?),
        };
        Ok(InstanceFactory {
            runtime: runtime.clone(),
            maker,
            identity,
            init,
        })
    }

    /// The compiled code instances are made of.
    pub(crate) fn code(&self) -> Code {
        match &self.maker {
            Maker::Core(pre) => Code::Module(pre.module().clone()),
            Maker::Component(factory) => Code::Component(factory.component().clone()),
        }
    }

    /// Makes and initialises an instance.
    pub(crate) fn instantiate(&self) -> Result<RouterInstance, LoadError> {
        let router: Arc<str> = Arc::from(self.identity.name());
        let body = match &self.maker {
            Maker::Core(pre) => Body::Core(self.instantiate_core(pre, router)?),
            Maker::Component(factory) => Body::Component(factory.instantiate(&self.runtime, router, &self.init)?),
        };
        Ok(RouterInstance {
            body,
            told: 0,
            calls: 0,
        })
    }

    fn instantiate_core(&self, pre: &InstancePre<HostState>, router: Arc<str>) -> Result<CoreInstance, LoadError> {
        let mut store = new_store(&self.runtime, pre.module(), router);
        let instance = pre.instantiate(&mut store).map_err(|e| {
            let fault = classify(&e, store.data());
            match fault {
                Fault::MemoryLimit { .. } | Fault::Timeout { .. } => LoadError::Instantiate(fault.to_string()),
                _ => LoadError::Instantiate(e.to_string()),
            }
        })?;
        let typed =
            |store: &mut Store<HostState>, name: &str| instance.get_typed_func::<(i32, i32), i64>(store, name).ok();
        let allow =
            |store: &mut Store<HostState>, name: &str| instance.get_typed_func::<(i32, i32), i32>(store, name).ok();
        let memory = instance
            .get_memory(&mut store, abi::MEMORY)
            .ok_or(LoadError::MissingExport(abi::MEMORY))?;
        let input = instance
            .get_typed_func::<i32, i32>(&mut store, abi::INPUT)
            .map_err(|_| LoadError::MissingExport(abi::INPUT))?;
        let read = typed(&mut store, abi::DB_FOR_READ);
        let write = typed(&mut store, abi::DB_FOR_WRITE);
        let relation = allow(&mut store, abi::ALLOW_RELATION);
        let migrate = allow(&mut store, abi::ALLOW_MIGRATE);
        let init = typed(&mut store, abi::INIT);
        let state = allow(&mut store, abi::STATE);
        let calls = Calls {
            memory,
            input,
            read,
            write,
            relation,
            migrate,
            state,
        };
        if let Some(init) = init {
            start_call(&mut store);
            let (ptr, len) =
                write_input(&mut store, &calls, &[self.init.abi_json.as_bytes()]).map_err(LoadError::InitFault)?;
            let r = init
                .call(&mut store, (ptr, len))
                .map_err(|e| LoadError::InitFault(classify(&e, store.data())))?;
            abi::decode_init(r, calls.memory.data(&store))
                .map_err(LoadError::InitFault)?
                .map_err(LoadError::InitRefused)?;
        }
        Ok(CoreInstance { store, calls })
    }
}

/// A bounded pool of idle instances.
///
/// Idle instances are in two places: in the pool's shards, one per thread
/// slot (see [`thread_slot`]), taken and returned lock-free; and kept by the
/// threads that route (see [`kept`](super::kept)): a thread keeps the
/// instance it last used, so its next decision writes no shared memory.
/// A thread uses the instance it keeps, else takes from its own shard,
/// else from any other; when none of those has one, a new instance is
/// made (an instance another thread keeps is not lent, so `idle` may be
/// above zero then).
///
/// Counting: `idle` is the number of instances in the shards plus those
/// kept by threads (a kept instance counts as idle even during its
/// thread's call), and never exceeds the runtime's idle limit; at most half
/// of the limit may be kept by threads, so the shards always have room for
/// the rest. An instance that does not fit is dropped.
pub(crate) struct InstancePool {
    pub(crate) factory: InstanceFactory,
    /// Unique among all pools of the process: what a kept instance is
    /// matched with.
    id: u64,
    shards: Box<[ArrayQueue<Box<RouterInstance>>]>,
    limit: usize,
    idle: AtomicUsize,
    /// How many of `idle` threads keep; at most `keep_limit`.
    kept: AtomicUsize,
    keep_limit: usize,
}

/// The source of pool ids.
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// Adds one to `counter` unless it is at `limit`.
fn reserve(counter: &AtomicUsize, limit: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
        .is_ok()
}

impl InstancePool {
    pub(crate) fn new(factory: InstanceFactory) -> Self {
        // The idle limit is split exactly: as many shards as slots (fewer
        // when the limit is smaller), their capacities adding up to it.
        let limit = factory.runtime.limits().get_idle_instances().max(1);
        let count = limit.min(thread_slot::SLOTS);
        let shards = (0..count)
            .map(|i| ArrayQueue::new(limit / count + usize::from(i < limit % count)))
            .collect();
        InstancePool {
            factory,
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            shards,
            limit,
            idle: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            keep_limit: limit / 2,
        }
    }

    /// The id kept instances of this pool carry.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// This thread's shard.
    #[inline]
    fn home(&self) -> &ArrayQueue<Box<RouterInstance>> {
        let slot = thread_slot::current().index();
        // No division on the hot path: shards are as many as slots, unless
        // the idle limit is smaller.
        let shard = if slot < self.shards.len() {
            slot
        } else {
            slot % self.shards.len()
        };
        &self.shards[shard]
    }

    /// An idle instance from the shards (this thread's first), else a new
    /// one.
    fn take(&self) -> Result<Box<RouterInstance>, Fault> {
        let home = self.home();
        if let Some(instance) = home.pop().or_else(|| self.shards.iter().find_map(ArrayQueue::pop)) {
            self.idle.fetch_sub(1, Ordering::AcqRel);
            return Ok(instance);
        }
        self.factory
            .instantiate()
            .map(Box::new)
            .map_err(|e| Fault::Trap(format!("a new instance could not start: {e}")))
    }

    /// Puts an idle instance in the shards, if the idle limit allows.
    pub(crate) fn offer(&self, instance: Box<RouterInstance>) {
        if reserve(&self.idle, self.limit) {
            self.push(instance);
        }
    }

    /// Puts `instances` in the shards, one shard after another, as far as
    /// the idle limit allows (the rest are dropped). Unlike
    /// [`InstancePool::offer`], it does not touch this thread's shard, so a
    /// thread that never routes (the optimizer's) leases no thread slot.
    pub(crate) fn offer_spread(&self, instances: Vec<RouterInstance>) {
        for (i, instance) in instances.into_iter().enumerate() {
            if !reserve(&self.idle, self.limit) {
                return;
            }
            let start = i % self.shards.len();
            let shards = self.shards[start..].iter().chain(&self.shards[..start]);
            self.place(shards, Box::new(instance));
        }
    }

    /// Puts an instance already counted as idle in the shards: this
    /// thread's, else any with room (the count guarantees one has room).
    fn push(&self, instance: Box<RouterInstance>) {
        self.place(std::iter::once(self.home()).chain(self.shards.iter()), instance);
    }

    /// Puts an instance already counted as idle in the first of `shards`
    /// with room.
    fn place<'a>(
        &'a self,
        shards: impl Iterator<Item = &'a ArrayQueue<Box<RouterInstance>>>,
        mut instance: Box<RouterInstance>,
    ) {
        for shard in shards {
            match shard.push(instance) {
                Ok(()) => return,
                Err(back) => instance = back,
            }
        }
        // The count says some shard has room, but other threads' pops and
        // pushes can move it behind this scan: dropping (and uncounting)
        // the instance is the safe answer.
        self.idle.fetch_sub(1, Ordering::AcqRel);
    }

    /// After a call that did not fault: this thread keeps the instance if
    /// the limits allow, else it goes back to the shards.
    fn give_back(self: &Arc<Self>, instance: Box<RouterInstance>) {
        if !reserve(&self.idle, self.limit) {
            return;
        }
        if reserve(&self.kept, self.keep_limit) {
            if let Err(refused) = kept::keep(Arc::downgrade(self), self.id, instance) {
                self.kept.fetch_sub(1, Ordering::AcqRel);
                self.push(refused);
            }
        } else {
            self.push(instance);
        }
    }

    /// A kept instance leaves its thread for good: back to the shards
    /// (`idle`) or dropped.
    pub(crate) fn forget_kept(&self, instance: Option<Box<RouterInstance>>) {
        self.kept.fetch_sub(1, Ordering::AcqRel);
        match instance {
            Some(instance) => self.push(instance),
            None => {
                self.idle.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Runs `call` on an instance from the pool; afterwards the instance is
    /// idle again (kept by this thread, or in the shards), unless the call
    /// faulted: then it is dropped.
    pub(crate) fn with_instance<T>(
        self: &Arc<Self>,
        call: impl FnOnce(&mut RouterInstance) -> Result<T, Fault>,
    ) -> Result<T, Fault> {
        let mut instance = self.take()?;
        let result = call(&mut instance);
        if result.is_ok() && !instance.worn_out(self.factory.runtime.limits()) {
            self.give_back(instance);
        }
        result
    }

    /// Idle instances now: in the shards and kept by threads.
    pub(crate) fn idle(&self) -> usize {
        self.idle.load(Ordering::Acquire)
    }

    /// The idle limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}
