//! The router ABI, version 1 (see ABI.md): the only code that knows its
//! names, types and byte layout.

use wasmtime::{ExternType, FuncType, Module, ValType};

use crate::connection::stats::Health;
use crate::error::{Fault, LoadError};
use crate::model::{Hints, ModelInfo};
use crate::name::{ConnectionName, MAX_NAME_LEN};
use crate::router::{ConnectionState, MigrateTarget, RouteDecision, RouteKind};

/// The router ABI version this host speaks (see `docs/ABI.md`).
pub const ABI_VERSION: i32 = 1;

/// The minor version of the ABI this host speaks: 2, for ABI 1.2 (see
/// `docs/ABI.md`, "Changes"). A router that exports `dbroute_abi_minor`
/// returning 1 or more is asked the questions 1.1 added (`allow_migrate`
/// for an app label alone, `allow_relation` with an unsaved side); one
/// returning 2 or more that exports `dbroute_state` is told the
/// connections' state (1.2). A router is never sent what a later minor
/// version than its own added.
///
/// ```
/// assert_eq!((dbroute::wasm::ABI_VERSION, dbroute::wasm::ABI_MINOR), (1, 2));
/// ```
pub const ABI_MINOR: i32 = 2;

pub(crate) const VERSION: &str = "dbroute_abi_version";
pub(crate) const MINOR: &str = "dbroute_abi_minor";
pub(crate) const INPUT: &str = "dbroute_input";
pub(crate) const MEMORY: &str = "memory";
pub(crate) const DB_FOR_READ: &str = "db_for_read";
pub(crate) const DB_FOR_WRITE: &str = "db_for_write";
pub(crate) const ALLOW_RELATION: &str = "allow_relation";
pub(crate) const ALLOW_MIGRATE: &str = "allow_migrate";
pub(crate) const DETERMINISTIC: &str = "dbroute_deterministic";
pub(crate) const INIT: &str = "dbroute_init";
pub(crate) const STATE: &str = "dbroute_state";
pub(crate) const IMPORT_MODULE: &str = "dbroute";
pub(crate) const IMPORT_LOG: &str = "log";

/// The longest refusal or log message read from a router; longer text is
/// cut (a refusal is still a refusal).
pub(crate) const MAX_MESSAGE_LEN: usize = 4096;

/// Which optional exports a module has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Exports {
    pub(crate) db_for_read: bool,
    pub(crate) db_for_write: bool,
    pub(crate) allow_relation: bool,
    pub(crate) allow_migrate: bool,
    pub(crate) deterministic: bool,
    pub(crate) init: bool,
    pub(crate) abi_minor: bool,
    /// `dbroute_state`, of a router of ABI 1.2 or later (an export of that
    /// name in an older router is not the ABI's, and is ignored).
    pub(crate) state: bool,
}

impl Exports {
    /// Every export: a router component's (its contract's functions are
    /// all required).
    pub(crate) fn all() -> Self {
        Exports {
            db_for_read: true,
            db_for_write: true,
            allow_relation: true,
            allow_migrate: true,
            deterministic: true,
            init: true,
            abi_minor: true,
            state: true,
        }
    }

    /// The exports' names, for reports.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names = vec![MEMORY, VERSION, INPUT];
        for (present, name) in [
            (self.db_for_read, DB_FOR_READ),
            (self.db_for_write, DB_FOR_WRITE),
            (self.allow_relation, ALLOW_RELATION),
            (self.allow_migrate, ALLOW_MIGRATE),
            (self.deterministic, DETERMINISTIC),
            (self.init, INIT),
            (self.abi_minor, MINOR),
            (self.state, STATE),
        ] {
            if present {
                names.push(name);
            }
        }
        names
    }
}

fn func_type_is(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    ty.params().len() == params.len()
        && ty.results().len() == results.len()
        && ty.params().zip(params).all(|(a, b)| a.matches(b))
        && ty.results().zip(results).all(|(a, b)| a.matches(b))
}

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// Step 1 of loading: a router must export `dbroute_abi_version: () -> i32`.
pub(crate) fn check_has_version(module: &Module) -> Result<(), LoadError> {
    match module.get_export(VERSION) {
        None => Err(LoadError::NotARouter),
        Some(ExternType::Func(ty)) if func_type_is(&ty, &[], &[I32]) => Ok(()),
        Some(_) => Err(LoadError::ExportType {
            name: VERSION,
            expected: "() -> i32",
        }),
    }
}

/// Step 2: the version the module returned.
pub(crate) fn check_version(found: i32) -> Result<(), LoadError> {
    if found == ABI_VERSION {
        Ok(())
    } else {
        Err(LoadError::AbiVersion {
            found,
            supported: ABI_VERSION,
        })
    }
}

/// Step 3: the only import allowed is `dbroute.log: (i32, i32, i32) -> ()`.
pub(crate) fn check_imports(module: &Module) -> Result<(), LoadError> {
    for import in module.imports() {
        let allowed = import.module() == IMPORT_MODULE
            && import.name() == IMPORT_LOG
            && matches!(import.ty(), ExternType::Func(ty) if func_type_is(&ty, &[I32, I32, I32], &[]));
        if !allowed {
            return Err(LoadError::ForbiddenImport {
                module: crate::name::printable(import.module()),
                name: crate::name::printable(import.name()),
            });
        }
    }
    Ok(())
}

/// Step 4: the required and optional exports, with their types, for a
/// router whose `dbroute_abi_minor` said `minor` (0 without it).
pub(crate) fn check_exports(module: &Module, minor: i32) -> Result<Exports, LoadError> {
    match module.get_export(MEMORY) {
        Some(ExternType::Memory(_)) => {}
        Some(_) => {
            return Err(LoadError::ExportType {
                name: MEMORY,
                expected: "a memory",
            });
        }
        None => return Err(LoadError::MissingExport(MEMORY)),
    }
    let func = |name: &'static str, params: &[ValType], results: &[ValType], expected: &'static str| match module
        .get_export(name)
    {
        None => Ok(false),
        Some(ExternType::Func(ty)) if func_type_is(&ty, params, results) => Ok(true),
        Some(_) => Err(LoadError::ExportType { name, expected }),
    };
    if !func(INPUT, &[I32], &[I32], "(i32) -> i32")? {
        return Err(LoadError::MissingExport(INPUT));
    }
    let exports = Exports {
        db_for_read: func(DB_FOR_READ, &[I32, I32], &[I64], "(i32, i32) -> i64")?,
        db_for_write: func(DB_FOR_WRITE, &[I32, I32], &[I64], "(i32, i32) -> i64")?,
        allow_relation: func(ALLOW_RELATION, &[I32, I32], &[I32], "(i32, i32) -> i32")?,
        allow_migrate: func(ALLOW_MIGRATE, &[I32, I32], &[I32], "(i32, i32) -> i32")?,
        deterministic: func(DETERMINISTIC, &[], &[I32], "() -> i32")?,
        init: func(INIT, &[I32, I32], &[I64], "(i32, i32) -> i64")?,
        abi_minor: func(MINOR, &[], &[I32], "() -> i32")?,
        state: understands_1_2(minor) && func(STATE, &[I32, I32], &[I32], "(i32, i32) -> i32")?,
    };
    if !exports.db_for_read && !exports.db_for_write {
        return Err(LoadError::NoDecisionExport);
    }
    Ok(exports)
}

/// The input of `db_for_read` / `db_for_write`, as pieces to write one
/// after another, borrowed (the model's JSON and the hints' JSON are built
/// once and reused; nothing is allocated here). An input without an origin
/// is the four pieces it was before ABI 1.1.
pub(crate) enum DecisionInput<'a> {
    /// `{"op":..,"model":{..}` then `}`, or `,"hints":` and the hints
    /// followed by the input's closing brace.
    Plain([&'a [u8]; 4]),
    /// The same, then `,"origin":"`, the name, `"}`.
    WithOrigin([&'a [u8]; 7]),
}

impl<'a> DecisionInput<'a> {
    /// The pieces, in order.
    #[inline]
    pub(crate) fn pieces(&self) -> &[&'a [u8]] {
        match self {
            DecisionInput::Plain(pieces) => pieces,
            DecisionInput::WithOrigin(pieces) => pieces,
        }
    }
}

/// The input of `db_for_read` / `db_for_write`:
/// `{"op":..,"model":{..}[,"hints":{..}][,"origin":".."]}` (ABI 1.1 added
/// `origin`, last, only when there is one).
#[inline]
pub(crate) fn decision_input<'a>(
    kind: RouteKind,
    model: &'a ModelInfo,
    hints: &'a Hints,
    origin: Option<&'a ConnectionName>,
) -> DecisionInput<'a> {
    let head: &[u8] = match kind {
        RouteKind::Read => br#"{"op":"read","model":"#,
        RouteKind::Write => br#"{"op":"write","model":"#,
    };
    let model = model.abi_json().as_bytes();
    match origin {
        None if hints.is_empty() => DecisionInput::Plain([head, model, b"}", b""]),
        None => DecisionInput::Plain([head, model, br#","hints":"#, hints_tail(hints)]),
        Some(origin) => {
            let (key, hints) = if hints.is_empty() {
                (&b""[..], &b""[..])
            } else {
                (&br#","hints":"#[..], hints.abi_json().as_bytes())
            };
            DecisionInput::WithOrigin([head, model, key, hints, br#","origin":""#, origin.as_bytes(), br#""}"#])
        }
    }
}

fn hints_tail(hints: &Hints) -> &[u8] {
    // `{...}` followed by the closing brace of the whole input: stored
    // together so the input is four pieces at most.
    hints.abi_json_closed().as_bytes()
}

/// The input of `allow_relation`; a side with no connection (an object not
/// saved yet) has `"db":null` (ABI 1.1).
pub(crate) fn relation_input(
    a: (&ModelInfo, Option<ConnectionName>),
    b: (&ModelInfo, Option<ConnectionName>),
    hints: &Hints,
) -> String {
    let db = |name: Option<ConnectionName>| match name {
        Some(name) => format!("\"{name}\""),
        None => "null".to_owned(),
    };
    format!(
        r#"{{"op":"relation","a":{{"model":{},"db":{}}},"b":{{"model":{},"db":{}}},"hints":{}}}"#,
        a.0.abi_json(),
        db(a.1),
        b.0.abi_json(),
        db(b.1),
        hints.abi_json()
    )
}

/// The input of `allow_migrate`: with the model, or with the app label
/// alone (`"app"` instead of `"model"`, ABI 1.1).
pub(crate) fn migrate_input(db: ConnectionName, target: MigrateTarget<'_>, hints: &Hints) -> String {
    match target {
        MigrateTarget::Model(model) => format!(
            r#"{{"op":"migrate","db":"{db}","model":{},"hints":{}}}"#,
            model.abi_json(),
            hints.abi_json()
        ),
        MigrateTarget::App(app) => format!(
            r#"{{"op":"migrate","db":"{db}","app":{},"hints":{}}}"#,
            serde_json::Value::from(app),
            hints.abi_json()
        ),
    }
}

/// Whether a router whose `dbroute_abi_minor` said `minor` (0 without the
/// export) may be asked what ABI 1.1 added to `allow_migrate` and
/// `allow_relation`: older routers could not read those inputs (a model
/// missing, a `null` connection) and would fault.
pub(crate) fn understands_1_1(minor: i32) -> bool {
    minor >= 1
}

/// Whether a router whose `dbroute_abi_minor` said `minor` may be told the
/// connections' state (ABI 1.2): an older router's `dbroute_state`, if it
/// has one, is not the ABI's.
pub(crate) fn understands_1_2(minor: i32) -> bool {
    minor >= 2
}

/// The input of `dbroute_state` (ABI 1.2): every connection's name, role,
/// health and lag.
pub(crate) fn state_input(connections: &[ConnectionState]) -> String {
    use std::fmt::Write as _;
    // Written by hand, in the order of docs/ABI.md: names need no escaping
    // (a connection name is `A-Z a-z 0-9 _ - .`).
    let number = |n: Option<u64>| n.map_or_else(|| "null".to_owned(), |n| n.to_string());
    let mut out = String::from(r#"{"connections":["#);
    for (i, c) in connections.iter().enumerate() {
        let (role, of) = match c.role.replica_of() {
            None => ("primary", "null".to_owned()),
            Some(of) => ("replica", format!("\"{of}\"")),
        };
        let healthy = match c.health {
            Health::Healthy => "true",
            Health::Unhealthy => "false",
            Health::Unknown => "null",
        };
        let _ = write!(
            out,
            r#"{}{{"name":"{}","role":"{role}","replica_of":{of},"healthy":{healthy},"lag_ms":{},"lag_bytes":{}}}"#,
            if i == 0 { "" } else { "," },
            c.name,
            number(c.lag_ms),
            number(c.lag_bytes),
        );
    }
    out.push_str("]}");
    out
}

/// Decodes the result of `dbroute_state`: 0, else a fault.
pub(crate) fn decode_state(value: i32) -> Result<(), Fault> {
    match value {
        0 => Ok(()),
        other => Err(Fault::BadResult {
            export: STATE,
            value: i64::from(other),
        }),
    }
}

/// Whether this `allow_migrate` question needs ABI 1.1.
pub(crate) fn migrate_needs_1_1(target: MigrateTarget<'_>) -> bool {
    matches!(target, MigrateTarget::App(_))
}

/// Whether this `allow_relation` question needs ABI 1.1.
pub(crate) fn relation_needs_1_1(a: Option<ConnectionName>, b: Option<ConnectionName>) -> bool {
    a.is_none() || b.is_none()
}

/// The input of `dbroute_init`.
pub(crate) fn init_input(config: &serde_json::Value, connections: &[ConnectionName]) -> String {
    let names: Vec<&str> = connections.iter().map(ConnectionName::as_str).collect();
    serde_json::json!({ "config": config, "connections": names }).to_string()
}

/// Where a result's bytes are: `ptr = r >> 32`, `len = r & 0xFFFF_FFFF`,
/// after the sign bit is cleared.
fn locate(r: i64) -> (u32, u32) {
    let bits = (r & i64::MAX) as u64;
    ((bits >> 32) as u32, (bits & 0xFFFF_FFFF) as u32)
}

fn slice(memory: &[u8], ptr: u32, len: u32) -> Result<&[u8], Fault> {
    let start = ptr as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| memory.get(start..end))
        .ok_or(Fault::OutOfBounds {
            ptr,
            len,
            memory: memory.len(),
        })
}

fn message(memory: &[u8], r: i64) -> Result<String, Fault> {
    let (ptr, len) = locate(r);
    decode_message(slice(memory, ptr, len)?)
}

/// A refusal's message (of a decision or of init), as the router returned
/// it: UTF-8, cut to [`MAX_MESSAGE_LEN`] bytes.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<String, Fault> {
    let text = std::str::from_utf8(bytes).map_err(|_| Fault::InvalidUtf8)?;
    Ok(cut(text, MAX_MESSAGE_LEN))
}

pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Decodes the result of `db_for_read` / `db_for_write`.
#[inline]
pub(crate) fn decode_decision(r: i64, memory: &[u8]) -> Result<RouteDecision, Fault> {
    if r == 0 {
        return Ok(RouteDecision::NoOpinion);
    }
    if r < 0 {
        return message(memory, r).map(RouteDecision::Refuse);
    }
    let (ptr, len) = locate(r);
    decode_name(slice(memory, ptr, len)?)
}

/// A connection name a router answered, as the router returned it: a name
/// of the ABI's form, else a fault. Allocates nothing for a good name.
#[inline]
pub(crate) fn decode_name(bytes: &[u8]) -> Result<RouteDecision, Fault> {
    if bytes.len() > MAX_NAME_LEN {
        // Do not copy an oversized "name": show its start.
        let shown = &bytes[..80.min(bytes.len())];
        return Err(Fault::MalformedName {
            name: crate::name::printable(&String::from_utf8_lossy(shown)),
            reason: "it is longer than 64 bytes",
        });
    }
    match ConnectionName::from_bytes(bytes) {
        Ok(name) => Ok(RouteDecision::Use(name)),
        // A name is ASCII, so valid UTF-8: only a refused name needs the
        // UTF-8 check, to say which rule it broke.
        Err(_) if std::str::from_utf8(bytes).is_err() => Err(Fault::InvalidUtf8),
        Err(problem) => Err(Fault::MalformedName {
            name: crate::name::printable(&String::from_utf8_lossy(bytes)),
            reason: problem.describe(),
        }),
    }
}

/// Decodes the result of `allow_relation` / `allow_migrate`.
pub(crate) fn decode_allow(export: &'static str, value: i32) -> Result<Option<bool>, Fault> {
    match value {
        1 => Ok(Some(true)),
        0 => Ok(Some(false)),
        -1 => Ok(None),
        other => Err(Fault::BadResult {
            export,
            value: i64::from(other),
        }),
    }
}

/// Decodes the result of `dbroute_init`: `Ok(Err(message))` is a refusal.
pub(crate) fn decode_init(r: i64, memory: &[u8]) -> Result<Result<(), String>, Fault> {
    match r {
        0 => Ok(Ok(())),
        r if r < 0 => message(memory, r).map(Err),
        r => Err(Fault::BadResult { export: INIT, value: r }),
    }
}

/// Decodes `dbroute_deterministic`.
pub(crate) fn decode_deterministic(value: i32) -> bool {
    value == 1
}

/// Reads a `dbroute.log` message: the level, and the text (lossy, cut).
pub(crate) fn log_message(memory: &[u8], level: i32, ptr: i32, len: i32) -> (tracing::Level, String) {
    let level = match level {
        0 => tracing::Level::ERROR,
        1 => tracing::Level::WARN,
        2 => tracing::Level::INFO,
        3 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let text = match slice(memory, ptr as u32, (len as u32).min(MAX_MESSAGE_LEN as u32)) {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(_) => "(log message outside memory)".to_owned(),
    };
    (level, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ptr: u32, len: u32) -> i64 {
        (i64::from(ptr) << 32) | i64::from(len)
    }

    #[test]
    fn decodes_names_refusals_and_no_opinion() {
        let mut memory = vec![0u8; 64];
        memory[8..15].copy_from_slice(b"replica");
        memory[16..20].copy_from_slice(b"nope");
        assert_eq!(decode_decision(0, &memory), Ok(RouteDecision::NoOpinion));
        assert_eq!(
            decode_decision(at(8, 7), &memory),
            Ok(RouteDecision::Use(ConnectionName::from_static("replica")))
        );
        assert_eq!(
            decode_decision(at(16, 4) | i64::MIN, &memory),
            Ok(RouteDecision::Refuse("nope".into()))
        );
    }

    #[test]
    fn every_bad_result_is_a_fault() {
        let mut memory = vec![b'a'; 128];
        memory[0] = 0xff;
        memory[10] = b' ';
        assert!(matches!(
            decode_decision(at(120, 20), &memory),
            Err(Fault::OutOfBounds { .. })
        ));
        assert!(matches!(
            decode_decision(at(u32::MAX, 1), &memory),
            Err(Fault::OutOfBounds { .. })
        ));
        assert_eq!(decode_decision(at(0, 2), &memory), Err(Fault::InvalidUtf8));
        assert!(matches!(
            decode_decision(at(9, 3), &memory),
            Err(Fault::MalformedName { .. })
        ));
        assert!(matches!(
            decode_decision(at(1, 65), &memory),
            Err(Fault::MalformedName { .. })
        ));
        assert!(matches!(
            decode_decision(at(0, 2) | i64::MIN, &memory),
            Err(Fault::InvalidUtf8)
        ));
        assert!(matches!(decode_allow(ALLOW_MIGRATE, 2), Err(Fault::BadResult { .. })));
        assert!(matches!(decode_init(5, &memory), Err(Fault::BadResult { .. })));
    }

    #[test]
    fn decision_input_is_the_abi_json() {
        let model = ModelInfo::new("User").with_table("users").with_tags(["pii"]);
        let join = |input: DecisionInput<'_>| String::from_utf8(input.pieces().concat()).unwrap();
        let plain = join(decision_input(RouteKind::Read, &model, &Hints::new(), None));
        assert_eq!(
            plain,
            r#"{"op":"read","model":{"name":"User","table":"users","tags":["pii"]}}"#
        );
        let hints = Hints::new().with("tenant", "acme");
        let hinted = join(decision_input(RouteKind::Write, &model, &hints, None));
        let parsed: serde_json::Value = serde_json::from_str(&hinted).unwrap();
        assert_eq!(parsed["op"], "write");
        assert_eq!(parsed["hints"]["tenant"], "acme");
        assert_eq!(parsed["model"]["name"], "User");
        assert!(parsed.get("origin").is_none());
    }

    #[test]
    fn an_origin_is_the_last_member_and_only_when_there_is_one() {
        let model = ModelInfo::new("User");
        let other = ConnectionName::from_static("other");
        let join = |input: DecisionInput<'_>| String::from_utf8(input.pieces().concat()).unwrap();
        assert_eq!(
            join(decision_input(RouteKind::Read, &model, &Hints::new(), Some(&other))),
            r#"{"op":"read","model":{"name":"User"},"origin":"other"}"#
        );
        let hints = Hints::new().with("tenant", "acme");
        assert_eq!(
            join(decision_input(RouteKind::Write, &model, &hints, Some(&other))),
            r#"{"op":"write","model":{"name":"User"},"hints":{"tenant":"acme"},"origin":"other"}"#
        );
    }

    #[test]
    fn relation_and_migrate_inputs_of_abi_1_1() {
        let (book, author) = (ModelInfo::new("Book"), ModelInfo::new("Author"));
        let default = ConnectionName::DEFAULT;
        let relation: serde_json::Value =
            serde_json::from_str(&relation_input((&book, Some(default)), (&author, None), &Hints::new())).unwrap();
        assert_eq!(relation["a"]["db"], "default");
        assert!(relation["b"]["db"].is_null());
        assert!(relation_needs_1_1(Some(default), None));
        assert!(!relation_needs_1_1(Some(default), Some(default)));
        let app = migrate_input(default, MigrateTarget::App("a\"pp"), &Hints::new());
        assert_eq!(app, r#"{"op":"migrate","db":"default","app":"a\"pp","hints":{}}"#);
        let model = migrate_input(default, MigrateTarget::Model(&book), &Hints::new());
        assert_eq!(
            model,
            r#"{"op":"migrate","db":"default","model":{"name":"Book"},"hints":{}}"#
        );
        assert!(migrate_needs_1_1(MigrateTarget::App("x")) && !migrate_needs_1_1(MigrateTarget::Model(&book)));
        assert!(!understands_1_1(0) && understands_1_1(1) && understands_1_1(2));
    }

    #[test]
    fn the_state_input_of_abi_1_2() {
        use crate::connection::replication::Role;
        let default = ConnectionName::DEFAULT;
        let replica = ConnectionName::from_static("replica");
        let states = [
            ConnectionState::new(default, Role::Primary).with_health(Health::Healthy),
            ConnectionState::new(replica, Role::Replica { of: default })
                .with_health(Health::Unhealthy)
                .with_lag(Some(120), Some(4096)),
            ConnectionState::new(ConnectionName::from_static("other"), Role::Primary),
        ];
        let json = state_input(&states);
        assert_eq!(
            json,
            concat!(
                r#"{"connections":[{"name":"default","role":"primary","replica_of":null,"healthy":true,"lag_ms":null,"lag_bytes":null},"#,
                r#"{"name":"replica","role":"replica","replica_of":"default","healthy":false,"lag_ms":120,"lag_bytes":4096},"#,
                r#"{"name":"other","role":"primary","replica_of":null,"healthy":null,"lag_ms":null,"lag_bytes":null}]}"#
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["connections"][1]["lag_ms"], 120);
        assert_eq!(state_input(&[]), r#"{"connections":[]}"#);
        assert!(!understands_1_2(1) && understands_1_2(2));
        assert_eq!(decode_state(0), Ok(()));
        assert!(matches!(
            decode_state(1),
            Err(Fault::BadResult {
                export: STATE,
                value: 1
            })
        ));
    }
}
