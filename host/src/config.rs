//! The TOML configuration file: connections, routers and policies, with
//! `${ENV_VAR}` expansion for secrets. It produces the same
//! [`EngineBuilder`] as code does.

use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::causal::{BadTokens, ReadYourWrites, ReplicaFailover};
use crate::connection::pool::PoolSettings;
use crate::engine::{Engine, EngineBuilder, ReadFailure, RouterSource, TransactionRouting};
use crate::error::{Error, Result};
use crate::router::wasm::WasmRouter;
use crate::router::wasm::runtime::RouterLimits;

/// A parsed configuration file (every key, with an example each:
/// `docs/configuration.md`).
///
/// ```toml
/// read_failure = "fall_back_to_default"   # or "fail" (the default)
/// compiled_router_cache = ".dbroute/compiled"  # optional, relative to the file
/// replication_check_every_ms = 1000     # how often replicas' lag is measured (0: never)
/// replica_failover = "primary"          # or "fail" (the default): reads of an unavailable replica
///
/// [connections.default]
/// url = "postgres://app:${DB_PASSWORD}@127.0.0.1/app"
/// max_connections = 20
///
/// [connections.replica]
/// url = "postgres://app:${DB_PASSWORD}@127.0.0.1:5433/app"
/// replica_of = "default"               # its lag is measured and reported
/// max_lag_ms = 5000                     # past this lag, reads skip it
///
/// [connections.cache]
/// url = "sqlite:cache.db"
/// lazy = true
///
/// [[routers]]
/// name = "cache"
/// path = "routers/cache.wasm"          # relative to the file
/// config = { ttl = 60 }
///
/// [router_limits]
/// time_budget_ms = 5
///
/// [router_registry]                     # optional: follow a fleet's router registry (docs/fleet.md)
/// url = "postgres://svc:${REGISTRY_PASSWORD}@127.0.0.1/ops"
/// service = "checkout"
///
/// [read_your_writes]                    # on by default
/// wait_ms = 20                          # wait for a replica up to this, then read from its primary
/// bad_tokens = "refuse"                 # or "ignore"
/// ```
///
/// # Examples
///
/// ```
/// use dbroute::Config;
/// let config = Config::from_toml_str(r#"
///     [connections.default]
///     url = "sqlite::memory:"
/// "#, std::path::Path::new("."))?;
/// assert_eq!(config.connection_names(), ["default"]);
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    file: ConfigFile,
    base: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// In file order: without `default = true`, the first is the default.
    #[serde(default)]
    connections: IndexMap<String, ConnectionConfig>,
    #[serde(default)]
    routers: Vec<RouterConfig>,
    #[serde(default)]
    read_failure: ReadFailure,
    #[serde(default)]
    transaction_routing: TransactionRouting,
    /// Whether routed SQL takes portable placeholders (`$1` everywhere).
    #[serde(default)]
    portable_sql: bool,
    #[serde(default)]
    router_limits: LimitsConfig,
    /// A folder for compiled routers (relative to the file).
    compiled_router_cache: Option<PathBuf>,
    /// How often replicas' lag is measured, in milliseconds (0: never).
    replication_check_every_ms: Option<u64>,
    #[serde(default)]
    replica_failover: ReplicaFailover,
    read_your_writes: Option<ReadYourWritesConfig>,
    /// A router registry to follow (PostgreSQL). Read in every build, so
    /// that a build without the `postgres` feature says what to enable.
    router_registry: Option<RegistryConfig>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
struct RegistryConfig {
    url: String,
    service: String,
    router: Option<String>,
    instance_id: Option<String>,
    schema: Option<String>,
    heartbeat_ms: Option<u64>,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &crate::connection::url::redact(&self.url))
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadYourWritesConfig {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    wait_ms: u64,
    #[serde(default)]
    bad_tokens: BadTokens,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionConfig {
    url: String,
    #[serde(default)]
    default: bool,
    max_connections: Option<u32>,
    min_connections: Option<u32>,
    acquire_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_lifetime_ms: Option<u64>,
    test_idle_after_ms: Option<u64>,
    lazy: Option<bool>,
    /// The connection this one is a replica of.
    replica_of: Option<String>,
    /// Past this lag (milliseconds), reads skip the replica.
    max_lag_ms: Option<u64>,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("url", &crate::connection::url::redact(&self.url))
            .field("default", &self.default)
            .field("replica_of", &self.replica_of)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterConfig {
    name: String,
    path: PathBuf,
    #[serde(default)]
    config: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsConfig {
    time_budget_ms: Option<u64>,
    memory_ceiling_bytes: Option<usize>,
    stack_ceiling_bytes: Option<usize>,
    idle_instances: Option<usize>,
}

impl Config {
    /// Reads and parses a configuration file. Relative router paths are
    /// relative to the file's folder.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be read; [`Error::Config`] when it is
    /// not valid; [`Error::MissingEnvVar`] for an unset `${VAR}`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, base, &path.display().to_string())
    }

    /// Parses configuration text; relative router paths are relative to
    /// `base`.
    ///
    /// # Errors
    ///
    /// As [`Config::from_file`].
    pub fn from_toml_str(text: &str, base: &Path) -> Result<Self> {
        Self::parse(text, base.to_path_buf(), "(string)")
    }

    fn parse(text: &str, base: PathBuf, origin: &str) -> Result<Self> {
        let expanded = expand_env(text, origin)?;
        let file: ConfigFile = toml::from_str(&expanded).map_err(|e| Error::Config {
            origin: origin.to_owned(),
            // toml's message quotes the offending line, which may hold an
            // expanded secret: keep only the description.
            message: crate::connection::url::redact(e.message()),
        })?;
        if file.connections.is_empty() {
            return Err(Error::Config {
                origin: origin.to_owned(),
                message: "no [connections.NAME] section; add at least one".into(),
            });
        }
        #[cfg(not(feature = "postgres"))]
        if file.router_registry.is_some() {
            return Err(Error::Config {
                origin: origin.to_owned(),
                message: REGISTRY_NEEDS_POSTGRES.into(),
            });
        }
        Ok(Config { file, base })
    }

    /// The connection names, in file order.
    pub fn connection_names(&self) -> Vec<&str> {
        self.file.connections.keys().map(String::as_str).collect()
    }

    /// The connections declared replicas (`replica_of = "NAME"`), as
    /// (replica, primary), in file order. Checked when the engine is built
    /// (see [`EngineBuilder::replica_of`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::Config;
    /// let config = Config::from_toml_str(r#"
    ///     [connections.default]
    ///     url = "postgres://app@127.0.0.1:5432/app"
    ///     [connections.replica]
    ///     url = "postgres://app@127.0.0.1:5433/app"
    ///     replica_of = "default"
    /// "#, std::path::Path::new("."))?;
    /// assert_eq!(config.replicas(), [("replica", "default")]);
    /// # Ok::<(), dbroute::Error>(())
    /// ```
    pub fn replicas(&self) -> Vec<(&str, &str)> {
        self.file
            .connections
            .iter()
            .filter_map(|(name, c)| Some((name.as_str(), c.replica_of.as_deref()?)))
            .collect()
    }

    /// The router limits the file sets (defaults for the rest).
    pub fn router_limits(&self) -> RouterLimits {
        let l = &self.file.router_limits;
        let mut limits = RouterLimits::new();
        if let Some(ms) = l.time_budget_ms {
            limits = limits.time_budget(Duration::from_millis(ms));
        }
        if let Some(bytes) = l.memory_ceiling_bytes {
            limits = limits.memory_ceiling(bytes);
        }
        if let Some(bytes) = l.stack_ceiling_bytes {
            limits = limits.stack_ceiling(bytes);
        }
        if let Some(n) = l.idle_instances {
            limits = limits.idle_instances(n);
        }
        limits
    }

    /// The builder this configuration describes.
    pub fn builder(&self) -> EngineBuilder {
        let mut builder = Engine::builder()
            .read_failure(self.file.read_failure)
            .transaction_routing(self.file.transaction_routing)
            .portable_sql(self.file.portable_sql)
            .router_limits(self.router_limits());
        if let Some(dir) = &self.file.compiled_router_cache {
            builder = builder.compiled_router_cache(self.base.join(dir));
        }
        if let Some(ms) = self.file.replication_check_every_ms {
            builder = builder.replication_check_every(Duration::from_millis(ms));
        }
        builder = builder.replica_failover(self.file.replica_failover);
        if let Some(ryw) = &self.file.read_your_writes {
            let policy = if ryw.enabled {
                ReadYourWrites::on()
            } else {
                ReadYourWrites::off()
            };
            builder = builder.read_your_writes(
                policy
                    .wait(Duration::from_millis(ryw.wait_ms))
                    .bad_tokens(ryw.bad_tokens),
            );
        }
        for (name, c) in &self.file.connections {
            let mut settings = PoolSettings::new();
            if let Some(n) = c.max_connections {
                settings = settings.max_connections(n);
            }
            if let Some(n) = c.min_connections {
                settings = settings.min_connections(n);
            }
            if let Some(ms) = c.acquire_timeout_ms {
                settings = settings.acquire_timeout(Duration::from_millis(ms));
            }
            if let Some(ms) = c.idle_timeout_ms {
                settings = settings.idle_timeout(Some(Duration::from_millis(ms)));
            }
            if let Some(ms) = c.max_lifetime_ms {
                settings = settings.max_lifetime(Some(Duration::from_millis(ms)));
            }
            if let Some(ms) = c.test_idle_after_ms {
                settings = settings.test_idle_after(Some(Duration::from_millis(ms)));
            }
            if let Some(lazy) = c.lazy {
                settings = settings.lazy(lazy);
            }
            builder = builder.connection_with(name.clone(), c.url.clone(), settings);
            if c.default {
                builder = builder.default_connection(name.clone());
            }
            if let Some(primary) = &c.replica_of {
                builder = builder.replica_of(name.clone(), primary.clone());
            }
            if let Some(ms) = c.max_lag_ms {
                builder = builder.replica_max_lag(name.clone(), Duration::from_millis(ms));
            }
        }
        #[cfg(feature = "postgres")]
        if let Some(r) = &self.file.router_registry {
            let mut registry = crate::registry::RouterRegistry::new(r.url.clone(), r.service.clone());
            if let Some(router) = &r.router {
                registry = registry.router(router.clone());
            }
            if let Some(id) = &r.instance_id {
                registry = registry.instance_id(id.clone());
            }
            if let Some(schema) = &r.schema {
                registry = registry.schema(schema.clone());
            }
            if let Some(ms) = r.heartbeat_ms {
                registry = registry.heartbeat_every(Duration::from_millis(ms));
            }
            builder = builder.router_registry_with(registry);
        }
        for r in &self.file.routers {
            let path = if r.path.is_absolute() {
                r.path.clone()
            } else {
                self.base.join(&r.path)
            };
            builder = builder.add_wasm_router(
                WasmRouter::named(&r.name).config(r.config.clone()),
                RouterSource::File(path),
            );
        }
        builder
    }
}

/// Why a build without PostgreSQL refuses a `[router_registry]` table.
#[cfg(any(not(feature = "postgres"), test))]
const REGISTRY_NEEDS_POSTGRES: &str = "[router_registry] needs dbroute's `postgres` feature (the registry is a PostgreSQL \
     database); enable it, or remove the table";

/// Replaces `${VAR}` with the variable's value; `$${` is a literal `${`.
fn expand_env(text: &str, origin: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Error::Config {
                origin: origin.to_owned(),
                message: "a `${` is not closed by `}`".into(),
            });
        };
        let var = &after[..end];
        match std::env::var(var) {
            Ok(value) => out.push_str(&value),
            Err(_) => {
                return Err(Error::MissingEnvVar {
                    origin: origin.to_owned(),
                    var: crate::name::printable(var),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_and_escapes() {
        // SAFETY-free: a variable unique to this test.
        let var = "DBROUTE_TEST_EXPAND_PATH";
        let set = std::env::var("PATH").unwrap();
        let text = format!("a=${{PATH}} b=$${{{var}}}");
        assert_eq!(expand_env(&text, "t").unwrap(), format!("a={set} b=${{{var}}}"));
        assert!(matches!(
            expand_env("x=${DBROUTE_SURELY_UNSET_VARIABLE}", "t"),
            Err(Error::MissingEnvVar { .. })
        ));
        assert!(matches!(expand_env("x=${OPEN", "t"), Err(Error::Config { .. })));
    }

    /// Every example in `docs/configuration.md` parses, and every key its
    /// tables list is shown in an example.
    #[test]
    fn the_reference_pages_examples_parse() {
        let page = include_str!("../../docs/configuration.md");
        let mut examples = Vec::new();
        let mut lines = page.lines();
        while let Some(line) = lines.next() {
            if line.trim() == "```toml" {
                let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
                examples.push(block.join("\n"));
            }
        }
        assert!(examples.len() >= 5, "{} examples", examples.len());
        for example in &examples {
            // The page's secret comes from the environment: stand one in.
            let text = example.replace("${DB_PASSWORD}", "secret");
            let parsed = Config::from_toml_str(&text, Path::new("."));
            // A build without PostgreSQL refuses the registry's table,
            // saying what to enable.
            if cfg!(not(feature = "postgres")) && text.contains("[router_registry]") {
                let error = parsed.expect_err("a registry without the postgres feature").to_string();
                assert!(error.contains(REGISTRY_NEEDS_POSTGRES), "{error}");
                continue;
            }
            let config = parsed.unwrap_or_else(|e| panic!("an example does not parse: {e}\n{example}"));
            let _ = config.builder();
        }
        let keys = page
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next());
        for key in keys {
            assert!(
                examples.iter().any(|e| e.contains(&format!("{key} ="))),
                "the key `{key}` has no example"
            );
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn portable_sql_is_set_from_the_file() {
        let text = "portable_sql = true\n[connections.default]\nurl = \"sqlite::memory:\"\n";
        let engine = Config::from_toml_str(text, Path::new("."))
            .unwrap()
            .builder()
            .build()
            .await
            .unwrap();
        assert!(engine.portable_sql());
        assert!(engine.connection("default").unwrap().is_portable());
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_router_registry_reaches_the_builder_without_its_password() {
        let config = Config::from_toml_str(
            r#"
            [connections.default]
            url = "sqlite::memory:"
            [router_registry]
            url = "postgres://svc:hunter2@127.0.0.1/ops"
            service = "checkout"
            instance_id = "checkout-1"
            heartbeat_ms = 250
            "#,
            Path::new("."),
        )
        .unwrap();
        let shown = format!("{:?} {config:?}", config.builder());
        assert!(
            shown.contains("service: \"checkout\"") && shown.contains("checkout-1"),
            "{shown}"
        );
        assert!(shown.contains("250ms") && shown.contains("***"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let missing = Config::from_toml_str("[router_registry]\nurl = \"postgres://x\"\n", Path::new("."));
        assert!(missing.unwrap_err().to_string().contains("service"));
    }

    #[test]
    fn rejects_unknown_keys_and_empty_files() {
        let base = Path::new(".");
        assert!(Config::from_toml_str("", base).is_err());
        let typo = "[connections.default]\nurl = \"sqlite::memory:\"\nmax_conections = 3\n";
        let err = Config::from_toml_str(typo, base).unwrap_err().to_string();
        assert!(err.contains("max_conections"), "{err}");
    }
}
