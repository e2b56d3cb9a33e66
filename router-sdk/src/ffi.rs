//! The only `unsafe` code of the SDK: the host's `dbroute.log` import and the
//! cell that holds an instance's state between calls. Each has its safe
//! wrapper next to it.

/// Passes a message to the host's log (`dbroute.log`).
#[cfg(target_arch = "wasm32")]
pub(crate) fn host_log(level: i32, message: &str) {
    #[link(wasm_import_module = "dbroute")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn dbroute_log(level: i32, ptr: *const u8, len: usize);
    }
    // SAFETY: the host only reads `len` bytes at `ptr`, during the call; they
    // are a valid `&str` for that long.
    unsafe { dbroute_log(level, message.as_ptr(), message.len()) }
}

#[cfg(target_arch = "wasm32")]
pub use slot::Slot;

#[cfg(target_arch = "wasm32")]
mod slot {
    use core::cell::{Cell, UnsafeCell};
    use core::fmt;

    use crate::export::{Instance, fault};

    /// The state of a module instance, in a `static` of the router's crate
    /// (made by `export_router!`).
    pub struct Slot<R> {
        instance: UnsafeCell<Instance<R>>,
        busy: Cell<bool>,
    }

    // SAFETY: without the `atomics` target feature a wasm32 module runs on
    // one thread, and the host never calls an instance from two threads at
    // once (ABI, "Instances"); `with` refuses re-entrant use.
    #[cfg(not(target_feature = "atomics"))]
    unsafe impl<R> Sync for Slot<R> {}

    impl<R> Slot<R> {
        /// An instance before its first call.
        pub const fn new() -> Self {
            Slot {
                instance: UnsafeCell::new(Instance::new()),
                busy: Cell::new(false),
            }
        }

        /// Runs `f` with exclusive access to the instance. A re-entrant call
        /// (the host calling in while a call runs) is a fault.
        #[inline(always)]
        pub fn with<T>(&self, f: impl FnOnce(&mut Instance<R>) -> T) -> T {
            if self.busy.replace(true) {
                fault("re-entrant call into the router");
            }
            // SAFETY: `busy` was false, so no other reference to the
            // instance exists, and it stays set until this one is gone. (Were
            // `f` to unwind, `busy` would stay set and later calls fault.)
            let result = f(unsafe { &mut *self.instance.get() });
            self.busy.set(false);
            result
        }
    }

    impl<R> Default for Slot<R> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<R> fmt::Debug for Slot<R> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Slot").finish_non_exhaustive()
        }
    }
}
