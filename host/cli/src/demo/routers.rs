//! The demo's routers, written by hand in WebAssembly text: the host
//! accepts WAT directly, and these show the whole ABI in a few lines.
//!
//! Every router here keeps its answers as data at fixed addresses and
//! returns `ptr << 32 | len` (a connection name), `0` (no opinion), or the
//! same with the sign bit set (a refusal message). The host writes each
//! call's input at the address `dbroute_input` returns (1024 here); these
//! routers do not need to read it.

/// Reads go to `replica`, writes to `default`.
pub(crate) const REPLICA_SPLIT: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (data (i32.const 32) "default")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  ;; "replica": 7 bytes at 16
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000007)
  ;; "default": 7 bytes at 32
  (func (export "db_for_write") (param i32 i32) (result i64) i64.const 0x0000002000000007))"#;

/// Reads go to `analytics`, writes to `default`: the other router of the
/// hot swap.
pub(crate) const ANALYTICS_SPLIT: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "analytics")
  (data (i32.const 32) "default")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  ;; "analytics": 9 bytes at 16
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000009)
  (func (export "db_for_write") (param i32 i32) (result i64) i64.const 0x0000002000000007))"#;

/// The message [`MAINTENANCE`] refuses writes with.
pub(crate) const MAINTENANCE_MESSAGE: &str = "writes are paused for maintenance";

/// Refuses every write with [`MAINTENANCE_MESSAGE`]; no opinion on reads
/// (it has no `db_for_read`).
pub(crate) const MAINTENANCE: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 64) "writes are paused for maintenance")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  ;; A refusal: the sign bit, then 33 message bytes at 64.
  (func (export "db_for_write") (param i32 i32) (result i64)
    i64.const 0x0000004000000021
    i64.const 0x8000000000000000
    i64.or))"#;

/// Reads go to `replica`; a write never returns (an endless loop): the
/// host's time budget stops it.
pub(crate) const RUNAWAY: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000007)
  (func (export "db_for_write") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    unreachable))"#;
