//! The native side of dbroute's Extism peer benchmark: dbroute's reference
//! policy compiled for the host, from the very source file the plugin
//! compiles to Wasm, so the bench's native baseline parses the same JSON
//! into the same structs and decides with the same code as the plugin.

#[path = "../plugin/src/policy.rs"]
mod policy;

pub use policy::{Hints, Model, Operation, Tenants, db_for_read, db_for_write};
