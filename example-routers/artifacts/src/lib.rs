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

include!(concat!(env!("OUT_DIR"), "/routers.rs"));
