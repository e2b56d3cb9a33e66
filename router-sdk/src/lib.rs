//! Write dbroute routers in Rust: a trait impl and one export macro.
//!
//! A router is a WebAssembly module that the dbroute host asks which named
//! database connection each operation should use. This crate implements the
//! router ABI (version 1.2, `docs/ABI.md` in dbroute's repository) so that a router's author writes
//! no pointers, no JSON handling and no `unsafe`:
//!
//! ```
//! use dbroute_sdk::prelude::*;
//!
//! /// Reads go to the replica, writes to the primary.
//! #[derive(Default)]
//! struct ReplicaRouter;
//!
//! impl Router for ReplicaRouter {
//!     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
//!         Decision::use_connection("replica")
//!     }
//!
//!     fn db_for_write(&mut self, _op: &Operation<'_>) -> Decision<'_> {
//!         Decision::use_connection("default")
//!     }
//! }
//!
//! dbroute_sdk::export_router!(ReplicaRouter);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-unknown-unknown`: `cargo build
//! --target wasm32-unknown-unknown --release`, or with a size- and
//! speed-tuned profile of your own (`docs/routers/rust.md` in dbroute's
//! repository gives one).
//!
//! # A guide to the crate
//!
//! - [`Router`] is the policy: [`db_for_read`](Router::db_for_read), and
//!   optionally [`db_for_write`](Router::db_for_write),
//!   [`allow_relation`](Router::allow_relation),
//!   [`allow_migrate`](Router::allow_migrate) and [`init`](Router::init),
//!   which reads the router's [`Config`] and the registered
//!   [`Connections`], and [`state`](Router::state), which is told the
//!   connections' [`State`] (ABI 1.2) when the router declares
//!   [`CONNECTION_STATE`](Router::CONNECTION_STATE).
//! - Its inputs are views of the host's JSON: [`Operation`] (with its
//!   [`Model`] and hints), [`Relation`], [`Migration`]; hints and
//!   configuration are [`Value`]s. They borrow the input; strings are
//!   decoded only when read, and only if they hold escapes.
//! - Its answers are [`Decision`]s (a connection, no opinion, or a refusal
//!   with a message) or `Option<bool>`.
//! - [`export_router!`] makes the module's exports; they exist only when
//!   compiling for `wasm32`, so a router crate also builds natively, as a
//!   plain library for its unit tests, which use [`testing`].
//! - [`native`] runs a router natively the way a host runs its module
//!   (input bytes in, the reply and its text out), for a host that links
//!   the router's crate instead of loading its WebAssembly build: the
//!   dbroute host's `SdkRouter` runs it so, with the module's answers.
//! - [`log()`] writes to the host's log.
//!
//! # Routers without `std`
//!
//! A router may use `std`; on `wasm32-unknown-unknown` that costs some
//! kilobytes, mostly std's panic machinery (a panic still only traps: there
//! is nowhere to print). A smaller router is `no_std` on wasm32 and lets the
//! SDK supply the allocator and a panic handler that traps without
//! formatting anything:
//!
//! ```
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//! use dbroute_sdk::prelude::*; // String, Vec, BTreeMap, format!, ... too
//! # #[derive(Default)] struct ReplicaRouter;
//! # impl Router for ReplicaRouter {
//! #     fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> { Decision::no_opinion() }
//! # }
//!
//! dbroute_sdk::export_router!(ReplicaRouter);
//! dbroute_sdk::no_std_runtime!();
//! # fn main() {}
//! ```
//!
//! # What the exports do
//!
//! - `dbroute_input(len)` returns a buffer that grows as needed and is
//!   reused (0 if it cannot grow). Every call must pass that buffer's
//!   address; anything else breaks the ABI and traps.
//! - `dbroute_init` makes the router with `Default` and calls
//!   [`Router::init`]; a call before a successful init traps.
//! - Answers (connection names, refusal messages) are passed to the host
//!   where they are: a literal, the router's own data, or the input. Text
//!   the router built (a `String`) is kept by the instance. Either way, it
//!   stays valid until the next call.
//! - Malformed input is refused by `db_for_read`, `db_for_write` and
//!   `dbroute_init` (with a message saying what and where), and traps in
//!   `allow_relation` and `allow_migrate`, which cannot carry a message.
//!   Every trap of the SDK first logs its reason at [`Level::Error`].
//! - `allow_relation` and `allow_migrate` are always exported: a router
//!   that does not override them answers "no opinion" (-1).
//!
//! # Reading the input
//!
//! Inputs are read in one pass, without building a tree and without
//! allocating: members the SDK does not know are skipped (and validated),
//! whatever they hold. Should a key repeat in an object, the last one
//! counts. Reads and writes have a fast path for the layout the host writes
//! (compact JSON, members in the order of the ABI's example, no escapes in
//! the model's strings); any other layout is read by the general parser,
//! to the same result.
#![no_std]
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

mod decision;
mod export;
#[allow(unsafe_code)]
mod ffi;
mod input;
mod json;
mod log;
pub mod native;
mod router;
mod state;
pub mod testing;
#[cfg(test)]
mod tests;

pub use decision::Decision;
pub use input::{Config, Connections, Migration, Model, OpKind, Operation, Relation, Side};
pub use json::{Entries, Items, Kind, Strings, Value};
pub use log::{Level, log};
pub use router::Router;
pub use state::{ConnectionState, State};

/// The ABI version this SDK implements, returned by `dbroute_abi_version`.
pub const ABI_VERSION: i32 = 1;

/// The ABI's minor version this SDK reads: 2, for ABI 1.2 (1.1: an
/// operation's `origin`, `allow_migrate` for an app without a model,
/// `allow_relation` with an unsaved side; 1.2: the connections' state). A
/// router's `dbroute_abi_minor` returns it when the router reads the
/// connections' state ([`Router::CONNECTION_STATE`]), else 1: a host tells
/// the state only to routers that read it.
///
/// ```
/// assert_eq!((dbroute_sdk::ABI_VERSION, dbroute_sdk::ABI_MINOR), (1, 2));
/// ```
pub const ABI_MINOR: i32 = 2;

/// What a router's source needs: `use dbroute_sdk::prelude::*;`.
///
/// Besides the SDK's types it brings the `alloc` names a router uses most,
/// so that the same source builds with `std` (natively) and without it (on
/// wasm32, see [`no_std_runtime!`]).
pub mod prelude {
    pub use crate::{
        Config, ConnectionState, Connections, Decision, Level, Migration, Model, Operation, Relation, Router, State,
        Value, log,
    };
    pub use alloc::borrow::{Cow, ToOwned};
    pub use alloc::boxed::Box;
    pub use alloc::collections::BTreeMap;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use alloc::{format, vec};
}

/// Makes the module's exports for the router type `$router`, which
/// implements [`Router`] and [`Default`].
///
/// On `wasm32` it defines `dbroute_abi_version`, `dbroute_abi_minor`,
/// `dbroute_deterministic`, `dbroute_input`, `dbroute_init`,
/// `db_for_read`, `db_for_write`, `allow_relation`, `allow_migrate` and
/// `dbroute_state` (called only when `dbroute_abi_minor` says 2, see
/// [`Router::CONNECTION_STATE`])
/// (rustc exports `memory` by itself),
/// and the `static` holding the instance's state. Elsewhere it only checks
/// that `$router` qualifies, so the crate builds natively for its tests.
/// Use it once per module.
///
/// ```
/// use dbroute_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Everything;
///
/// impl Router for Everything {
///     fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
///         Decision::use_connection("default")
///     }
/// }
///
/// dbroute_sdk::export_router!(Everything);
/// ```
#[macro_export]
macro_rules! export_router {
    ($router:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::{Slot, wasm};

            static INSTANCE: Slot<$router> = Slot::new();

            #[unsafe(no_mangle)]
            extern "C" fn dbroute_abi_version() -> i32 {
                $crate::ABI_VERSION
            }

            #[unsafe(no_mangle)]
            extern "C" fn dbroute_abi_minor() -> i32 {
                wasm::abi_minor::<$router>()
            }

            #[unsafe(no_mangle)]
            extern "C" fn dbroute_deterministic() -> i32 {
                wasm::deterministic::<$router>()
            }

            #[unsafe(no_mangle)]
            extern "C" fn dbroute_input(len: i32) -> i32 {
                wasm::input(&INSTANCE, len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn dbroute_init(ptr: i32, len: i32) -> i64 {
                wasm::init(&INSTANCE, ptr, len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn db_for_read(ptr: i32, len: i32) -> i64 {
                wasm::read(&INSTANCE, ptr, len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn db_for_write(ptr: i32, len: i32) -> i64 {
                wasm::write(&INSTANCE, ptr, len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn allow_relation(ptr: i32, len: i32) -> i32 {
                wasm::relation(&INSTANCE, ptr, len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn allow_migrate(ptr: i32, len: i32) -> i32 {
                wasm::migrate(&INSTANCE, ptr, len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn dbroute_state(ptr: i32, len: i32) -> i32 {
                wasm::state(&INSTANCE, ptr, len)
            }
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            fn exportable<R: $crate::Router + ::core::default::Default>() {}
            exportable::<$router>();
        };
    };
}

/// For a router crate that is `no_std` on wasm32: defines the global
/// allocator (`dlmalloc`, the one `std` uses there) and a panic handler that
/// logs "the router panicked" and traps, with no formatting code.
///
/// Emits nothing on other targets. A crate that links `std` on wasm32 must
/// not use it (std has its own panic handler).
///
/// ```
/// #![cfg_attr(target_arch = "wasm32", no_std)]
/// dbroute_sdk::no_std_runtime!();
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! no_std_runtime {
    () => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[global_allocator]
            static ALLOCATOR: $crate::__private::dlmalloc::GlobalDlmalloc = $crate::__private::dlmalloc::GlobalDlmalloc;

            #[panic_handler]
            fn panic(_: &::core::panic::PanicInfo<'_>) -> ! {
                $crate::__private::wasm::panicked()
            }
        };
    };
}

/// Used by the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::Instance;
    #[cfg(target_arch = "wasm32")]
    pub use crate::export::wasm;
    #[cfg(target_arch = "wasm32")]
    pub use crate::ffi::Slot;
    #[cfg(target_arch = "wasm32")]
    pub use dlmalloc;
}
