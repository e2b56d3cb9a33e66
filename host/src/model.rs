//! Models and hints: what every routed operation tells the router.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value as Json};

/// What a router knows about a model: its name, and optionally its table,
/// app and tags. The JSON the router ABI sends for it is built once and
/// reused for every operation.
///
/// Most models are Rust types: derive [`Model`](derive@crate::Model) and
/// the engine's typed calls (`engine.read::<User>()`) use its metadata. A
/// model known only at run time is a `ModelInfo` built with
/// [`ModelInfo::new`] and the `with_*` methods.
///
/// # Examples
///
/// ```
/// use dbroute::{Model, ModelInfo};
///
/// #[derive(Model)]
/// #[dbroute(table = "users", app = "auth", tags("pii"))]
/// struct User;
///
/// let user = User::model_info();
/// assert_eq!(user.name(), "User");
/// assert_eq!(user.table(), Some("users"));
/// assert_eq!(user.app(), Some("auth"));
/// assert!(user.has_tag("pii"));
///
/// // Or route by a name decided at run time:
/// let event = ModelInfo::new(format!("Event{}", 2026)).with_tags(["append-only"]);
/// assert_eq!(event.table(), None);
/// assert_eq!(event.tags().collect::<Vec<_>>(), ["append-only"]);
/// ```
#[derive(Clone)]
pub struct ModelInfo {
    name: Box<str>,
    table: Option<Box<str>>,
    app: Option<Box<str>>,
    tags: Box<[Box<str>]>,
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

impl ModelInfo {
    /// A model named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ModelInfo {
            name: name.into().into_boxed_str(),
            table: None,
            app: None,
            tags: Box::default(),
            json: OnceLock::new(),
        }
    }

    /// Sets the table name.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into().into_boxed_str());
        self.json = OnceLock::new();
        self
    }

    /// Sets the app (the group of models it belongs to, as Django's app
    /// label).
    pub fn with_app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into().into_boxed_str());
        self.json = OnceLock::new();
        self
    }

    /// Sets the tags (replacing any set before).
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(|t| t.into().into_boxed_str()).collect();
        self.json = OnceLock::new();
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table name, if set.
    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// The app, if set.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The tags.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = &str> {
        self.tags.iter().map(|t| &**t)
    }

    /// Whether the model carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags().any(|t| t == tag)
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
            if let Some(table) = self.table() {
                out.push_str(&format!(",\"table\":{}", string(table)));
            }
            if let Some(app) = self.app() {
                out.push_str(&format!(",\"app\":{}", string(app)));
            }
            let tags: Vec<String> = self.tags().map(string).collect();
            if !tags.is_empty() {
                out.push_str(&format!(",\"tags\":[{}]", tags.join(",")));
            }
            out.push('}');
            AbiJson::new(out)
        })
    }
}

impl fmt::Debug for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abi_json())
    }
}

/// A type routed as a model. Derive it (see [`Model`](derive@crate::Model)),
/// or implement it with a `static` [`ModelInfo`]:
///
/// ```
/// use std::sync::LazyLock;
/// use dbroute::{Model, ModelInfo};
///
/// struct Invoice;
/// impl Model for Invoice {
///     fn model_info() -> &'static ModelInfo {
///         static INFO: LazyLock<ModelInfo> =
///             LazyLock::new(|| ModelInfo::new("Invoice").with_table("invoices").with_app("billing"));
///         &INFO
///     }
/// }
/// assert_eq!(Invoice::model_info().app(), Some("billing"));
/// ```
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
