//! dbroute's reference policy over serde types: the plugin's functions call
//! it, and the bench compiles this same file natively for its baseline, so
//! both sides parse the same JSON into the same structs and decide with the
//! same code.
//!
//! - reads go to `replica`, writes to `default`, except the `Event` model,
//!   which reads and writes on `analytics`;
//! - a `tenant` hint (a string) that the tenant map maps to a connection
//!   sends reads and writes there; an unmapped tenant changes nothing;
//! - writes to a model tagged `readonly` are refused, tenant or not, with
//!   `writes to read-only model <Name> are forbidden`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// Tenant name to connection name.
pub type Tenants = HashMap<String, String>;

/// The input of `db_for_read` / `db_for_write`, as dbroute sends it:
/// `{"op":"read","model":{"name":"User","table":"users","app":"auth"}}`,
/// with optional `tags` and an optional `"hints":{...}`. Fields the policy
/// does not use (`op`, `table`, `app`, other hints) are skipped.
#[derive(Debug, Deserialize)]
pub struct Operation {
    /// The model the operation is on.
    pub model: Model,
    /// The operation's hints.
    #[serde(default)]
    pub hints: Hints,
}

/// A model's description.
#[derive(Debug, Deserialize)]
pub struct Model {
    /// The model's name, e.g. `User`.
    pub name: String,
    /// The model's tags, e.g. `readonly`.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The hints the policy reads.
#[derive(Debug, Default, Deserialize)]
pub struct Hints {
    /// Any JSON value: only a string selects a tenant.
    pub tenant: Option<Value>,
}

impl Operation {
    /// The connection the operation's tenant maps to, if any.
    fn tenant_db<'a>(&self, tenants: &'a Tenants) -> Option<&'a str> {
        let tenant = self.hints.tenant.as_ref()?.as_str()?;
        tenants.get(tenant).map(String::as_str)
    }
}

/// The connection a read goes to.
pub fn db_for_read<'a>(op: &Operation, tenants: &'a Tenants) -> &'a str {
    if let Some(db) = op.tenant_db(tenants) {
        db
    } else if op.model.name == "Event" {
        "analytics"
    } else {
        "replica"
    }
}

/// The connection a write goes to, or why it is refused.
pub fn db_for_write<'a>(op: &Operation, tenants: &'a Tenants) -> Result<&'a str, String> {
    if op.model.tags.iter().any(|tag| tag == "readonly") {
        Err(format!("writes to read-only model {} are forbidden", op.model.name))
    } else if let Some(db) = op.tenant_db(tenants) {
        Ok(db)
    } else if op.model.name == "Event" {
        Ok("analytics")
    } else {
        Ok("default")
    }
}
