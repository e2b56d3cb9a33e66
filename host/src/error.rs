//! The library's error type: one enum, each variant a situation a caller may
//! want to tell apart, each message saying what was wrong and what to do.

use std::fmt;
use std::time::Duration;

use crate::name::ConnectionName;
use crate::router::RouterIdentity;

/// Everything that can go wrong in dbroute.
///
/// Messages never contain a connection's password: URLs are always shown
/// redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection name breaks the naming rules.
    #[error("invalid connection name \"{name}\": {reason}; use 1-64 bytes of A-Z a-z 0-9 _ - .")]
    InvalidName {
        /// The offending name (escaped and shortened for display).
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// Two connections were registered under one name.
    #[error("a connection named `{name}` is already registered; pick another name or remove it first")]
    DuplicateConnection {
        /// The duplicated name.
        name: String,
    },

    /// A second connection was marked as the default.
    #[error(
        "`{new}` is marked as the default connection, but `{existing}` already is; exactly one connection is the default"
    )]
    SecondDefault {
        /// The connection that is the default already.
        existing: String,
        /// The connection that was also marked default.
        new: String,
    },

    /// An engine was built with no connection at all.
    #[error("no connection is registered; register at least one (the first becomes `default`)")]
    NoConnections,

    /// A name that is not a registered connection was asked for.
    #[error(
        "unknown connection `{name}` (asked for by {requested_by}); registered connections: {}",
        list(registered)
    )]
    UnknownConnection {
        /// The name that was asked for.
        name: String,
        /// Who asked: an explicit `using`, a router, a transaction.
        requested_by: String,
        /// The names that are registered.
        registered: Vec<ConnectionName>,
    },

    /// A connection name was picked that the allow-list does not permit.
    #[error("connection `{name}` may not be chosen here; allowed: {}", list(allowed))]
    NotAllowed {
        /// The name that was asked for.
        name: String,
        /// The names the allow-list permits.
        allowed: Vec<ConnectionName>,
    },

    /// A connection URL could not be understood.
    #[error("connection `{connection}`: invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The connection being registered.
        connection: String,
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A connection URL names a backend dbroute does not support.
    #[error(
        "connection `{connection}`: unsupported URL scheme `{scheme}`; use postgres://, postgresql://, mysql://, mariadb:// or sqlite:"
    )]
    UnsupportedScheme {
        /// The connection being registered.
        connection: String,
        /// The scheme that was given.
        scheme: String,
    },

    /// The URL is for a backend this build of dbroute has no driver for.
    #[error(
        "connection `{connection}` is a {backend} URL, but dbroute was built without its `{feature}` feature; enable it (dbroute = {{ features = [\"{feature}\"] }})", feature = backend.as_str()
    )]
    BackendNotBuilt {
        /// The connection being registered.
        connection: String,
        /// The URL's backend (its Cargo feature is `backend.as_str()`).
        backend: crate::connection::url::Backend,
    },

    /// Connecting to a database failed.
    #[error("connection `{connection}` ({url}): could not connect: {source}")]
    Connect {
        /// The connection's name.
        connection: String,
        /// The URL, with any password replaced by `***`.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The database a connection names does not exist: PostgreSQL refused
    /// the connection with SQLSTATE 3D000, MySQL/MariaDB with error 1049
    /// (`ER_BAD_DB_ERROR`), or SQLite could not open a file that is not
    /// there (opened read-only with `mode=ro`, or in a missing folder;
    /// otherwise dbroute creates SQLite files).
    ///
    /// Typical of a tenant whose database was not made yet: create it, or
    /// give the [`ConnectionFactory`](crate::ConnectionFactory) a
    /// [provisioning hook](crate::ConnectionFactory::provision) that does.
    /// It marks the connection unhealthy, but it is not
    /// [unreachable](Error::is_unreachable): a read routed to it does not
    /// fall back to `default`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{Engine, Error, PoolSettings};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .build()
    ///     .await?;
    /// // Read-only: SQLite does not create the file.
    /// let url = format!("sqlite:{}/acme.db?mode=ro", dir.path().display());
    /// engine.add_connection("acme", &url, PoolSettings::new().lazy(true)).await?;
    /// let err = engine.connection("acme")?.execute("SELECT 1", &[]).await.unwrap_err();
    /// assert!(matches!(err, Error::DatabaseMissing { ref connection, .. } if connection == "acme"), "{err}");
    /// assert!(!err.is_unreachable());
    /// # Ok(()) }
    /// ```
    #[error(
        "connection `{connection}`: database `{database}` does not exist; create it, or give the connection factory a provisioning hook that does (ConnectionFactory::provision)"
    )]
    DatabaseMissing {
        /// The connection's name.
        connection: String,
        /// The database's name (SQLite: its file).
        database: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The connection factory's [provisioning hook](crate::ConnectionFactory::provision)
    /// failed for a connection it made (returned an error, or panicked).
    /// Nothing ran on the connection: it was unregistered and its pool
    /// closed, so the next request that names it makes it again and runs
    /// the hook again. Every request that was waiting for this attempt
    /// gets this error. Not [unreachable](Error::is_unreachable): a read
    /// routed to the tenant does not fall back to `default`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> dbroute::Result<()> {
    /// use dbroute::{ConnectionFactory, Engine, Error, ModelInfo};
    ///
    /// let engine = Engine::builder()
    ///     .connection("default", "sqlite::memory:")
    ///     .connection_factory(ConnectionFactory::from_template("sqlite::memory:").provision(|tenant| async move {
    ///         Err(format!("no plan for tenant {}", tenant.name()).into())
    ///     }))
    ///     .build()
    ///     .await?;
    /// let err = engine.read_model(&ModelInfo::new("T")).using("acme").fetch_all("SELECT 1", &[]).await.unwrap_err();
    /// assert!(matches!(&err, Error::Provision { connection, message } if connection == "acme" && message == "no plan for tenant acme"));
    /// assert!(!engine.connection_names().iter().any(|n| n == "acme"), "unregistered");
    /// # Ok(()) }
    /// ```
    #[error(
        "connection `{connection}`: provisioning failed: {message}; the connection was unregistered and its pool closed: fix the cause, and the next request provisions it again"
    )]
    Provision {
        /// The connection the factory made.
        connection: String,
        /// The hook's error, with its sources (credentials removed).
        message: String,
    },

    /// No pooled connection became free within the acquire timeout.
    #[error(
        "connection `{connection}`: no database connection became free within {timeout:?} (pool exhausted or database unreachable); raise max_connections or acquire_timeout, or check the server"
    )]
    PoolTimedOut {
        /// The connection's name.
        connection: String,
        /// The acquire timeout that ran out.
        timeout: Duration,
    },

    /// A statement failed on the database.
    #[error("connection `{connection}`: {source}")]
    Query {
        /// The connection the statement ran on.
        connection: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A query that must return a row returned none.
    #[error("connection `{connection}`: the query returned no row")]
    RowNotFound {
        /// The connection the statement ran on.
        connection: String,
    },

    /// A column could not be read as the requested Rust type.
    #[error("column {column}: {problem}")]
    Decode {
        /// The column's name or index.
        column: String,
        /// What did not fit.
        problem: String,
    },

    /// A row could not be read as the type a typed read asked for
    /// ([`Row::deserialize`](crate::Row::deserialize),
    /// [`Connection::fetch_all_as`](crate::Connection::fetch_all_as) and
    /// the other `_as` reads).
    #[error("a row cannot be read as `{target}`: {problem}")]
    RowType {
        /// The Rust type asked for.
        target: &'static str,
        /// What did not fit: the column and its value, or the field the
        /// row lacks (with the row's columns).
        problem: String,
    },

    /// SQL with portable placeholders (`$1`, `$2`…) could not be
    /// translated for its backend.
    #[error("connection `{connection}`: portable SQL: {problem}")]
    PortableSql {
        /// The connection the statement was for.
        connection: String,
        /// What is wrong with the SQL, and what to write instead.
        problem: String,
    },

    /// The default connection cannot be removed while others are registered.
    #[error(
        "the default connection `{name}` cannot be removed while other connections are registered ({}); remove them first or close the engine",
        list(others)
    )]
    RemoveDefault {
        /// The default's name.
        name: String,
        /// The connections still registered.
        others: Vec<ConnectionName>,
    },

    /// A connection was declared a replica of another
    /// ([`EngineBuilder::replica_of`](crate::EngineBuilder::replica_of), or
    /// `replica_of` in a configuration file) in a way that cannot hold: the
    /// primary or the replica is not registered, the connection names
    /// itself, the declarations make a cycle, the backend has no
    /// replication (SQLite), or the two are on different backends.
    #[error("connection `{replica}` cannot be a replica of `{primary}`: {reason}")]
    ReplicaOf {
        /// The connection declared a replica.
        replica: String,
        /// The connection it was declared a replica of.
        primary: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// A causal token a client sent back cannot be used: it is not a
    /// token, is cut short, was altered, is of a format version this build
    /// does not read, names a database cluster that none of the engine's
    /// primaries is (another system identifier, another MariaDB server id
    /// or GTID domain), or names a position (WAL, GTID sequence number)
    /// its primary has not reached. See
    /// [`Engine::accept_token`](crate::Engine::accept_token); with
    /// [`BadTokens::Ignore`](crate::causal::BadTokens::Ignore) such a token
    /// is ignored instead.
    #[error("causal token refused: {reason}; send back, unchanged, the token this service handed out (or none)")]
    CausalToken {
        /// What is wrong with it.
        reason: String,
    },

    /// A read the routers sent to a replica that is not used for reads (it
    /// lags past its limit), and the engine's
    /// [`ReplicaFailover`](crate::causal::ReplicaFailover) policy is to
    /// fail.
    #[error(
        "replica `{replica}` is not used for reads: {reason}; read from its primary `{primary}` \
         (ReplicaFailover::Primary does so), or raise its lag limit"
    )]
    ReplicaUnavailable {
        /// The replica.
        replica: String,
        /// The connection it is a replica of.
        primary: String,
        /// Why it is not used.
        reason: String,
    },

    /// The engine was closed.
    #[error("the engine is closed; build a new one")]
    Closed,

    /// A configuration file or value is wrong.
    #[error("configuration {origin}: {message}")]
    Config {
        /// Where the configuration came from (a path, or "string").
        origin: String,
        /// What is wrong.
        message: String,
    },

    /// A configuration refers to an environment variable that is not set.
    #[error(
        "configuration {origin}: environment variable `{var}` is not set; export it or remove the ${{{var}}} reference"
    )]
    MissingEnvVar {
        /// Where the configuration came from.
        origin: String,
        /// The variable's name.
        var: String,
    },

    /// The router registry (see [`crate::registry`]) failed or was given
    /// something it refuses; the current router keeps serving.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),

    /// A router module was refused at load; the previously active router, if
    /// any, keeps serving.
    #[error("router `{router}` refused at load: {reason}")]
    RouterLoad {
        /// The router's name.
        router: String,
        /// Why it was refused.
        reason: LoadError,
    },

    /// A router refused the operation, with its own message.
    #[error("{router} refused the {op} of model `{model}`: {message}")]
    RouterRefused {
        /// The router that refused.
        router: RouterIdentity,
        /// `read`, `write`, `relation` or `migrate`.
        op: &'static str,
        /// The model's name.
        model: String,
        /// The router's message.
        message: String,
    },

    /// A router misbehaved: it trapped, ran past a limit or answered badly.
    #[error("{router} failed: {fault}")]
    RouterFault {
        /// The faulty router.
        router: RouterIdentity,
        /// What went wrong.
        fault: Fault,
    },

    /// A statement inside a transaction asked for another connection.
    #[error(
        "a transaction is open on `{transaction}`, but `{requested}` was asked for; transactions never span databases: finish the transaction first, or use the compensating-transaction pattern"
    )]
    CrossConnection {
        /// The transaction's connection.
        transaction: String,
        /// The connection that was asked for.
        requested: String,
    },

    /// A connection's (or a transaction's) sqlx connection was asked for as
    /// another backend's.
    #[error(
        "connection `{connection}` is on {backend}, not {requested}; ask for its {backend} connection (or route to a {requested} connection)"
    )]
    WrongBackend {
        /// The connection (or the transaction's connection).
        connection: String,
        /// Its backend.
        backend: crate::connection::url::Backend,
        /// The backend asked for.
        requested: crate::connection::url::Backend,
    },

    /// The transaction was already finished.
    #[error("the transaction on `{connection}` is already finished")]
    TransactionFinished {
        /// The transaction's connection.
        connection: String,
    },

    /// A file could not be read or watched.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A schema operation ([`Engine::create_all`](crate::Engine::create_all),
    /// [`Engine::drop_all`](crate::Engine::drop_all),
    /// [`Engine::migrate`](crate::Engine::migrate)) was refused before it
    /// changed anything.
    #[error("schema: {problem}")]
    Schema {
        /// What is wrong, and what to do.
        problem: Box<crate::schema::SchemaProblem>,
    },

    /// sqlx's migrator failed on a connection: its directory could not be
    /// read, or a migration failed or was changed after it was applied.
    /// Connections migrated before it stay migrated.
    #[error(
        "connection `{connection}`: migrations in {dir}: {source}; fix the migration or directory and run again (migrations already applied stay applied)"
    )]
    Migrate {
        /// The connection.
        connection: String,
        /// The migrations directory.
        dir: String,
        /// sqlx's error.
        #[source]
        source: Box<sqlx::migrate::MigrateError>,
    },

    /// A model's `CREATE` or `DROP` SQL failed on its connection. Tables
    /// changed before it stay changed.
    #[error(
        "connection `{connection}`: could not {action} the table of model `{model}`: {source}; fix its SQL and run again"
    )]
    SchemaStatement {
        /// The connection.
        connection: String,
        /// The model.
        model: String,
        /// `create` or `drop`.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: Box<sqlx::Error>,
    },
}

impl Error {
    /// Whether the error means the database could not be reached (no
    /// connection could be had, or the link broke, or the wire protocol
    /// broke off, or the server said it is going away or not accepting
    /// connections: PostgreSQL's SQLSTATE class `08`, connection
    /// exception, and `57P01`..`57P03`, shut down or starting up), as
    /// opposed to the database refusing a statement. A connection's health
    /// and the read fallbacks all go by it.
    ///
    /// [`Error::DatabaseMissing`] is not unreachable: the server answered,
    /// and the database is not there. A read routed to a tenant's missing
    /// database must not be served from `default` (which holds other
    /// tenants' rows, or none) by
    /// [`ReadFailure::FallBackToDefault`](crate::ReadFailure::FallBackToDefault);
    /// the connection is still reported unhealthy. Nor is
    /// [`Error::Provision`], for the same reason.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::PoolTimedOut { .. } | Error::Connect { .. } => true,
            Error::Query {
                source: sqlx::Error::Database(db),
                ..
            } => db
                .code()
                .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")),
            Error::Query { source, .. } => matches!(
                source,
                sqlx::Error::PoolClosed
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            ),
            _ => false,
        }
    }

    /// Whether the error says the connection cannot serve statements now
    /// (it is unreachable, or its database does not exist): its health
    /// goes by it.
    pub(crate) fn marks_unhealthy(&self) -> bool {
        self.is_unreachable() || matches!(self, Error::DatabaseMissing { .. })
    }
}

/// Why a router module was refused when loading.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly module (or WAT text).
    Compile(String),
    /// The module has no `dbroute_abi_version` export.
    NotARouter,
    /// The module speaks another ABI version.
    AbiVersion {
        /// The version the module returned.
        found: i32,
        /// The version this host speaks.
        supported: i32,
    },
    /// A router component imports an interface other than
    /// `dbroute:router/host` and the WASI 0.2 interfaces the sandbox
    /// provides (its name).
    ComponentImport(String),
    /// The module imports something other than `dbroute.log`.
    ForbiddenImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// An export the ABI requires is missing.
    MissingExport(&'static str),
    /// An export has the wrong type.
    ExportType {
        /// The export.
        name: &'static str,
        /// The type the ABI requires.
        expected: &'static str,
    },
    /// Neither `db_for_read` nor `db_for_write` is exported.
    NoDecisionExport,
    /// The module could not be instantiated (for example, its memory is
    /// larger than the memory ceiling).
    Instantiate(String),
    /// Its init (`dbroute_init`, or a component's `init`) refused, with
    /// the router's message.
    InitRefused(String),
    /// Its init faulted (or, for a component, its `deterministic`).
    InitFault(Fault),
    /// An expected decision of the self-test did not hold.
    SelfTest(String),
    /// The file is not a regular file, or is too large.
    File(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Compile(e) => write!(f, "not a valid WebAssembly module: {e}"),
            LoadError::NotARouter => {
                f.write_str("not a dbroute router: it does not export `dbroute_abi_version` (see ABI.md)")
            }
            LoadError::AbiVersion { found, supported } => write!(
                f,
                "it speaks router ABI version {found}, but this host speaks version {supported}; rebuild it against a matching SDK"
            ),
            LoadError::ComponentImport(name) => write!(
                f,
                "it imports `{name}`; a router component may import only `dbroute:router/host` and WASI 0.2's io, clocks, random, cli, filesystem and sockets interfaces (which grant nothing: see docs/ABI.md, \"Components\"); build it without that interface (for componentize-js: `-d http fetch-event`)"
            ),
            LoadError::ForbiddenImport { module, name } => write!(
                f,
                "it imports `{module}.{name}`; routers may import only `dbroute.log` (no WASI, clock, files or network): build for wasm32-unknown-unknown"
            ),
            LoadError::MissingExport(name) => {
                write!(f, "it does not export `{name}`, which the router ABI requires")
            }
            LoadError::ExportType { name, expected } => {
                write!(f, "its export `{name}` must have type {expected}")
            }
            LoadError::NoDecisionExport => {
                f.write_str("it exports neither `db_for_read` nor `db_for_write`; a router needs at least one")
            }
            LoadError::Instantiate(e) => write!(f, "it could not be instantiated: {e}"),
            LoadError::InitRefused(msg) => write!(f, "its init refused: {msg}"),
            LoadError::InitFault(fault) => write!(f, "its init failed: {fault}"),
            LoadError::SelfTest(msg) => write!(f, "self-test failed: {msg}"),
            LoadError::File(msg) => f.write_str(msg),
        }
    }
}

/// How a router call went wrong. Every fault discards the instance that
/// made it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The call ran past its time budget and was interrupted.
    Timeout {
        /// The budget.
        budget: Duration,
    },
    /// The router tried to grow its memory past the ceiling.
    MemoryLimit {
        /// The ceiling, in bytes.
        limit: usize,
    },
    /// The router exhausted its stack (for example, unbounded recursion).
    StackOverflow,
    /// The router trapped.
    Trap(String),
    /// A returned pointer and length lie outside the router's memory.
    OutOfBounds {
        /// The pointer.
        ptr: u32,
        /// The length.
        len: u32,
        /// The memory's size in bytes.
        memory: usize,
    },
    /// Returned text is not UTF-8.
    InvalidUtf8,
    /// A returned connection name breaks the naming rules.
    MalformedName {
        /// The name (escaped and shortened).
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A result outside the values the ABI allows.
    BadResult {
        /// The export that returned it.
        export: &'static str,
        /// The value.
        value: i64,
    },
    /// `dbroute_input` returned 0: the router could not allocate its input.
    InputAllocation {
        /// The input's length.
        len: usize,
    },
    /// A native router panicked.
    Panic(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Timeout { budget } => write!(
                f,
                "the call ran past its time budget of {budget:?} and was stopped; make the router faster or raise the budget"
            ),
            Fault::MemoryLimit { limit } => write!(f, "it tried to grow its memory past the ceiling of {limit} bytes"),
            Fault::StackOverflow => f.write_str("it exhausted its stack (unbounded recursion?)"),
            Fault::Trap(msg) => write!(f, "it trapped: {msg}"),
            Fault::OutOfBounds { ptr, len, memory } => write!(
                f,
                "it returned {len} bytes at {ptr:#x}, outside its {memory}-byte memory"
            ),
            Fault::InvalidUtf8 => f.write_str("it returned text that is not UTF-8"),
            Fault::MalformedName { name, reason } => {
                write!(f, "it answered the malformed connection name \"{name}\": {reason}")
            }
            Fault::BadResult { export, value } => {
                write!(f, "`{export}` returned {value}, which the ABI does not allow")
            }
            Fault::InputAllocation { len } => write!(
                f,
                "`dbroute_input` returned 0: it could not provide {len} bytes for the input"
            ),
            Fault::Panic(msg) => write!(f, "it panicked: {msg}"),
        }
    }
}

fn list(names: &[ConnectionName]) -> String {
    if names.is_empty() {
        return "(none)".to_owned();
    }
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name.as_str());
    }
    out
}

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a panic said, when it said it as text.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not text)")
}
