//! The cross-language reference policy (`example-routers/reference`,
//! `example-routers/reference-cases.json`) as a WebAssembly component: the
//! world `routing` of `wit/router.wit`, bound with wit-bindgen.
//!
//! - a `tenant` hint whose JSON value is a string that the configuration's
//!   tenant map (`{"tenants": {"acme": "tenant_acme"}}`; the configuration
//!   may be `null`) maps to a connection sends reads and writes there; an
//!   unmapped tenant changes nothing;
//! - otherwise reads go to `replica`, writes to `default`, except the
//!   `Event` model, which reads and writes on `analytics`;
//! - writes to a model tagged `readonly` are refused, tenant or not, with
//!   the message `writes to read-only model <Name> are forbidden`;
//! - `allow-migrate`: `Event` only on `analytics` (true there, false
//!   elsewhere); any other model false on `analytics`, no opinion elsewhere
//!   (an app asked about without a model counts as another model);
//! - `allow-relation`: no opinion; the connections' state is not used.
//!
//! Deterministic: the host may cache its answers.
//!
//! Build it with `build.sh OUT_DIR` (cargo, `--target wasm32-wasip2`).

use std::cell::RefCell;

wit_bindgen::generate!({
    path: "../../wit",
    world: "routing",
});

use dbroute::router::host::log;
use dbroute::router::types::Level;
use exports::dbroute::router::router::{ConnectionState, Decision, Guest, Hint, MigrationTarget, Operation, Side};

/// The refusal of a tenant map that is not an object of strings.
const BAD_TENANTS: &str = "config.tenants must be an object whose values are strings";

/// The tenant map: `(tenant, connection)` pairs, sorted by tenant, for a
/// binary search. (A `BTreeMap` would add about 4 KB to the component.)
type Tenants = Vec<(String, String)>;

thread_local! {
    /// The tenant map, set by `init`. An instance is entered by one call at a
    /// time, and wasm32-wasip2 has no threads: this is a plain static.
    static TENANTS: RefCell<Tenants> = const { RefCell::new(Vec::new()) };
}

/// The reference policy.
struct ReferenceRouter;

impl Guest for ReferenceRouter {
    fn init(config: String, _connections: Vec<String>) -> Result<(), String> {
        let tenants = tenants(&config)?;
        if tenants.is_empty() {
            log(Level::Debug, "no tenant is mapped: tenant hints change nothing");
        }
        TENANTS.with_borrow_mut(|map| *map = tenants);
        Ok(())
    }

    fn deterministic() -> bool {
        true
    }

    fn db_for_read(op: Operation) -> Decision {
        if let Some(db) = tenant_db(&op.hints) {
            Decision::Connection(db)
        } else if op.model.name == "Event" {
            Decision::Connection("analytics".into())
        } else {
            Decision::Connection("replica".into())
        }
    }

    fn db_for_write(op: Operation) -> Decision {
        if op.model.tags.iter().any(|tag| tag == "readonly") {
            // Without `format!`: core::fmt would add kilobytes to the component.
            let name = &op.model.name;
            let mut message = String::with_capacity(40 + name.len());
            message.push_str("writes to read-only model ");
            message.push_str(name);
            message.push_str(" are forbidden");
            Decision::Refuse(message)
        } else if let Some(db) = tenant_db(&op.hints) {
            Decision::Connection(db)
        } else if op.model.name == "Event" {
            Decision::Connection("analytics".into())
        } else {
            Decision::Connection("default".into())
        }
    }

    fn allow_relation(_a: Side, _b: Side, _hints: Vec<Hint>) -> Option<bool> {
        None
    }

    fn allow_migrate(db: String, target: MigrationTarget, _hints: Vec<Hint>) -> Option<bool> {
        let on_analytics = db == "analytics";
        match target {
            MigrationTarget::Model(model) if model.name == "Event" => Some(on_analytics),
            _ if on_analytics => Some(false),
            _ => None,
        }
    }

    fn state_changed(_connections: Vec<ConnectionState>) {}
}

export!(ReferenceRouter);

/// The connection the operation's `tenant` hint maps to: the first hint
/// named `tenant`, when its value is a JSON string that the map holds.
/// Allocates only the answer (and the tenant's name when it has escapes).
fn tenant_db(hints: &[Hint]) -> Option<String> {
    let hint = hints.iter().find(|h| h.key == "tenant")?;
    let tenant = json::string_value(&hint.value)?;
    TENANTS.with_borrow(|map| {
        let at = map.binary_search_by(|(t, _)| t.as_str().cmp(&tenant)).ok()?;
        map.get(at).map(|(_, db)| db.clone())
    })
}

/// `config.tenants`, read from the configuration's JSON text: empty when the
/// configuration is not an object, has no `tenants` or has it `null`.
fn tenants(config: &str) -> Result<Tenants, String> {
    let invalid = || String::from("config is not valid JSON");
    let mut s = json::Scanner::new(config);
    let mut map = Tenants::new();
    if s.peek() != Some(b'{') {
        // `null`, or something else that holds no tenant map.
        s.skip_value().ok_or_else(invalid)?;
        return s.end().then_some(map).ok_or_else(invalid);
    }
    let (mut found, mut bad) = (false, false);
    s.object(|s, key| {
        if key != "tenants" || found {
            // The first `tenants` counts.
            return s.skip_value();
        }
        found = true;
        let read = match s.peek() {
            Some(b'{') => s.object(|s, tenant| {
                let db = s.string()?.into_owned();
                // A tenant given twice: the last one counts, as in a map.
                match map.binary_search_by(|(t, _)| t.as_str().cmp(&tenant)) {
                    Ok(at) => map[at].1 = db,
                    Err(at) => map.insert(at, (tenant.into_owned(), db)),
                }
                Some(())
            }),
            Some(b'n') => s.skip_value(),
            _ => None,
        };
        bad = read.is_none();
        read
    })
    .filter(|()| s.end())
    .ok_or_else(|| {
        // A bad tenant map stops the reading: is the rest of the text JSON?
        if bad && json::is_valid(config) {
            BAD_TENANTS.into()
        } else {
            invalid()
        }
    })?;
    Ok(map)
}

/// Just enough JSON for the configuration and the hints, without a
/// dependency.
///
/// Why not serde_json: it doubles the component (125 KB instead of 62 KB,
/// measured with its `Value` for the configuration and `from_str::<String>`
/// for the hint), and buys no speed: JSON is read once per instance (the
/// configuration) and, per call, only in the `tenant` hint's short value,
/// which this scanner borrows without allocating unless it has escapes.
/// The host hands valid JSON (it parses the configuration and the hints
/// itself); the scanner still never reads out of bounds or panics, and
/// answers `None` on text it does not understand.
mod json {
    use std::borrow::Cow;

    /// A cursor over JSON text.
    pub(crate) struct Scanner<'a> {
        text: &'a str,
        at: usize,
    }

    impl<'a> Scanner<'a> {
        pub(crate) fn new(text: &'a str) -> Self {
            Self { text, at: 0 }
        }

        fn bytes(&self) -> &'a [u8] {
            self.text.as_bytes()
        }

        /// The next byte that is not whitespace, without taking it.
        pub(crate) fn peek(&mut self) -> Option<u8> {
            while let Some(&b) = self.bytes().get(self.at) {
                if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    return Some(b);
                }
                self.at += 1;
            }
            None
        }

        /// Takes `byte`, after whitespace.
        fn eat(&mut self, byte: u8) -> bool {
            let found = self.peek() == Some(byte);
            self.at += usize::from(found);
            found
        }

        /// Whether only whitespace is left.
        pub(crate) fn end(&mut self) -> bool {
            self.peek().is_none()
        }

        /// A string, decoded: borrowed unless it has escapes.
        pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
            if !self.eat(b'"') {
                return None;
            }
            let start = self.at;
            let bytes = self.bytes();
            // The common case: no escape, the text between the quotes.
            loop {
                match *bytes.get(self.at)? {
                    b'"' => {
                        self.at += 1;
                        return self.text.get(start..self.at - 1).map(Cow::Borrowed);
                    }
                    b'\\' => break,
                    0..=0x1f => return None,
                    _ => self.at += 1,
                }
            }
            let mut out = String::with_capacity(self.at - start + 16);
            out.push_str(self.text.get(start..self.at)?);
            loop {
                let run = self.at;
                while !matches!(*bytes.get(self.at)?, b'"' | b'\\' | 0..=0x1f) {
                    self.at += 1;
                }
                out.push_str(self.text.get(run..self.at)?);
                match bytes.get(self.at)? {
                    b'"' => {
                        self.at += 1;
                        return Some(Cow::Owned(out));
                    }
                    b'\\' => {
                        let escape = *bytes.get(self.at + 1)?;
                        self.at += 2;
                        out.push(match escape {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => self.unicode_escape()?,
                            _ => return None,
                        });
                    }
                    _ => return None,
                }
            }
        }

        /// The character of a `\u` escape whose `\u` is taken: a surrogate
        /// pair takes the second escape too.
        fn unicode_escape(&mut self) -> Option<char> {
            let first = self.hex4()?;
            let code = match first {
                0xd800..=0xdbff => {
                    if self.bytes().get(self.at..self.at + 2)? != b"\\u" {
                        return None;
                    }
                    self.at += 2;
                    let low = self.hex4()?;
                    if !(0xdc00..=0xdfff).contains(&low) {
                        return None;
                    }
                    0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
                }
                _ => first,
            };
            char::from_u32(code)
        }

        fn hex4(&mut self) -> Option<u32> {
            let digits = self.bytes().get(self.at..self.at + 4)?;
            self.at += 4;
            digits
                .iter()
                .try_fold(0, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
        }

        /// An object whose `{` is next: calls `member` with the scanner
        /// before each value and the value's key; `member` takes the value.
        pub(crate) fn object(&mut self, mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>) -> Option<()> {
            if !self.eat(b'{') {
                return None;
            }
            if self.eat(b'}') {
                return Some(());
            }
            loop {
                let key = self.string()?;
                if !self.eat(b':') {
                    return None;
                }
                member(self, key)?;
                if self.eat(b'}') {
                    return Some(());
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }

        /// Takes any value. Nested containers are counted, not parsed (no
        /// recursion, whatever their depth): the brackets must balance, the
        /// rest is not checked.
        pub(crate) fn skip_value(&mut self) -> Option<()> {
            let mut depth = 0usize;
            loop {
                match self.peek()? {
                    b'"' => {
                        self.string()?;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        self.at += 1;
                    }
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        self.at += 1;
                    }
                    b',' | b':' if depth > 0 => self.at += 1,
                    _ => {
                        // `true`, `false`, `null` or a number.
                        let rest = self.bytes().get(self.at..)?;
                        let len = if rest.starts_with(b"true") || rest.starts_with(b"null") {
                            4
                        } else if rest.starts_with(b"false") {
                            5
                        } else {
                            let number = |b: &&u8| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E');
                            rest.iter().take_while(number).count()
                        };
                        if len == 0 {
                            return None;
                        }
                        self.at += len;
                    }
                }
                if depth == 0 {
                    return Some(());
                }
            }
        }
    }

    /// The string a JSON text holds, decoded; `None` when it holds
    /// something else (a number, `null`, an object...).
    pub(crate) fn string_value(text: &str) -> Option<Cow<'_, str>> {
        let mut s = Scanner::new(text);
        let value = s.string()?;
        s.end().then_some(value)
    }

    /// Whether `text` is one value and nothing after it (as leniently as
    /// [`Scanner::skip_value`]).
    pub(crate) fn is_valid(text: &str) -> bool {
        let mut s = Scanner::new(text);
        s.skip_value().is_some() && s.end()
    }
}

/// Run natively (`cargo test --manifest-path example-routers/rust-component/Cargo.toml`):
/// the policy on every case of `reference-cases.json`, and the scanner.
/// (`init` itself is left out: its `log` import has no host here.)
#[cfg(test)]
mod tests {
    use super::*;
    use dbroute::router::types::Model;
    use serde_json::Value;
    use std::borrow::Cow;

    fn model(m: &Value) -> Model {
        let text = |key: &str| m.get(key).and_then(Value::as_str).map(String::from);
        let tags = m
            .get("tags")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Model {
            name: text("name").unwrap(),
            table: text("table"),
            app: text("app"),
            tags: tags.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
        }
    }

    fn answer(decision: Decision) -> Value {
        match decision {
            Decision::Connection(db) => Value::from(db),
            Decision::Refuse(message) => serde_json::json!({ "refused": message }),
            Decision::NoOpinion => Value::Null,
        }
    }

    #[test]
    fn reference_cases() {
        let text = include_str!("../../reference-cases.json");
        let cases: Value = serde_json::from_str(text).unwrap();
        let cases = cases["cases"].as_array().unwrap();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let loaded = tenants(&case["config"].to_string());
            if let Some(refused) = case.get("init") {
                assert_eq!(loaded, Err(refused["refused"].as_str().unwrap().to_owned()), "{name}");
                continue;
            }
            TENANTS.with_borrow_mut(|map| *map = loaded.unwrap());
            let hints: Vec<Hint> = case["hints"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(key, value)| Hint {
                    key: key.clone(),
                    value: value.to_string(),
                })
                .collect();
            let op = || Operation {
                model: model(&case["model"]),
                hints: hints.clone(),
                origin: None,
            };
            assert_eq!(answer(ReferenceRouter::db_for_read(op())), case["read"], "{name}: read");
            assert_eq!(
                answer(ReferenceRouter::db_for_write(op())),
                case["write"],
                "{name}: write"
            );
            for (db, expected) in case["migrate"].as_object().unwrap() {
                let target = MigrationTarget::Model(model(&case["model"]));
                let got = ReferenceRouter::allow_migrate(db.clone(), target, hints.clone());
                assert_eq!(
                    got.map_or(Value::Null, Value::from),
                    *expected,
                    "{name}: migrate on {db}"
                );
            }
        }
        assert!(cases.len() >= 30);
    }

    #[test]
    fn an_app_without_a_model_is_another_model() {
        let app = || MigrationTarget::App("metrics".into());
        assert_eq!(
            ReferenceRouter::allow_migrate("analytics".into(), app(), vec![]),
            Some(false)
        );
        assert_eq!(ReferenceRouter::allow_migrate("default".into(), app(), vec![]), None);
    }

    #[test]
    fn configurations() {
        for ok in [
            "null",
            "{}",
            "5",
            "[1]",
            r#""x""#,
            r#"{"tenants":null}"#,
            r#"{"tenants":{}}"#,
            " {} ",
        ] {
            assert_eq!(tenants(ok), Ok(vec![]), "{ok}");
        }
        let map = tenants(r#"{"tenants":{"b":"x","a":"y","b":"z"},"tenants":5}"#).unwrap();
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect::<Tenants>();
        assert_eq!(
            map,
            pairs(&[("a", "y"), ("b", "z")]),
            "sorted; the last of a tenant, the first tenants"
        );
        for bad in [r#"{"tenants":true}"#, r#"{"tenants":"a"}"#, r#"{"tenants":{"a":null}}"#] {
            assert_eq!(tenants(bad), Err(BAD_TENANTS.to_owned()), "{bad}");
        }
        for malformed in [
            "",
            "{",
            "nul",
            "{} x",
            r#"{"tenants":{"a":"b"}"#,
            r#"{"tenants":5"#,
            r#"{"a" 1}"#,
        ] {
            assert_eq!(
                tenants(malformed),
                Err("config is not valid JSON".to_owned()),
                "{malformed}"
            );
        }
    }

    #[test]
    fn hint_values() {
        let s = |text| json::string_value(text).map(Cow::into_owned);
        assert_eq!(s(r#""acme""#).as_deref(), Some("acme"));
        assert!(matches!(json::string_value(r#" "acme" "#), Some(Cow::Borrowed("acme"))));
        assert_eq!(
            s(r#""a\"b\\c\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00""#).as_deref(),
            Some("a\"b\\c/\u{8}\u{c}\n\r\tAé😀")
        );
        for not_a_string in [
            "7",
            "null",
            "true",
            r#"{"tenant":"acme"}"#,
            r#"["acme"]"#,
            r#""acme" x"#,
            r#""a"#,
        ] {
            assert_eq!(s(not_a_string), None, "{not_a_string}");
        }
        for bad_escape in [
            r#""\x""#,
            r#""\u12""#,
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\udc00""#,
            "\"a\nb\"",
        ] {
            assert_eq!(s(bad_escape), None, "{bad_escape}");
        }
    }
}
