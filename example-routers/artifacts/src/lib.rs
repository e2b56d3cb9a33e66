//! The example routers of `example-routers/`, compiled to WebAssembly.
//!
//! The build script builds every router crate in `example-routers/` (all
//! but this one) for `wasm32-unknown-unknown` with the `wasm-release`
//! profile, and generates, for each, a constant holding the absolute path of
//! its `.wasm` file, named after its folder (`replica` gives [`REPLICA`],
//! `round-robin` gives [`ROUND_ROBIN`]), plus [`all`] and
//! [`foreach_router!`] to go through every one.
//!
//! ```
//! for (name, path) in dbroute_example_routers::all() {
//!     let wasm = std::fs::read(path).unwrap();
//!     assert_eq!(&wasm[..4], b"\0asm", "{name}");
//! }
//! ```
//!
//! A router crate is found by its folder: `example-routers/<name>/`, with
//! the package name `dbroute-router-<name>`, and must be a workspace member.
//!
//! # The reference policy in every language
//!
//! The same reference policy (`example-routers/reference`) is written in C,
//! Zig and AssemblyScript too (`example-routers/c`, `zig`,
//! `assemblyscript`), each built from source by its folder's `build.sh`
//! when its toolchain is installed ([`C_REFERENCE`], [`ZIG_REFERENCE`],
//! [`ASSEMBLYSCRIPT_REFERENCE`]: `None` when it is not, and [`skipped`]
//! says why), and a part of it by hand in WebAssembly text ([`WAT_SIMPLE`]).
//! [`languages`] lists them all, and [`REFERENCE_CASES`] is the table of
//! cases every one must answer (`tests/integration/conformance.rs`).
//!
//! ```
//! for (language, path) in dbroute_example_routers::languages() {
//!     match path {
//!         Some(path) => assert!(std::path::Path::new(path).is_file(), "{language}"),
//!         None => assert!(dbroute_example_routers::skipped().iter().any(|(l, _)| l == language)),
//!     }
//! }
//! ```

include!(concat!(env!("OUT_DIR"), "/routers.rs"));
