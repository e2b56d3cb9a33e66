//! Schema on the right database: sqlx migrations per connection, and each
//! model's table on the connection the router writes it to.
//!
//! Two tools, usable together:
//!
//! - [`Engine::migrate`](crate::Engine::migrate) runs a sqlx migrations directory on one named
//!   connection, on several, or on all (each may have its own directory),
//!   with sqlx's own [`Migrator`](sqlx::migrate::Migrator), and reports what
//!   was applied where ([`MigrationReport`]).
//! - [`Engine::create_all`](crate::Engine::create_all) and [`Engine::drop_all`](crate::Engine::drop_all) create or drop the
//!   tables of a set of [`ModelSchema`]s, each on its routed write
//!   connection when the router's `allow_migrate` agrees, in reference
//!   order, and report what was done where ([`SchemaReport`]).
//!
//! Both refuse, before changing anything, to work through two connection
//! names that point at the same database (same URL): the changes would run
//! twice, or race.

pub(crate) mod migrate;
mod model;
mod same_database;

use std::fmt;

use crate::connection::url::Backend;
use crate::name::ConnectionName;

pub use migrate::{ConnectionMigrations, MigrationApplied, MigrationReport, Migrations};
pub use model::{CrossDatabase, ModelSchema, SchemaAction, SchemaChange, SchemaEntry, SchemaReport};

/// A model whose table goes on one connection references a model the router
/// places on another: no database can enforce that reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossDatabaseReference {
    /// The referencing model.
    pub model: String,
    /// The connection its table goes on.
    pub connection: ConnectionName,
    /// The referenced model.
    pub references: String,
    /// The connection the router writes the referenced model to.
    pub referenced_connection: ConnectionName,
}

impl fmt::Display for CrossDatabaseReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "model `{}` (on `{}`) references model `{}`, which the router places on `{}`: no database can enforce a reference across databases",
            self.model, self.connection, self.references, self.referenced_connection
        )
    }
}

/// Why a schema operation was refused before it changed anything. Carried
/// by [`Error::Schema`](crate::Error::Schema).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaProblem {
    /// Two models of the set have the same name.
    DuplicateModel {
        /// The name.
        model: String,
    },
    /// A model references a model that is not in the set.
    UnknownReference {
        /// The referencing model.
        model: String,
        /// The name it references.
        references: String,
    },
    /// Models reference each other in a cycle: the names in order, the
    /// first repeated at the end.
    Cycle {
        /// The models of the cycle.
        models: Vec<String>,
    },
    /// A cross-database reference, refused by [`CrossDatabase::Refuse`].
    CrossDatabase(CrossDatabaseReference),
    /// A model has no `CREATE` SQL for the backend of its connection.
    NoCreateSql {
        /// The model.
        model: String,
        /// The connection its table goes on.
        connection: String,
        /// That connection's backend.
        backend: Backend,
    },
    /// A model to drop has neither drop SQL nor a table name.
    NoDropSql {
        /// The model.
        model: String,
    },
    /// Two connection names point at the same database.
    SameDatabase {
        /// The first name.
        first: String,
        /// The second name.
        second: String,
    },
    /// A connection was selected for migrations, but no directory was
    /// given for it.
    NoMigrationDir {
        /// The connection.
        connection: String,
    },
    /// Two migrations directories were given for one connection.
    DuplicateMigrationDir {
        /// The connection.
        connection: String,
    },
    /// No migrations directory was given at all.
    NothingToMigrate,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaProblem::DuplicateModel { model } => {
                write!(f, "model `{model}` is given twice; give each model once")
            }
            SchemaProblem::UnknownReference { model, references } => write!(
                f,
                "model `{model}` references `{references}`, which is not in the set; add `{references}` to the set or remove the reference"
            ),
            SchemaProblem::Cycle { models } => write!(
                f,
                "models reference each other in a cycle ({}); no creation order exists: remove one of these references",
                models.join(" -> ")
            ),
            SchemaProblem::CrossDatabase(reference) => write!(
                f,
                "{reference}; route both models to one connection, remove the reference, or accept it with CrossDatabase::Warn"
            ),
            SchemaProblem::NoCreateSql {
                model,
                connection,
                backend,
            } => write!(
                f,
                "model `{model}` goes on `{connection}` ({backend}), but has no CREATE SQL for {backend}; add it with ModelSchema::create_for or a fallback with ModelSchema::create"
            ),
            SchemaProblem::NoDropSql { model } => write!(
                f,
                "model `{model}` has no table name and no drop SQL; set its table (ModelInfo::table) or give ModelSchema::drop_with"
            ),
            SchemaProblem::SameDatabase { first, second } => write!(
                f,
                "connections `{first}` and `{second}` point at the same database (same URL): schema changes through both would run twice or race; run them through one of them only (select it with `on`)"
            ),
            SchemaProblem::NoMigrationDir { connection } => write!(
                f,
                "connection `{connection}` is selected, but no migrations directory is given for it; give one with `dir` (or one for all with `dir_for_all`)"
            ),
            SchemaProblem::DuplicateMigrationDir { connection } => write!(
                f,
                "two migrations directories are given for connection `{connection}`; give one per connection"
            ),
            SchemaProblem::NothingToMigrate => f.write_str(
                "no migrations directory is given; give one per connection with `dir`, or one for all with `dir_for_all`",
            ),
        }
    }
}

impl From<SchemaProblem> for crate::Error {
    fn from(problem: SchemaProblem) -> Self {
        crate::Error::Schema {
            problem: Box::new(problem),
        }
    }
}
