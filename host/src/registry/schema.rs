//! The registry's schema: its migrations (embedded in the crate), making
//! and upgrading it, and the version check of an engine that only reads it.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::error::RegistryError;

/// The registry's migrations, oldest first: (version, description, SQL).
/// Embedded rather than read from a folder, so that an engine carries the
/// schema it knows; the schema's name is the connection's `search_path`,
/// so the same SQL makes any number of registries side by side.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "registry", include_str!("migrations/0001_registry.sql"))];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The migrations table, in the registry's schema.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Checks a schema name: what PostgreSQL takes unquoted.
pub(crate) fn check_schema_name(schema: &str) -> Result<(), RegistryError> {
    let reason = if schema.is_empty() || schema.len() > 48 {
        Some("use 1 to 48 characters")
    } else if !schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        Some("it must start with a lowercase letter or `_`")
    } else if !schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Some("use only a-z, 0-9 and `_`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RegistryError::InvalidName {
            what: "registry schema",
            name: schema.chars().take(64).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A small pool on the registry, its `search_path` the registry's schema.
pub(crate) async fn connect(url: &str, schema: &str, max_connections: u32) -> Result<PgPool, RegistryError> {
    check_schema_name(schema)?;
    let redacted = crate::connection::url::redact(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| RegistryError::InvalidUrl {
            url: redacted.clone(),
            message: crate::connection::url::redact(&e.to_string()),
        })?
        .options([("search_path", schema)])
        .application_name("dbroute-registry");
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
        .map_err(|e| RegistryError::Connect {
            url: redacted,
            message: crate::connection::url::redact(&e.to_string()),
        })
}

fn migrator(schema: &str) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(*sql),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name(format!("{schema}.{MIGRATIONS_TABLE}"));
    migrator.create_schema(schema.to_owned());
    migrator
}

/// Makes the registry's schema, or upgrades it to this build's version.
/// Returns the schema version it is at.
pub(crate) async fn init(pool: &PgPool, schema: &str) -> Result<i64, RegistryError> {
    // A registry newer than this build is left alone.
    if let Some(found) = applied_version(pool, schema).await?
        && found > SCHEMA_VERSION
    {
        return Err(RegistryError::NewerSchema {
            schema: schema.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    migrator(schema).run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => RegistryError::query("create the registry's tables", inner),
        other => RegistryError::Query {
            action: "create the registry's tables",
            message: other.to_string(),
        },
    })?;
    Ok(SCHEMA_VERSION)
}

/// The newest migration applied to the registry, `None` when it has none.
async fn applied_version(pool: &PgPool, schema: &str) -> Result<Option<i64>, RegistryError> {
    let table = format!("{schema}.{MIGRATIONS_TABLE}");
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(pool)
        .await
        .map_err(|e| RegistryError::query("read its schema version", e))?;
    if exists.is_none() {
        return Ok(None);
    }
    // `table` is a checked schema name and a constant.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT max(version) FROM {table} WHERE success"
    )))
    .fetch_one(pool)
    .await
    .map_err(|e| RegistryError::query("read its schema version", e))
}

/// Checks that the registry exists and is a version this build knows (an
/// engine or a publisher never upgrades it: `init` does).
pub(crate) async fn check(pool: &PgPool, schema: &str) -> Result<i64, RegistryError> {
    match applied_version(pool, schema).await? {
        None => Err(RegistryError::NotInitialised {
            schema: schema.to_owned(),
        }),
        Some(found) if found > SCHEMA_VERSION => Err(RegistryError::NewerSchema {
            schema: schema.to_owned(),
            found,
            known: SCHEMA_VERSION,
        }),
        Some(found) if found < SCHEMA_VERSION => Err(RegistryError::Query {
            action: "be used",
            message: format!(
                "schema `{schema}` is at version {found}, older than this dbroute's {SCHEMA_VERSION}; run `dbroute registry init` to upgrade it"
            ),
        }),
        Some(found) => Ok(found),
    }
}
