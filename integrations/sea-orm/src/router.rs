//! `EntityRouter`: which connection a SeaORM entity's reads, writes and
//! transactions go to, by its dbroute model.

use std::any::TypeId;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, PoisonError, RwLock};

use dbroute::{Engine, Model, ModelInfo};
use sea_orm::{DbErr, EntityTrait};

use crate::connection::RoutedDb;
use crate::error::{Error, route_err};
use crate::model;
use crate::transaction::RoutedTransaction;

/// Routes SeaORM entities through a dbroute [`Engine`]: each entity is a
/// dbroute model, and [`for_read`](Self::for_read) and
/// [`for_write`](Self::for_write) ask the engine's routers where it goes,
/// as `engine.read::<M>()` does.
///
/// An entity's model is named after its module, with its table, and the
/// module that holds it as its app: `shop::billing::invoice::Entity`
/// (table `invoices`) is the model `invoice` of the app `billing`, table
/// `invoices` (an entity type not named `Entity` gives its own name; an
/// `Entity` at a crate's root, its table name; the app at the top is the
/// crate's name). Map an entity to another model with
/// [`EntityRouter::builder`].
///
/// Cheap to clone; the derived models are built once per entity.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dbroute::Engine;
/// use dbroute_sea_orm::EntityRouter;
/// use sea_orm::entity::prelude::*;
/// use sea_orm::Set;
///
/// mod billing {
///     pub mod invoice {
///         use sea_orm::entity::prelude::*;
///
///         #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
///         #[sea_orm(table_name = "invoices")]
///         pub struct Model {
///             #[sea_orm(primary_key)]
///             pub id: i32,
///             pub total: i64,
///         }
///
///         #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
///         pub enum Relation {}
///
///         impl ActiveModelBehavior for ActiveModel {}
///     }
/// }
/// use billing::invoice;
///
/// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// let orm = EntityRouter::new(engine);
///
/// let model = orm.model::<invoice::Entity>()?;
/// assert_eq!((model.name(), model.app(), model.table()), ("invoice", Some("billing"), Some("invoices")));
///
/// let db = orm.for_write::<invoice::Entity>()?;
/// db.execute_unprepared("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER NOT NULL)").await?;
/// invoice::ActiveModel { total: Set(120), ..Default::default() }.insert(&db).await?;
///
/// let db = orm.for_read::<invoice::Entity>()?;
/// let all = invoice::Entity::find().all(&db).await?;
/// assert_eq!(all.len(), 1);
/// assert_eq!(db.name().as_str(), "default");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EntityRouter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    mapped: HashMap<TypeId, Arc<ModelInfo>>,
    derived: RwLock<HashMap<TypeId, Arc<ModelInfo>>>,
}

impl EntityRouter {
    /// Routes every entity by the model its table name and module give.
    pub fn new(engine: Engine) -> Self {
        EntityRouter {
            inner: Arc::new(Inner {
                engine,
                mapped: HashMap::new(),
                derived: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// A router with some entities mapped to models of your choosing.
    pub fn builder(engine: Engine) -> EntityRouterBuilder {
        EntityRouterBuilder {
            engine,
            mapped: HashMap::new(),
            error: None,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The dbroute model of `E`: its mapping, or the one its table name
    /// and module give.
    ///
    /// # Errors
    ///
    /// [`Error::NoTableName`] for an unmapped entity whose table name is
    /// empty.
    pub fn model<E: EntityTrait>(&self) -> Result<Arc<ModelInfo>, Error> {
        let id = TypeId::of::<E>();
        if let Some(model) = self.inner.mapped.get(&id) {
            return Ok(model.clone());
        }
        let derived = &self.inner.derived;
        if let Some(model) = derived.read().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(model.clone());
        }
        let model = Arc::new(model::derive::<E>()?);
        let mut derived = derived.write().unwrap_or_else(PoisonError::into_inner);
        Ok(derived.entry(id).or_insert(model).clone())
    }

    /// The connection the routers choose for reading `E` (`db_for_read`,
    /// asked now, once); inside a dbroute transaction
    /// ([`TransactionBuilder::run`](dbroute::TransactionBuilder::run)),
    /// that transaction's. Hints of the current
    /// [hint scope](dbroute::scope) are the router's hints.
    ///
    /// # Errors
    ///
    /// [`DbErr::Conn`] when dbroute cannot route it (an unknown
    /// connection, the router's refusal or fault, a closed engine), with
    /// dbroute's message; [`DbErr::Custom`] for an entity without a table
    /// name.
    pub fn for_read<E: EntityTrait>(&self) -> Result<RoutedDb, DbErr> {
        let model = self.model::<E>()?;
        let conn = self.inner.engine.read_model(&model).connection().map_err(route_err)?;
        Ok(RoutedDb::for_reads(conn))
    }

    /// The connection the routers choose for writing `E` (`db_for_write`,
    /// asked now, once); inside a dbroute transaction, that transaction's
    /// (a router that sends the write elsewhere is refused, as dbroute
    /// refuses it).
    ///
    /// # Errors
    ///
    /// As [`for_read`](Self::for_read), and [`DbErr::Conn`] for a write
    /// routed away from the open transaction's connection.
    pub fn for_write<E: EntityTrait>(&self) -> Result<RoutedDb, DbErr> {
        let model = self.model::<E>()?;
        let conn = self.inner.engine.write_model(&model).connection().map_err(route_err)?;
        Ok(RoutedDb::from(conn))
    }

    /// The connection registered as `name` (`default` names the default),
    /// whatever the routers say: dbroute's `using`.
    ///
    /// # Errors
    ///
    /// [`DbErr::Conn`] for an unknown name.
    pub fn connection(&self, name: &str) -> Result<RoutedDb, DbErr> {
        Ok(RoutedDb::from(self.inner.engine.connection(name).map_err(route_err)?))
    }

    /// Begins a transaction on the connection the routers choose for
    /// writing `E`; inside a dbroute transaction on that connection, a
    /// savepoint. Every statement through it runs on that one connection.
    ///
    /// # Errors
    ///
    /// As [`for_write`](Self::for_write), and [`DbErr::Conn`] when the
    /// database cannot begin it.
    pub async fn begin_for_write<E: EntityTrait>(&self) -> Result<RoutedTransaction, DbErr> {
        let model = self.model::<E>()?;
        let tx = self
            .inner
            .engine
            .transaction()
            .for_write_model(&model)
            .begin()
            .await
            .map_err(route_err)?;
        Ok(RoutedTransaction::from(tx))
    }

    /// Begins a read-only transaction on the connection the routers choose
    /// for reading `E`.
    ///
    /// # Errors
    ///
    /// As [`begin_for_write`](Self::begin_for_write).
    pub async fn begin_for_read<E: EntityTrait>(&self) -> Result<RoutedTransaction, DbErr> {
        let model = self.model::<E>()?;
        let tx = self
            .inner
            .engine
            .transaction()
            .for_read_model(&model)
            .begin()
            .await
            .map_err(route_err)?;
        Ok(RoutedTransaction::from(tx))
    }
}

/// Builds an [`EntityRouter`] with entities mapped to models: made by
/// [`EntityRouter::builder`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dbroute::{Engine, ModelInfo};
/// use dbroute_sea_orm::EntityRouter;
///
/// mod account {
///     use sea_orm::entity::prelude::*;
///
///     #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
///     #[sea_orm(table_name = "accounts")]
///     pub struct Model {
///         #[sea_orm(primary_key)]
///         pub id: i32,
///     }
///
///     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
///     pub enum Relation {}
///
///     impl ActiveModelBehavior for ActiveModel {}
/// }
///
/// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// let orm = EntityRouter::builder(engine)
///     .entity::<account::Entity>(ModelInfo::new("Account").with_app("auth").with_tags(["pii"]))
///     .build()?;
/// assert_eq!(orm.model::<account::Entity>()?.app(), Some("auth"));
///
/// // Mapping an entity twice is an error.
/// let engine = orm.engine().clone();
/// let twice = EntityRouter::builder(engine)
///     .entity::<account::Entity>(ModelInfo::new("Account"))
///     .entity::<account::Entity>(ModelInfo::new("User"))
///     .build();
/// assert!(twice.unwrap_err().to_string().contains("mapped twice"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct EntityRouterBuilder {
    engine: Engine,
    mapped: HashMap<TypeId, Arc<ModelInfo>>,
    error: Option<Error>,
}

impl EntityRouterBuilder {
    /// Routes `E` as `model` (its name, table, app and tags are what the
    /// routers see).
    pub fn entity<E: EntityTrait>(mut self, model: ModelInfo) -> Self {
        let entity = std::any::type_name::<E>();
        if self.error.is_some() {
            return self;
        }
        if model.name().trim().is_empty() {
            self.error = Some(Error::EmptyModelName { entity });
            return self;
        }
        match self.mapped.entry(TypeId::of::<E>()) {
            Entry::Occupied(_) => self.error = Some(Error::DuplicateMapping { entity }),
            Entry::Vacant(slot) => {
                slot.insert(Arc::new(model));
            }
        }
        self
    }

    /// Routes `E` as the dbroute model `M` (a type with
    /// `#[derive(dbroute::Model)]`).
    pub fn entity_as<E: EntityTrait, M: Model>(self) -> Self {
        self.entity::<E>(M::model_info().clone())
    }

    /// The router.
    ///
    /// # Errors
    ///
    /// The first bad mapping: [`Error::DuplicateMapping`],
    /// [`Error::EmptyModelName`].
    pub fn build(self) -> Result<EntityRouter, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        Ok(EntityRouter {
            inner: Arc::new(Inner {
                engine: self.engine,
                mapped: self.mapped,
                derived: RwLock::new(HashMap::new()),
            }),
        })
    }
}
