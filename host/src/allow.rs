//! Allow-lists: restrict which connection names untrusted input (a request
//! header, a query parameter) may pick.

use crate::error::{Error, Result};
use crate::name::ConnectionName;

/// The connection names a request may choose, checked before the name
/// reaches the engine.
///
/// Any name given to [`Routed::using`](crate::Routed::using) or
/// [`Engine::connection`](crate::Engine::connection) must already be a
/// registered connection, so untrusted input can never reach an
/// unregistered database; an `AllowList` narrows that further to the
/// connections a request may pick (a tenant's replicas, say, but never the
/// primary or another tenant's database).
///
/// [`AllowList::check`] compares the untrusted text byte for byte with
/// each allowed name: it is not parsed, trimmed, case-folded or decoded, so
/// `"Replica"`, `" replica"` or `"%72eplica"` are not `replica`. The alias
/// `default` is allowed only when it is listed itself.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::{AllowList, Engine, Error, ModelInfo};
///
/// let engine = Engine::builder()
///     .connection("default", "sqlite::memory:")
///     .connection("replica_eu", "sqlite::memory:")
///     .connection("replica_us", "sqlite::memory:")
///     .build()
///     .await?;
/// // Requests may pick a replica, never the primary.
/// let replicas = AllowList::new(["replica_eu", "replica_us"])?;
/// let report = ModelInfo::new("Report");
///
/// // From a request: `?region=replica_eu`.
/// let picked = replicas.check("replica_eu")?;
/// let conn = engine.read_model(&report).using(picked.as_str()).connection()?;
/// assert_eq!(conn.name(), "replica_eu");
///
/// // Anything else is refused before it reaches the engine, naming the
/// // allowed set.
/// for hostile in ["default", "replica_eu; DROP TABLE users", "../primary", ""] {
///     let err = replicas.check(hostile).unwrap_err();
///     assert!(matches!(err, Error::NotAllowed { .. }));
///     assert!(err.to_string().contains("allowed: replica_eu, replica_us"), "{err}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    /// Sorted, without duplicates.
    names: Vec<ConnectionName>,
}

impl AllowList {
    /// An allow-list of these names (duplicates are ignored; an empty list
    /// allows nothing).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when a name breaks the naming rules.
    pub fn new<I, S>(names: I) -> Result<AllowList>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names = names
            .into_iter()
            .map(|name| ConnectionName::new(name.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        names.sort();
        names.dedup();
        Ok(AllowList { names })
    }

    /// The allowed name equal to `untrusted`, byte for byte.
    ///
    /// # Errors
    ///
    /// [`Error::NotAllowed`] naming the allowed set; the untrusted text is
    /// shown escaped, cut to 80 characters, and with anything that looks
    /// like a URL's password hidden.
    pub fn check(&self, untrusted: &str) -> Result<ConnectionName> {
        match self.names.iter().find(|name| name.as_bytes() == untrusted.as_bytes()) {
            Some(name) => Ok(*name),
            None => Err(Error::NotAllowed {
                name: crate::name::printable(&crate::connection::url::redact(untrusted)),
                allowed: self.names.clone(),
            }),
        }
    }

    /// Whether `untrusted` is an allowed name.
    pub fn contains(&self, untrusted: &str) -> bool {
        self.names.iter().any(|name| name.as_bytes() == untrusted.as_bytes())
    }

    /// The allowed names, sorted.
    pub fn names(&self) -> &[ConnectionName] {
        &self.names
    }
}
