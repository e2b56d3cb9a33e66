//! Messages for the host's log.

/// How important a [`log()`] message is: the host's log levels, 0 to 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum Level {
    /// 0: something failed.
    Error = 0,
    /// 1: something looks wrong.
    Warn = 1,
    /// 2: worth knowing.
    Info = 2,
    /// 3: for whoever debugs the router.
    Debug = 3,
    /// 4: very detailed.
    Trace = 4,
}

/// Writes `message` to the host's log at `level`.
///
/// In a module this calls the `dbroute.log` import, the only import a
/// router may have (a router that never logs imports nothing). Natively (in
/// unit tests) the message goes to standard error.
///
/// ```
/// use dbroute_sdk::{Level, log};
///
/// log(Level::Info, "tenant map loaded");
/// ```
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::ffi::host_log(level as i32, message);
    #[cfg(not(target_arch = "wasm32"))]
    std::eprintln!("[dbroute {level:?}] {message}");
}
