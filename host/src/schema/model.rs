//! Per-model tables: each model's DDL run on its routed write connection,
//! when the router's `allow_migrate` agrees, in reference order.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::same_database::check_distinct;
use super::{CrossDatabaseReference, SchemaProblem};
use crate::connection::dispatch::dispatch;
use crate::connection::pool::DbPool;
use crate::connection::registry::ConnectionEntry;
use crate::connection::url::Backend;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Hints, Model, ModelInfo};
use crate::name::ConnectionName;

/// A model and the DDL of its table: `CREATE` SQL per backend with a
/// fallback for all, optional `DROP` SQL (by default
/// `DROP TABLE IF EXISTS <table>`), and the models it references.
///
/// SQL is given as sqlx takes it: a `&'static str`, or wrapped in
/// [`sqlx::AssertSqlSafe`]. It may hold several statements (a table and its
/// indexes), separated by `;`. It runs as written: use
/// `CREATE TABLE IF NOT EXISTS` to make [`Engine::create_all`] safe to run
/// twice.
///
/// # Examples
///
/// ```
/// use dbroute::{Backend, ModelInfo};
/// use dbroute::schema::ModelSchema;
///
/// let user = ModelSchema::new(ModelInfo::new("User").with_table("users"))
///     .create("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
///     .create_for(Backend::Postgres, "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL)");
/// let post = ModelSchema::new(ModelInfo::new("Post").with_table("posts"))
///     .create("CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER REFERENCES users (id))")
///     .references(["User"]);
///
/// assert!(user.create_sql(Backend::Postgres).unwrap().contains("SERIAL"));
/// assert!(user.create_sql(Backend::Sqlite).unwrap().contains("INTEGER PRIMARY KEY"));
/// assert_eq!(post.drop_sql(Backend::MySql).as_deref(), Some("DROP TABLE IF EXISTS posts"));
/// assert_eq!(post.referenced(), ["User"]);
/// ```
#[derive(Debug, Clone)]
pub struct ModelSchema {
    model: ModelInfo,
    create: Option<SqlStr>,
    create_for: Vec<(Backend, SqlStr)>,
    drop: Option<SqlStr>,
    drop_for: Vec<(Backend, SqlStr)>,
    references: Vec<String>,
}

impl ModelSchema {
    /// The schema of `model`, with no SQL yet.
    pub fn new(model: ModelInfo) -> Self {
        ModelSchema {
            model,
            create: None,
            create_for: Vec::new(),
            drop: None,
            drop_for: Vec::new(),
            references: Vec::new(),
        }
    }

    /// The schema of model type `M`, with no SQL yet.
    pub fn of<M: Model>() -> Self {
        Self::new(M::model_info().clone())
    }

    /// The `CREATE` SQL for every backend without SQL of its own.
    pub fn create(mut self, sql: impl SqlSafeStr) -> Self {
        self.create = Some(sql.into_sql_str());
        self
    }

    /// The `CREATE` SQL for `backend`; it wins over [`create`](Self::create).
    pub fn create_for(mut self, backend: Backend, sql: impl SqlSafeStr) -> Self {
        self.create_for.retain(|(b, _)| *b != backend);
        self.create_for.push((backend, sql.into_sql_str()));
        self
    }

    /// The `DROP` SQL for every backend without SQL of its own (instead of
    /// `DROP TABLE IF EXISTS <table>`).
    pub fn drop_with(mut self, sql: impl SqlSafeStr) -> Self {
        self.drop = Some(sql.into_sql_str());
        self
    }

    /// The `DROP` SQL for `backend`; it wins over
    /// [`drop_with`](Self::drop_with).
    pub fn drop_for(mut self, backend: Backend, sql: impl SqlSafeStr) -> Self {
        self.drop_for.retain(|(b, _)| *b != backend);
        self.drop_for.push((backend, sql.into_sql_str()));
        self
    }

    /// The models this model's table references, by model name: their
    /// tables are created before it and dropped after it. A reference to
    /// the model itself is allowed and ignored.
    pub fn references<I, S>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.references.extend(models.into_iter().map(Into::into));
        self
    }

    /// The model.
    pub fn model(&self) -> &ModelInfo {
        &self.model
    }

    /// The models this one references.
    pub fn referenced(&self) -> &[String] {
        &self.references
    }

    /// The `CREATE` SQL run on `backend`, if any.
    pub fn create_sql(&self, backend: Backend) -> Option<&str> {
        self.create_statement(backend).map(SqlStr::as_str)
    }

    /// The `DROP` SQL run on `backend`: its own, the fallback, or
    /// `DROP TABLE IF EXISTS <table>` when the model has a table name.
    pub fn drop_sql(&self, backend: Backend) -> Option<String> {
        self.drop_statement(backend).map(|sql| sql.as_str().to_owned())
    }

    fn create_statement(&self, backend: Backend) -> Option<&SqlStr> {
        self.create_for
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, sql)| sql)
            .or(self.create.as_ref())
    }

    fn drop_statement(&self, backend: Backend) -> Option<SqlStr> {
        let own = self.drop_for.iter().find(|(b, _)| *b == backend).map(|(_, sql)| sql);
        if let Some(sql) = own.or(self.drop.as_ref()) {
            return Some(sql.clone());
        }
        // The table name is the developer's, like the rest of the DDL.
        let table = self.model.table()?;
        Some(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")).into_sql_str())
    }
}

/// What [`Engine::create_all`] does when a model references a model the
/// router places on another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CrossDatabase {
    /// Refuse before creating anything, with
    /// [`SchemaProblem::CrossDatabase`] (the default).
    #[default]
    Refuse,
    /// Log a warning, list the reference in
    /// [`SchemaReport::warnings`], and create the tables.
    Warn,
}

/// What was done with one model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaAction {
    /// The table was created.
    Created,
    /// The table was dropped.
    Dropped,
    /// The router's `allow_migrate` said no for this connection.
    SkippedByAllowMigrate,
    /// The connection is not among those selected with `on`.
    SkippedNotSelected,
}

impl SchemaAction {
    /// `created`, `dropped`, `skipped-by-allow_migrate` or
    /// `skipped-not-selected`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaAction::Created => "created",
            SchemaAction::Dropped => "dropped",
            SchemaAction::SkippedByAllowMigrate => "skipped-by-allow_migrate",
            SchemaAction::SkippedNotSelected => "skipped-not-selected",
        }
    }

    /// Whether the table was changed.
    pub fn changed(self) -> bool {
        matches!(self, SchemaAction::Created | SchemaAction::Dropped)
    }
}

impl fmt::Display for SchemaAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model of a [`SchemaReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaEntry {
    /// The model's name.
    pub model: String,
    /// The connection its table belongs on (its routed write connection).
    pub connection: ConnectionName,
    /// What was done.
    pub action: SchemaAction,
}

/// What [`Engine::create_all`] or [`Engine::drop_all`] did, model by
/// model, in the order it was done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SchemaReport {
    /// One entry per model, in the order the statements ran.
    pub entries: Vec<SchemaEntry>,
    /// Cross-database references accepted by [`CrossDatabase::Warn`].
    pub warnings: Vec<CrossDatabaseReference>,
}

impl SchemaReport {
    /// The entry of `model`.
    pub fn entry(&self, model: &str) -> Option<&SchemaEntry> {
        self.entries.iter().find(|e| e.model == model)
    }

    /// What was done with `model`'s table.
    pub fn action(&self, model: &str) -> Option<SchemaAction> {
        self.entry(model).map(|e| e.action)
    }

    /// The models whose table was changed on `connection`, in order.
    pub fn changed_on(&self, connection: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.action.changed() && e.connection == connection)
            .map(|e| e.model.as_str())
            .collect()
    }
}

impl fmt::Display for SchemaReport {
    /// One line per model (`created User on default`), then one per
    /// warning.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            writeln!(f, "{} {} on {}", e.action, e.model, e.connection)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Drop,
}

/// Creates or drops the tables of a set of models, each on its routed write
/// connection: made by [`Engine::create_all`] or [`Engine::drop_all`], run
/// by [`SchemaChange::run`].
///
/// For each model, in reference order (reversed for a drop): its connection
/// is the router's `db_for_write`; when [`on`](Self::on) is set and does not
/// name it, the model is skipped; when the router's `allow_migrate` says no
/// for that connection, it is skipped; otherwise its SQL runs there.
/// Everything is checked before the first statement runs: unknown
/// references, cycles, cross-database references, SQL missing for a
/// backend, two connection names for one database. Statements run on the
/// connections' pools, outside any open transaction. Asking the router
/// counts as a routed write in [`Engine::decision_counts`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{Engine, ModelInfo};
/// use dbroute::schema::{CrossDatabase, ModelSchema, SchemaAction};
///
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("auth", "sqlite::memory:")
///     .build()
///     .await?;
/// let models = [
///     ModelSchema::new(ModelInfo::new("Post").with_table("posts"))
///         .create("CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER REFERENCES users (id))")
///         .references(["User"]),
///     ModelSchema::new(ModelInfo::new("User").with_table("users"))
///         .create("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"),
/// ];
///
/// // No router: both tables go on `default`, users first.
/// let report = engine.create_all(&models).run().await?;
/// assert_eq!(report.changed_on("default"), ["User", "Post"]);
///
/// // Restricted to `auth`: nothing is written there by the router.
/// let report = engine.drop_all(&models).on(["auth"]).run().await?;
/// assert_eq!(report.action("User"), Some(SchemaAction::SkippedNotSelected));
///
/// let report = engine.drop_all(&models).cross_database(CrossDatabase::Warn).run().await?;
/// assert_eq!(report.changed_on("default"), ["Post", "User"]);
/// # Ok(()) }
/// ```
#[must_use = "nothing is created or dropped until `run` is awaited"]
pub struct SchemaChange<'a> {
    engine: &'a Engine,
    models: &'a [ModelSchema],
    kind: Kind,
    on: Option<Vec<String>>,
    cross_database: CrossDatabase,
    hints: Hints,
}

impl fmt::Debug for SchemaChange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models: Vec<&str> = self.models.iter().map(|m| m.model.name()).collect();
        f.debug_struct("SchemaChange")
            .field("kind", &self.kind)
            .field("models", &models)
            .field("on", &self.on)
            .field("cross_database", &self.cross_database)
            .field("hints", &self.hints)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates the table of each model on its routed write connection, when
    /// the router's `allow_migrate` agrees: see [`SchemaChange`].
    pub fn create_all<'a>(&'a self, models: &'a [ModelSchema]) -> SchemaChange<'a> {
        SchemaChange::new(self, models, Kind::Create)
    }

    /// Drops the table of each model on its routed write connection, when
    /// the router's `allow_migrate` agrees, referencing tables first: see
    /// [`SchemaChange`].
    pub fn drop_all<'a>(&'a self, models: &'a [ModelSchema]) -> SchemaChange<'a> {
        SchemaChange::new(self, models, Kind::Drop)
    }
}

/// One statement to run.
struct Step {
    entry: Arc<ConnectionEntry>,
    model: String,
    sql: SqlStr,
}

impl<'a> SchemaChange<'a> {
    fn new(engine: &'a Engine, models: &'a [ModelSchema], kind: Kind) -> Self {
        SchemaChange {
            engine,
            models,
            kind,
            on: None,
            cross_database: CrossDatabase::default(),
            hints: Hints::new(),
        }
    }

    /// Changes tables on these connections only; models the router writes
    /// elsewhere are reported as [`SchemaAction::SkippedNotSelected`].
    pub fn on<I, S>(mut self, connections: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.on = Some(connections.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// What to do about a reference across databases (for a creation; a
    /// drop ignores it). Default: [`CrossDatabase::Refuse`].
    pub fn cross_database(mut self, policy: CrossDatabase) -> Self {
        self.cross_database = policy;
        self
    }

    /// Hints handed to the router's `db_for_write` and `allow_migrate`.
    pub fn hints(mut self, hints: Hints) -> Self {
        self.hints = hints;
        self
    }

    /// The report [`run`](Self::run) would return, without changing any
    /// database.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), but never [`Error::SchemaStatement`].
    pub fn plan(&self) -> Result<SchemaReport> {
        self.prepare().map(|(report, _)| report)
    }

    /// Checks everything, then runs each model's SQL on its connection, in
    /// order.
    ///
    /// # Errors
    ///
    /// Before any statement runs: [`Error::Schema`] (a duplicate model, an
    /// unknown reference, a cycle, a refused cross-database reference, SQL
    /// missing for a backend, two names for one database),
    /// [`Error::UnknownConnection`] for a name given to `on`, a router's
    /// refusal or fault. While running: [`Error::SchemaStatement`] when a
    /// database refuses a statement (tables changed before it stay
    /// changed).
    pub async fn run(self) -> Result<SchemaReport> {
        let (report, steps) = self.prepare()?;
        let verb = match self.kind {
            Kind::Create => "create",
            Kind::Drop => "drop",
        };
        for step in steps {
            // A connection the factory made is provisioned first.
            step.entry.ready().await?;
            let sql = step.sql;
            let done = dispatch!(step.entry.pool(), DbPool(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop));
            done.map_err(|source| Error::SchemaStatement {
                connection: step.entry.name().to_string(),
                model: step.model.clone(),
                action: verb,
                source: Box::new(source),
            })?;
            tracing::info!(connection = %step.entry.name(), model = %step.model, "{verb}d the table");
        }
        Ok(report)
    }

    /// The report, and the statements to run.
    fn prepare(&self) -> Result<(SchemaReport, Vec<Step>)> {
        let mut order = reference_order(self.models)?;
        if self.kind == Kind::Drop {
            order.reverse();
        }
        let selected = match &self.on {
            Some(names) => {
                let mut selected = Vec::with_capacity(names.len());
                for name in names {
                    selected.push(self.engine.schema_entry(name, "create_all/drop_all on()")?.name());
                }
                Some(selected)
            }
            None => None,
        };
        // Where the router writes each model.
        let mut placement = Vec::with_capacity(self.models.len());
        for schema in self.models {
            placement.push(self.engine.db_for_write(&schema.model, &self.hints)?);
        }
        let mut report = SchemaReport::default();
        let mut steps = Vec::new();
        for &i in &order {
            let schema = &self.models[i];
            let connection = placement[i];
            let action = if selected.as_ref().is_some_and(|s| !s.contains(&connection)) {
                SchemaAction::SkippedNotSelected
            } else if !self
                .engine
                .allow_migrate(connection.as_str(), &schema.model, &self.hints)?
            {
                SchemaAction::SkippedByAllowMigrate
            } else {
                let entry = self.engine.schema_entry(connection.as_str(), "create_all/drop_all")?;
                let backend = entry.url().backend();
                let (sql, action) =
                    match self.kind {
                        Kind::Create => {
                            let sql = schema.create_statement(backend).cloned().ok_or_else(|| {
                                SchemaProblem::NoCreateSql {
                                    model: schema.model.name().to_owned(),
                                    connection: connection.to_string(),
                                    backend,
                                }
                            })?;
                            (sql, SchemaAction::Created)
                        }
                        Kind::Drop => {
                            let sql = schema.drop_statement(backend).ok_or_else(|| SchemaProblem::NoDropSql {
                                model: schema.model.name().to_owned(),
                            })?;
                            (sql, SchemaAction::Dropped)
                        }
                    };
                steps.push(Step {
                    entry,
                    model: schema.model.name().to_owned(),
                    sql,
                });
                action
            };
            report.entries.push(SchemaEntry {
                model: schema.model.name().to_owned(),
                connection,
                action,
            });
        }
        if self.kind == Kind::Create {
            report.warnings = self.cross_database_references(&report, &placement)?;
        }
        let mut connections: Vec<&ConnectionEntry> = Vec::new();
        for step in &steps {
            if !connections.iter().any(|e| e.name() == step.entry.name()) {
                connections.push(&step.entry);
            }
        }
        check_distinct(connections)?;
        Ok((report, steps))
    }

    /// The references, from a table being created, to a model placed on
    /// another connection: refused, or returned to be reported.
    fn cross_database_references(
        &self,
        report: &SchemaReport,
        placement: &[ConnectionName],
    ) -> Result<Vec<CrossDatabaseReference>> {
        let index: HashMap<&str, usize> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.model.name(), i))
            .collect();
        let mut found = Vec::new();
        for entry in report.entries.iter().filter(|e| e.action.changed()) {
            let schema = &self.models[index[entry.model.as_str()]];
            for referenced in &schema.references {
                let referenced_connection = placement[index[referenced.as_str()]];
                if *referenced == entry.model || referenced_connection == entry.connection {
                    continue;
                }
                let reference = CrossDatabaseReference {
                    model: entry.model.clone(),
                    connection: entry.connection,
                    references: referenced.clone(),
                    referenced_connection,
                };
                match self.cross_database {
                    CrossDatabase::Refuse => return Err(SchemaProblem::CrossDatabase(reference).into()),
                    CrossDatabase::Warn => {
                        tracing::warn!("{reference}");
                        found.push(reference);
                    }
                }
            }
        }
        Ok(found)
    }
}

/// The models' indexes, each after every model it references (ties keep
/// the given order).
///
/// # Errors
///
/// A duplicate model, a reference to a model not in the set, a cycle.
fn reference_order(models: &[ModelSchema]) -> Result<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(models.len());
    for (i, m) in models.iter().enumerate() {
        if index.insert(m.model.name(), i).is_some() {
            return Err(SchemaProblem::DuplicateModel {
                model: m.model.name().to_owned(),
            }
            .into());
        }
    }
    // depends_on[i]: the models i references (itself excluded).
    let mut depends_on: Vec<Vec<usize>> = Vec::with_capacity(models.len());
    for m in models {
        let mut deps = Vec::new();
        for r in &m.references {
            let Some(&j) = index.get(r.as_str()) else {
                return Err(SchemaProblem::UnknownReference {
                    model: m.model.name().to_owned(),
                    references: r.clone(),
                }
                .into());
            };
            if j != index[m.model.name()] && !deps.contains(&j) {
                deps.push(j);
            }
        }
        depends_on.push(deps);
    }
    let mut done = vec![false; models.len()];
    let mut order = Vec::with_capacity(models.len());
    // Repeatedly take the first model whose references are all placed:
    // quadratic, and sets of models are small.
    while order.len() < models.len() {
        let next = (0..models.len()).find(|&i| !done[i] && depends_on[i].iter().all(|&j| done[j]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => return Err(find_cycle(models, &depends_on, &done).into()),
        }
    }
    Ok(order)
}

/// A cycle among the models not placed (each of them references at least
/// one other not placed).
fn find_cycle(models: &[ModelSchema], depends_on: &[Vec<usize>], done: &[bool]) -> SchemaProblem {
    let start = done.iter().position(|d| !d).unwrap_or(0);
    let mut path = vec![start];
    let mut current = start;
    while let Some(&next) = depends_on[current].iter().find(|&&j| !done[j]) {
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut models: Vec<String> = path[at..].iter().map(|&i| models[i].model.name().to_owned()).collect();
            models.push(models[0].clone());
            return SchemaProblem::Cycle { models };
        }
        path.push(next);
        current = next;
    }
    SchemaProblem::Cycle {
        models: path.iter().map(|&i| models[i].model.name().to_owned()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, references: &[&str]) -> ModelSchema {
        ModelSchema::new(ModelInfo::new(name))
            .create("SELECT 1")
            .references(references.iter().copied())
    }

    fn order_problem(models: &[ModelSchema]) -> SchemaProblem {
        match reference_order(models) {
            Err(Error::Schema { problem }) => *problem,
            other => panic!("expected a schema problem, got {other:?}"),
        }
    }

    fn names(models: &[ModelSchema], order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| models[i].model.name().to_owned()).collect()
    }

    #[test]
    fn references_come_first_and_ties_keep_the_given_order() {
        let models = [
            model("Comment", &["Post", "User"]),
            model("Post", &["User"]),
            model("Tag", &[]),
            model("User", &["User"]),
        ];
        let order = reference_order(&models).unwrap();
        assert_eq!(names(&models, &order), ["Tag", "User", "Post", "Comment"]);
    }

    #[test]
    fn a_cycle_is_named_in_order() {
        let models = [
            model("A", &["B"]),
            model("B", &["C"]),
            model("C", &["B"]),
            model("D", &[]),
        ];
        let problem = order_problem(&models);
        assert_eq!(
            problem,
            SchemaProblem::Cycle {
                models: vec!["B".into(), "C".into(), "B".into()]
            }
        );
        assert!(problem.to_string().contains("B -> C -> B"), "{problem}");
    }

    #[test]
    fn unknown_references_and_duplicates_are_refused() {
        let problem = order_problem(&[model("A", &["Nope"])]);
        assert!(problem.to_string().contains("`Nope`"), "{problem}");
        let problem = order_problem(&[model("A", &[]), model("A", &[])]);
        assert_eq!(problem, SchemaProblem::DuplicateModel { model: "A".into() });
    }

    #[test]
    fn drop_sql_defaults_to_the_table_and_backend_sql_wins() {
        let m = ModelSchema::new(ModelInfo::new("U").with_table("users"))
            .create("CREATE TABLE users (id INTEGER)")
            .create_for(Backend::MySql, "CREATE TABLE users (id INT) ENGINE=InnoDB")
            .drop_for(Backend::Postgres, "DROP TABLE users CASCADE");
        assert_eq!(m.create_sql(Backend::Sqlite), Some("CREATE TABLE users (id INTEGER)"));
        assert_eq!(
            m.create_sql(Backend::MySql),
            Some("CREATE TABLE users (id INT) ENGINE=InnoDB")
        );
        assert_eq!(
            m.drop_sql(Backend::Postgres).as_deref(),
            Some("DROP TABLE users CASCADE")
        );
        assert_eq!(
            m.drop_sql(Backend::Sqlite).as_deref(),
            Some("DROP TABLE IF EXISTS users")
        );
        assert_eq!(ModelSchema::new(ModelInfo::new("X")).drop_sql(Backend::Sqlite), None);
        assert_eq!(ModelSchema::new(ModelInfo::new("X")).create_sql(Backend::Sqlite), None);
    }
}
