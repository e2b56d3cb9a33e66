//! `RegistryClient`: the publisher's side of the registry (init, publish,
//! rollout, rollback) and what anyone may read (the fleet, a module).

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row as _;
use sqlx::postgres::PgPool;

use super::error::RegistryError;
use super::plan::{LatestRollout, RolloutState};
use super::schema;
use crate::error::Result;
use crate::router::wasm::WasmRouter;
use crate::router::wasm::runtime::{RouterLimits, RouterRuntime};
use crate::router::wasm::tiers::Compilation;

/// The registry's schema unless one is named.
pub const DEFAULT_SCHEMA: &str = "dbroute_registry";

/// Checks a router's or service's name: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), RegistryError> {
    let reason = if name.is_empty() || name.len() > 64 {
        Some("use 1 to 64 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Some("use only A-Z a-z 0-9 _ - .")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RegistryError::InvalidName {
            what,
            name: name.chars().take(64).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A connection to a router registry: publish routers, roll them out, roll
/// them back, and see which instance runs what.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::registry::{Publication, RegistryClient};
///
/// let registry = RegistryClient::connect("postgres://deploy@127.0.0.1/ops", "dbroute_registry").await?;
/// registry.init().await?;
/// let bytes = std::fs::read("routers/replica.wasm").expect("the router module");
/// let version = registry
///     .publish(Publication::new("replica", bytes).connections(["default", "replica"]))
///     .await?;
/// registry.rollout("replica", version, 25).await?; // a canary on a quarter of the fleet
/// for instance in registry.fleet().await?.instances {
///     println!("{} runs version {:?}", instance.instance_id, instance.version);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RegistryClient {
    pool: PgPool,
    schema: String,
    by: String,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool is left out: nothing of its connection options shows.
        f.debug_struct("RegistryClient")
            .field("schema", &self.schema)
            .field("by", &self.by)
            .finish_non_exhaustive()
    }
}

/// A router module to publish, with its configuration, and the connection
/// names it is checked against (as a host would tell its `dbroute_init`).
#[derive(Clone)]
pub struct Publication {
    name: String,
    module: Vec<u8>,
    config: serde_json::Value,
    connections: Vec<String>,
    published_by: Option<String>,
}

impl std::fmt::Debug for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication")
            .field("name", &self.name)
            .field("size", &self.module.len())
            .field("config", &self.config)
            .field("connections", &self.connections)
            .field("published_by", &self.published_by)
            .finish()
    }
}

impl Publication {
    /// A module (binary WebAssembly or WAT text) to publish as router
    /// `name`; no configuration, checked against the connection `default`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::registry::Publication;
    /// let publication = Publication::new("rules", b"(module)".to_vec())
    ///     .config(serde_json::json!({"replica": "replica"}))
    ///     .connections(["default", "replica"])
    ///     .published_by("ci");
    /// # let _ = publication;
    /// ```
    pub fn new(name: impl Into<String>, module: Vec<u8>) -> Publication {
        Publication {
            name: name.into(),
            module,
            config: serde_json::Value::Null,
            connections: vec!["default".into()],
            published_by: None,
        }
    }

    /// The configuration every instance hands the router's `dbroute_init`.
    pub fn config(mut self, config: serde_json::Value) -> Publication {
        self.config = config;
        self
    }

    /// The connection names the module is checked against before it is
    /// published.
    pub fn connections<I, S>(mut self, names: I) -> Publication
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.connections = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
        self
    }

    /// Who publishes (default: the client's user, from `USER`).
    pub fn published_by(mut self, by: impl Into<String>) -> Publication {
        self.published_by = Some(by.into());
        self
    }
}

/// A rollout, as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// Its number, increasing.
    pub id: i64,
    /// The router rolled out.
    pub router: String,
    /// The version rolled out.
    pub version: i32,
    /// The version outside the canary (and after a rollback), if any.
    pub previous_version: Option<i32>,
    /// The share of instances that run `version` while rolling.
    pub percent: i16,
    /// Where it stands.
    #[serde(serialize_with = "state_name")]
    pub state: RolloutState,
    /// Why it was rolled back, aborted or failed.
    pub reason: Option<String>,
}

fn state_name<S: serde::Serializer>(state: &RolloutState, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

impl Rollout {
    /// The version the fleet runs outside a canary while this is the
    /// latest rollout: `version` once complete, else `previous_version`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::registry::{Rollout, RolloutState};
    /// let canary = Rollout {
    ///     id: 2,
    ///     router: "checkout".into(),
    ///     version: 3,
    ///     previous_version: Some(2),
    ///     percent: 10,
    ///     state: RolloutState::Rolling,
    ///     reason: None,
    /// };
    /// assert_eq!(canary.stable_version(), Some(2));
    /// ```
    pub fn stable_version(&self) -> Option<i32> {
        self.latest().stable_version()
    }

    pub(crate) fn latest(&self) -> LatestRollout {
        LatestRollout {
            version: self.version,
            previous_version: self.previous_version,
            percent: self.percent,
            state: self.state,
        }
    }
}

/// A published module, read back and checked against its SHA-256.
#[derive(Clone)]
pub struct PublishedRouter {
    /// The router's name.
    pub name: String,
    /// Its version.
    pub version: i32,
    /// The module's bytes.
    pub module: Vec<u8>,
    /// Their SHA-256, hex.
    pub sha256: String,
    /// The configuration handed to `dbroute_init`.
    pub config: serde_json::Value,
}

impl std::fmt::Debug for PublishedRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedRouter")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("size", &self.module.len())
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// One instance's row: what it runs and when it last said so.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    /// The instance's id.
    pub instance_id: String,
    /// Its service.
    pub service: String,
    /// Its host.
    pub host: String,
    /// The router it follows.
    pub router: String,
    /// The version it runs (`None`: none from the registry).
    pub version: Option<i32>,
    /// That module's SHA-256.
    pub sha256: Option<String>,
    /// Its engine's router generation.
    pub generation: i64,
    /// The compiler tier of its router's code.
    pub tier: Option<String>,
    /// Decisions made since the router was loaded.
    pub decisions: i64,
    /// Calls of the router that faulted since it was loaded.
    pub faults: Option<i64>,
    /// The last module it refused, or the last registry error.
    pub last_error: Option<String>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: f64,
}

/// The fleet: every instance and each router's latest rollout.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    /// Instances, by service and id.
    pub instances: Vec<InstanceStatus>,
    /// The latest rollout of each router.
    pub rollouts: Vec<Rollout>,
}

fn rollout_from_row(row: &sqlx::postgres::PgRow) -> Result<Rollout, RegistryError> {
    let state: String = row.get("state");
    Ok(Rollout {
        id: row.get("id"),
        router: row.get("router"),
        version: row.get("version"),
        previous_version: row.get("previous_version"),
        percent: row.get("percent"),
        state: state.parse().map_err(|message| RegistryError::Query {
            action: "read a rollout",
            message,
        })?,
        reason: row.get("reason"),
    })
}

impl RegistryClient {
    /// Connects to the registry in `schema` (see [`DEFAULT_SCHEMA`]). The
    /// registry is not checked here: [`RegistryClient::init`] makes it,
    /// every other call checks its version first.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidUrl`], [`RegistryError::InvalidName`] (the
    /// schema), [`RegistryError::Connect`].
    pub async fn connect(url: &str, schema: &str) -> Result<RegistryClient> {
        let pool = schema::connect(url, schema, 2).await?;
        Ok(RegistryClient {
            pool,
            schema: schema.to_owned(),
            by: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        })
    }

    /// The registry's schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Makes the registry's schema and tables, or upgrades them; returns
    /// the schema version. Needs a role that may create them.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NewerSchema`] when a newer dbroute made it;
    /// [`RegistryError::PermissionDenied`] or [`RegistryError::Query`].
    pub async fn init(&self) -> Result<i64> {
        Ok(schema::init(&self.pool, &self.schema).await?)
    }

    /// Checks the module as a host would load it (compiled, validated, its
    /// `dbroute_init` run with the configuration and connection names),
    /// then stores it as the router's next version, which it returns. It
    /// runs nowhere until [`RegistryClient::rollout`].
    ///
    /// # Errors
    ///
    /// [`Error::RouterLoad`](crate::Error::RouterLoad) when a host would
    /// refuse it (nothing is stored); a registry error.
    pub async fn publish(&self, publication: Publication) -> Result<i32> {
        check_name("router name", &publication.name)?;
        let runtime = RouterRuntime::new(RouterLimits::default())?;
        WasmRouter::named(publication.name.as_str())
            .config(publication.config.clone())
            .connections(&publication.connections)
            .compilation(Compilation::Baseline)
            .load(&runtime, &publication.module)?;
        schema::check(&self.pool, &self.schema).await?;
        let sha256 = hex(&Sha256::digest(&publication.module));
        let by = publication.published_by.unwrap_or_else(|| self.by.clone());
        let action = "publish the router";
        let mut tx = self.pool.begin().await.map_err(|e| RegistryError::query(action, e))?;
        lock_router(&mut tx, &publication.name, action).await?;
        let version: i32 = sqlx::query_scalar(
            "INSERT INTO routers (name, version, module, sha256, config, published_by)
             SELECT $1, COALESCE(max(version), 0) + 1, $2, $3, $4::jsonb, $5 FROM routers WHERE name = $1
             RETURNING version",
        )
        .bind(&publication.name)
        .bind(&publication.module)
        .bind(&sha256)
        .bind(publication.config.to_string())
        .bind(&by)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| RegistryError::query(action, e))?;
        tx.commit().await.map_err(|e| RegistryError::query(action, e))?;
        tracing::info!(router = %publication.name, version, %sha256, "router published");
        Ok(version)
    }

    /// Rolls `version` of `router` out to `percent` of the instances (those
    /// whose [`canary_bucket`](super::canary_bucket) is below it); 100
    /// completes the rollout at once. A rollout still rolling is
    /// superseded (marked aborted); the instances outside the canary keep
    /// the fleet's stable version.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Percent`], [`RegistryError::UnknownRouter`],
    /// [`RegistryError::UnknownVersion`] (nothing changes), or a registry
    /// error.
    pub async fn rollout(&self, router: &str, version: i32, percent: i64) -> Result<Rollout> {
        check_name("router name", router)?;
        let percent = match i16::try_from(percent) {
            Ok(p) if (0..=100).contains(&p) => p,
            _ => return Err(RegistryError::Percent { percent }.into()),
        };
        schema::check(&self.pool, &self.schema).await?;
        let action = "start the rollout";
        let mut tx = self.pool.begin().await.map_err(|e| RegistryError::query(action, e))?;
        lock_router(&mut tx, router, action).await?;
        let known: Vec<i32> = sqlx::query_scalar("SELECT version FROM routers WHERE name = $1 ORDER BY version")
            .bind(router)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| RegistryError::query(action, e))?;
        if known.is_empty() {
            return Err(RegistryError::UnknownRouter { router: router.into() }.into());
        }
        if !known.contains(&version) {
            return Err(RegistryError::UnknownVersion {
                router: router.into(),
                version,
                known,
            }
            .into());
        }
        let previous = latest_rollout(&mut *tx, router).await?;
        let stable = previous.as_ref().and_then(|r| r.latest().stable_version());
        if let Some(p) = previous.as_ref().filter(|r| r.state == RolloutState::Rolling) {
            sqlx::query("UPDATE rollouts SET state = 'aborted', reason = $2, updated_at = now() WHERE id = $1")
                .bind(p.id)
                .bind(format!("superseded by a rollout of version {version} at {percent}%"))
                .execute(&mut *tx)
                .await
                .map_err(|e| RegistryError::query(action, e))?;
        }
        let state = if percent == 100 {
            RolloutState::Complete
        } else {
            RolloutState::Rolling
        };
        let row = sqlx::query(
            "INSERT INTO rollouts (router, version, previous_version, percent, state, started_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, router, version, previous_version, percent, state, reason",
        )
        .bind(router)
        .bind(version)
        .bind(stable)
        .bind(percent)
        .bind(state.as_str())
        .bind(&self.by)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| RegistryError::query(action, e))?;
        tx.commit().await.map_err(|e| RegistryError::query(action, e))?;
        let rollout = rollout_from_row(&row)?;
        tracing::info!(router, version, percent, state = %rollout.state, "rollout started");
        Ok(rollout)
    }

    /// Rolls back the router's latest rollout (rolling or complete): every
    /// instance goes back to the version before it.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NothingToRollBack`], or a registry error.
    pub async fn rollback(&self, router: &str, reason: &str) -> Result<Rollout> {
        self.end_rollout(router, RolloutState::RolledBack, reason, None).await
    }

    pub(crate) async fn end_rollout(
        &self,
        router: &str,
        state: RolloutState,
        reason: &str,
        only_version: Option<i32>,
    ) -> Result<Rollout> {
        check_name("router name", router)?;
        schema::check(&self.pool, &self.schema).await?;
        Ok(end_latest_rollout(&self.pool, router, state, reason, only_version).await?)
    }

    /// The router's latest rollout, if it ever had one.
    ///
    /// # Errors
    ///
    /// A registry error.
    pub async fn latest_rollout(&self, router: &str) -> Result<Option<Rollout>> {
        Ok(latest_rollout(&self.pool, router).await?)
    }

    /// Reads a published version back, checking its bytes against the
    /// SHA-256 recorded at publishing.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownVersion`], [`RegistryError::ChecksumMismatch`],
    /// or a registry error.
    pub async fn fetch(&self, router: &str, version: i32) -> Result<PublishedRouter> {
        Ok(fetch(&self.pool, router, version).await?)
    }

    /// Removes the rows of instances whose last heartbeat is older than
    /// `silent_for` (instances that stopped, or were replaced under a new
    /// id); returns how many. An instance still running writes its row
    /// again at its next heartbeat.
    ///
    /// # Errors
    ///
    /// A registry error (a role that may not delete from `instances`
    /// included: a publisher's task).
    pub async fn forget_instances(&self, silent_for: std::time::Duration) -> Result<u64> {
        schema::check(&self.pool, &self.schema).await?;
        let removed = sqlx::query("DELETE FROM instances WHERE last_heartbeat < now() - make_interval(secs => $1)")
            .bind(silent_for.as_secs_f64())
            .execute(&self.pool)
            .await
            .map_err(|e| RegistryError::query("forget silent instances", e))?;
        Ok(removed.rows_affected())
    }

    /// Every instance and each router's latest rollout.
    ///
    /// # Errors
    ///
    /// A registry error (one that is not initialised, or newer than this
    /// build, included).
    pub async fn fleet(&self) -> Result<FleetStatus> {
        schema::check(&self.pool, &self.schema).await?;
        let action = "read the fleet";
        let rows = sqlx::query(
            "SELECT instance_id, service, host, router, version, sha256, generation, tier, decisions,
                    faults, last_error, extract(epoch FROM now() - last_heartbeat)::float8 AS age
             FROM instances ORDER BY service, instance_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| RegistryError::query(action, e))?;
        let instances = rows
            .iter()
            .map(|r| InstanceStatus {
                instance_id: r.get("instance_id"),
                service: r.get("service"),
                host: r.get("host"),
                router: r.get("router"),
                version: r.get("version"),
                sha256: r.get("sha256"),
                generation: r.get("generation"),
                tier: r.get("tier"),
                decisions: r.get("decisions"),
                faults: r.get("faults"),
                last_error: r.get("last_error"),
                heartbeat_age_secs: r.get("age"),
            })
            .collect();
        let rows = sqlx::query(
            "SELECT DISTINCT ON (router) id, router, version, previous_version, percent, state, reason
             FROM rollouts ORDER BY router, id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| RegistryError::query(action, e))?;
        let rollouts = rows.iter().map(rollout_from_row).collect::<Result<_, _>>()?;
        Ok(FleetStatus { instances, rollouts })
    }
}

/// Serialises publishers of one router (a transaction-scoped advisory
/// lock), so versions and rollouts are numbered without gaps or races.
async fn lock_router(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    router: &str,
    action: &'static str,
) -> Result<(), RegistryError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dbroute_registry:' || $1))")
        .bind(router)
        .execute(&mut **tx)
        .await
        .map_err(|e| RegistryError::query(action, e))?;
    Ok(())
}

/// Ends the router's latest rollout as `state` (rolled back, aborted,
/// failed) with `reason`; `only_version`: only when that version is the
/// one rolling out.
pub(crate) async fn end_latest_rollout(
    pool: &PgPool,
    router: &str,
    state: RolloutState,
    reason: &str,
    only_version: Option<i32>,
) -> Result<Rollout, RegistryError> {
    let action = match state {
        RolloutState::Failed => "mark the rollout failed",
        _ => "roll back",
    };
    let mut tx = pool.begin().await.map_err(|e| RegistryError::query(action, e))?;
    lock_router(&mut tx, router, action).await?;
    let Some(latest) = latest_rollout(&mut *tx, router).await?.filter(|r| {
        matches!(r.state, RolloutState::Rolling | RolloutState::Complete) && only_version.is_none_or(|v| v == r.version)
    }) else {
        return Err(RegistryError::NothingToRollBack { router: router.into() });
    };
    let row = sqlx::query(
        "UPDATE rollouts SET state = $2, reason = $3, updated_at = now() WHERE id = $1
         RETURNING id, router, version, previous_version, percent, state, reason",
    )
    .bind(latest.id)
    .bind(state.as_str())
    .bind(reason)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| RegistryError::query(action, e))?;
    tx.commit().await.map_err(|e| RegistryError::query(action, e))?;
    rollout_from_row(&row)
}

pub(crate) async fn latest_rollout<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    router: &str,
) -> Result<Option<Rollout>, RegistryError> {
    let row = sqlx::query(
        "SELECT id, router, version, previous_version, percent, state, reason
         FROM rollouts WHERE router = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(router)
    .fetch_optional(executor)
    .await
    .map_err(|e| RegistryError::query("read the latest rollout", e))?;
    row.as_ref().map(rollout_from_row).transpose()
}

pub(crate) async fn fetch(pool: &PgPool, router: &str, version: i32) -> Result<PublishedRouter, RegistryError> {
    let action = "read a router module";
    let row =
        sqlx::query("SELECT module, sha256, config::text AS config FROM routers WHERE name = $1 AND version = $2")
            .bind(router)
            .bind(version)
            .fetch_optional(pool)
            .await
            .map_err(|e| RegistryError::query(action, e))?;
    let Some(row) = row else {
        let known: Vec<i32> = sqlx::query_scalar("SELECT version FROM routers WHERE name = $1 ORDER BY version")
            .bind(router)
            .fetch_all(pool)
            .await
            .map_err(|e| RegistryError::query(action, e))?;
        return Err(RegistryError::UnknownVersion {
            router: router.into(),
            version,
            known,
        });
    };
    let module: Vec<u8> = row.get("module");
    let expected: String = row.get("sha256");
    let actual = hex(&Sha256::digest(&module));
    if actual != expected {
        return Err(RegistryError::ChecksumMismatch {
            router: router.into(),
            version,
            expected,
            actual,
        });
    }
    let config: String = row.get("config");
    let config = serde_json::from_str(&config).map_err(|e| RegistryError::Query {
        action,
        message: format!("its configuration is not JSON: {e}"),
    })?;
    Ok(PublishedRouter {
        name: router.into(),
        version,
        module,
        sha256: actual,
        config,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
