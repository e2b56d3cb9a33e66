//! The connection factory: connections made on first use, for names that
//! are not registered (one database per tenant), and evicted when idle or
//! when there are too many.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::connection::pool::PoolSettings;
use crate::connection::registry::{ConnectionEntry, Registry, process_millis};
use crate::connection::url::ConnectionUrl;
use crate::engine::WeakEngine;
use crate::error::Result;
use crate::name::ConnectionName;
use crate::provision::{Hook, Provision, Provisioning};

type MakeUrl = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Makes a connection for a name that is not registered, when a router (or
/// an explicit `using`) names one. The new connection's pool connects on
/// first use, is registered under that name, and is made once however many
/// requests race for it. Without a factory, an unknown name is an error.
/// With a [provisioning hook](ConnectionFactory::provision), each new
/// connection's database is created and prepared before its first
/// statement.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use std::time::Duration;
/// use dbroute::{ConnectionFactory, Engine, ModelInfo};
///
/// let dir = std::env::temp_dir().join(format!("dbroute-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection_factory(
///         ConnectionFactory::from_template(format!("sqlite:{}/tenant_{{name}}.db", dir.display()))
///             .evict_after_idle(Duration::from_secs(300))
///             .max_connections(1000),
///     )
///     .build()
///     .await?;
/// // `tenant_acme` is not registered: the factory makes it.
/// let acme = engine.read_model(&ModelInfo::new("Invoice")).using("acme").connection()?;
/// assert_eq!(acme.name(), "acme");
/// acme.execute("CREATE TABLE invoices (id INTEGER)", &[]).await?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectionFactory {
    make_url: Arc<MakeUrl>,
    pub(crate) settings: PoolSettings,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
    /// Serialises making, so racing first requests make one pool.
    making: Arc<Mutex<()>>,
    /// Runs before the first statement on each connection it makes.
    provision: Option<Arc<Hook>>,
    /// Connections made, evicted idle, evicted over the limit (for the
    /// engine's metrics).
    counts: Arc<[AtomicU64; 3]>,
}

impl fmt::Debug for ConnectionFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionFactory")
            .field("settings", &self.settings)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("provision", &self.provision.is_some())
            .finish_non_exhaustive()
    }
}

impl ConnectionFactory {
    /// A factory that fills a URL template: `{name}` becomes the connection
    /// name (names are `A-Z a-z 0-9 _ - .`, and the factory never makes a
    /// name containing `..`, so they are safe in a URL or a file path).
    /// When names come from untrusted input, put an
    /// [`AllowList`](crate::AllowList) in front.
    pub fn from_template(template: impl Into<String>) -> Self {
        let template = template.into();
        Self::from_fn(move |name| Some(template.replace("{name}", name)))
    }

    /// A factory that asks a function for the URL of a name; `None` refuses
    /// (the name stays unknown).
    pub fn from_fn(make_url: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        ConnectionFactory {
            make_url: Arc::new(make_url),
            settings: PoolSettings::new(),
            idle_timeout: None,
            max_connections: None,
            making: Arc::default(),
            counts: Arc::default(),
            provision: None,
        }
    }

    /// Pool settings for the connections it makes (they always connect
    /// lazily).
    pub fn pool_settings(mut self, settings: PoolSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Closes and unregisters a made connection that no decision chose for
    /// this long.
    pub fn evict_after_idle(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// At most this many made connections at once; making one more evicts
    /// the least recently used.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Runs `hook` once for each connection the factory makes, before any
    /// statement runs on it: to create the tenant's database and prepare
    /// it (create its schema, run its migrations). See [`Provisioning`]
    /// for what the hook gets.
    ///
    /// Making a connection stays synchronous (a router answers a name on
    /// the routing path); the hook runs on the async path: the first
    /// statement (routed, or on an [`Engine::connection`](crate::Engine::connection)
    /// handle), transaction or schema operation on the connection starts
    /// it and waits for it, and so does every other one that comes
    /// meanwhile (however many race, the hook runs once: in a task of its
    /// own, so a caller that stops waiting does not cancel it). Later
    /// statements pay one atomic load. Health checks skip a connection
    /// whose hook has not succeeded yet.
    ///
    /// When the hook fails (an error, or a panic), every waiting request
    /// gets [`Error::Provision`](crate::Error::Provision) with its message
    /// (credentials removed), the connection is unregistered and its pool
    /// closed, and [`Engine::status`](crate::Engine::status) lists it as
    /// failed; the next request that names it makes it again and runs the
    /// hook again. Make the hook idempotent: it also runs again when an
    /// evicted connection is made again, and in every process.
    ///
    /// # Examples
    ///
    /// A SQLite file per tenant: the pool creates the file on its first
    /// connection, the hook migrates it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use dbroute::{ConnectionFactory, Engine, ModelInfo, Provisioning, params};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let counted = runs.clone();
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection_factory(
    ///         ConnectionFactory::from_template(format!("sqlite:{}/tenant_{{name}}.db", dir.path().display()))
    ///             .provision(move |tenant: Provisioning| {
    ///                 counted.fetch_add(1, Ordering::SeqCst);
    ///                 async move {
    ///                     tenant
    ///                         .connection()
    ///                         .execute("CREATE TABLE IF NOT EXISTS invoices (id INTEGER PRIMARY KEY, total INTEGER)", &[])
    ///                         .await?;
    ///                     Ok(())
    ///                 }
    ///             }),
    ///     )
    ///     .build()
    ///     .await?;
    /// let invoice = ModelInfo::new("Invoice");
    /// for total in [10, 20] {
    ///     engine.write_model(&invoice).using("acme").execute("INSERT INTO invoices (total) VALUES ($1)", &params![total]).await?;
    /// }
    /// let sum = engine.read_model(&invoice).using("acme").fetch_one("SELECT SUM(total) AS sum FROM invoices", &[]).await?;
    /// assert_eq!(sum.get::<i64, _>("sum"), 30);
    /// assert_eq!(runs.load(Ordering::SeqCst), 1, "once for acme");
    /// # Ok(()) }
    /// ```
    ///
    /// For PostgreSQL and MySQL/MariaDB the hook first creates the
    /// database on the server: with
    /// [`Provisioning::create_database_if_missing`] when the tenants' user
    /// may create databases, else with an administrator's pool on the
    /// maintenance database that the service keeps (`docs/embedding.md`,
    /// "Tenants: provisioning on first use", has both):
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use dbroute::sqlx::{AssertSqlSafe, Executor, PgPool};
    /// use dbroute::{ConnectionFactory, Engine};
    ///
    /// // The tenants' user `app` may not create databases; `admin` may.
    /// let admin = PgPool::connect("postgres://admin:secret@db.internal/postgres").await?;
    /// let factory = ConnectionFactory::from_template("postgres://app:secret@db.internal/tenant_{name}")
    ///     .provision(move |tenant| {
    ///         let admin = admin.clone();
    ///         async move {
    ///             let database = tenant.database(); // tenant_acme
    ///             let exists: bool =
    ///                 dbroute::sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
    ///                     .bind(&database)
    ///                     .fetch_one(&admin)
    ///                     .await?;
    ///             if !exists {
    ///                 let quoted = database.replace('"', "\"\"");
    ///                 let create = format!("CREATE DATABASE \"{quoted}\" OWNER app");
    ///                 if let Err(e) = admin.execute(AssertSqlSafe(create)).await {
    ///                     // Another process may have created it meanwhile.
    ///                     let code = e.as_database_error().and_then(|e| e.code());
    ///                     if code.as_deref() != Some("42P04") {
    ///                         return Err(e.into());
    ///                     }
    ///                 }
    ///             }
    ///             tenant.migrate("migrations/tenant").await?;
    ///             Ok(())
    ///         }
    ///     });
    /// let engine = Engine::builder()
    ///     .connection("default", "postgres://app:secret@db.internal/main")
    ///     .connection_factory(factory)
    ///     .build()
    ///     .await?;
    /// # drop(engine);
    /// # Ok(()) }
    /// ```
    pub fn provision<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Provisioning) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send + 'static,
    {
        self.provision = Some(crate::provision::hook(hook));
        self
    }

    /// Makes and registers a connection for `name` (or returns the one a
    /// racing request made meanwhile); `None` when this factory does not
    /// make `name`. Makes room first when [`max_connections`] are made
    /// already, evicting the least recently used.
    ///
    /// [`max_connections`]: ConnectionFactory::max_connections
    pub(crate) fn make(
        &self,
        registry: &Registry,
        name: ConnectionName,
        engine: impl FnOnce() -> WeakEngine,
    ) -> Result<Option<Arc<ConnectionEntry>>> {
        let _making = self.making.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = registry.snapshot().get(&name) {
            return Ok(Some(entry.clone())); // Another request made it meanwhile.
        }
        // `..` is a valid connection name, but not a safe path segment for a
        // URL template: the factory never makes it.
        if name.as_str().contains("..") {
            return Ok(None);
        }
        let Some(url) = (self.make_url)(name.as_str()) else {
            return Ok(None);
        };
        let url = ConnectionUrl::parse(name, &url)?;
        let mut entry = ConnectionEntry::open_lazy(name, url, self.settings.clone().lazy(true))?;
        if let Some(hook) = &self.provision {
            entry.set_provision(Provision::pending(hook.clone(), engine()));
        }
        let entry = Arc::new(entry);
        let entry = match registry.add_or_get(entry.clone()) {
            Ok(()) => {
                self.counts[0].fetch_add(1, Ordering::Relaxed);
                entry
            }
            Err(existing) => existing,
        };
        if let Some(max) = self.max_connections {
            let snapshot = registry.snapshot_full();
            let mut made: Vec<_> = snapshot
                .entries()
                .filter(|e| e.is_from_factory() && e.name() != name)
                .collect();
            if made.len() >= max {
                made.sort_by_key(|e| e.last_used());
                for victim in &made[..=made.len() - max] {
                    if evict(registry, victim.name()) {
                        self.counts[2].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(Some(entry))
    }

    /// Connections made, evicted idle and evicted over the limit, so far.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let [made, idle, limit] = &*self.counts;
        (
            made.load(Ordering::Relaxed),
            idle.load(Ordering::Relaxed),
            limit.load(Ordering::Relaxed),
        )
    }

    /// Unregisters and closes the made connections no decision chose within
    /// the idle time; returns their names.
    pub(crate) async fn evict_idle(&self, registry: &Registry) -> Vec<ConnectionName> {
        let Some(idle) = self.idle_timeout else {
            return Vec::new();
        };
        let now = process_millis();
        let idle = idle.as_millis() as u64;
        let snapshot = registry.snapshot_full();
        let victims: Vec<ConnectionName> = snapshot
            .entries()
            .filter(|e| e.is_from_factory() && now.saturating_sub(e.last_used()) >= idle)
            .map(|e| e.name())
            .collect();
        for name in &victims {
            if let Ok(entry) = registry.take(*name) {
                self.counts[1].fetch_add(1, Ordering::Relaxed);
                entry.pool().close().await;
            }
        }
        victims
    }
}

/// Unregisters a made connection and closes its pool in the background
/// (operations in flight finish first); whether it was registered.
fn evict(registry: &Registry, name: ConnectionName) -> bool {
    let Ok(entry) = registry.take(name) else {
        return false;
    };
    tracing::debug!(connection = %name, "factory connection evicted");
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { entry.pool().close().await });
    }
    true
}
