//! The sandbox of router components: the few WASI 0.2 functions that the
//! runtimes of Python, JavaScript and Rust call, granting nothing.
//!
//! A component may import `dbroute:router/host` and the WASI 0.2
//! interfaces of [`ALLOWED_WASI`]; anything else is refused at load, naming
//! the import. Of those interfaces, the host implements only what a
//! language runtime needs to start and to report an error, all of it
//! synchronous and in this file:
//!
//! - environment and arguments: empty; no initial working directory;
//! - stdin: a closed stream; stdout and stderr: lines to `tracing` under
//!   the router's name (each line cut at [`MAX_LINE`] bytes, at most
//!   [`OUTPUT_PER_CALL`] bytes per call, the rest dropped with a note);
//! - no terminals; no preopened directories (so no file can be opened);
//! - the wall and monotonic clocks frozen at [`FROZEN_WALL_SECONDS`] and 0,
//!   and every pollable ready at once (a sleep returns at once);
//! - random bytes from a fixed seed, the same sequence in every instance:
//!   a router that declares itself deterministic is;
//! - `exit` ends the call with a fault.
//!
//! Every other function of those interfaces (opening a socket, a file
//! descriptor's methods, a name lookup, ...) traps with a message that
//! names it: the call faults, the instance is dropped.
//!
//! Why not wasmtime-wasi with nothing granted: its synchronous bindings
//! block on a tokio runtime inside host calls (dropping an output stream,
//! a blocking write), which panics on the tokio worker threads services
//! route from; and it would link a filesystem and sockets implementation
//! into every service only to refuse them. This surface is the smaller
//! one: what is not listed here does not exist.

use std::sync::Arc;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentType, Lift, Linker, LinkerInstance, Lower, Resource, ResourceType};
use wasmtime::{Engine, StoreContextMut};

use super::ComponentState;
use crate::error::LoadError;

/// The WASI 0.2 interfaces a router component may import (without their
/// `@0.2.x` version).
pub(crate) const ALLOWED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// The host interface's name, without its version.
pub(crate) const HOST_INTERFACE: &str = "dbroute:router/host";

/// The contract's types, which bindings generators import as an interface
/// of their own (it has no functions).
pub(crate) const TYPES_INTERFACE: &str = "dbroute:router/types";

/// What the frozen wall clock says: 2025-01-01T00:00:00Z.
pub(crate) const FROZEN_WALL_SECONDS: u64 = 1_735_689_600;

/// The longest line of a router's stdout or stderr logged whole.
pub(crate) const MAX_LINE: usize = 1024;

/// The most stdout and stderr bytes one call may log.
pub(crate) const OUTPUT_PER_CALL: usize = 16 * 1024;

/// The most random bytes one request may ask for.
const MAX_RANDOM_REQUEST: u64 = 1 << 20;

/// The seed of every instance's random bytes.
const RANDOM_SEED: u64 = 0x6462_726f_7574_6521;

/// An interface's name without its version: `wasi:cli/stdout@0.2.9` ->
/// `wasi:cli/stdout`.
pub(crate) fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

/// Refuses a component that imports anything but the contract's host and
/// types interfaces (of major version 1) and [`ALLOWED_WASI`] (of version
/// 0.2).
pub(crate) fn check_imports(component: &Component, engine: &Engine) -> Result<(), LoadError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let (base, version) = name.split_once('@').unwrap_or((name, ""));
        let allowed = ((base == HOST_INTERFACE || base == TYPES_INTERFACE) && version.starts_with("1."))
            || (ALLOWED_WASI.contains(&base) && version.starts_with("0.2."));
        if !allowed {
            return Err(LoadError::ComponentImport(crate::name::printable(name)));
        }
    }
    Ok(())
}

// The resources the sandbox hands out. Each is a handle with a fixed
// representation: nothing is kept per handle.

/// `wasi:io/streams.output-stream`: stdout (rep 1) or stderr (rep 2).
pub(crate) struct OutputStream;
/// `wasi:io/streams.input-stream`: stdin, always closed.
pub(crate) struct InputStream;
/// `wasi:io/poll.pollable`: always ready.
pub(crate) struct Pollable;
/// `wasi:io/error.error`: never made (no stream operation fails).
pub(crate) struct IoError;
/// `wasi:cli/terminal-*`: never made (there are no terminals).
pub(crate) struct Terminal;
/// Any other resource: never made (its constructors trap).
pub(crate) struct Denied;

const STDOUT: u32 = 1;
const STDERR: u32 = 2;

/// `wasi:io/streams.stream-error`.
#[derive(ComponentType, Lower)]
#[component(variant)]
enum StreamError {
    #[component(name = "last-operation-failed")]
    #[allow(dead_code, reason = "no stream operation fails; the case is part of the type")]
    LastOperationFailed(Resource<IoError>),
    #[component(name = "closed")]
    Closed,
}

/// `wasi:clocks/wall-clock.datetime`.
#[derive(ComponentType, Lower, Lift)]
#[component(record)]
struct Datetime {
    #[component(name = "seconds")]
    seconds: u64,
    #[component(name = "nanoseconds")]
    nanoseconds: u32,
}

/// What a store of a router component carries for the sandbox.
pub(crate) struct Sandbox {
    router: Arc<str>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Output bytes this call may still log.
    output_left: usize,
    /// Whether this call's output was cut (noted once per call).
    output_cut: bool,
    random: u64,
}

impl Sandbox {
    pub(crate) fn new(router: Arc<str>) -> Self {
        Sandbox {
            router,
            stdout: Vec::new(),
            stderr: Vec::new(),
            output_left: OUTPUT_PER_CALL,
            output_cut: false,
            random: RANDOM_SEED,
        }
    }

    /// Starts a call: a fresh output allowance.
    #[inline]
    pub(crate) fn start_call(&mut self) {
        self.output_left = OUTPUT_PER_CALL;
        self.output_cut = false;
    }

    /// Ends a call: what is left of a line without its newline is logged.
    pub(crate) fn end_call(&mut self) {
        if !self.stdout.is_empty() {
            self.log_line(STDOUT);
        }
        if !self.stderr.is_empty() {
            self.log_line(STDERR);
        }
    }

    /// The next 64 random bits (splitmix64: the same sequence from the same
    /// seed).
    fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM_REQUEST {
            wasmtime::bail!("the router asked for {len} random bytes, more than the {MAX_RANDOM_REQUEST} allowed");
        }
        let mut bytes = Vec::with_capacity(len as usize);
        while bytes.len() < len as usize {
            let word = self.next_random().to_le_bytes();
            let take = (len as usize - bytes.len()).min(8);
            bytes.extend_from_slice(&word[..take]);
        }
        Ok(bytes)
    }

    /// Takes `bytes` written to stdout or stderr: whole lines go to the
    /// log, within the call's allowance.
    fn write(&mut self, stream: u32, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.output_left == 0 {
                if !self.output_cut {
                    self.output_cut = true;
                    tracing::warn!(router = %self.router, "the router's output passed {OUTPUT_PER_CALL} bytes in one call: the rest is dropped");
                }
                return;
            }
            let n = rest.len().min(self.output_left);
            let (now, later) = rest.split_at(n);
            self.output_left -= n;
            rest = later;
            for piece in now.split_inclusive(|&b| b == b'\n') {
                let (text, ended) = match piece.strip_suffix(b"\n") {
                    Some(text) => (text, true),
                    None => (piece, false),
                };
                let buffer = self.buffer(stream);
                let room = MAX_LINE.saturating_sub(buffer.len());
                buffer.extend_from_slice(&text[..text.len().min(room)]);
                if ended {
                    self.log_line(stream);
                }
            }
        }
    }

    fn buffer(&mut self, stream: u32) -> &mut Vec<u8> {
        if stream == STDERR {
            &mut self.stderr
        } else {
            &mut self.stdout
        }
    }

    fn log_line(&mut self, stream: u32) {
        let router = self.router.clone();
        let buffer = self.buffer(stream);
        let line = String::from_utf8_lossy(buffer).into_owned();
        buffer.clear();
        if stream == STDERR {
            tracing::warn!(router = %router, stream = "stderr", "{line}");
        } else {
            tracing::info!(router = %router, stream = "stdout", "{line}");
        }
    }
}

type Store<'a> = StoreContextMut<'a, ComponentState>;
type Defined = wasmtime::Result<bool>;

/// Defines in `linker` everything `component` imports: the host
/// interface, the sandbox's functions, and for every other function of an
/// allowed WASI interface a trap that names it. The caller checked the
/// imports with [`check_imports`].
pub(crate) fn define_imports(
    linker: &mut Linker<ComponentState>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    let mut resources: Vec<ResourceType> = Vec::new();
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            wasmtime::bail!("the import `{name}` is not an interface");
        };
        let interface = unversioned(name);
        let mut target = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                // A resource another interface defined (a `use`) needs no
                // definition of its own.
                ComponentItem::Resource(ty) if !resources.contains(&ty) => {
                    resources.push(ty);
                    target.resource(export, host_resource(interface, export), |_, _| Ok(()))?;
                }
                ComponentItem::ComponentFunc(_) => {
                    let defined = if interface == HOST_INTERFACE {
                        define_host(&mut target, export)?
                    } else {
                        define_wasi(&mut target, interface, export)?
                    };
                    if !defined {
                        let called = format!("{interface}#{export}");
                        target.func_new(export, move |_, _, _, _| {
                            wasmtime::bail!(
                                "the router called `{called}`, which dbroute does not grant routers (no files, sockets, environment or processes)"
                            )
                        })?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The host type of a resource an allowed interface defines.
fn host_resource(interface: &str, name: &str) -> ResourceType {
    match (interface, name) {
        (_, "output-stream") => ResourceType::host::<OutputStream>(),
        (_, "input-stream") => ResourceType::host::<InputStream>(),
        (_, "pollable") => ResourceType::host::<Pollable>(),
        ("wasi:io/error" | "wasi:io/streams", "error") => ResourceType::host::<IoError>(),
        (_, "terminal-input" | "terminal-output") => ResourceType::host::<Terminal>(),
        _ => ResourceType::host::<Denied>(),
    }
}

/// A log message's level (`dbroute:router/types.level`).
#[derive(ComponentType, Lift, Clone, Copy)]
#[allow(dead_code, reason = "made by lifting a router's argument")]
#[component(enum)]
#[repr(u8)]
enum Level {
    #[component(name = "error")]
    Error,
    #[component(name = "warn")]
    Warn,
    #[component(name = "info")]
    Info,
    #[component(name = "debug")]
    Debug,
    #[component(name = "trace")]
    Trace,
}

fn define_host(target: &mut LinkerInstance<'_, ComponentState>, name: &str) -> Defined {
    if name != "log" {
        return Ok(false);
    }
    target.func_wrap("log", |store: Store<'_>, (level, message): (Level, String)| {
        let router = &store.data().sandbox.router;
        let message = crate::router::wasm::abi::cut(&message, 4096);
        match level {
            Level::Error => tracing::error!(router = %router, "{message}"),
            Level::Warn => tracing::warn!(router = %router, "{message}"),
            Level::Info => tracing::info!(router = %router, "{message}"),
            Level::Debug => tracing::debug!(router = %router, "{message}"),
            Level::Trace => tracing::trace!(router = %router, "{message}"),
        }
        Ok(())
    })?;
    Ok(true)
}

fn ready(_: Store<'_>, _: (Resource<Pollable>,)) -> wasmtime::Result<(bool,)> {
    Ok((true,))
}

fn pollable() -> Resource<Pollable> {
    Resource::new_own(0)
}

/// Defines `interface`'s function `name` when the sandbox implements it.
fn define_wasi(t: &mut LinkerInstance<'_, ComponentState>, interface: &str, name: &str) -> Defined {
    match (interface, name) {
        ("wasi:io/error", "[method]error.to-debug-string") => {
            t.func_wrap(name, |_: Store<'_>, _: (Resource<IoError>,)| Ok((String::new(),)))?
        }
        ("wasi:io/poll", "[method]pollable.ready") => t.func_wrap(name, ready)?,
        ("wasi:io/poll", "[method]pollable.block") => {
            t.func_wrap(name, |_: Store<'_>, _: (Resource<Pollable>,)| Ok(()))?
        }
        ("wasi:io/poll", "poll") => t.func_wrap(name, |_: Store<'_>, (all,): (Vec<Resource<Pollable>>,)| {
            Ok(((0..all.len() as u32).collect::<Vec<u32>>(),))
        })?,
        ("wasi:io/streams", "[method]output-stream.check-write") => t
            .func_wrap(name, |_: Store<'_>, _: (Resource<OutputStream>,)| {
                Ok((Ok::<u64, StreamError>(4096),))
            })?,
        ("wasi:io/streams", "[method]output-stream.write" | "[method]output-stream.blocking-write-and-flush") => t
            .func_wrap(
                name,
                |mut store: Store<'_>, (stream, bytes): (Resource<OutputStream>, Vec<u8>)| {
                    store.data_mut().sandbox.write(stream.rep(), &bytes);
                    Ok((Ok::<(), StreamError>(()),))
                },
            )?,
        ("wasi:io/streams", "[method]output-stream.flush" | "[method]output-stream.blocking-flush") => t
            .func_wrap(name, |_: Store<'_>, _: (Resource<OutputStream>,)| {
                Ok((Ok::<(), StreamError>(()),))
            })?,
        (
            "wasi:io/streams",
            "[method]output-stream.write-zeroes" | "[method]output-stream.blocking-write-zeroes-and-flush",
        ) => t.func_wrap(
            name,
            |mut store: Store<'_>, (stream, len): (Resource<OutputStream>, u64)| {
                let zeroes = vec![0; len.min(OUTPUT_PER_CALL as u64) as usize];
                store.data_mut().sandbox.write(stream.rep(), &zeroes);
                Ok((Ok::<(), StreamError>(()),))
            },
        )?,
        ("wasi:io/streams", "[method]output-stream.subscribe") => {
            t.func_wrap(name, |_: Store<'_>, _: (Resource<OutputStream>,)| Ok((pollable(),)))?
        }
        ("wasi:io/streams", "[method]input-stream.read" | "[method]input-stream.blocking-read") => t
            .func_wrap(name, |_: Store<'_>, _: (Resource<InputStream>, u64)| {
                Ok((Err::<Vec<u8>, StreamError>(StreamError::Closed),))
            })?,
        ("wasi:io/streams", "[method]input-stream.skip" | "[method]input-stream.blocking-skip") => t
            .func_wrap(name, |_: Store<'_>, _: (Resource<InputStream>, u64)| {
                Ok((Err::<u64, StreamError>(StreamError::Closed),))
            })?,
        ("wasi:io/streams", "[method]input-stream.subscribe") => {
            t.func_wrap(name, |_: Store<'_>, _: (Resource<InputStream>,)| Ok((pollable(),)))?
        }
        ("wasi:clocks/monotonic-clock", "now") => t.func_wrap(name, |_: Store<'_>, (): ()| Ok((0u64,)))?,
        ("wasi:clocks/monotonic-clock", "resolution") => t.func_wrap(name, |_: Store<'_>, (): ()| Ok((1u64,)))?,
        ("wasi:clocks/monotonic-clock", "subscribe-instant" | "subscribe-duration") => {
            t.func_wrap(name, |_: Store<'_>, _: (u64,)| Ok((pollable(),)))?
        }
        ("wasi:clocks/wall-clock", "now") => t.func_wrap(name, |_: Store<'_>, (): ()| {
            Ok((Datetime {
                seconds: FROZEN_WALL_SECONDS,
                nanoseconds: 0,
            },))
        })?,
        ("wasi:clocks/wall-clock", "resolution") => t.func_wrap(name, |_: Store<'_>, (): ()| {
            Ok((Datetime {
                seconds: 0,
                nanoseconds: 1,
            },))
        })?,
        ("wasi:random/random", "get-random-bytes") | ("wasi:random/insecure", "get-insecure-random-bytes") => t
            .func_wrap(name, |mut store: Store<'_>, (len,): (u64,)| {
                Ok((store.data_mut().sandbox.random_bytes(len)?,))
            })?,
        ("wasi:random/random", "get-random-u64") | ("wasi:random/insecure", "get-insecure-random-u64") => t
            .func_wrap(name, |mut store: Store<'_>, (): ()| {
                Ok((store.data_mut().sandbox.next_random(),))
            })?,
        ("wasi:random/insecure-seed", "insecure-seed") => {
            t.func_wrap(name, |_: Store<'_>, (): ()| Ok(((RANDOM_SEED, !RANDOM_SEED),)))?
        }
        ("wasi:cli/environment", "get-environment") => {
            t.func_wrap(name, |_: Store<'_>, (): ()| Ok((Vec::<(String, String)>::new(),)))?
        }
        ("wasi:cli/environment", "get-arguments") => {
            t.func_wrap(name, |_: Store<'_>, (): ()| Ok((Vec::<String>::new(),)))?
        }
        ("wasi:cli/environment", "initial-cwd") => t.func_wrap(name, |_: Store<'_>, (): ()| Ok((None::<String>,)))?,
        ("wasi:cli/exit", "exit") => t.func_wrap(
            name,
            |_: Store<'_>, (status,): (Result<(), ()>,)| -> wasmtime::Result<()> {
                let status = if status.is_ok() { "success" } else { "failure" };
                wasmtime::bail!("the router called exit ({status}); a router must return an answer instead")
            },
        )?,
        ("wasi:cli/stdin", "get-stdin") => {
            t.func_wrap(name, |_: Store<'_>, (): ()| Ok((Resource::<InputStream>::new_own(0),)))?
        }
        ("wasi:cli/stdout", "get-stdout") => t.func_wrap(name, |_: Store<'_>, (): ()| {
            Ok((Resource::<OutputStream>::new_own(STDOUT),))
        })?,
        ("wasi:cli/stderr", "get-stderr") => t.func_wrap(name, |_: Store<'_>, (): ()| {
            Ok((Resource::<OutputStream>::new_own(STDERR),))
        })?,
        ("wasi:cli/terminal-stdin", "get-terminal-stdin")
        | ("wasi:cli/terminal-stdout", "get-terminal-stdout")
        | ("wasi:cli/terminal-stderr", "get-terminal-stderr") => {
            t.func_wrap(name, |_: Store<'_>, (): ()| Ok((None::<Resource<Terminal>>,)))?
        }
        ("wasi:filesystem/preopens", "get-directories") => t.func_wrap(name, |_: Store<'_>, (): ()| {
            Ok((Vec::<(Resource<Denied>, String)>::new(),))
        })?,
        _ => return Ok(false),
    }
    Ok(true)
}
