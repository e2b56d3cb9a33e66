//! The registry's errors: each says what was wrong and what to do. URLs in
//! them are always redacted.

/// What went wrong with the router registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry's server could not be reached or refused the login.
    #[error("cannot reach the router registry at {url}: {message}; check the URL and that the server is up")]
    Connect {
        /// The registry's URL, redacted.
        url: String,
        /// What the driver said.
        message: String,
    },

    /// The registry's URL is not a PostgreSQL URL.
    #[error("the router registry URL {url} is not a PostgreSQL URL: {message}; use postgres://user@host:port/database")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// Why it was refused.
        message: String,
    },

    /// A name (schema, router, service, instance) breaks the registry's
    /// naming rules.
    #[error("invalid {what} `{name}`: {reason}")]
    InvalidName {
        /// What the name names.
        what: &'static str,
        /// The name, shortened.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// The registry's schema has no tables yet.
    #[error(
        "the router registry in schema `{schema}` is not initialised; run `dbroute registry init` (with a role that may create tables) first"
    )]
    NotInitialised {
        /// The registry's schema.
        schema: String,
    },

    /// The registry was made by a newer dbroute than this one.
    #[error(
        "the router registry in schema `{schema}` is at schema version {found}, newer than the {known} this dbroute knows; upgrade dbroute on this host"
    )]
    NewerSchema {
        /// The registry's schema.
        schema: String,
        /// The newest migration applied to it.
        found: i64,
        /// The newest migration this build knows.
        known: i64,
    },

    /// No version of this router was ever published.
    #[error("no router named `{router}` is published in the registry; publish it first (`dbroute publish`)")]
    UnknownRouter {
        /// The router's name.
        router: String,
    },

    /// The router has no such version.
    #[error("router `{router}` has no version {version}; published versions: {known:?}")]
    UnknownVersion {
        /// The router's name.
        router: String,
        /// The version asked for.
        version: i32,
        /// The versions that exist.
        known: Vec<i32>,
    },

    /// A rollout's percent outside 0–100.
    #[error("a rollout's percent must be 0 to 100, not {percent}")]
    Percent {
        /// The percent given.
        percent: i64,
    },

    /// A module's bytes do not match the SHA-256 the registry recorded for
    /// them: they were changed after publishing, or damaged.
    #[error(
        "router `{router}` version {version} in the registry is damaged: its bytes hash to {actual}, not the published {expected}; publish it again"
    )]
    ChecksumMismatch {
        /// The router's name.
        router: String,
        /// Its version.
        version: i32,
        /// The SHA-256 recorded at publishing.
        expected: String,
        /// The SHA-256 of the bytes read.
        actual: String,
    },

    /// `rollback` with no rollout to undo.
    #[error("router `{router}` has no rolling or complete rollout to roll back")]
    NothingToRollBack {
        /// The router's name.
        router: String,
    },

    /// The registry's role may not do this (a service's read-only role
    /// publishing, say).
    #[error("the registry refused to {action}: the role has no permission; use the publisher role")]
    PermissionDenied {
        /// What was attempted.
        action: &'static str,
    },

    /// A statement on the registry failed.
    #[error("the router registry could not {action}: {message}")]
    Query {
        /// What was attempted.
        action: &'static str,
        /// What the server said.
        message: String,
    },
}

impl RegistryError {
    /// A failed statement, telling a permission refusal apart.
    pub(crate) fn query(action: &'static str, error: sqlx::Error) -> RegistryError {
        if let Some(db) = error.as_database_error()
            && db.code().as_deref() == Some("42501")
        {
            return RegistryError::PermissionDenied { action };
        }
        RegistryError::Query {
            action,
            message: error.to_string(),
        }
    }
}
