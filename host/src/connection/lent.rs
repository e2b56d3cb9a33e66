//! `Lent`: the sqlx connection a [`Connection`](crate::Connection) lends,
//! for sqlx's own API (and the libraries built on sqlx) on the connection
//! dbroute chose.

use std::ops::{Deref, DerefMut};

use sqlx::Database;
use sqlx::pool::PoolConnection;
use tokio::sync::MappedMutexGuard;

/// A sqlx connection lent by a [`Connection`](crate::Connection): one taken
/// from its pool (given back when this is dropped), or, for a handle inside
/// a transaction, the transaction's own (locked until this is dropped).
/// Dereferences to sqlx's connection (`sqlx::PgConnection` and its kin), an
/// executor for `sqlx::query` and the like.
///
/// Made by [`Connection::postgres`](crate::Connection::postgres),
/// [`Connection::mysql`](crate::Connection::mysql) and
/// [`Connection::sqlite`](crate::Connection::sqlite). Statements run on it
/// are not counted in the connection's statistics.
pub struct Lent<'a, DB: Database> {
    inner: Inner<'a, DB>,
}

enum Inner<'a, DB: Database> {
    Pooled(PoolConnection<DB>),
    Pinned(MappedMutexGuard<'a, DB::Connection>),
}

impl<'a, DB: Database> Lent<'a, DB> {
    pub(crate) fn pooled(conn: PoolConnection<DB>) -> Self {
        Lent {
            inner: Inner::Pooled(conn),
        }
    }

    pub(crate) fn pinned(conn: MappedMutexGuard<'a, DB::Connection>) -> Self {
        Lent {
            inner: Inner::Pinned(conn),
        }
    }

    /// Whether this is a transaction's connection (not one from the pool).
    pub fn in_transaction(&self) -> bool {
        matches!(self.inner, Inner::Pinned(_))
    }
}

impl<DB: Database> Deref for Lent<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match &self.inner {
            Inner::Pooled(conn) => conn,
            Inner::Pinned(conn) => conn,
        }
    }
}

impl<DB: Database> DerefMut for Lent<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match &mut self.inner {
            Inner::Pooled(conn) => conn,
            Inner::Pinned(conn) => conn,
        }
    }
}

impl<DB: Database> std::fmt::Debug for Lent<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent")
            .field("backend", &DB::NAME)
            .field("in_transaction", &self.in_transaction())
            .finish()
    }
}
