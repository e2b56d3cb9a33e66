//! Route [SeaORM](https://www.sea-ql.org/SeaORM/) entities with
//! [dbroute]: every read, write and transaction of an entity goes
//! to the connection the engine's routers choose for it, on dbroute's own
//! sqlx pools (no second pool per connection).
//!
//! - [`EntityRouter`] maps each entity to a dbroute model (by its table
//!   name and module, or as you map it) and asks the engine where it goes:
//!   [`for_read`](EntityRouter::for_read) and
//!   [`for_write`](EntityRouter::for_write) give a [`RoutedDb`], a SeaORM
//!   connection (`ConnectionTrait`, `TransactionTrait`, `StreamTrait`) on the chosen
//!   connection.
//! - [`RoutedTransaction`] is a dbroute transaction SeaORM runs in: pinned
//!   to one connection, rolled back when dropped unfinished.
//! - Inside a dbroute transaction
//!   ([`TransactionBuilder::run`](dbroute::TransactionBuilder::run)),
//!   `for_read` and `for_write` give that transaction's connection, so
//!   SeaORM statements and dbroute's own join it.
//!
//! Errors are SeaORM's [`DbErr`](sea_orm::DbErr), with dbroute's message
//! (see [`Error`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use dbroute::Engine;
//! use dbroute_sea_orm::EntityRouter;
//! use sea_orm::entity::prelude::*;
//! use sea_orm::{Set, TransactionTrait};
//!
//! mod user {
//!     use sea_orm::entity::prelude::*;
//!
//!     #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
//!     #[sea_orm(table_name = "users")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i32,
//!         pub name: String,
//!     }
//!
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!
//!     impl ActiveModelBehavior for ActiveModel {}
//! }
//!
//! // Without routers everything goes to `default`; a router (Wasm or
//! // native) chooses per model.
//! let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
//! let orm = EntityRouter::new(engine);
//!
//! let db = orm.for_write::<user::Entity>()?;
//! db.execute_unprepared("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").await?;
//! user::ActiveModel { name: Set("ada".into()), ..Default::default() }.insert(&db).await?;
//!
//! // A transaction on the write connection: rolled back, it leaves nothing.
//! let txn = db.begin().await?;
//! user::ActiveModel { name: Set("bob".into()), ..Default::default() }.insert(&txn).await?;
//! txn.rollback().await?;
//!
//! let users = user::Entity::find().all(&orm.for_read::<user::Entity>()?).await?;
//! assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["ada"]);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! `postgres`, `mysql`, `sqlite` (all by default): the backends, as
//! dbroute's features of the same names (and SeaORM's `sqlx-*`). `stream`
//! (by default): SeaORM's `StreamTrait` (`Select::stream`). SeaORM is
//! compiled with no default features here; enable the ones your entities
//! need (`macros`, `with-chrono`, ...) on your own `sea-orm` dependency.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!(
    "dbroute-sea-orm needs at least one backend: enable the feature `postgres`, `mysql` or `sqlite` (or the default features)"
);

mod connection;
mod error;
mod exec;
mod model;
mod router;
mod transaction;

pub use connection::RoutedDb;
pub use error::Error;
pub use router::{EntityRouter, EntityRouterBuilder};
pub use transaction::RoutedTransaction;
