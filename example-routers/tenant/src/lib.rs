//! Routes by the `tenant` hint through a tenant-to-connection map from its
//! configuration:
//!
//! ```json
//! {"tenants": {"acme": "tenant_acme", "globex": "tenant_globex"}}
//! ```
//!
//! No `tenant` hint (or a `null` one): no opinion. A tenant that is not in
//! the map is refused, and so is every write to a model tagged `readonly`.
//! The connections are not checked against the registered ones at init: a
//! host's connection factory may create tenant connections on demand.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// One connection per tenant.
#[derive(Debug, Default)]
pub struct TenantRouter {
    tenants: BTreeMap<String, String>,
}

impl TenantRouter {
    fn route<'a>(&'a self, op: &Operation<'_>) -> Decision<'a> {
        let hint = match op.hint("tenant") {
            Some(hint) if !hint.is_null() => hint,
            _ => return Decision::no_opinion(),
        };
        let Some(tenant) = hint.as_str() else {
            return Decision::refuse("the tenant hint must be a string");
        };
        match self.tenants.get(&*tenant) {
            Some(db) => Decision::use_connection(db),
            None => Decision::refuse(format!("unknown tenant \"{tenant}\"")),
        }
    }
}

impl Router for TenantRouter {
    fn init(&mut self, config: &Config<'_>, _connections: &Connections<'_>) -> Result<(), String> {
        self.tenants = config.str_map("tenants")?;
        Ok(())
    }

    fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
        self.route(op)
    }

    fn db_for_write(&mut self, op: &Operation<'_>) -> Decision<'_> {
        if op.model().has_tag("readonly") {
            let model = op.model().name();
            return Decision::refuse(format!("writes to read-only model {model} are forbidden"));
        }
        self.route(op)
    }
}

dbroute_sdk::export_router!(TenantRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    fn router() -> TenantRouter {
        testing::init(
            r#"{"config":{"tenants":{"acme":"tenant_acme","globex":"tenant_globex"}},"connections":["default","tenant_acme","tenant_globex"]}"#,
        )
        .unwrap()
    }

    fn op(op: &str, model: &str, hints: &str) -> String {
        format!(r#"{{"op":"{op}","model":{model},"hints":{hints}}}"#)
    }

    #[test]
    fn routes_by_tenant() {
        let mut r = router();
        let user = r#"{"name":"User"}"#;
        let read = op("read", user, r#"{"tenant":"acme"}"#);
        assert_eq!(testing::read(&mut r, &read), Answer::Use("tenant_acme".into()));
        let write = op("write", user, r#"{"tenant":"globex","other":[1]}"#);
        assert_eq!(testing::write(&mut r, &write), Answer::Use("tenant_globex".into()));
    }

    #[test]
    fn no_tenant_no_opinion() {
        let mut r = router();
        let user = r#"{"name":"User"}"#;
        assert_eq!(testing::read(&mut r, &op("read", user, "{}")), Answer::NoOpinion);
        assert_eq!(testing::write(&mut r, &op("write", user, "{}")), Answer::NoOpinion);
        let null = op("read", user, r#"{"tenant":null}"#);
        assert_eq!(testing::read(&mut r, &null), Answer::NoOpinion);
        let no_hints = r#"{"op":"read","model":{"name":"User"}}"#;
        assert_eq!(testing::read(&mut r, no_hints), Answer::NoOpinion);
    }

    #[test]
    fn unknown_tenants_are_refused() {
        let mut r = router();
        let read = op("read", r#"{"name":"User"}"#, r#"{"tenant":"initech"}"#);
        assert_eq!(
            testing::read(&mut r, &read),
            Answer::Refuse(r#"unknown tenant "initech""#.into())
        );
        let number = op("read", r#"{"name":"User"}"#, r#"{"tenant":7}"#);
        assert_eq!(
            testing::read(&mut r, &number),
            Answer::Refuse("the tenant hint must be a string".into())
        );
    }

    #[test]
    fn writes_to_read_only_models_are_refused() {
        let mut r = router();
        let rates = r#"{"name":"Rate","tags":["cached","readonly"]}"#;
        let refusal = Answer::Refuse("writes to read-only model Rate are forbidden".into());
        assert_eq!(
            testing::write(&mut r, &op("write", rates, r#"{"tenant":"acme"}"#)),
            refusal
        );
        assert_eq!(testing::write(&mut r, &op("write", rates, "{}")), refusal);
        // Reads of read-only models are fine.
        let read = op("read", rates, r#"{"tenant":"acme"}"#);
        assert_eq!(testing::read(&mut r, &read), Answer::Use("tenant_acme".into()));
    }

    #[test]
    fn config_is_checked() {
        let empty: TenantRouter = testing::init(r#"{"config":null,"connections":["default"]}"#).unwrap();
        assert!(empty.tenants.is_empty());
        let bad = testing::init::<TenantRouter>(r#"{"config":{"tenants":["acme"]},"connections":[]}"#);
        assert_eq!(
            bad.err().as_deref(),
            Some("config.tenants must be an object whose values are strings")
        );
    }
}
