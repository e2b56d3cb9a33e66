//! # dbroute
//!
//! dbroute routes each database operation of a service to one of several
//! named connections (PostgreSQL, MySQL/MariaDB, SQLite, chosen by URL). A
//! **router** decides, per model and per operation, which connection is
//! used; routers are native Rust or **WebAssembly modules** in any language,
//! sandboxed, and hot-swapped while the service runs.
//!
//! The pieces, by how long they live:
//!
//! - [`Engine`]: one per service. Holds the named connection pools, the
//!   active [`RouterChain`], and resolves every operation to a
//!   [`Connection`]. Built by [`Engine::builder`] or from a [`Config`] file.
//! - [`RouterRuntime`] and [`WasmRouter`]: a router module is compiled
//!   (baseline code at once, optimized code from the background: [`Tier`])
//!   and run in a bounded pool of sandboxed instances under
//!   [`RouterLimits`] (time budget, memory and stack ceilings). The ABI
//!   routers implement is fixed: see `ABI.md` in the repository.
//! - [`SdkRouter`]: a router written with `dbroute-sdk`, run natively (no
//!   sandbox) with the answers its WebAssembly build gives: for unit tests
//!   and for speed.
//! - [`Routed`]: one operation being put together — model, hints, override —
//!   then run.
//! - [`Transaction`]: a unit of work pinned to one connection; inside it the
//!   router is not asked. `docs/transactions.md` shows the forms, and the
//!   compensating-transaction pattern for work that touches two databases.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dbroute::Result<()> {
//! use dbroute::{params, Engine, Expectation, ModelInfo, RouterSource, WasmRouter};
//!
//! let engine = Engine::builder()
//!     .connection("default", "sqlite::memory:")
//!     .connection("replica", "sqlite::memory:")
//!     .build()
//!     .await?;
//!
//! // A router in WebAssembly text: every read goes to "replica".
//! let wat = r#"(module
//!   (memory (export "memory") 1)
//!   (data (i32.const 16) "replica")
//!   (func (export "dbroute_abi_version") (result i32) i32.const 1)
//!   (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
//!   (func (export "db_for_read") (param i32 i32) (result i64)
//!     i64.const 0x0000001000000007))"#;
//! let router = engine.load_router(
//!     WasmRouter::builder("replica").expect(Expectation::read("User").answers("replica")),
//!     RouterSource::Bytes(wat.as_bytes().into()),
//! )?;
//! engine.set_router(router);
//!
//! let user = ModelInfo::new("User");
//! assert_eq!(engine.db_for_read(&user, &Default::default())?, "replica");
//! assert_eq!(engine.db_for_write(&user, &Default::default())?, "default");
//!
//! engine.write_model(&user).execute("CREATE TABLE users (name TEXT)", &[]).await?;
//! engine.write_model(&user).execute("INSERT INTO users VALUES ($1)", &params!["ada"]).await?;
//! # Ok(()) }
//! ```
#![doc(test(attr(deny(warnings))))]

mod allow;
mod config;
mod connection;
mod engine;
mod error;
mod factory;
mod metrics;
mod model;
mod name;
mod route_stats;
mod routed;
mod router;
mod schema;
mod scope;
mod thread_slot;
mod transaction;

pub use allow::AllowList;
pub use config::Config;
pub use connection::handle::{Connection, QueryResult};
pub use connection::pool::{DbPool, PoolSettings};
pub use connection::stats::{ConnectionStatus, Health};
pub use connection::url::Backend;
pub use connection::value::{ColumnIndex, FromValue, Row, Value};
/// Implements [`Model`] for a type: its name is the model's name unless
/// `name` says otherwise.
///
/// ```
/// use dbroute::Model;
///
/// #[derive(Model)]
/// #[dbroute(table = "audit_log", app = "audit", tags("append-only", "pii"))]
/// struct AuditEntry {
///     id: i64,
/// }
///
/// #[derive(Model)]
/// #[dbroute(name = "User")]
/// struct UserRow;
///
/// assert_eq!(AuditEntry::model_info().table(), Some("audit_log"));
/// assert_eq!(UserRow::model_info().name(), "User");
/// # let _ = AuditEntry { id: 1 }.id;
/// ```
///
/// Keys: `name`, `table`, `app` (strings, not empty) and `tags(...)`
/// (string literals). Anything else does not compile:
///
/// ```compile_fail
/// #[derive(dbroute::Model)]
/// #[dbroute(tabel = "users")] // error: unknown key `tabel`
/// struct User;
/// ```
///
/// ```compile_fail
/// #[derive(dbroute::Model)]
/// #[dbroute(table = "")] // error: `table` must not be empty
/// struct User;
/// ```
pub use dbroute_derive::Model;
pub use engine::{DecisionCount, Engine, EngineBuilder, ReadFailure, RouteOptions, RouterSource, TransactionRouting};
pub use error::{Error, Fault, LoadError, Result};
pub use factory::ConnectionFactory;
pub use model::{Hints, Model, ModelInfo};
pub use name::{ConnectionName, MAX_NAME_LEN};
pub use route_stats::RouteCount;
pub use routed::Routed;
pub use router::sdk::{SdkRouter, SdkRouterBuilder};
pub use router::wasm::abi::{ABI_MINOR, ABI_VERSION};
pub use router::wasm::runtime::{RouterLimits, RouterRuntime};
pub use router::wasm::tiers::{Compilation, Tier};
pub use router::wasm::{Expectation, ExpectationBuilder, MAX_ROUTER_SIZE, RouterInfo, WasmRouter, WasmRouterBuilder};
pub use router::watch::{RouterWatcher, WatchStatus};
pub use router::{
    Decision, MigrateTarget, Migration, OpKind, Operation, Relation, RelationSide, Router, RouterChain, RouterIdentity,
    RouterStatus,
};
pub use schema::{
    ConnectionMigrations, CrossDatabase, CrossDatabaseReference, MigrationApplied, MigrationReport, Migrations,
    ModelSchema, SchemaAction, SchemaChange, SchemaEntry, SchemaProblem, SchemaReport,
};
pub use scope::{scope, scope_hints};
pub use transaction::Transaction;
pub use transaction::builder::TransactionBuilder;

#[cfg(doctest)]
#[doc = include_str!("../../docs/transactions.md")]
struct TransactionsGuide;

/// sqlx, re-exported so users name the same version (`AssertSqlSafe`, the
/// typed pools).
pub use sqlx;
