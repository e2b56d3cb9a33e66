//! The cross-language reference policy, which routers written in other
//! languages implement too, so that the host's tests can compare them:
//!
//! - a `tenant` hint (a string) that the configuration's tenant map
//!   (`{"tenants": {"acme": "tenant_acme"}}`; the configuration may be
//!   `null`) maps to a connection sends reads and writes there; an unmapped
//!   tenant changes nothing;
//! - otherwise reads go to `replica`, writes to `default`, except the
//!   `Event` model, which reads and writes on `analytics`;
//! - writes to a model tagged `readonly` are refused, tenant or not, with
//!   the message `writes to read-only model <Name> are forbidden`;
//! - `allow_migrate`: `Event` only on `analytics` (true there, false
//!   elsewhere); any other model false on `analytics`, no opinion
//!   elsewhere (an app asked about without a model counts as another
//!   model).
//!
//! Deterministic: the host may cache its answers.
#![cfg_attr(target_arch = "wasm32", no_std)]

use dbroute_sdk::prelude::*;

/// The reference policy.
#[derive(Debug, Default)]
pub struct ReferenceRouter {
    tenants: BTreeMap<String, String>,
}

impl ReferenceRouter {
    /// The connection the operation's tenant maps to, if any.
    fn tenant_db(&self, op: &Operation<'_>) -> Option<&str> {
        let tenant = op.hint("tenant")?.as_str()?;
        self.tenants.get(&*tenant).map(String::as_str)
    }
}

impl Router for ReferenceRouter {
    const DETERMINISTIC: bool = true;

    fn init(&mut self, config: &Config<'_>, _connections: &Connections<'_>) -> Result<(), String> {
        self.tenants = config.str_map("tenants")?;
        Ok(())
    }

    fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
        if let Some(db) = self.tenant_db(op) {
            Decision::use_connection(db)
        } else if op.model().name() == "Event" {
            Decision::use_connection("analytics")
        } else {
            Decision::use_connection("replica")
        }
    }

    fn db_for_write(&mut self, op: &Operation<'_>) -> Decision<'_> {
        if op.model().has_tag("readonly") {
            let model = op.model().name();
            Decision::refuse(format!("writes to read-only model {model} are forbidden"))
        } else if let Some(db) = self.tenant_db(op) {
            Decision::use_connection(db)
        } else if op.model().name() == "Event" {
            Decision::use_connection("analytics")
        } else {
            Decision::use_connection("default")
        }
    }

    fn allow_migrate(&mut self, m: &Migration<'_>) -> Option<bool> {
        let on_analytics = m.db() == "analytics";
        if m.model().is_some_and(|model| model.name() == "Event") {
            Some(on_analytics)
        } else if on_analytics {
            Some(false)
        } else {
            None
        }
    }
}

dbroute_sdk::export_router!(ReferenceRouter);
dbroute_sdk::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use dbroute_sdk::testing::{self, Answer};

    fn router(config: &str) -> ReferenceRouter {
        testing::init(&format!(
            r#"{{"config":{config},"connections":["default","replica","analytics","tenant_acme"]}}"#
        ))
        .unwrap()
    }

    fn with_tenants() -> ReferenceRouter {
        router(r#"{"tenants":{"acme":"tenant_acme"}}"#)
    }

    fn op(kind: &str, model: &str, hints: &str) -> String {
        format!(r#"{{"op":"{kind}","model":{model},"hints":{hints}}}"#)
    }

    fn use_(name: &str) -> Answer {
        Answer::Use(name.into())
    }

    const USER: &str = r#"{"name":"User","table":"users","app":"auth"}"#;
    const EVENT: &str = r#"{"name":"Event","app":"metrics"}"#;
    const RATE: &str = r#"{"name":"Rate","tags":["readonly"]}"#;

    #[test]
    fn reads() {
        let mut r = router("null");
        assert_eq!(testing::read(&mut r, &op("read", USER, "{}")), use_("replica"));
        assert_eq!(testing::read(&mut r, &op("read", EVENT, "{}")), use_("analytics"));
        assert_eq!(testing::read(&mut r, &op("read", RATE, "{}")), use_("replica"));
    }

    #[test]
    fn writes() {
        let mut r = router("null");
        assert_eq!(testing::write(&mut r, &op("write", USER, "{}")), use_("default"));
        assert_eq!(testing::write(&mut r, &op("write", EVENT, "{}")), use_("analytics"));
    }

    #[test]
    fn a_mapped_tenant_overrides_reads_and_writes() {
        let mut r = with_tenants();
        let acme = r#"{"tenant":"acme"}"#;
        for model in [USER, EVENT] {
            assert_eq!(testing::read(&mut r, &op("read", model, acme)), use_("tenant_acme"));
            assert_eq!(testing::write(&mut r, &op("write", model, acme)), use_("tenant_acme"));
        }
    }

    #[test]
    fn an_unmapped_tenant_changes_nothing() {
        let mut r = with_tenants();
        for hints in [r#"{"tenant":"initech"}"#, r#"{"tenant":7}"#, r#"{"tenant":null}"#] {
            assert_eq!(testing::read(&mut r, &op("read", USER, hints)), use_("replica"));
            assert_eq!(testing::write(&mut r, &op("write", EVENT, hints)), use_("analytics"));
        }
        // Without a configuration no tenant is mapped.
        let mut r = router("null");
        let acme = r#"{"tenant":"acme"}"#;
        assert_eq!(testing::read(&mut r, &op("read", USER, acme)), use_("replica"));
    }

    #[test]
    fn writes_to_read_only_models_are_refused_even_for_a_tenant() {
        let mut r = with_tenants();
        let refusal = Answer::Refuse("writes to read-only model Rate are forbidden".into());
        assert_eq!(testing::write(&mut r, &op("write", RATE, "{}")), refusal);
        assert_eq!(
            testing::write(&mut r, &op("write", RATE, r#"{"tenant":"acme"}"#)),
            refusal
        );
        assert_eq!(
            testing::read(&mut r, &op("read", RATE, r#"{"tenant":"acme"}"#)),
            use_("tenant_acme")
        );
    }

    #[test]
    fn migrations() {
        let mut r = router("null");
        let mut migrate = |model: &str, db: &str| {
            let input = format!(r#"{{"op":"migrate","db":"{db}","model":{{"name":"{model}"}},"hints":{{}}}}"#);
            testing::migrate(&mut r, &input)
        };
        assert_eq!(migrate("Event", "analytics"), Some(true));
        assert_eq!(migrate("Event", "default"), Some(false));
        assert_eq!(migrate("Event", "replica"), Some(false));
        assert_eq!(migrate("User", "analytics"), Some(false));
        assert_eq!(migrate("User", "default"), None);
        // An app without a model (ABI 1.1) is not `Event`.
        let mut app = |db: &str| {
            let input = format!(r#"{{"op":"migrate","db":"{db}","app":"metrics","hints":{{}}}}"#);
            testing::migrate(&mut r, &input)
        };
        assert_eq!(app("analytics"), Some(false));
        assert_eq!(app("default"), None);
    }

    #[test]
    fn relations_have_no_opinion() {
        let rel = r#"{"op":"relation","a":{"model":{"name":"Book"},"db":"default"},"b":{"model":{"name":"Author"},"db":"analytics"},"hints":{}}"#;
        assert_eq!(testing::relation(&mut router("null"), rel), None);
    }

    #[test]
    fn config_must_map_strings() {
        let bad = testing::init::<ReferenceRouter>(r#"{"config":{"tenants":{"acme":1}},"connections":[]}"#);
        assert_eq!(
            bad.err().as_deref(),
            Some("config.tenants must be an object whose values are strings")
        );
        const { assert!(ReferenceRouter::DETERMINISTIC) };
    }
}
