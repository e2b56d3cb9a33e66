//! `Error`: what can go wrong between SeaORM and dbroute, and how each
//! becomes a SeaORM [`DbErr`].

use std::sync::Arc;

use sea_orm::{DbErr, RuntimeErr};

/// What can go wrong routing a SeaORM entity.
///
/// Every routed call returns SeaORM's [`DbErr`] (so that `?` works in
/// SeaORM code); this converts into it with the message below:
/// [`Error::Route`] as [`DbErr::Conn`] (a statement's own database error as
/// [`DbErr::Exec`] or [`DbErr::Query`], as SeaORM reports it), the others
/// as [`DbErr::Custom`]. Mapping errors come back as `Error` from
/// [`EntityRouterBuilder::build`](crate::EntityRouterBuilder::build).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// dbroute could not route the operation, or reach its connection: an
    /// unknown connection, a router's refusal or fault, a write inside a
    /// transaction on another connection, a pool timeout.
    #[error("dbroute: {0}")]
    Route(#[from] dbroute::Error),

    /// The entity's `table_name()` is empty, so it gives no model.
    #[error(
        "entity `{entity}` has no table name, so dbroute cannot name its model; give it a `#[sea_orm(table_name = \"...\")]` or map it with EntityRouter::builder(..).entity::<{entity}>(ModelInfo::new(..))"
    )]
    NoTableName {
        /// The entity's Rust type.
        entity: &'static str,
    },

    /// An entity was mapped twice.
    #[error("entity `{entity}` is mapped twice; map each entity once")]
    DuplicateMapping {
        /// The entity's Rust type.
        entity: &'static str,
    },

    /// An entity was mapped to a model whose name is empty.
    #[error("entity `{entity}` is mapped to a model with an empty name; name the model (ModelInfo::new(\"Invoice\"))")]
    EmptyModelName {
        /// The entity's Rust type.
        entity: &'static str,
    },

    /// SeaORM's own error: so that `Error` can be the error of work that
    /// mixes dbroute and SeaORM (a closure given to dbroute's
    /// [`TransactionBuilder::run`](dbroute::TransactionBuilder::run) needs
    /// an error that a `dbroute::Error` converts into; `?` on a `DbErr`
    /// converts too).
    #[error(transparent)]
    Db(#[from] DbErr),

    /// A transaction setting SeaORM asked for that a routed transaction
    /// cannot honour.
    #[error(
        "{setting} is not supported on a routed transaction on {backend} (connection `{connection}`); begin it without it, or set it in SQL yourself"
    )]
    TransactionConfig {
        /// The setting (isolation level, access mode).
        setting: &'static str,
        /// The connection.
        connection: String,
        /// Its backend.
        backend: dbroute::Backend,
    },
}

impl From<Error> for DbErr {
    fn from(error: Error) -> DbErr {
        match error {
            Error::Route(dbroute::Error::Query { source, .. }) => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(source))),
            Error::Route(_) => DbErr::Conn(RuntimeErr::Internal(error.to_string())),
            Error::Db(error) => error,
            _ => DbErr::Custom(error.to_string()),
        }
    }
}

/// A dbroute error met while lending a connection or ending a transaction,
/// as SeaORM reports it.
pub(crate) fn route_err(error: dbroute::Error) -> DbErr {
    Error::Route(error).into()
}
