//! sqlx migrations, per named connection.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::migrate::{Migrate, MigrateError, Migrator};

use super::SchemaProblem;
use super::same_database::check_distinct;
use crate::connection::dispatch::dispatch;
use crate::connection::pool::DbPool;
use crate::connection::registry::ConnectionEntry;
use crate::connection::url::Backend;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::name::ConnectionName;

/// The table sqlx's migrator records applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Runs sqlx migrations directories on named connections: made by
/// [`Engine::migrate`], run by [`Migrations::run`].
///
/// Which connections run:
///
/// - with [`on`](Migrations::on): exactly those, each with its own
///   directory or the one for all;
/// - otherwise every connection given a [`dir`](Migrations::dir), and, when
///   [`dir_for_all`](Migrations::dir_for_all) is set, every registered
///   connection.
///
/// Connections run one after the other, each under sqlx's migration lock
/// (PostgreSQL and MySQL), with sqlx's [`Migrator`]: a migration already
/// applied is checked against its file and never applied twice. Every
/// directory is read, and every selected connection checked, before the
/// first migration runs. Two selected names pointing at the same database
/// are refused. Migrations run on the connections' pools, outside any open
/// transaction.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::Engine;
///
/// let dir = tempfile::tempdir().unwrap();
/// let auth = dir.path().join("auth");
/// std::fs::create_dir(&auth).unwrap();
/// std::fs::write(auth.join("1_accounts.sql"), "CREATE TABLE accounts (id INTEGER PRIMARY KEY)").unwrap();
///
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("auth", "sqlite::memory:")
///     .build()
///     .await?;
/// let report = engine.migrate().dir("auth", &auth).run().await?;
/// assert_eq!(report.applied_on("auth").unwrap()[0].description, "accounts");
/// assert_eq!(report.total_applied(), 1);
///
/// // Run again: nothing left to apply.
/// let again = engine.migrate().dir("auth", &auth).run().await?;
/// assert_eq!(again.total_applied(), 0);
/// # Ok(()) }
/// ```
#[must_use = "migrations run only when `run` is awaited"]
pub struct Migrations<'e> {
    engine: &'e Engine,
    dirs: Vec<(String, PathBuf)>,
    all: Option<PathBuf>,
    on: Option<Vec<String>>,
}

impl fmt::Debug for Migrations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrations")
            .field("dirs", &self.dirs)
            .field("all", &self.all)
            .field("on", &self.on)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts a run of sqlx migrations directories on named connections:
    /// see [`Migrations`].
    pub fn migrate(&self) -> Migrations<'_> {
        Migrations {
            engine: self,
            dirs: Vec::new(),
            all: None,
            on: None,
        }
    }
}

impl<'e> Migrations<'e> {
    /// Runs the migrations of directory `path` on `connection` (`default`
    /// names the default connection).
    pub fn dir(mut self, connection: impl Into<String>, path: impl AsRef<Path>) -> Self {
        self.dirs.push((connection.into(), path.as_ref().to_path_buf()));
        self
    }

    /// Runs the migrations of directory `path` on every connection that has
    /// no directory of its own (every registered one, unless
    /// [`on`](Migrations::on) selects some).
    pub fn dir_for_all(mut self, path: impl AsRef<Path>) -> Self {
        self.all = Some(path.as_ref().to_path_buf());
        self
    }

    /// Runs on these connections only, in this order.
    pub fn on<I, S>(mut self, connections: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.on = Some(connections.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// Which connections run which directory, in order.
    fn plan(&self) -> Result<Vec<(Arc<ConnectionEntry>, PathBuf)>> {
        let engine = self.engine;
        let mut own: Vec<(Arc<ConnectionEntry>, &PathBuf)> = Vec::new();
        for (name, path) in &self.dirs {
            let entry = engine.schema_entry(name, "migrate().dir")?;
            if own.iter().any(|(e, _)| e.name() == entry.name()) {
                return Err(SchemaProblem::DuplicateMigrationDir {
                    connection: entry.name().to_string(),
                }
                .into());
            }
            own.push((entry, path));
        }
        let dir_for = |entry: &Arc<ConnectionEntry>| -> Option<PathBuf> {
            own.iter()
                .find(|(e, _)| e.name() == entry.name())
                .map(|(_, p)| (*p).clone())
                .or_else(|| self.all.clone())
        };
        let mut plan: Vec<(Arc<ConnectionEntry>, PathBuf)> = Vec::new();
        let mut push = |entry: Arc<ConnectionEntry>| -> Result<()> {
            if plan.iter().any(|(e, _)| e.name() == entry.name()) {
                return Ok(());
            }
            let Some(path) = dir_for(&entry) else {
                return Err(SchemaProblem::NoMigrationDir {
                    connection: entry.name().to_string(),
                }
                .into());
            };
            plan.push((entry, path));
            Ok(())
        };
        match &self.on {
            Some(names) => {
                for name in names {
                    push(engine.schema_entry(name, "migrate().on")?)?;
                }
            }
            None if self.all.is_some() => {
                for name in engine.connection_names() {
                    push(engine.schema_entry(name.as_str(), "migrate()")?)?;
                }
            }
            None => {
                for (entry, _) in &own {
                    push(entry.clone())?;
                }
            }
        }
        if plan.is_empty() {
            return Err(SchemaProblem::NothingToMigrate.into());
        }
        check_distinct(plan.iter().map(|(e, _)| &**e))?;
        Ok(plan)
    }

    /// Reads every directory, then applies the pending migrations on each
    /// selected connection in turn.
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] when the selection is wrong (no directory for a
    /// selected connection, two names for one database), before anything
    /// runs; [`Error::UnknownConnection`] for a name that is not registered;
    /// [`Error::Migrate`] when a directory cannot be read or a migration
    /// fails (connections before it stay migrated).
    pub async fn run(self) -> Result<MigrationReport> {
        let plan = self.plan()?;
        let mut migrators = Vec::with_capacity(plan.len());
        for (entry, dir) in &plan {
            migrators.push(load(entry, dir).await?);
        }
        let mut connections = Vec::with_capacity(plan.len());
        for ((entry, dir), migrator) in plan.into_iter().zip(migrators) {
            // A connection the factory made is provisioned first (its hook
            // may create the database).
            entry.ready().await?;
            connections.push(apply(&entry, dir, &migrator).await?);
        }
        Ok(MigrationReport { connections })
    }
}

/// Applies the migrations of `dir` to one connection, now (for a
/// provisioning hook).
pub(crate) async fn migrate_one(entry: &Arc<ConnectionEntry>, dir: &Path) -> Result<ConnectionMigrations> {
    let migrator = load(entry, dir).await?;
    apply(entry, dir.to_path_buf(), &migrator).await
}

/// Reads the migrations directory `dir` for `entry`.
async fn load(entry: &ConnectionEntry, dir: &Path) -> Result<Migrator> {
    // sqlx reports a missing directory without the reason.
    if let Err(e) = std::fs::read_dir(dir) {
        let reason = format!("the directory cannot be read ({e})");
        return Err(migrate_error(entry, dir, MigrateError::Source(reason.into())));
    }
    let mut migrator = Migrator::new(dir.to_path_buf())
        .await
        .map_err(|source| migrate_error(entry, dir, source))?;
    // The lock is taken around the whole run (see `run_locked`), so that
    // what was applied before can be read under it.
    migrator.set_locking(false);
    Ok(migrator)
}

/// Applies `migrator`'s pending migrations to `entry` and reports them.
async fn apply(entry: &ConnectionEntry, dir: PathBuf, migrator: &Migrator) -> Result<ConnectionMigrations> {
    let before = dispatch!(entry.pool(), DbPool(pool) => run_locked(pool, migrator).await)
        .map_err(|source| migrate_error(entry, &dir, source))?;
    let mut applied = Vec::new();
    let mut already_applied = 0;
    for migration in migrator.iter().filter(|m| !m.migration_type.is_down_migration()) {
        if before.contains(&migration.version) {
            already_applied += 1;
        } else {
            tracing::info!(
                connection = %entry.name(),
                version = migration.version,
                "applied migration {}",
                migration.description
            );
            applied.push(MigrationApplied {
                version: migration.version,
                description: migration.description.to_string(),
            });
        }
    }
    Ok(ConnectionMigrations {
        connection: entry.name(),
        backend: entry.url().backend(),
        dir,
        applied,
        already_applied,
    })
}

fn migrate_error(entry: &ConnectionEntry, dir: &Path, source: MigrateError) -> Error {
    Error::Migrate {
        connection: entry.name().to_string(),
        dir: dir.display().to_string(),
        source: Box::new(source),
    }
}

/// On one connection of `pool`, takes sqlx's migration lock, reads which
/// versions were applied, runs `migrator`, releases the lock (even after a
/// failure) and returns the versions applied before.
async fn run_locked<DB>(pool: &sqlx::Pool<DB>, migrator: &Migrator) -> std::result::Result<HashSet<i64>, MigrateError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
{
    let mut conn = pool.acquire().await?;
    conn.lock().await?;
    let result = async {
        conn.ensure_migrations_table(MIGRATIONS_TABLE).await?;
        let before: HashSet<i64> = conn
            .list_applied_migrations(MIGRATIONS_TABLE)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect();
        // `run_direct` (sqlx's own way around `Migrator::run`'s
        // higher-ranked `Acquire` bound, which keeps the future from being
        // proven `Send`: a provisioning hook's must be).
        migrator.run_direct(None, &mut *conn, false).await?;
        Ok::<_, MigrateError>(before)
    }
    .await;
    let unlocked = conn.unlock().await;
    let before = result?;
    unlocked?;
    Ok(before)
}

/// What [`Migrations::run`] applied, per connection, in the order they ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// One entry per connection migrated.
    pub connections: Vec<ConnectionMigrations>,
}

/// What ran on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionMigrations {
    /// The connection's registered name.
    pub connection: ConnectionName,
    /// Its backend.
    pub backend: Backend,
    /// The migrations directory.
    pub dir: PathBuf,
    /// The migrations applied by this run, in order.
    pub applied: Vec<MigrationApplied>,
    /// How many of the directory's migrations were applied before.
    pub already_applied: usize,
}

/// One migration applied by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationApplied {
    /// Its version (the number its file name starts with).
    pub version: i64,
    /// Its description (the rest of its file name).
    pub description: String,
}

impl MigrationReport {
    /// The migrations applied on `connection` by this run (`None` when it
    /// did not run).
    pub fn applied_on(&self, connection: &str) -> Option<&[MigrationApplied]> {
        self.connections
            .iter()
            .find(|c| c.connection == connection)
            .map(|c| c.applied.as_slice())
    }

    /// How many migrations this run applied, on all connections.
    pub fn total_applied(&self) -> usize {
        self.connections.iter().map(|c| c.applied.len()).sum()
    }
}

impl fmt::Display for MigrationReport {
    /// One line per connection, then one indented line per migration
    /// applied.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.connections {
            write!(f, "{} ({}, {}): ", c.connection, c.backend, c.dir.display())?;
            if c.applied.is_empty() {
                writeln!(f, "up to date, {} already applied", c.already_applied)?;
            } else {
                writeln!(f, "applied {}, {} already applied", c.applied.len(), c.already_applied)?;
            }
            for m in &c.applied {
                writeln!(f, "  {} {}", m.version, m.description)?;
            }
        }
        Ok(())
    }
}
