//! Models and hints: what every routed operation tells the router.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value as Json};

/// What a router knows about a model: its name, and optionally its table,
/// app and tags. The JSON the router ABI sends for it is built once and
/// reused for every operation.
///
/// # Examples
///
/// ```
/// use dbroute::{Model, ModelInfo};
///
/// struct User;
/// impl Model for User {
///     fn model_info() -> &'static ModelInfo {
///         static INFO: ModelInfo = ModelInfo::new("User").table("users").app("auth").tags(&["pii"]);
///         &INFO
///     }
/// }
/// assert_eq!(User::model_info().name(), "User");
///
/// // Or route by a plain name, decided at run time:
/// let event = ModelInfo::named("Event");
/// assert_eq!(event.table_name(), None);
/// ```
pub struct ModelInfo {
    meta: Meta,
    json: OnceLock<AbiJson>,
}

/// A piece of the router ABI's input, built once, with its hash: the answer
/// cache keys on the input's bytes without hashing them on every call.
#[derive(Clone)]
pub(crate) struct AbiJson {
    text: Box<str>,
    hash: u64,
}

/// The hasher of [`AbiJson`]: seeded at random once per process.
static ABI_HASHER: std::sync::LazyLock<foldhash::fast::RandomState> =
    std::sync::LazyLock::new(foldhash::fast::RandomState::default);

impl AbiJson {
    fn new(text: String) -> Self {
        use std::hash::BuildHasher;
        AbiJson {
            hash: ABI_HASHER.hash_one(text.as_bytes()),
            text: text.into_boxed_str(),
        }
    }

    /// The JSON text.
    #[inline]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The hash of the text.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

enum Meta {
    Static {
        name: &'static str,
        table: Option<&'static str>,
        app: Option<&'static str>,
        tags: &'static [&'static str],
    },
    Owned {
        name: String,
        table: Option<String>,
        app: Option<String>,
        tags: Vec<String>,
    },
}

impl ModelInfo {
    /// A model known when the program is written; usable in a `static`.
    pub const fn new(name: &'static str) -> Self {
        ModelInfo {
            meta: Meta::Static {
                name,
                table: None,
                app: None,
                tags: &[],
            },
            json: OnceLock::new(),
        }
    }

    /// A model named at run time.
    pub fn named(name: impl Into<String>) -> Self {
        ModelInfo {
            meta: Meta::Owned {
                name: name.into(),
                table: None,
                app: None,
                tags: Vec::new(),
            },
            json: OnceLock::new(),
        }
    }

    /// Replaces the static metadata (const-friendly: the old value owns no
    /// heap memory, so forgetting it leaks nothing).
    const fn with_static(
        self,
        table: Option<&'static str>,
        app: Option<&'static str>,
        tags: Option<&'static [&'static str]>,
    ) -> Self {
        let Meta::Static {
            name,
            table: old_table,
            app: old_app,
            tags: old_tags,
        } = self.meta
        else {
            panic!("use with_table/with_app/with_tags on a ModelInfo made by ModelInfo::named");
        };
        std::mem::forget(self);
        ModelInfo {
            meta: Meta::Static {
                name,
                table: if table.is_some() { table } else { old_table },
                app: if app.is_some() { app } else { old_app },
                tags: match tags {
                    Some(tags) => tags,
                    None => old_tags,
                },
            },
            json: OnceLock::new(),
        }
    }

    /// Sets the table name.
    pub const fn table(self, table: &'static str) -> Self {
        self.with_static(Some(table), None, None)
    }

    /// Sets the app (the group of models it belongs to).
    pub const fn app(self, app: &'static str) -> Self {
        self.with_static(None, Some(app), None)
    }

    /// Sets the tags.
    pub const fn tags(self, tags: &'static [&'static str]) -> Self {
        self.with_static(None, None, Some(tags))
    }

    fn into_owned(self) -> (String, Option<String>, Option<String>, Vec<String>) {
        match self.meta {
            Meta::Static { name, table, app, tags } => (
                name.to_owned(),
                table.map(str::to_owned),
                app.map(str::to_owned),
                tags.iter().map(|t| (*t).to_owned()).collect(),
            ),
            Meta::Owned { name, table, app, tags } => (name, table, app, tags),
        }
    }

    fn owned(name: String, table: Option<String>, app: Option<String>, tags: Vec<String>) -> Self {
        ModelInfo {
            meta: Meta::Owned { name, table, app, tags },
            json: OnceLock::new(),
        }
    }

    /// Sets the table name, known at run time.
    pub fn with_table(self, table: impl Into<String>) -> Self {
        let (name, _, app, tags) = self.into_owned();
        Self::owned(name, Some(table.into()), app, tags)
    }

    /// Sets the app, known at run time.
    pub fn with_app(self, app: impl Into<String>) -> Self {
        let (name, table, _, tags) = self.into_owned();
        Self::owned(name, table, Some(app.into()), tags)
    }

    /// Sets the tags, known at run time.
    pub fn with_tags<I, S>(self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (name, table, app, _) = self.into_owned();
        Self::owned(name, table, app, tags.into_iter().map(Into::into).collect())
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        match &self.meta {
            Meta::Static { name, .. } => name,
            Meta::Owned { name, .. } => name,
        }
    }

    /// The table name, if set.
    pub fn table_name(&self) -> Option<&str> {
        match &self.meta {
            Meta::Static { table, .. } => *table,
            Meta::Owned { table, .. } => table.as_deref(),
        }
    }

    /// The app, if set.
    pub fn app_name(&self) -> Option<&str> {
        match &self.meta {
            Meta::Static { app, .. } => *app,
            Meta::Owned { app, .. } => app.as_deref(),
        }
    }

    /// The tags.
    pub fn tag_list(&self) -> impl Iterator<Item = &str> {
        let (a, b) = match &self.meta {
            Meta::Static { tags, .. } => (Some(tags.iter().copied()), None),
            Meta::Owned { tags, .. } => (None, Some(tags.iter().map(String::as_str))),
        };
        a.into_iter().flatten().chain(b.into_iter().flatten())
    }

    /// Whether the model carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tag_list().any(|t| t == tag)
    }

    /// The model as the router ABI's JSON object, built once.
    pub fn abi_json(&self) -> &str {
        self.abi().text()
    }

    /// [`ModelInfo::abi_json`], with its hash.
    #[inline]
    pub(crate) fn abi(&self) -> &AbiJson {
        self.json.get_or_init(|| {
            // In the ABI's field order (routers may read it in one pass).
            let string = |s: &str| Json::from(s).to_string();
            let mut out = format!("{{\"name\":{}", string(self.name()));
            if let Some(table) = self.table_name() {
                out.push_str(&format!(",\"table\":{}", string(table)));
            }
            if let Some(app) = self.app_name() {
                out.push_str(&format!(",\"app\":{}", string(app)));
            }
            let tags: Vec<String> = self.tag_list().map(string).collect();
            if !tags.is_empty() {
                out.push_str(&format!(",\"tags\":[{}]", tags.join(",")));
            }
            out.push('}');
            AbiJson::new(out)
        })
    }
}

impl Clone for ModelInfo {
    fn clone(&self) -> Self {
        let meta = match &self.meta {
            Meta::Static { name, table, app, tags } => Meta::Static {
                name,
                table: *table,
                app: *app,
                tags,
            },
            Meta::Owned { name, table, app, tags } => Meta::Owned {
                name: name.clone(),
                table: table.clone(),
                app: app.clone(),
                tags: tags.clone(),
            },
        };
        ModelInfo {
            meta,
            json: self.json.clone(),
        }
    }
}

impl fmt::Debug for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abi_json())
    }
}

/// A type routed as a model. Implement it with a `static` [`ModelInfo`] (see
/// there), or use [`ModelInfo::named`] to route by a plain name.
pub trait Model {
    /// The model's metadata.
    fn model_info() -> &'static ModelInfo;
}

/// Per-operation hints for the router: a tenant, a shard key, a user id,
/// any JSON value by key. The JSON the router ABI sends is built once.
///
/// # Examples
///
/// ```
/// use dbroute::Hints;
/// let hints = Hints::new().with("tenant", "acme").with("shard", 3);
/// assert_eq!(hints.get("tenant").and_then(|v| v.as_str()), Some("acme"));
/// assert_eq!(hints.abi_json(), r#"{"shard":3,"tenant":"acme"}"#);
/// ```
#[derive(Clone, Default)]
pub struct Hints {
    map: Map<String, Json>,
    json: OnceLock<AbiJson>,
}

impl Hints {
    /// No hints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a hint (a later value for the same key wins).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Json>) -> Self {
        self.insert(key, value);
        self
    }

    /// Adds a hint in place.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Json>) {
        self.map.insert(key.into(), value.into());
        self.json = OnceLock::new();
    }

    /// Adds every hint of `other`; `other`'s values win.
    pub fn extend(&mut self, other: &Hints) {
        for (k, v) in &other.map {
            self.map.insert(k.clone(), v.clone());
        }
        self.json = OnceLock::new();
    }

    /// The hint for `key`.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.map.get(key)
    }

    /// Whether there are no hints.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The hints as a JSON object.
    pub fn as_map(&self) -> &Map<String, Json> {
        &self.map
    }

    /// The hints as the router ABI's JSON object, built once.
    pub fn abi_json(&self) -> &str {
        let closed = self.abi_json_closed();
        &closed[..closed.len() - 1]
    }

    /// The JSON object followed by one more `}` (the end of the ABI input),
    /// built once, so the input is written without copying.
    pub(crate) fn abi_json_closed(&self) -> &str {
        self.abi_closed().text()
    }

    /// [`Hints::abi_json_closed`], with its hash.
    #[inline]
    pub(crate) fn abi_closed(&self) -> &AbiJson {
        self.json.get_or_init(|| {
            let mut json = Json::Object(self.map.clone()).to_string();
            json.push('}');
            AbiJson::new(json)
        })
    }
}

impl From<Map<String, Json>> for Hints {
    fn from(map: Map<String, Json>) -> Self {
        Hints {
            map,
            json: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Hints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.map, f)
    }
}

pub(crate) static NO_HINTS: std::sync::LazyLock<Hints> = std::sync::LazyLock::new(Hints::new);
