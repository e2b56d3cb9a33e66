//! dbroute's reference policy as an Extism plugin: `db_for_read` and
//! `db_for_write` take the JSON input dbroute sends its routers and return
//! the connection's name as a string; a refused write fails the call with
//! the refusal's message.
//!
//! The optional plugin configuration key `tenants` holds the tenant map as a
//! JSON object (`{"acme":"tenant_acme"}`), read and parsed once, on the first
//! call.

use std::sync::OnceLock;

use extism_pdk::{Error, FnResult, Json, config, plugin_fn};

mod policy;

use policy::{Operation, Tenants};

/// The tenant map from the `tenants` configuration key, empty without one.
fn tenants() -> Result<&'static Tenants, Error> {
    static TENANTS: OnceLock<Tenants> = OnceLock::new();
    if let Some(tenants) = TENANTS.get() {
        return Ok(tenants);
    }
    let tenants = match config::get("tenants")? {
        Some(json) => serde_json::from_str(&json)?,
        None => Tenants::new(),
    };
    Ok(TENANTS.get_or_init(|| tenants))
}

/// The connection a read goes to.
#[plugin_fn]
pub fn db_for_read(Json(op): Json<Operation>) -> FnResult<String> {
    Ok(policy::db_for_read(&op, tenants()?).to_owned())
}

/// The connection a write goes to; an error if the write is refused.
#[plugin_fn]
pub fn db_for_write(Json(op): Json<Operation>) -> FnResult<String> {
    Ok(policy::db_for_write(&op, tenants()?).map_err(Error::msg)?.to_owned())
}
