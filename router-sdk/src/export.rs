//! What the exports do, behind `export_router!`: the instance's state, the
//! dispatch from input bytes to the router's methods, and the ABI's result
//! encoding.
//!
//! Everything here but the `wasm` shims is plain safe Rust, also run
//! natively by the tests, by [`testing`](crate::testing) and by
//! [`native`](crate::native).

// Natively, the ABI's result encoding is used by the unit tests only.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use crate::Router;
use crate::decision::Choice;
use crate::input::{Init, Migration, OpKind, Operation, Relation};
use crate::json::{self, InputError};

/// What a read, write or init call answered (its text comes with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reply {
    /// No opinion (for init: ready). No text.
    NoOpinion,
    /// Use the connection the text names.
    Use,
    /// Refused, with the text as the message.
    Refuse,
}

/// Routes one read or write: parses `input`, asks `router`, and hands the
/// reply and its text (the connection name or the refusal message; empty
/// for no opinion) to `answer`. Malformed input is refused.
///
/// The text is borrowed when the decision borrows it (from a literal, the
/// router or the input): both stay as they are until the next call into the
/// instance, as long as the ABI needs the text.
#[inline(always)]
pub(crate) fn decide<R: Router, T>(
    router: &mut R,
    kind: OpKind,
    input: &[u8],
    answer: impl FnOnce(Reply, Cow<'_, str>) -> T,
) -> T {
    let op = match json::text(input).and_then(|text| Operation::parse(kind, text)) {
        Ok(op) => op,
        Err(e) => {
            let mut message = String::new();
            e.write_to(&mut message);
            return answer(Reply::Refuse, Cow::Owned(message));
        }
    };
    let decision = match kind {
        OpKind::Read => router.db_for_read(&op),
        OpKind::Write => router.db_for_write(&op),
    };
    match decision.0 {
        Choice::NoOpinion => answer(Reply::NoOpinion, Cow::Borrowed("")),
        Choice::Use(name) => answer(Reply::Use, name),
        Choice::Refuse(message) => answer(Reply::Refuse, message),
    }
}

/// Where the host reads `text`: where it is when borrowed, else in `buffer`,
/// which takes it.
#[inline(always)]
fn place(buffer: &mut String, text: Cow<'_, str>) -> (usize, usize) {
    match text {
        Cow::Borrowed(text) => (text.as_ptr() as usize, text.len()),
        Cow::Owned(text) => {
            *buffer = text;
            (buffer.as_ptr() as usize, buffer.len())
        }
    }
}

/// Initialises `router`; a refusal's message is left in `out`.
pub(crate) fn init<R: Router>(router: &mut R, input: &[u8], out: &mut String) -> Reply {
    out.clear();
    let init = match json::text(input).and_then(Init::parse) {
        Ok(init) => init,
        Err(e) => {
            e.write_to(out);
            return Reply::Refuse;
        }
    };
    match router.init(&init.config, &init.connections) {
        Ok(()) => Reply::NoOpinion,
        Err(message) => {
            *out = message;
            Reply::Refuse
        }
    }
}

/// Tells `router` the connections' state.
pub(crate) fn state<R: Router>(router: &mut R, input: &[u8]) -> Result<(), InputError> {
    let state = crate::state::parse(json::text(input)?)?;
    router.state(state);
    Ok(())
}

/// `dbroute_abi_minor` of the router `R`: 2 when it reads the connections'
/// state (ABI 1.2), else 1.
pub(crate) const fn abi_minor<R: Router>() -> i32 {
    if R::CONNECTION_STATE { crate::ABI_MINOR } else { 1 }
}

/// Answers `allow_relation`.
pub(crate) fn relation<R: Router>(router: &mut R, input: &[u8]) -> Result<Option<bool>, InputError> {
    let rel = Relation::parse(json::text(input)?)?;
    Ok(router.allow_relation(&rel))
}

/// Answers `allow_migrate`.
pub(crate) fn migrate<R: Router>(router: &mut R, input: &[u8]) -> Result<Option<bool>, InputError> {
    let m = Migration::parse(json::text(input)?)?;
    Ok(router.allow_migrate(&m))
}

/// `allow_relation` and `allow_migrate`'s encoding: 1 yes, 0 no, -1 no
/// opinion.
pub(crate) fn encode_permission(answer: Option<bool>) -> i32 {
    match answer {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    }
}

/// The ABI's `i64` result for text at `ptr`, `len` bytes long: `ptr << 32 |
/// len`, with the sign bit set for a refusal. `None` when `ptr` or `len` do
/// not fit (a pointer must be below 2 GiB to leave the sign bit free).
#[inline(always)]
pub(crate) fn encode_text(ptr: usize, len: usize, refusal: bool) -> Option<i64> {
    let ptr = u32::try_from(ptr).ok().filter(|&p| p <= i32::MAX as u32)?;
    let len = u32::try_from(len).ok()?;
    let r = (i64::from(ptr) << 32) | i64::from(len);
    Some(if refusal { r | i64::MIN } else { r })
}

/// Stops the call: a trap in a module (the host reports a router fault),
/// a panic natively. In a module, `reason` goes to the host's log first.
pub(crate) fn fault(reason: &'static str) -> ! {
    #[cfg(target_arch = "wasm32")]
    {
        crate::ffi::host_log(crate::Level::Error as i32, reason);
        core::arch::wasm32::unreachable()
    }
    #[cfg(not(target_arch = "wasm32"))]
    panic!("router fault: {reason}")
}

/// The state of one module instance: the router (once initialised), the
/// input buffer the host writes into, and the answer the host reads.
pub struct Instance<R> {
    router: Option<R>,
    input: Vec<u8>,
    /// An answer's text that the SDK owns (a refusal's message built at
    /// run time, an owned connection name).
    answer: String,
    /// Where the last answer's text is (in `answer`, or what the decision
    /// borrowed): address and length.
    answer_at: (usize, usize),
}

impl<R> core::fmt::Debug for Instance<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Instance")
            .field("initialised", &self.router.is_some())
            .field("input_capacity", &self.input.len())
            .finish_non_exhaustive()
    }
}

impl<R> Instance<R> {
    /// An instance before its first call.
    pub(crate) const fn new() -> Self {
        Instance {
            router: None,
            input: Vec::new(),
            answer: String::new(),
            answer_at: (0, 0),
        }
    }

    /// `dbroute_input`: the address of at least `len` writable bytes, or
    /// `None` when they cannot be allocated. The buffer only grows, so after
    /// the first calls this neither allocates nor clears memory.
    pub(crate) fn input_buffer(&mut self, len: usize) -> Option<usize> {
        if let Some(more) = len.checked_sub(self.input.len()).filter(|&n| n > 0) {
            self.input.try_reserve_exact(more).ok()?;
            self.input.resize(len, 0);
        }
        Some(self.input.as_mut_ptr() as usize)
    }

    /// The input buffer, as the host sees it.
    pub(crate) fn input_mut(&mut self) -> &mut [u8] {
        &mut self.input
    }

    /// The input buffer's address: the pointer `dbroute_input` returns.
    pub(crate) fn input_address(&self) -> usize {
        self.input.as_ptr() as usize
    }

    /// What the last call wrote into the answer buffer: an owned answer (a
    /// refusal's message, a name the router built). A borrowed answer is
    /// not copied there; [`Instance::answer_at`] says where it is.
    pub(crate) fn answer(&self) -> &str {
        &self.answer
    }

    /// Where the last call's answer is, as the host will read it.
    #[cfg(test)]
    pub(crate) fn answer_at(&self) -> (usize, usize) {
        self.answer_at
    }
}

/// The input of a call: it must be where `dbroute_input` put the buffer, and
/// fit in it. Anything else breaks the ABI, and is a fault.
#[inline(always)]
fn checked_input(buffer: &[u8], ptr: usize, len: usize) -> &[u8] {
    match buffer.get(..len) {
        Some(input) if ptr == buffer.as_ptr() as usize => input,
        _ => fault("input is not in the buffer dbroute_input returned"),
    }
}

impl<R: Router> Instance<R> {
    /// `dbroute_init`: makes the router and initialises it. Refused: the
    /// instance stays uninitialised, and any later call faults.
    pub(crate) fn init(&mut self, ptr: usize, len: usize) -> Reply
    where
        R: Default,
    {
        let input = checked_input(&self.input, ptr, len);
        let mut router = R::default();
        let reply = init(&mut router, input, &mut self.answer);
        self.answer_at = (self.answer.as_ptr() as usize, self.answer.len());
        self.router = (reply == Reply::NoOpinion).then_some(router);
        reply
    }

    #[inline(always)]
    fn parts(&mut self, ptr: usize, len: usize) -> (&mut R, &[u8], &mut String) {
        let Instance {
            router, input, answer, ..
        } = self;
        let Some(router) = router.as_mut() else {
            fault("router called before dbroute_init succeeded");
        };
        (router, checked_input(input, ptr, len), answer)
    }

    /// `db_for_read` and `db_for_write`.
    #[inline(always)]
    pub(crate) fn decide(&mut self, kind: OpKind, ptr: usize, len: usize) -> Reply {
        let (reply, at) = self.decide_with(kind, ptr, len, |reply, text, buffer| (reply, place(buffer, text)));
        self.answer_at = at;
        reply
    }

    /// `db_for_read` and `db_for_write`, handing the reply, its text and
    /// the answer buffer to `answer` (which [`Instance::decide`] places the
    /// text with, and [`native`](crate::native) reads it from).
    #[inline(always)]
    pub(crate) fn decide_with<T>(
        &mut self,
        kind: OpKind,
        ptr: usize,
        len: usize,
        answer: impl FnOnce(Reply, Cow<'_, str>, &mut String) -> T,
    ) -> T {
        let (router, input, buffer) = self.parts(ptr, len);
        decide(router, kind, input, |reply, text| answer(reply, text, buffer))
    }

    /// `allow_relation`, encoded.
    pub(crate) fn relation(&mut self, ptr: usize, len: usize) -> i32 {
        encode_permission(self.allow_relation(ptr, len))
    }

    /// `allow_relation`'s answer; malformed input is a fault.
    pub(crate) fn allow_relation(&mut self, ptr: usize, len: usize) -> Option<bool> {
        let (router, input, _) = self.parts(ptr, len);
        match relation(router, input) {
            Ok(answer) => answer,
            Err(_) => fault("malformed allow_relation input"),
        }
    }

    /// `dbroute_state`: 0 once the router has the state; malformed input
    /// is a fault.
    pub(crate) fn state(&mut self, ptr: usize, len: usize) -> i32 {
        let (router, input, _) = self.parts(ptr, len);
        match state(router, input) {
            Ok(()) => 0,
            Err(_) => fault("malformed dbroute_state input"),
        }
    }

    /// `allow_migrate`, encoded.
    pub(crate) fn migrate(&mut self, ptr: usize, len: usize) -> i32 {
        encode_permission(self.allow_migrate(ptr, len))
    }

    /// `allow_migrate`'s answer; malformed input is a fault.
    pub(crate) fn allow_migrate(&mut self, ptr: usize, len: usize) -> Option<bool> {
        let (router, input, _) = self.parts(ptr, len);
        match migrate(router, input) {
            Ok(answer) => answer,
            Err(_) => fault("malformed allow_migrate input"),
        }
    }

    /// The ABI's result for `reply`, pointing at the answer's text.
    #[inline(always)]
    pub(crate) fn result(&self, reply: Reply) -> i64 {
        let (ptr, len) = self.answer_at;
        match reply {
            Reply::NoOpinion => 0,
            Reply::Use | Reply::Refuse => encode_text(ptr, len, reply == Reply::Refuse)
                .unwrap_or_else(|| fault("answer is out of the ABI's address range")),
        }
    }
}

/// The functions the exports of `export_router!` call: wasm32 only.
#[cfg(target_arch = "wasm32")]
pub mod wasm {
    use super::OpKind;
    use crate::Router;
    use crate::ffi::Slot;

    // The ABI's i32 arguments are addresses and lengths: unsigned.
    fn addr(n: i32) -> usize {
        n as u32 as usize
    }

    /// `dbroute_input`.
    pub fn input<R>(slot: &Slot<R>, len: i32) -> i32 {
        slot.with(|i| i.input_buffer(addr(len))).map_or(0, |ptr| ptr as i32)
    }

    /// `dbroute_init`.
    pub fn init<R: Router + Default>(slot: &Slot<R>, ptr: i32, len: i32) -> i64 {
        slot.with(|i| {
            let reply = i.init(addr(ptr), addr(len));
            i.result(reply)
        })
    }

    /// `db_for_read`.
    pub fn read<R: Router>(slot: &Slot<R>, ptr: i32, len: i32) -> i64 {
        slot.with(|i| {
            let reply = i.decide(OpKind::Read, addr(ptr), addr(len));
            i.result(reply)
        })
    }

    /// `db_for_write`.
    pub fn write<R: Router>(slot: &Slot<R>, ptr: i32, len: i32) -> i64 {
        slot.with(|i| {
            let reply = i.decide(OpKind::Write, addr(ptr), addr(len));
            i.result(reply)
        })
    }

    /// `allow_relation`.
    pub fn relation<R: Router>(slot: &Slot<R>, ptr: i32, len: i32) -> i32 {
        slot.with(|i| i.relation(addr(ptr), addr(len)))
    }

    /// `allow_migrate`.
    pub fn migrate<R: Router>(slot: &Slot<R>, ptr: i32, len: i32) -> i32 {
        slot.with(|i| i.migrate(addr(ptr), addr(len)))
    }

    /// `dbroute_state`.
    pub fn state<R: Router>(slot: &Slot<R>, ptr: i32, len: i32) -> i32 {
        slot.with(|i| i.state(addr(ptr), addr(len)))
    }

    /// `dbroute_abi_minor`: 2 for a router that reads the connections'
    /// state, else 1.
    pub fn abi_minor<R: Router>() -> i32 {
        super::abi_minor::<R>()
    }

    /// `dbroute_deterministic`.
    pub fn deterministic<R: Router>() -> i32 {
        i32::from(R::DETERMINISTIC)
    }

    /// The panic handler of `no_std_runtime!`: tell the host, then trap.
    pub fn panicked() -> ! {
        super::fault("the router panicked")
    }
}
