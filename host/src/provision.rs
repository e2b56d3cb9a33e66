//! Provisioning: the connection factory's async hook that creates and
//! prepares a tenant's database the first time its name is made.
//!
//! Making a connection stays synchronous (it happens on the routing path,
//! inside a decision); the hook runs on the async path instead: the first
//! statement, transaction or schema operation on a connection that is not
//! provisioned starts it and waits for it, and so does every other one
//! that comes meanwhile. It runs once per made connection, in a task of
//! its own, so a caller that gives up waiting does not cancel it halfway.
//! On failure the connection is unregistered and its pool closed before
//! anyone is told, so the next request makes it again from scratch.
//!
//! Provisioned connections pay one atomic load per statement
//! ([`ConnectionEntry::ready`]); the waiting is boxed, off the
//! statement's future.

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::migrate::MigrateDatabase;
use tokio::sync::Notify;

use crate::connection::dispatch::{SqlxBackend, dispatch};
use crate::connection::handle::Connection;
use crate::connection::pool::DbPool;
use crate::connection::registry::ConnectionEntry;
use crate::connection::stats::ProvisionState;
use crate::connection::url::{Backend, ConnectionUrl};
use crate::engine::WeakEngine;
use crate::error::{Error, Result};
use crate::name::ConnectionName;
use crate::schema::ConnectionMigrations;

/// What a provisioning hook returns on failure: any error (`?` converts
/// dbroute's, sqlx's, `std::io`'s, or a `String`).
pub(crate) type HookError = Box<dyn std::error::Error + Send + Sync>;

type HookFuture = Pin<Box<dyn Future<Output = std::result::Result<(), HookError>> + Send>>;

/// A factory's provisioning hook, its future boxed.
pub(crate) type Hook = dyn Fn(Provisioning) -> HookFuture + Send + Sync;

/// Boxes a hook's future.
pub(crate) fn hook<F, Fut>(hook: F) -> Arc<Hook>
where
    F: Fn(Provisioning) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), HookError>> + Send + 'static,
{
    Arc::new(move |provisioning| Box::pin(hook(provisioning)) as HookFuture)
}

/// How long a failed connection's pool may take to close before the
/// waiting requests are told (connections the hook still holds are closed
/// when it drops them).
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// The connection the current task provisions (its entry's address):
    /// statements the hook runs on it do not wait for themselves.
    static PROVISIONING: usize;
}

/// Where one connection stands with provisioning.
pub(crate) struct Provision {
    /// `Ok` once statements may run: at once for a connection without a
    /// hook, else when its hook succeeded. `Err`: the hook's message.
    outcome: OnceLock<std::result::Result<(), String>>,
    pending: Option<Box<Pending>>,
}

/// A connection whose hook has not succeeded yet.
struct Pending {
    hook: Arc<Hook>,
    /// The engine, to unregister the connection when the hook fails.
    engine: WeakEngine,
    /// Whether a request started the hook.
    started: AtomicBool,
    /// Told when the outcome is set.
    done: Notify,
}

impl Provision {
    /// Nothing to run: statements may run at once.
    pub(crate) fn ready() -> Self {
        Provision {
            outcome: OnceLock::from(Ok(())),
            pending: None,
        }
    }

    /// `hook` runs before the first statement.
    pub(crate) fn pending(hook: Arc<Hook>, engine: WeakEngine) -> Self {
        Provision {
            outcome: OnceLock::new(),
            pending: Some(Box::new(Pending {
                hook,
                engine,
                started: AtomicBool::new(false),
                done: Notify::new(),
            })),
        }
    }

    /// Whether statements may run now: one atomic load.
    #[inline]
    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.outcome.get(), Some(Ok(())))
    }

    /// For status.
    pub(crate) fn state(&self) -> ProvisionState {
        match (&self.pending, self.outcome.get()) {
            (None, _) => ProvisionState::NotNeeded,
            (Some(_), None) => ProvisionState::Pending,
            (Some(_), Some(Ok(()))) => ProvisionState::Done,
            (Some(_), Some(Err(_))) => ProvisionState::Failed,
        }
    }
}

impl ConnectionEntry {
    /// Whether statements may run on this connection now (no hook, or its
    /// hook succeeded): one atomic load, for the statement path.
    #[inline]
    pub(crate) fn is_provisioned(&self) -> bool {
        self.provision().is_ready()
    }

    /// `Ok` once statements may run on this connection: at once when it is
    /// provisioned (one atomic load); otherwise waits, starting its hook if
    /// no request did yet, and returns the hook's failure if it failed.
    /// Statements the hook itself runs on the connection pass. The wait is
    /// boxed, so it adds a pointer, not its state, to the caller's future.
    #[inline]
    pub(crate) async fn ready(self: &Arc<Self>) -> Result<()> {
        if self.is_provisioned() {
            return Ok(());
        }
        Box::pin(self.provisioned()).await
    }

    /// Waits until the connection is provisioned (see
    /// [`ready`](Self::ready)).
    async fn provisioned(self: &Arc<Self>) -> Result<()> {
        let Some(pending) = self.provision().pending.as_deref() else {
            return Ok(());
        };
        let key = Arc::as_ptr(self) as usize;
        if PROVISIONING
            .try_with(|provisioning| *provisioning == key)
            .unwrap_or(false)
        {
            return Ok(());
        }
        loop {
            // Registered before the outcome is read: a notification between
            // the two is not lost.
            let mut notified = std::pin::pin!(pending.done.notified());
            notified.as_mut().enable();
            if let Some(outcome) = self.provision().outcome.get() {
                return outcome.clone().map_err(|message| Error::Provision {
                    connection: self.name().to_string(),
                    message,
                });
            }
            if !pending.started.swap(true, Ordering::AcqRel) {
                tokio::spawn(run_hook(self.clone()));
            }
            notified.await;
        }
    }
}

/// Runs the connection's hook in a task of its own, then settles the
/// outcome: on failure, first unregisters the connection and closes its
/// pool.
async fn run_hook(entry: Arc<ConnectionEntry>) {
    let Some(pending) = entry.provision().pending.as_deref() else {
        return;
    };
    let started = Instant::now();
    let hook = pending.hook.clone();
    let provisioning = Provisioning { entry: entry.clone() };
    let key = Arc::as_ptr(&entry) as usize;
    // A task of its own: its panic is caught as the task's result.
    let ran = tokio::spawn(PROVISIONING.scope(key, async move { hook(provisioning).await })).await;
    let outcome = match ran {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(message_of(&*error)),
        Err(join) if join.is_panic() => Err(format!(
            "the hook panicked: {}",
            crate::error::panic_text(&*join.into_panic())
        )),
        Err(_) => Err("the hook was cancelled (the runtime is shutting down)".to_owned()),
    };
    let outcome = outcome.map_err(|message| redact_message(&message, entry.url()));
    match &outcome {
        Ok(()) => tracing::info!(connection = %entry.name(), elapsed = ?started.elapsed(), "connection provisioned"),
        Err(message) => {
            tracing::error!(connection = %entry.name(), "provisioning failed: {message}");
            if let Some(engine) = pending.engine.upgrade() {
                engine.provision_failed(&entry, message);
            }
            let _ = tokio::time::timeout(CLOSE_WITHIN, entry.pool().close()).await;
        }
    }
    let _ = entry.provision().outcome.set(outcome);
    pending.done.notify_waiters();
}

/// An error's message with its sources' (those its own message does not
/// already show).
fn message_of(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A hook's message without credentials: the connection's URL and
/// password, and any URL's user information and password parameters.
fn redact_message(message: &str, url: &ConnectionUrl) -> String {
    let mut message = message.replace(url.secret(), url.redacted());
    if let Some(password) = url::Url::parse(url.secret())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
        .filter(|p| !p.is_empty())
    {
        message = message.replace(&password, "***");
        if let Ok(decoded) = percent_decode(&password) {
            message = message.replace(&decoded, "***");
        }
    }
    let mut out = String::with_capacity(message.len());
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.contains("://") || word.contains("password=") {
            out.push_str(&crate::connection::url::redact(word));
        } else {
            out.push_str(word);
        }
    }
    out
}

fn percent_decode(text: &str) -> std::result::Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// What a [provisioning hook](crate::ConnectionFactory::provision) gets: the
/// connection the factory just made, before any statement ran on it, and
/// the means to create its database and prepare it.
///
/// The usual hook creates the database if it is missing
/// ([`create_database_if_missing`](Self::create_database_if_missing), which
/// connects to the server's maintenance database as `createdb` does), then
/// migrates it ([`migrate`](Self::migrate)) or runs its own SQL on
/// [`connection`](Self::connection). Statements the hook runs on this
/// connection do not wait for the provisioning (they are part of it); run
/// them in the hook's own task, not in tasks it spawns (those would wait
/// for the hook, and the hook for them).
///
/// The hook runs once per made connection: again when the connection is
/// made again (after a failure, or after the factory evicted it), and on
/// every process that makes it. Make it idempotent (`CREATE TABLE IF NOT
/// EXISTS`, migrations).
///
/// # Examples
///
/// A SQLite file per tenant: the pool creates the file, the hook creates
/// the schema.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{ConnectionFactory, Engine, ModelInfo, Provisioning, params};
///
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection_factory(
///         ConnectionFactory::from_template(format!("sqlite:{}/{{name}}.db", dir.path().display()))
///             .provision(|tenant: Provisioning| async move {
///                 let db = tenant.connection();
///                 db.execute("CREATE TABLE IF NOT EXISTS invoices (id INTEGER PRIMARY KEY, total INTEGER)", &[])
///                     .await?;
///                 Ok(())
///             }),
///     )
///     .build()
///     .await?;
/// // The first statement on `acme` waits for its hook, then runs.
/// let invoice = ModelInfo::new("Invoice");
/// engine.write_model(&invoice).using("acme").execute("INSERT INTO invoices (total) VALUES ($1)", &params![42]).await?;
/// let row = engine.read_model(&invoice).using("acme").fetch_one("SELECT total FROM invoices", &[]).await?;
/// assert_eq!(row.get::<i64, _>("total"), 42);
/// # Ok(()) }
/// ```
pub struct Provisioning {
    entry: Arc<ConnectionEntry>,
}

impl fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioning")
            .field("connection", &self.entry.name())
            .field("url", &self.entry.url())
            .finish()
    }
}

impl Provisioning {
    /// The connection's name, as the router (or `using`) gave it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{ConnectionFactory, Engine};
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection_factory(ConnectionFactory::from_template("sqlite::memory:").provision(|tenant| async move {
    ///         assert_eq!(tenant.name(), "acme");
    ///         Ok(())
    ///     }))
    ///     .build()
    ///     .await?;
    /// engine.read_model(&dbroute::ModelInfo::new("T")).using("acme").fetch_one("SELECT 1", &[]).await?;
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> ConnectionName {
        self.entry.name()
    }

    /// The connection's backend.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Backend, ConnectionFactory, Engine};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let template = format!("sqlite:{}/{{name}}.db", dir.path().display());
    /// let factory = ConnectionFactory::from_template(template).provision(|tenant| async move {
    ///     let id = match tenant.backend() {
    ///         Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    ///         Backend::MySql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
    ///         _ => "INTEGER PRIMARY KEY",
    ///     };
    ///     let sql = format!("CREATE TABLE IF NOT EXISTS invoices (id {id})");
    ///     tenant.connection().execute(dbroute::sqlx::AssertSqlSafe(sql), &[]).await?;
    ///     Ok(())
    /// });
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").connection_factory(factory).build().await?;
    /// engine.read_model(&dbroute::ModelInfo::new("T")).using("acme").fetch_all("SELECT id FROM invoices", &[]).await?;
    /// # Ok(()) }
    /// ```
    pub fn backend(&self) -> Backend {
        self.entry.url().backend()
    }

    /// The database the connection opens: its name on PostgreSQL (the
    /// user's name when the URL names none) and MySQL/MariaDB, its file on
    /// SQLite. For SQL of the hook's own, such as `CREATE DATABASE` on an
    /// administrator's connection (quote it: names may hold `-` and `.`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{ConnectionFactory, Engine};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let factory = ConnectionFactory::from_template(format!("sqlite:{}/tenant_{{name}}.db", dir.path().display()))
    ///     .provision(|tenant| async move {
    ///         assert!(tenant.database().ends_with("tenant_acme.db"));
    ///         Ok(())
    ///     });
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").connection_factory(factory).build().await?;
    /// engine.read_model(&dbroute::ModelInfo::new("T")).using("acme").fetch_one("SELECT 1", &[]).await?;
    /// # Ok(()) }
    /// ```
    pub fn database(&self) -> String {
        dispatch!(self.entry.pool(), DbPool(p) as DB => DB::database(&p.connect_options()))
    }

    /// A handle on the new connection, for the hook's SQL. Its statements
    /// run before the provisioning is done (in the hook's task); its
    /// [`pool`](Connection::pool) is the connection's sqlx pool, for sqlx's
    /// own API (`sqlx::migrate!`, `QueryBuilder`, transactions).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{ConnectionFactory, Engine, params};
    ///
    /// let factory = ConnectionFactory::from_template("sqlite::memory:").provision(|tenant| async move {
    ///     let db = tenant.connection();
    ///     db.execute("CREATE TABLE settings (key TEXT, value TEXT)", &[]).await?;
    ///     db.execute("INSERT INTO settings VALUES ($1, $2)", &params!["tenant", tenant.name().as_str()]).await?;
    ///     Ok(())
    /// });
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection_factory(factory.pool_settings(dbroute::PoolSettings::new().max_connections(1)))
    ///     .build()
    ///     .await?;
    /// let row = engine.read_model(&dbroute::ModelInfo::new("Setting")).using("acme").fetch_one("SELECT value FROM settings", &[]).await?;
    /// assert_eq!(row.get::<String, _>("value"), "acme");
    /// # Ok(()) }
    /// ```
    pub fn connection(&self) -> Connection {
        Connection::new(self.entry.clone(), None)
    }

    /// Creates the connection's database when the server does not have it
    /// yet; `true` when it did. PostgreSQL: connects, with the connection's
    /// URL and credentials, to the server's maintenance database
    /// (`postgres`, or `template1` when the database is `postgres`, as
    /// `createdb` does) and runs `CREATE DATABASE`; the user needs the
    /// `CREATEDB` privilege. MySQL/MariaDB: connects without a database and
    /// runs `CREATE DATABASE`. SQLite: creates the file (dbroute's pools
    /// create missing files anyway, unless opened with `mode=ro`). A
    /// database another process creates meanwhile counts as there.
    ///
    /// When the tenant's user may not create databases, create it in the
    /// hook with an administrator's connection of your own (see
    /// `docs/embedding.md`, "Tenants: provisioning on first use").
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{ConnectionFactory, Engine};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// // Read-only: the pool would not create the file; the hook does.
    /// let factory = ConnectionFactory::from_template(format!("sqlite:{}/{{name}}.db?mode=ro", dir.path().display()))
    ///     .provision(|tenant| async move {
    ///         assert!(tenant.create_database_if_missing().await?, "created");
    ///         assert!(!tenant.create_database_if_missing().await?, "there already");
    ///         Ok(())
    ///     });
    /// let engine = Engine::builder().connection("default", "sqlite::memory:").connection_factory(factory).build().await?;
    /// engine.read_model(&dbroute::ModelInfo::new("T")).using("acme").fetch_one("SELECT 1", &[]).await?;
    /// assert!(dir.path().join("acme.db").exists());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Query`] naming the connection, with the server's error (it
    /// could not be reached, refused the credentials, or refused to create
    /// the database).
    pub async fn create_database_if_missing(&self) -> Result<bool> {
        let url = self.entry.url().secret();
        let created = match self.backend() {
            // sqlx's `create_database` keeps `mode=ro`, and cannot create.
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => create_sqlite_file(url).await,
            backend => dispatch!(backend, Backend as DB => create_if_missing::<DB>(url).await,
            // A connection of a backend this build lacks is never made.
            not_built(other) => Err(sqlx::Error::Configuration(
                format!("dbroute was built without its `{}` feature", other.as_str()).into(),
            ))),
        };
        created.map_err(|source| Error::Query {
            connection: self.entry.name().to_string(),
            source,
        })
    }

    /// Applies the sqlx migrations of directory `dir` to the connection
    /// (those not applied yet), as [`Engine::migrate`](crate::Engine::migrate)
    /// does, under sqlx's migration lock on PostgreSQL and MySQL.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{ConnectionFactory, Engine};
    ///
    /// let migrations = tempfile::tempdir().unwrap();
    /// std::fs::write(migrations.path().join("1_invoices.sql"), "CREATE TABLE invoices (id INTEGER PRIMARY KEY)").unwrap();
    /// let dir = migrations.path().to_path_buf();
    /// let factory = ConnectionFactory::from_template("sqlite::memory:").provision(move |tenant| {
    ///     let dir = dir.clone();
    ///     async move {
    ///         let applied = tenant.migrate(&dir).await?;
    ///         assert_eq!(applied.applied[0].description, "invoices");
    ///         Ok(())
    ///     }
    /// });
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection_factory(factory.pool_settings(dbroute::PoolSettings::new().max_connections(1)))
    ///     .build()
    ///     .await?;
    /// engine.read_model(&dbroute::ModelInfo::new("Invoice")).using("acme").fetch_all("SELECT id FROM invoices", &[]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when the directory cannot be read or a migration
    /// fails.
    pub async fn migrate(&self, dir: impl AsRef<Path>) -> Result<ConnectionMigrations> {
        crate::schema::migrate::migrate_one(&self.entry, dir.as_ref()).await
    }
}

/// Creates the database of `url` unless it exists; `true` when it did.
async fn create_if_missing<DB: SqlxBackend + MigrateDatabase>(url: &str) -> std::result::Result<bool, sqlx::Error> {
    if DB::database_exists(url).await? {
        return Ok(false);
    }
    match DB::create_database(url).await {
        Ok(()) => Ok(true),
        // Another process may have created it since.
        Err(error) => match DB::database_exists(url).await {
            Ok(true) => Ok(false),
            _ => Err(error),
        },
    }
}

/// Creates the SQLite file of `url` unless it exists (or is in memory);
/// `true` when it did.
#[cfg(feature = "sqlite")]
async fn create_sqlite_file(url: &str) -> std::result::Result<bool, sqlx::Error> {
    use sqlx::{ConnectOptions, Connection};
    if sqlx::Sqlite::database_exists(url).await? {
        return Ok(false);
    }
    let options = <sqlx::Sqlite as SqlxBackend>::connect_options(url)?
        .read_only(false)
        .create_if_missing(true);
    options.connect().await?.close().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_messages_lose_credentials() {
        let name = ConnectionName::new("acme").unwrap();
        let url = ConnectionUrl::parse(name, "postgres://app:p%40ss@db/tenant_acme").unwrap();
        let message = "could not connect to postgres://app:p%40ss@db/tenant_acme nor \
                       postgres://admin:Adm1n@db/postgres?sslmode=require&password=Other, \
                       and the password is p@ss or p%40ss";
        let redacted = redact_message(message, &url);
        for secret in ["p@ss", "p%40ss", "Adm1n", "Other"] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
        assert!(redacted.contains("postgres://***@db/tenant_acme"), "{redacted}");
    }

    #[test]
    fn messages_keep_their_sources_once() {
        let inner = std::io::Error::other("disk full");
        let outer = Error::Io {
            path: "x".into(),
            source: inner,
        };
        assert_eq!(message_of(&outer), "x: disk full");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("creating the schema")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(
            message_of(&Outer(std::io::Error::other("disk full"))),
            "creating the schema: disk full"
        );
    }
}
