//! Run a router natively, as a host runs its module: for a host that links
//! the router's crate instead of loading its WebAssembly build (the dbroute
//! host's `SdkRouter` does).
//!
//! An [`Instance`] is what one instance of the module holds: the router, an
//! input buffer and the answer. It is driven as the module's exports are:
//! write a call's input into [`Instance::input`] (`dbroute_input`), then
//! [`init`](Instance::init) once (`dbroute_init`), then ask
//! [`decide`](Instance::decide), [`allow_relation`](Instance::allow_relation)
//! and [`allow_migrate`](Instance::allow_migrate). These run the code the
//! exports of [`export_router!`](crate::export_router) run (the same
//! parser, the same dispatch), so the answers are the module's.
//!
//! Where the module would trap, an `Instance` panics: a call before a
//! successful init, an input longer than the buffer, malformed
//! `allow_relation` or `allow_migrate` input, and any panic of the router
//! itself. Discard the instance then, as a host discards a trapped one:
//! the router's state may be half changed.
//!
//! ```
//! use dbroute_sdk::native::{Instance, Reply};
//! use dbroute_sdk::prelude::*;
//! use dbroute_sdk::OpKind;
//!
//! #[derive(Default)]
//! struct ReplicaRouter;
//!
//! impl Router for ReplicaRouter {
//!     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
//!         Decision::use_connection("replica")
//!     }
//! }
//!
//! /// Writes `input` where the next call reads it; returns its length.
//! fn write(instance: &mut Instance<ReplicaRouter>, input: &str) -> usize {
//!     let buffer = instance.input(input.len()).expect("memory for the input");
//!     buffer.copy_from_slice(input.as_bytes());
//!     input.len()
//! }
//!
//! let mut instance = Instance::<ReplicaRouter>::new();
//! let len = write(&mut instance, r#"{"config":null,"connections":["default","replica"]}"#);
//! assert_eq!(instance.init(len), Ok(()));
//!
//! let len = write(&mut instance, r#"{"op":"read","model":{"name":"User"}}"#);
//! let answer = instance.decide(OpKind::Read, len, |reply, text| (reply, text.to_owned()));
//! assert_eq!(answer, (Reply::Use, "replica".to_owned()));
//! ```

use crate::export;
use crate::{OpKind, Router};

pub use crate::export::Reply;

/// One instance of a router, run natively: the router (once initialised),
/// its input buffer and its answer. See the [module](self) for how to
/// drive it.
pub struct Instance<R>(export::Instance<R>);

impl<R> Instance<R> {
    /// An instance before its first call: no router yet, an empty input
    /// buffer.
    pub const fn new() -> Self {
        Instance(export::Instance::new())
    }
}

impl<R> Default for Instance<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> core::fmt::Debug for Instance<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.0, f)
    }
}

impl<R: Router> Instance<R> {
    /// `dbroute_input`: the buffer to write the next call's input into,
    /// exactly `len` bytes, or `None` when they cannot be allocated. The
    /// buffer only grows: after the first calls this allocates nothing.
    pub fn input(&mut self, len: usize) -> Option<&mut [u8]> {
        self.0.input_buffer(len)?;
        self.0.input_mut().get_mut(..len)
    }

    /// `dbroute_init`, with the first `len` bytes of the input buffer (the
    /// init JSON, `{"config": ..., "connections": [...]}`): makes the
    /// router with `Default` and calls [`Router::init`].
    ///
    /// # Errors
    ///
    /// The refusal's message, when the router refuses (or the input is
    /// malformed). The instance then stays uninitialised.
    ///
    /// # Panics
    ///
    /// When `len` is longer than the input buffer, or the router panics.
    pub fn init(&mut self, len: usize) -> Result<(), &str>
    where
        R: Default,
    {
        let ptr = self.0.input_address();
        match self.0.init(ptr, len) {
            Reply::NoOpinion => Ok(()),
            _ => Err(self.0.answer()),
        }
    }

    /// `db_for_read` or `db_for_write`, with the first `len` bytes of the
    /// input buffer: hands the reply and its text (the connection's name,
    /// the refusal's message, or `""` for no opinion) to `answer`, and
    /// returns what it returns. Malformed input is refused, with a message
    /// saying what and where, as in the module.
    ///
    /// # Panics
    ///
    /// Before a successful [`init`](Instance::init), when `len` is longer
    /// than the input buffer, or when the router panics.
    #[inline]
    pub fn decide<T>(&mut self, kind: OpKind, len: usize, answer: impl FnOnce(Reply, &str) -> T) -> T {
        let ptr = self.0.input_address();
        self.0
            .decide_with(kind, ptr, len, |reply, text, _| answer(reply, &text))
    }

    /// `allow_relation`, with the first `len` bytes of the input buffer:
    /// `Some(true)`, `Some(false)` or `None` (no opinion).
    ///
    /// # Panics
    ///
    /// Before a successful [`init`](Instance::init), when `len` is longer
    /// than the input buffer, when the input is malformed (the module
    /// traps: its answer cannot carry a message), or when the router
    /// panics.
    pub fn allow_relation(&mut self, len: usize) -> Option<bool> {
        let ptr = self.0.input_address();
        self.0.allow_relation(ptr, len)
    }

    /// `dbroute_state`, with the first `len` bytes of the input buffer (the
    /// connections' state JSON, ABI 1.2): hands it to
    /// [`Router::state`]. A host calls it only for a
    /// router whose [`CONNECTION_STATE`](crate::Router::CONNECTION_STATE)
    /// is `true`.
    ///
    /// # Panics
    ///
    /// Before a successful [`init`](Instance::init), when `len` is longer
    /// than the input buffer, when the input is malformed (the module
    /// traps), or when the router panics.
    pub fn state(&mut self, len: usize) {
        let ptr = self.0.input_address();
        self.0.state(ptr, len);
    }

    /// `allow_migrate`, with the first `len` bytes of the input buffer:
    /// `Some(true)`, `Some(false)` or `None` (no opinion).
    ///
    /// # Panics
    ///
    /// As [`allow_relation`](Instance::allow_relation).
    pub fn allow_migrate(&mut self, len: usize) -> Option<bool> {
        let ptr = self.0.input_address();
        self.0.allow_migrate(ptr, len)
    }
}
