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
//!   active [`RouterChain`](router::RouterChain), and resolves every operation to a
//!   [`Connection`]. Built by [`Engine::builder`] or from a [`Config`] file.
//! - [`RouterRuntime`](wasm::RouterRuntime) and [`WasmRouter`](wasm::WasmRouter): a router module is compiled
//!   (baseline code at once, optimized code from the background: [`Tier`](wasm::Tier))
//!   and run in a bounded pool of sandboxed instances under
//!   [`RouterLimits`](wasm::RouterLimits) (time budget, memory and stack ceilings). The ABI
//!   routers implement is fixed: see `ABI.md` in the repository.
//! - [`SdkRouter`](router::SdkRouter): a router written with `dbroute-sdk`, run natively (no
//!   sandbox) with the answers its WebAssembly build gives: for unit tests
//!   and for speed.
//! - [`Routed`]: one operation being put together — model, hints, override —
//!   then run.
//! - [`Transaction`]: a unit of work pinned to one connection; inside it the
//!   router is not asked. `docs/transactions.md` shows the forms, and the
//!   compensating-transaction pattern for work that touches two databases.
//! - [`causal`]: read-your-writes on replicas (declared with
//!   [`EngineBuilder::replica_of`]): a read routed to a replica sees the
//!   writes before it in its task, and, with a [`CausalToken`], a client's
//!   writes made on another instance; a replica down or lagging is
//!   skipped ([`causal::ReplicaFailover`]). `docs/replicas.md` says what is
//!   guaranteed.
//! - [`Lent`]: the sqlx connection a [`Connection`] lends
//!   ([`Connection::postgres`] and its kin), for sqlx's own API and the
//!   libraries built on sqlx (the crate `dbroute-sea-orm` runs SeaORM so).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dbroute::Result<()> {
//! use dbroute::{Engine, ModelInfo, params};
//! use dbroute::wasm::{Expectation, RouterSource, WasmRouter};
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
//!     WasmRouter::named("replica").expect(Expectation::read("User").answers("replica")),
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
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!(
    "dbroute needs at least one backend: enable its `postgres`, `mysql` or `sqlite` feature \
     (dbroute = { version = \"..\", default-features = false, features = [\"postgres\"] })"
);

mod allow;
pub mod causal;
mod config;
mod connection;
mod decider;
mod engine;
mod error;
mod factory;
mod metrics;
mod model;
mod name;
mod provision;
mod publish;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod registry;
mod route_stats;
mod routed;
pub mod router;
pub mod schema;
mod scope;
mod serialize;
mod thread_slot;
mod trace;
mod transaction;

pub use allow::AllowList;
pub use causal::CausalToken;
pub use config::Config;
pub use connection::handle::{Connection, QueryResult};
pub use connection::lent::Lent;
pub use connection::pool::{DbPool, PoolSettings};
pub use connection::url::Backend;
pub use connection::value::{ColumnIndex, Columns, FromValue, Row, Value};
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
pub use engine::{Engine, EngineBuilder, ReadFailure, RouteOptions, TransactionRouting};
pub use error::{Error, Result};
pub use factory::ConnectionFactory;
pub use model::{Hints, Model, ModelInfo};
pub use name::{ConnectionName, MAX_NAME_LEN};
pub use provision::Provisioning;
pub use routed::Routed;
pub use scope::{scope, scope_hints};
pub use transaction::Transaction;
pub use transaction::builder::TransactionBuilder;

/// WebAssembly routers: loading one ([`WasmRouter::named`](crate::wasm::WasmRouter::named), then
/// [`Engine::load_router`]), the runtime and limits they run under, the
/// compiler tiers, load-time self-tests, and following a router file
/// ([`Engine::watch_router`]).
pub mod wasm {
    pub use crate::engine::RouterSource;
    pub use crate::error::LoadError;
    pub use crate::router::wasm::abi::{ABI_MINOR, ABI_VERSION};
    pub use crate::router::wasm::runtime::{RouterLimits, RouterRuntime};
    pub use crate::router::wasm::tiers::{Compilation, Tier};
    pub use crate::router::wasm::{
        Expectation, ExpectationBuilder, MAX_COMPONENT_SIZE, MAX_ROUTER_SIZE, RouterInfo, WasmRouter, WasmRouterBuilder,
    };
    pub use crate::router::watch::{RouterWatcher, WatchStatus};
}

/// What the engine reports: each connection's status and health, replicas'
/// roles and lag, and decision counts.
pub mod stats {
    pub use crate::connection::replication::{ReplicaLag, Role};
    pub use crate::connection::stats::{ConnectionStatus, Health, ProvisionState};
    pub use crate::engine::{ConsistencyCounts, DecisionCount};
    pub use crate::route_stats::{MAX_HINT_SETS, RouteCount};
}

#[cfg(doctest)]
#[doc = include_str!("../../docs/transactions.md")]
struct TransactionsGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/replicas.md")]
struct ReplicasGuide;

/// sqlx, re-exported so users name the same version (`AssertSqlSafe`, the
/// typed pools).
pub use sqlx;
