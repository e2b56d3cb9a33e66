//! The inputs of the router's calls, read from the host's JSON.
//!
//! Each parser reads the members its call needs in one pass and skips (while
//! validating) every member it does not know: the ABI adds fields in minor
//! versions.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::json::{self, Cursor, InputError, RawStr, Result, Strings, Text, Value, list_contains, special_byte};

/// Whether an [`Operation`] reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A read: the host called `db_for_read`.
    Read,
    /// A write: the host called `db_for_write`.
    Write,
}

/// A read or a write that the router is asked to route.
///
/// ```
/// use dbroute_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct AuthRouter;
///
/// impl Router for AuthRouter {
///     fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
///         if op.model().app() == Some("auth") && !op.model().has_tag("pii") {
///             Decision::use_connection("auth_replica")
///         } else {
///             Decision::no_opinion()
///         }
///     }
/// }
///
/// let mut router = AuthRouter;
/// let answer = dbroute_sdk::testing::read(
///     &mut router,
///     r#"{"op":"read","model":{"name":"User","table":"users","app":"auth","tags":[]}}"#,
/// );
/// assert_eq!(answer.connection(), Some("auth_replica"));
/// ```
#[derive(Debug)]
pub struct Operation<'a> {
    kind: OpKind,
    model: Model<'a>,
    hints: Value<'a>,
    origin: Option<Text<'a>>,
}

impl<'a> Operation<'a> {
    /// Reads a `db_for_read` or `db_for_write` input. `kind` comes from the
    /// export that was called; the ABI makes the `op` field say the same.
    pub(crate) fn parse(kind: OpKind, text: &'a str) -> Result<Self> {
        match Self::parse_canonical(kind, text) {
            Some(op) => Ok(op),
            None => Self::parse_general(kind, text),
        }
    }

    /// The fast path of [`parse`](Self::parse), for the layout the host
    /// writes: compact JSON, members in the ABI's order, no escapes,
    ///
    /// ```json
    /// {"op":"read","model":{"name":"User","table":"users","app":"auth","tags":["pii"]},"hints":{"tenant":"acme"},"origin":"other"}
    /// ```
    ///
    /// where `table`, `app`, `tags`, `hints` and `origin` may be left out
    /// (the hints are any object). It checks the layout with a few word compares
    /// instead of scanning token by token. Any other input, well-formed or
    /// not, gets `None`, and the general parser reads it; it is the
    /// reference, and the tests check that both agree.
    #[inline]
    pub(crate) fn parse_canonical(kind: OpKind, text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        if !at(b, 0, b"{\"op\":\"") {
            return None;
        }
        let (_, i) = plain(text, 7)?;
        if !at(b, i, b",\"model\":{\"name\":\"") {
            return None;
        }
        let (name, mut i) = plain(text, i + 18)?;
        let mut table = None;
        if at(b, i, b",\"table\":\"") {
            let (t, next) = plain(text, i + 10)?;
            table = Some(Text::new(t));
            i = next;
        }
        let mut app = None;
        if at(b, i, b",\"app\":\"") {
            let (a, next) = plain(text, i + 8)?;
            app = Some(Text::new(a));
            i = next;
        }
        let mut tags = Value::EMPTY_ARRAY;
        if at(b, i, b",\"tags\":[") {
            let start = i + 8;
            i = start + 1;
            if b.get(i) == Some(&b']') {
                i += 1;
            } else {
                loop {
                    if b.get(i) != Some(&b'"') {
                        return None;
                    }
                    (_, i) = plain(text, i + 1)?;
                    match b.get(i) {
                        Some(b',') => i += 1,
                        Some(b']') => {
                            i += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            tags = Value::validated(sub(text, start, i)?);
        }
        if b.get(i) != Some(&b'}') {
            return None;
        }
        i += 1;
        let mut hints = Value::EMPTY_OBJECT;
        if at(b, i, b",\"hints\":{") {
            let start = i + 9;
            i = if b.get(start + 1) == Some(&b'}') {
                start + 2
            } else {
                json::skip_value(text, start).ok()?
            };
            hints = Value::validated(sub(text, start, i)?);
        }
        let mut origin = None;
        if at(b, i, b",\"origin\":\"") {
            let (o, next) = plain(text, i + 11)?;
            origin = Some(Text::new(o));
            i = next;
        }
        if i + 1 != b.len() || b.get(i) != Some(&b'}') {
            return None;
        }
        Some(Operation {
            kind,
            model: Model {
                name: Text::new(name),
                table,
                app,
                tags,
            },
            hints,
            origin,
        })
    }

    /// The general parser: any valid input.
    pub(crate) fn parse_general(kind: OpKind, text: &'a str) -> Result<Self> {
        let mut cur = Cursor::new(text);
        let mut model = None;
        let mut hints = None;
        let mut origin = None;
        cur.object(|cur, key| {
            if key.is("model") {
                model = Some(Model::parse(cur)?);
            } else if key.is("hints") {
                hints = cur.opt_object("hints must be an object")?;
            } else if key.is("origin") {
                origin = cur.opt_string()?;
            } else {
                cur.skip_value()?;
            }
            Ok(())
        })?;
        let missing = cur.error("model is missing");
        cur.finish()?;
        Ok(Operation {
            kind,
            model: model.ok_or(missing)?,
            hints: hints.unwrap_or(Value::EMPTY_OBJECT),
            origin: origin.map(Text::new),
        })
    }

    /// Whether this is a read or a write.
    pub fn kind(&self) -> OpKind {
        self.kind
    }

    /// Whether this is a read.
    pub fn is_read(&self) -> bool {
        self.kind == OpKind::Read
    }

    /// Whether this is a write.
    pub fn is_write(&self) -> bool {
        self.kind == OpKind::Write
    }

    /// The model read or written.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// The hints the calling code gave for this operation: an object, empty
    /// when the host sent none.
    pub fn hints(&self) -> Value<'a> {
        self.hints
    }

    /// The hint `key`, if the calling code gave it (it may be `null`).
    ///
    /// ```
    /// let json = r#"{"op":"read","model":{"name":"User"},"hints":{"tenant":"acme"}}"#;
    /// # use dbroute_sdk::prelude::*;
    /// # #[derive(Default)] struct R;
    /// # impl Router for R {
    /// #     fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
    /// let tenant = op.hint("tenant").and_then(|v| v.as_str());
    /// assert_eq!(tenant.as_deref(), Some("acme"));
    /// assert!(op.hint("shard").is_none());
    /// #         Decision::no_opinion()
    /// #     }
    /// # }
    /// # dbroute_sdk::testing::read(&mut R, json);
    /// ```
    pub fn hint(&self, key: &str) -> Option<Value<'a>> {
        self.hints.get(key)
    }

    /// The operation's origin: the connection the row or object it is about
    /// was read from, when the calling code said (ABI 1.1: the input's
    /// `origin`). Without an opinion from any router, the host sends the
    /// operation there instead of to `default`, as Django does with an
    /// instance's database; a router can also use it, to keep a row where
    /// it was read, say.
    ///
    /// ```
    /// use dbroute_sdk::prelude::*;
    ///
    /// /// Writes go back where their row came from, except to the replica.
    /// #[derive(Default)]
    /// struct Sticky;
    ///
    /// impl Router for Sticky {
    ///     fn db_for_read(&mut self, _op: &Operation<'_>) -> Decision<'_> {
    ///         Decision::no_opinion()
    ///     }
    ///
    ///     fn db_for_write<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
    ///         match op.origin() {
    ///             Some("replica") | None => Decision::use_connection("default"),
    ///             Some(origin) => Decision::use_connection(origin),
    ///         }
    ///     }
    /// }
    ///
    /// let from_replica = r#"{"op":"write","model":{"name":"User"},"origin":"replica"}"#;
    /// let from_archive = r#"{"op":"write","model":{"name":"User"},"origin":"archive"}"#;
    /// let from_nowhere = r#"{"op":"write","model":{"name":"User"}}"#;
    /// assert_eq!(dbroute_sdk::testing::write(&mut Sticky, from_replica).connection(), Some("default"));
    /// assert_eq!(dbroute_sdk::testing::write(&mut Sticky, from_archive).connection(), Some("archive"));
    /// assert_eq!(dbroute_sdk::testing::write(&mut Sticky, from_nowhere).connection(), Some("default"));
    /// ```
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_ref().map(Text::as_str)
    }
}

/// Whether `b[i..]` starts with `lit`: a few word compares once inlined
/// (`lit` is a constant), and no call to `memcmp`.
#[inline(always)]
fn at(b: &[u8], i: usize, lit: &'static [u8]) -> bool {
    let n = lit.len();
    let Some(s) = b.get(i..i + n) else {
        return false;
    };
    if n < 8 {
        let mut k = 0;
        while k < n {
            if s[k] != lit[k] {
                return false;
            }
            k += 1;
        }
        return true;
    }
    let word = |bytes: &[u8], k: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[k..k + 8]);
        u64::from_le_bytes(w)
    };
    let mut k = 0;
    while k + 8 < n {
        if word(s, k) != word(lit, k) {
            return false;
        }
        k += 8;
    }
    word(s, n - 8) == word(lit, n - 8)
}

/// A string with no escape whose contents start at `b[i]`: the contents and
/// the index after the closing quote; `None` for anything else.
#[inline(always)]
fn plain(text: &str, i: usize) -> Option<(RawStr<'_>, usize)> {
    let end = special_byte(text.as_bytes(), i);
    if text.as_bytes().get(end) != Some(&b'"') {
        return None;
    }
    Some((RawStr::plain(sub(text, i, end)?), end + 1))
}

/// `text.get(start..end)`, but inlined: `str::get` with a range is an
/// out-of-line call in the module, and this is the parser's hottest step.
#[inline(always)]
fn sub(text: &str, start: usize, end: usize) -> Option<&str> {
    let (head, _) = text.split_at_checked(end)?;
    let (_, tail) = head.split_at_checked(start)?;
    Some(tail)
}

/// The model of an operation: its name, and its table, app and tags when the
/// host knows them.
#[derive(Debug)]
pub struct Model<'a> {
    name: Text<'a>,
    table: Option<Text<'a>>,
    app: Option<Text<'a>>,
    tags: Value<'a>,
}

impl<'a> Model<'a> {
    fn parse(cur: &mut Cursor<'a>) -> Result<Self> {
        let mut name = None;
        let mut table = None;
        let mut app = None;
        let mut tags = None;
        cur.peek();
        let start = cur.error("model.name is missing");
        cur.object(|cur, key| {
            if key.is("name") {
                name = Some(cur.string()?);
            } else if key.is("table") {
                table = cur.opt_string()?;
            } else if key.is("app") {
                app = cur.opt_string()?;
            } else if key.is("tags") {
                tags = cur.opt_string_array("model.tags must be an array of strings")?;
            } else {
                cur.skip_value()?;
            }
            Ok(())
        })?;
        Ok(Model {
            name: Text::new(name.ok_or(start)?),
            table: table.map(Text::new),
            app: app.map(Text::new),
            tags: tags.unwrap_or(Value::EMPTY_ARRAY),
        })
    }

    /// The model's name, for example `User`.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The model's table, if the host sent it.
    pub fn table(&self) -> Option<&str> {
        self.table.as_ref().map(Text::as_str)
    }

    /// The model's app (its module or package), if the host sent it.
    pub fn app(&self) -> Option<&str> {
        self.app.as_ref().map(Text::as_str)
    }

    /// The model's tags, in order; none if the host sent none.
    pub fn tags(&self) -> Strings<'a> {
        Strings::new(self.tags)
    }

    /// Whether the model has the tag `tag`; never allocates.
    pub fn has_tag(&self, tag: &str) -> bool {
        list_contains(self.tags, tag)
    }
}

/// One of the two objects of a [`Relation`]: its model and its connection
/// (none for an object not saved yet).
#[derive(Debug)]
pub struct Side<'a> {
    model: Model<'a>,
    db: Option<Text<'a>>,
}

impl<'a> Side<'a> {
    fn parse(cur: &mut Cursor<'a>) -> Result<Self> {
        let mut model = None;
        let mut db = None;
        cur.peek();
        let start = cur.pos();
        cur.object(|cur, key| {
            if key.is("model") {
                model = Some(Model::parse(cur)?);
            } else if key.is("db") {
                db = Some(cur.opt_string()?);
            } else {
                cur.skip_value()?;
            }
            Ok(())
        })?;
        let missing = |what| InputError { offset: start, what };
        Ok(Side {
            model: model.ok_or(missing("relation side has no model"))?,
            db: db.ok_or(missing("relation side has no db"))?.map(Text::new),
        })
    }

    /// The object's model.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// The connection the object was read from or written to; `None` for
    /// an object that is not saved yet (ABI 1.1: `"db": null`).
    ///
    /// ```
    /// use dbroute_sdk::prelude::*;
    ///
    /// /// Anything may be related to an object not saved yet.
    /// #[derive(Default)]
    /// struct Lenient;
    ///
    /// impl Router for Lenient {
    ///     fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
    ///         Decision::no_opinion()
    ///     }
    ///     fn allow_relation(&mut self, rel: &Relation<'_>) -> Option<bool> {
    ///         (rel.a().db().is_none() || rel.b().db().is_none()).then_some(true)
    ///     }
    /// }
    ///
    /// let unsaved = r#"{"op":"relation","a":{"model":{"name":"Book"},"db":"default"},"b":{"model":{"name":"Author"},"db":null},"hints":{}}"#;
    /// assert_eq!(dbroute_sdk::testing::relation(&mut Lenient, unsaved), Some(true));
    /// ```
    pub fn db(&self) -> Option<&str> {
        self.db.as_ref().map(Text::as_str)
    }
}

/// An `allow_relation` question: may objects `a` and `b`, on these
/// connections, be related?
#[derive(Debug)]
pub struct Relation<'a> {
    a: Side<'a>,
    b: Side<'a>,
    hints: Value<'a>,
}

impl<'a> Relation<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Self> {
        let mut cur = Cursor::new(text);
        let mut a = None;
        let mut b = None;
        let mut hints = None;
        cur.object(|cur, key| {
            if key.is("a") {
                a = Some(Side::parse(cur)?);
            } else if key.is("b") {
                b = Some(Side::parse(cur)?);
            } else if key.is("hints") {
                hints = cur.opt_object("hints must be an object")?;
            } else {
                cur.skip_value()?;
            }
            Ok(())
        })?;
        let end = cur.pos();
        cur.finish()?;
        let missing = |what| InputError { offset: end, what };
        Ok(Relation {
            a: a.ok_or(missing("relation has no a"))?,
            b: b.ok_or(missing("relation has no b"))?,
            hints: hints.unwrap_or(Value::EMPTY_OBJECT),
        })
    }

    /// The first object.
    pub fn a(&self) -> &Side<'a> {
        &self.a
    }

    /// The second object.
    pub fn b(&self) -> &Side<'a> {
        &self.b
    }

    /// The hints, an object (empty when the host sent none).
    pub fn hints(&self) -> Value<'a> {
        self.hints
    }

    /// The hint `key`, if given.
    pub fn hint(&self, key: &str) -> Option<Value<'a>> {
        self.hints.get(key)
    }
}

/// An `allow_migrate` question: may this model's schema, or, without a
/// model, this app's migrations, be created on this connection? (Django's
/// `allow_migrate(db, app_label, model_name=None, **hints)`.)
#[derive(Debug)]
pub struct Migration<'a> {
    db: Text<'a>,
    model: Option<Model<'a>>,
    app: Option<Text<'a>>,
    hints: Value<'a>,
}

impl<'a> Migration<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Self> {
        let mut cur = Cursor::new(text);
        let mut db = None;
        let mut model = None;
        let mut app = None;
        let mut hints = None;
        cur.object(|cur, key| {
            if key.is("db") {
                db = Some(cur.string()?);
            } else if key.is("model") {
                model = Some(Model::parse(cur)?);
            } else if key.is("app") {
                app = cur.opt_string()?;
            } else if key.is("hints") {
                hints = cur.opt_object("hints must be an object")?;
            } else {
                cur.skip_value()?;
            }
            Ok(())
        })?;
        let end = cur.pos();
        cur.finish()?;
        let missing = |what| InputError { offset: end, what };
        if model.is_none() && app.is_none() {
            return Err(missing("model is missing (and there is no app)"));
        }
        Ok(Migration {
            db: Text::new(db.ok_or(missing("db is missing"))?),
            model,
            app: app.map(Text::new),
            hints: hints.unwrap_or(Value::EMPTY_OBJECT),
        })
    }

    /// The connection the schema would be created on.
    pub fn db(&self) -> &str {
        self.db.as_str()
    }

    /// The model whose schema it is; `None` when the host asks about an
    /// app as a whole (ABI 1.1: the input has `app` and no `model`, as for
    /// Django's `RunSQL` or `RunPython` migration operations).
    ///
    /// ```
    /// use dbroute_sdk::prelude::*;
    ///
    /// /// The `metrics` app, and the `Event` model wherever it is, live on
    /// /// `analytics` only.
    /// #[derive(Default)]
    /// struct Metrics;
    ///
    /// impl Router for Metrics {
    ///     fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
    ///         Decision::no_opinion()
    ///     }
    ///     fn allow_migrate(&mut self, m: &Migration<'_>) -> Option<bool> {
    ///         let event = m.model().is_some_and(|model| model.name() == "Event");
    ///         (event || m.app() == Some("metrics")).then(|| m.db() == "analytics")
    ///     }
    /// }
    ///
    /// let app = r#"{"op":"migrate","db":"default","app":"metrics","hints":{}}"#;
    /// let model = r#"{"op":"migrate","db":"analytics","model":{"name":"Event"},"hints":{}}"#;
    /// let other = r#"{"op":"migrate","db":"default","app":"auth","hints":{}}"#;
    /// assert_eq!(dbroute_sdk::testing::migrate(&mut Metrics, app), Some(false));
    /// assert_eq!(dbroute_sdk::testing::migrate(&mut Metrics, model), Some(true));
    /// assert_eq!(dbroute_sdk::testing::migrate(&mut Metrics, other), None);
    /// ```
    pub fn model(&self) -> Option<&Model<'a>> {
        self.model.as_ref()
    }

    /// The app label: the input's `app` when the host asks about an app
    /// alone, else the model's app (`None` when the model has none).
    ///
    /// ```
    /// use dbroute_sdk::prelude::*;
    /// # #[derive(Default)] struct R;
    /// # impl Router for R {
    /// #     fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> { Decision::no_opinion() }
    /// fn allow_migrate(&mut self, m: &Migration<'_>) -> Option<bool> {
    ///     (m.app() == Some("metrics")).then(|| m.db() == "analytics")
    /// }
    /// # }
    /// let app = r#"{"op":"migrate","db":"analytics","app":"metrics","hints":{}}"#;
    /// let model = r#"{"op":"migrate","db":"default","model":{"name":"Event","app":"metrics"},"hints":{}}"#;
    /// assert_eq!(dbroute_sdk::testing::migrate(&mut R, app), Some(true));
    /// assert_eq!(dbroute_sdk::testing::migrate(&mut R, model), Some(false));
    /// ```
    pub fn app(&self) -> Option<&str> {
        match &self.app {
            Some(app) => Some(app.as_str()),
            None => self.model.as_ref().and_then(Model::app),
        }
    }

    /// The hints, an object (empty when the host sent none).
    pub fn hints(&self) -> Value<'a> {
        self.hints
    }

    /// The hint `key`, if given.
    pub fn hint(&self, key: &str) -> Option<Value<'a>> {
        self.hints.get(key)
    }
}

/// The `dbroute_init` input.
pub(crate) struct Init<'a> {
    pub(crate) config: Config<'a>,
    pub(crate) connections: Connections<'a>,
}

impl<'a> Init<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Self> {
        let mut cur = Cursor::new(text);
        let mut config = None;
        let mut connections = None;
        cur.object(|cur, key| {
            if key.is("config") {
                config = Some(cur.value()?);
            } else if key.is("connections") {
                connections = cur.opt_string_array("connections must be an array of strings")?;
            } else {
                cur.skip_value()?;
            }
            Ok(())
        })?;
        cur.finish()?;
        Ok(Init {
            config: Config {
                value: config.unwrap_or(Value::NULL),
            },
            connections: Connections {
                list: connections.unwrap_or(Value::EMPTY_ARRAY),
            },
        })
    }
}

/// The router's own configuration, as given to the host with the router:
/// any JSON value, `null` when there is none.
///
/// It is read in [`Router::init`](crate::Router::init); keep what you need
/// (the input it borrows is reused by the next call). The `str_*` helpers
/// read the usual shapes and return a refusal message naming the key when
/// the shape is wrong, ready for `?`.
///
/// ```
/// use dbroute_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct TenantRouter {
///     tenants: BTreeMap<String, String>,
/// }
///
/// impl Router for TenantRouter {
///     fn init(&mut self, config: &Config<'_>, _: &Connections<'_>) -> Result<(), String> {
///         self.tenants = config.str_map("tenants")?;
///         Ok(())
///     }
///
///     fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
///         let tenant = op.hint("tenant").and_then(|v| v.as_str());
///         match tenant.and_then(|t| self.tenants.get(&*t)) {
///             Some(db) => Decision::use_connection(db),
///             None => Decision::no_opinion(),
///         }
///     }
/// }
///
/// let init = r#"{"config":{"tenants":{"acme":"tenant_acme"}},"connections":["default"]}"#;
/// let router: TenantRouter = dbroute_sdk::testing::init(init).unwrap();
/// assert_eq!(router.tenants["acme"], "tenant_acme");
///
/// let bad = r#"{"config":{"tenants":["acme"]},"connections":["default"]}"#;
/// let refusal = dbroute_sdk::testing::init::<TenantRouter>(bad).err().unwrap();
/// assert_eq!(refusal, "config.tenants must be an object whose values are strings");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    value: Value<'a>,
}

impl<'a> Config<'a> {
    /// The whole configuration.
    pub fn value(&self) -> Value<'a> {
        self.value
    }

    /// Whether there is no configuration (`null`).
    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }

    /// The member `key` of the configuration object; `None` when it is
    /// missing or the configuration is not an object.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.value.get(key)
    }

    /// The member `key`, a string. Missing or `null`: `Ok(None)`.
    ///
    /// # Errors
    ///
    /// A message naming the key when the member is not a string.
    pub fn str(&self, key: &str) -> core::result::Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => match v.as_str() {
                Some(s) => Ok(Some(s.into_owned())),
                None => Err(message(key, " must be a string")),
            },
        }
    }

    /// The member `key`, an array of strings. Missing or `null`: empty.
    ///
    /// # Errors
    ///
    /// A message naming the key when the member is not an array of strings.
    pub fn str_list(&self, key: &str) -> core::result::Result<Vec<String>, String> {
        let Some(list) = self.get(key).filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let error = || message(key, " must be an array of strings");
        if list.kind() != crate::Kind::Array {
            return Err(error());
        }
        list.items()
            .map(|v| v.as_str().map(Cow::into_owned).ok_or_else(error))
            .collect()
    }

    /// The member `key`, an object whose values are strings, as a map.
    /// Missing or `null`: empty.
    ///
    /// # Errors
    ///
    /// A message naming the key when the member is not such an object.
    pub fn str_map(&self, key: &str) -> core::result::Result<BTreeMap<String, String>, String> {
        let Some(map) = self.get(key).filter(|v| !v.is_null()) else {
            return Ok(BTreeMap::new());
        };
        let error = || message(key, " must be an object whose values are strings");
        if map.kind() != crate::Kind::Object {
            return Err(error());
        }
        // Inserted one by one: collecting would sort, and bring a sort
        // into every router that reads a map.
        let mut out = BTreeMap::new();
        for (k, v) in map.entries() {
            let v = v.as_str().ok_or_else(error)?;
            out.insert(k.into_owned(), v.into_owned());
        }
        Ok(out)
    }
}

/// `config.<key><rest>`, without `core::fmt`.
fn message(key: &str, rest: &str) -> String {
    let mut m = String::with_capacity(7 + key.len() + rest.len());
    m.push_str("config.");
    m.push_str(key);
    m.push_str(rest);
    m
}

/// The names of the connections registered when the instance was made.
#[derive(Clone, Copy, Debug)]
pub struct Connections<'a> {
    list: Value<'a>,
}

impl<'a> Connections<'a> {
    /// Whether `name` is registered; never allocates.
    pub fn contains(&self, name: &str) -> bool {
        list_contains(self.list, name)
    }

    /// The names, in the host's order.
    pub fn iter(&self) -> Strings<'a> {
        Strings::new(self.list)
    }

    /// How many connections there are.
    pub fn len(&self) -> usize {
        self.list.items().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> IntoIterator for &Connections<'a> {
    type Item = Cow<'a, str>;
    type IntoIter = Strings<'a>;

    fn into_iter(self) -> Strings<'a> {
        self.iter()
    }
}
