//! Property tests of the host/router boundary, through real routers (the
//! ABI code is private, so everything goes through the public engine):
//!
//! - a "puppet" WAT router returns whatever `i64` the test chooses, over
//!   memory whose bytes the test chooses: the host's decoding of results
//!   and of guest memory must give the exact documented answer, never a
//!   panic;
//! - arbitrary JSON hints (deep, wide, unicode, control characters, huge
//!   strings) go through an echo router (which must see exactly the ABI
//!   input), the Rust reference router (whose answers are known), and a
//!   router whose input buffer is too small (a documented fault);
//! - arbitrary strings as connection names, through `ConnectionName::new`,
//!   `Engine::connection` and `AllowList::check`.
//!
//! Case counts are bounded so the whole file runs in seconds.

use std::time::{Duration, Instant};

use dbroute::router::Fault;
use dbroute::wasm::{Compilation, RouterLimits, RouterSource, WasmRouter};
use dbroute::{AllowList, ConnectionName, Engine, Error, Hints, ModelInfo};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value as Json};

/// Cases per property.
const CASES: u32 = 400;
/// Where the puppet router writes the payload bytes it is given.
const PAYLOAD_AT: u32 = 256;
/// The most payload bytes (below the input buffer at 1024).
const MAX_PAYLOAD: usize = 700;
/// The puppet's memory: one page.
const PAGE: u64 = 65536;
/// The longest refusal message the host keeps (ABI.md).
const MAX_MESSAGE: usize = 4096;

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs a property; a failure panics with proptest's minimal case.
#[track_caller]
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!("{e}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An engine on SQLite memory databases with these names (the first is the
/// default).
fn engine(rt: &tokio::runtime::Runtime, names: &[&str]) -> Engine {
    let mut builder = Engine::builder().router_limits(
        // Generous: a busy machine must not turn a slow call into a fault.
        RouterLimits::new().time_budget(Duration::from_secs(2)),
    );
    for name in names {
        builder = builder.connection(*name, "sqlite::memory:");
    }
    rt.block_on(builder.build()).unwrap()
}

fn activate(engine: &Engine, name: &str, wat: &str, config: Json) {
    let router = engine
        .load_router(
            WasmRouter::named(name).config(config),
            RouterSource::Bytes(wat.as_bytes().into()),
        )
        .unwrap();
    engine.set_router(router);
}

// ---- results and memory chosen by the test ----

/// The puppet: `db_for_read`, `db_for_write` and `allow_migrate` take the
/// last hint's string value (`"<16 hex digits><hex pairs>"`), write the
/// pairs' bytes at 256 and return the 16 digits as the result (its low 32
/// bits for `allow_migrate`). Every input ends with `"}}`, so the string is
/// found by scanning back from there to its opening quote.
const PUPPET: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func $hex (param $c i32) (result i32)
    (if (result i32) (i32.le_u (local.get $c) (i32.const 57))
      (then (i32.sub (local.get $c) (i32.const 48)))
      (else (i32.sub (i32.or (local.get $c) (i32.const 32)) (i32.const 87)))))
  (func $puppet (param $ptr i32) (param $len i32) (result i64)
    (local $end i32) (local $start i32) (local $i i32) (local $acc i64) (local $out i32)
    (local.set $end (i32.sub (i32.add (local.get $ptr) (local.get $len)) (i32.const 3)))
    (local.set $start (local.get $end))
    (block $found
      (loop $back
        (local.set $start (i32.sub (local.get $start) (i32.const 1)))
        (br_if $found (i32.eq (i32.load8_u (local.get $start)) (i32.const 34)))
        (br $back)))
    (local.set $start (i32.add (local.get $start) (i32.const 1)))
    (block $done
      (loop $digits
        (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
        (local.set $acc
          (i64.or
            (i64.shl (local.get $acc) (i64.const 4))
            (i64.extend_i32_u (call $hex (i32.load8_u (i32.add (local.get $start) (local.get $i)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digits)))
    (local.set $i (i32.add (local.get $start) (i32.const 16)))
    (local.set $out (i32.const 256))
    (block $copied
      (loop $pairs
        (br_if $copied (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $end)))
        (i32.store8 (local.get $out)
          (i32.or
            (i32.shl (call $hex (i32.load8_u (local.get $i))) (i32.const 4))
            (call $hex (i32.load8_u (i32.add (local.get $i) (i32.const 1))))))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $pairs)))
    (local.get $acc))
  (func (export "db_for_read") (param i32 i32) (result i64) (call $puppet (local.get 0) (local.get 1)))
  (func (export "db_for_write") (param i32 i32) (result i64) (call $puppet (local.get 0) (local.get 1)))
  (func (export "allow_migrate") (param i32 i32) (result i32)
    (i32.wrap_i64 (call $puppet (local.get 0) (local.get 1)))))"#;

/// The hints that make the puppet return `r` with `payload` at 256.
fn puppet_hints(r: i64, payload: &[u8]) -> Hints {
    let mut hex = format!("{:016x}", r as u64);
    for b in payload {
        hex.push_str(&format!("{b:02x}"));
    }
    Hints::new().with("p", hex)
}

/// `r` pointing at `len` bytes at `ptr`, refusing when `refuse`.
fn result_at(refuse: bool, ptr: u32, len: u32) -> i64 {
    let r = (i64::from(ptr) << 32) | i64::from(len);
    if refuse { r | i64::MIN } else { r & i64::MAX }
}

/// A result and a payload, biased towards the interesting places: the
/// payload exactly, inside it, around the end of memory, anywhere.
fn result_and_payload() -> impl Strategy<Value = (i64, Vec<u8>)> {
    let payload = prop_oneof![
        vec(any::<u8>(), 0..MAX_PAYLOAD),
        prop_oneof![
            Just("default".to_owned()),
            Just("replica".to_owned()),
            Just("elsewhere".to_owned()),
            "[A-Za-z0-9_.-]{1,70}",
            any::<String>(),
        ]
        .prop_map(String::into_bytes),
    ]
    .prop_map(|mut payload| {
        payload.truncate(MAX_PAYLOAD);
        payload
    });
    payload.prop_flat_map(|payload| {
        let n = payload.len() as u32;
        let r = prop_oneof![
            4 => any::<bool>().prop_map(move |refuse| result_at(refuse, PAYLOAD_AT, n)),
            2 => (any::<bool>(), 0..=n, 0..=n).prop_map(move |(refuse, a, b)| {
                let (from, to) = (a.min(b), a.max(b));
                result_at(refuse, PAYLOAD_AT + from, to - from)
            }),
            2 => (any::<bool>(), 65_000u32..66_000, 0u32..2000).prop_map(|(refuse, ptr, len)| result_at(refuse, ptr, len)),
            2 => (any::<bool>(), any::<u32>(), any::<u32>()).prop_map(|(refuse, ptr, len)| result_at(refuse, ptr, len)),
            2 => any::<i64>(),
            1 => prop_oneof![Just(0i64), Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(1i64)],
        ];
        (r, Just(payload))
    })
}

/// What the engine must answer for a decision the puppet returned as `r`
/// over `payload`: `Some` when the bytes `r` points at are known (the
/// payload, or none), `None` when it points at other memory (then any
/// documented answer will do).
fn expected_decision(r: i64, payload: &[u8], registered: &[&str]) -> Option<Result<String, String>> {
    if r == 0 {
        return Some(Ok("default".into()));
    }
    let bits = (r & i64::MAX) as u64;
    let (ptr, len) = (bits >> 32, bits & 0xFFFF_FFFF);
    if ptr + len > PAGE {
        return Some(Err(format!("fault: out of bounds {ptr} {len}")));
    }
    let start = u64::from(PAYLOAD_AT);
    let bytes: &[u8] = if len == 0 {
        &[]
    } else if ptr >= start && ptr + len <= start + payload.len() as u64 {
        &payload[(ptr - start) as usize..(ptr - start + len) as usize]
    } else {
        return None;
    };
    if r < 0 {
        return Some(match std::str::from_utf8(bytes) {
            Ok(text) => Err(format!("refused: {text}")),
            Err(_) => Err("fault: invalid utf-8".into()),
        });
    }
    if bytes.len() > 64 {
        return Some(Err("fault: malformed name".into()));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(Err("fault: invalid utf-8".into()));
    };
    Some(match ConnectionName::new(text) {
        Err(_) => Err("fault: malformed name".into()),
        Ok(name) if registered.contains(&name.as_str()) || name.is_default() => Ok(text.to_owned()),
        Ok(_) => Err(format!("unknown: {text}")),
    })
}

/// The engine's answer, in the oracle's terms; an error of a kind the ABI
/// does not document fails the property.
fn observed(answer: dbroute::Result<ConnectionName>) -> Result<Result<String, String>, TestCaseError> {
    Ok(match answer {
        Ok(name) => Ok(name.to_string()),
        Err(Error::RouterRefused { message, .. }) => Err(format!("refused: {message}")),
        Err(Error::UnknownConnection { name, .. }) => Err(format!("unknown: {name}")),
        Err(Error::RouterFault { fault, .. }) => Err(match fault {
            Fault::OutOfBounds { ptr, len, memory } => {
                prop_assert_eq!(memory as u64, PAGE);
                format!("fault: out of bounds {ptr} {len}")
            }
            Fault::InvalidUtf8 => "fault: invalid utf-8".into(),
            Fault::MalformedName { name, .. } => {
                prop_assert!(name.len() < 1000, "a long malformed name is shown whole: {}", name);
                "fault: malformed name".into()
            }
            other => return Err(TestCaseError::fail(format!("an undocumented fault: {other:?}"))),
        }),
        Err(other) => return Err(TestCaseError::fail(format!("an undocumented error: {other:?}"))),
    })
}

#[test]
fn any_result_over_any_memory_decodes_to_the_documented_answer() {
    let rt = runtime();
    let engine = engine(&rt, &["default", "replica"]);
    activate(&engine, "puppet", PUPPET, Json::Null);
    let model = ModelInfo::new("Puppet");
    let started = Instant::now();
    check(CASES, result_and_payload(), |(r, payload)| {
        let hints = puppet_hints(r, &payload);
        for answer in [engine.db_for_read(&model, &hints), engine.db_for_write(&model, &hints)] {
            let got = observed(answer)?;
            if let Some(expected) = expected_decision(r, &payload, &["replica"]) {
                prop_assert_eq!(got, expected, "r = {:#x}", r);
            }
        }
        Ok(())
    });
    println!("fuzz: {CASES} results x 2 exports decoded in {:?}", started.elapsed());
}

#[test]
fn any_allow_migrate_result_decodes_to_the_documented_answer() {
    let rt = runtime();
    let engine = engine(&rt, &["default", "replica"]);
    activate(&engine, "puppet", PUPPET, Json::Null);
    let model = ModelInfo::new("Puppet");
    let values = prop_oneof![any::<i32>(), -2i32..=2];
    check(CASES, values, |value| {
        let hints = puppet_hints(i64::from(value), &[]);
        let answer = engine.allow_migrate("replica", &model, &hints);
        match value {
            1 | -1 => prop_assert!(answer.unwrap()),
            0 => prop_assert!(!answer.unwrap()),
            other => match answer {
                Err(Error::RouterFault {
                    fault: Fault::BadResult { export, value },
                    ..
                }) => {
                    prop_assert_eq!(export, "allow_migrate");
                    prop_assert_eq!(value, i64::from(other));
                }
                answer => return Err(TestCaseError::fail(format!("{other} gave {answer:?}"))),
            },
        }
        Ok(())
    });
}

// ---- arbitrary hints through real routers ----

/// Any text, control characters and all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        vec(any::<char>(), 0..24).prop_map(|c| c.into_iter().collect()),
        "[a-z\"\\\\/\\x00-\\x1f\\x7f\\x{2028}\\x{feff}]{0,16}",
        Just("tenant".to_owned()),
        Just("acme".to_owned()),
    ]
}

/// Any JSON value: nested up to 6 deep, unicode strings, extreme numbers.
fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        text().prop_map(Json::from),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Json::Array),
            btree_map(text(), inner, 0..8).prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// Hints: any keys and values, sometimes a `tenant` (which the reference
/// router reads) that is or is not `acme`.
fn hints() -> impl Strategy<Value = Map<String, Json>> {
    let tenant = prop_oneof![Just(None), Just(Some(Json::from("acme"))), json().prop_map(Some),];
    (btree_map(text(), json(), 0..6), tenant).prop_map(|(map, tenant)| {
        let mut hints: Map<String, Json> = map.into_iter().collect();
        if let Some(tenant) = tenant {
            hints.insert("tenant".into(), tenant);
        }
        hints
    })
}

/// Reads refuse with their whole input; `dbroute_input` grows memory to fit.
const ECHO: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param $len i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.shr_u (i32.add (i32.add (local.get $len) (i32.const 1024)) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    i32.const 1024)
  (func (export "db_for_read") (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.const -9223372036854775808)
      (i64.or
        (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
        (i64.extend_i32_u (local.get $len))))))"#;

/// The ABI input of a read of `model` with `hints`.
fn abi_input(op: &str, model: &ModelInfo, hints: &Hints) -> String {
    if hints.is_empty() {
        format!(r#"{{"op":"{op}","model":{}}}"#, model.abi_json())
    } else {
        format!(
            r#"{{"op":"{op}","model":{},"hints":{}}}"#,
            model.abi_json(),
            hints.abi_json()
        )
    }
}

/// Checks what the echo router answered for `hints`: exactly the ABI
/// input, cut at the message limit.
fn check_echo(engine: &Engine, model: &ModelInfo, hints: &Hints) -> Result<(), TestCaseError> {
    let message = match engine.db_for_read(model, hints) {
        Err(Error::RouterRefused { message, .. }) => message,
        other => return Err(TestCaseError::fail(format!("the echo router answered {other:?}"))),
    };
    let input = abi_input("read", model, hints);
    if input.len() <= MAX_MESSAGE {
        prop_assert_eq!(&message, &input);
        // Valid JSON, and the hints serialised independently of the host.
        let parsed: Json = serde_json::from_str(&message).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed["op"], "read");
        prop_assert_eq!(&parsed["model"]["name"], model.name());
        if !hints.is_empty() {
            let hints_json = serde_json::to_string(hints.as_map()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(message.ends_with(&format!(r#","hints":{hints_json}}}"#)), "{}", message);
        }
    } else {
        let kept = message.strip_suffix('…').expect("a cut message ends with …");
        prop_assert!(kept.len() <= MAX_MESSAGE && kept.len() + 4 > MAX_MESSAGE);
        prop_assert!(input.starts_with(kept));
    }
    Ok(())
}

/// The reference policy (example-routers/reference) for these hints.
fn reference_answer(write: bool, model: &str, readonly: bool, hints: &Hints) -> Result<&'static str, ()> {
    if write && readonly {
        return Err(());
    }
    if hints.get("tenant").and_then(Json::as_str) == Some("acme") {
        return Ok("tenant_acme");
    }
    Ok(match (model, write) {
        ("Event", _) => "analytics",
        (_, false) => "replica",
        (_, true) => "default",
    })
}

const REFERENCE_CONNECTIONS: [&str; 4] = ["default", "replica", "analytics", "tenant_acme"];

fn reference_engine(rt: &tokio::runtime::Runtime) -> Engine {
    let engine = engine(rt, &REFERENCE_CONNECTIONS);
    let router = engine
        .load_router(
            // Optimized at once: no move to optimized code (a new instance,
            // and the compiler's memory) in the middle of a test.
            WasmRouter::named("reference")
                .config(serde_json::json!({"tenants": {"acme": "tenant_acme"}}))
                .compilation(Compilation::Optimized),
            RouterSource::File(dbroute_example_routers::REFERENCE.into()),
        )
        .unwrap();
    engine.set_router(router);
    engine
}

/// The SDK's JSON reader refuses input nested deeper than this (the whole
/// input: the hints object is at level 2).
const SDK_MAX_DEPTH: usize = 128;

/// How deep `value` nests (a scalar: 0).
fn depth(value: &Json) -> usize {
    match value {
        Json::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Json::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks the reference router's answers for `hints` on three models:
/// the reference policy, or, for hints nested deeper than the SDK reads, its
/// refusal.
fn check_reference(engine: &Engine, hints: &Hints) -> Result<(), TestCaseError> {
    let too_deep = 2 + hints.as_map().values().map(depth).max().unwrap_or(0) > SDK_MAX_DEPTH;
    #[derive(dbroute::Model)]
    #[dbroute(table = "users")]
    struct User;
    #[derive(dbroute::Model)]
    struct Event;
    #[derive(dbroute::Model)]
    #[dbroute(tags("readonly"))]
    struct Archive;
    use dbroute::Model;
    for (model, readonly) in [
        (User::model_info(), false),
        (Event::model_info(), false),
        (Archive::model_info(), true),
    ] {
        for write in [false, true] {
            let answer = if write {
                engine.db_for_write(model, hints)
            } else {
                engine.db_for_read(model, hints)
            };
            if too_deep {
                match answer {
                    Err(Error::RouterRefused { message, .. }) if message.contains("nesting too deep") => continue,
                    other => return Err(TestCaseError::fail(format!("too deep, but answered {other:?}"))),
                }
            }
            match (reference_answer(write, model.name(), readonly, hints), answer) {
                (Ok(expected), Ok(got)) => prop_assert_eq!(got.as_str(), expected, "{}", model.name()),
                (Err(()), Err(Error::RouterRefused { message, .. })) => {
                    prop_assert_eq!(
                        message,
                        format!("writes to read-only model {} are forbidden", model.name())
                    );
                }
                (expected, got) => {
                    return Err(TestCaseError::fail(format!(
                        "{} {}: expected {expected:?}, got {got:?}",
                        if write { "write" } else { "read" },
                        model.name()
                    )));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn arbitrary_hints_reach_the_router_exactly_and_route_as_the_reference_says() {
    let rt = runtime();
    let echo = engine(&rt, &["default"]);
    activate(&echo, "echo", ECHO, Json::Null);
    let reference = reference_engine(&rt);
    // A router whose input buffer is one page from 1024, whatever it is
    // asked for: large inputs do not fit, a documented fault.
    let small = engine(&rt, &["default", "replica"]);
    activate(
        &small,
        "small",
        &crate::hot_swap::fixed_router_wat("replica"),
        Json::Null,
    );
    let model = ModelInfo::new("Any");
    let started = Instant::now();
    let largest = std::cell::Cell::new(0);
    check(CASES, hints(), |map| {
        let hints = Hints::from(map);
        let input_len = abi_input("read", &model, &hints).len();
        largest.set(largest.get().max(input_len));
        check_echo(&echo, &model, &hints)?;
        check_reference(&reference, &hints)?;
        let answer = small.db_for_read(&model, &hints);
        if 1024 + input_len as u64 <= PAGE {
            prop_assert_eq!(answer.unwrap(), "replica");
        } else {
            prop_assert!(
                matches!(
                    answer,
                    Err(Error::RouterFault {
                        fault: Fault::OutOfBounds { .. },
                        ..
                    })
                ),
                "{:?}",
                answer
            );
        }
        Ok(())
    });
    println!(
        "fuzz: {CASES} arbitrary hint sets (largest input {} bytes) through 3 routers in {:?}",
        largest.get(),
        started.elapsed()
    );
}

/// Hints `depth` levels deep: arrays and objects in turn.
fn nested(depth: usize, leaf: Json) -> Json {
    let mut value = leaf;
    for level in 0..depth {
        value = if level % 2 == 0 {
            Json::Array(vec![value, Json::from(level)])
        } else {
            let mut map = Map::new();
            map.insert("tenant".into(), value);
            map.insert("k".into(), Json::from("\u{1F600}\"\\\n"));
            Json::Object(map)
        };
    }
    value
}

#[test]
fn extreme_hints_deep_huge_and_odd_are_decided_or_refused_as_documented() {
    let rt = runtime();
    let echo = engine(&rt, &["default"]);
    activate(&echo, "echo", ECHO, Json::Null);
    let reference = reference_engine(&rt);
    let model = ModelInfo::new("Any");
    let cases: Vec<(String, Hints)> = vec![
        ("empty".into(), Hints::new()),
        ("deep 1000".into(), Hints::new().with("deep", nested(1000, Json::Null))),
        (
            "deep 100 before tenant".into(),
            Hints::new()
                .with("a", nested(100, "acme".into()))
                .with("tenant", "acme"),
        ),
        (
            "nested tenant only".into(),
            Hints::new().with("x", serde_json::json!({"tenant": "acme"})),
        ),
        ("tenant with escapes".into(), Hints::new().with("tenant", "ac\"me\\")),
        ("tenant acme".into(), Hints::new().with("tenant", "acme")),
        ("tenant number".into(), Hints::new().with("tenant", 7)),
        ("1 MiB string".into(), Hints::new().with("big", "x".repeat(1 << 20))),
        (
            "1 MiB of escapes".into(),
            Hints::new().with("big", "\u{1}\"".repeat(1 << 19)),
        ),
        (
            "100k keys".into(),
            Hints::from(
                (0..100_000)
                    .map(|i| (format!("k{i}"), Json::from(i)))
                    .collect::<Map<_, _>>(),
            ),
        ),
        (
            "unicode keys".into(),
            Hints::new()
                .with("\u{202e}\u{0}\u{ffff}", "\u{10ffff}")
                .with("tenant", "acme"),
        ),
        (
            "extreme numbers".into(),
            Hints::new()
                .with("a", u64::MAX)
                .with("b", i64::MIN)
                .with("c", f64::MAX)
                .with("d", f64::MIN_POSITIVE),
        ),
    ];
    for (what, hints) in &cases {
        let started = Instant::now();
        check_echo(&echo, &model, hints).unwrap_or_else(|e| panic!("{what}: {e}"));
        check_reference(&reference, hints).unwrap_or_else(|e| panic!("{what}: {e}"));
        println!("extreme hints: {what}: decided in {:?}", started.elapsed());
    }
    // 10 MiB: the WAT router takes it. The SDK's input buffer grows by
    // reallocating (old and new alive at once) under the 16 MiB ceiling, so
    // the reference router may answer or report that it could not allocate
    // the input, a documented fault; it must not do anything else.
    let ten = Hints::new().with("big", "y".repeat(10 << 20));
    check_echo(&echo, &model, &ten).unwrap();
    match reference.db_for_read(&model, &ten) {
        Ok(name) => assert_eq!(name, "replica"),
        Err(Error::RouterFault {
            fault: Fault::InputAllocation { .. },
            ..
        }) => {}
        other => panic!("a 10 MiB input: {other:?}"),
    }
    // Larger than the router's memory ceiling (16 MiB): the router cannot
    // take the input, a documented fault; the next call works.
    let huge = Hints::new().with("huge", "z".repeat(20 << 20));
    for engine in [&echo, &reference] {
        match engine.db_for_read(&model, &huge) {
            Err(Error::RouterFault {
                fault: Fault::InputAllocation { len },
                ..
            }) => assert!(len > 20 << 20),
            other => panic!("a 20 MiB input: {other:?}"),
        }
    }
    check_echo(&echo, &model, &Hints::new()).unwrap();
    check_reference(&reference, &Hints::new().with("tenant", "acme")).unwrap();
}

#[test]
fn large_distinct_hints_are_not_kept_by_the_answer_cache() {
    // It measures the process's memory: alone, not beside the other tests.
    if !crate::support::alone("boundary_fuzz::large_distinct_hints_are_not_kept_by_the_answer_cache") {
        return;
    }
    // The reference router is deterministic: the host caches its answers,
    // keyed by the input bytes. Inputs of 1 MiB each, all different, must
    // not stay in memory.
    let rt = runtime();
    let reference = reference_engine(&rt);
    let model = ModelInfo::new("User");
    let body = "x".repeat(1 << 20);
    let first = Hints::new().with("n", 0).with("big", body.as_str());
    assert_eq!(reference.db_for_read(&model, &first).unwrap(), "replica");
    drop(first);
    let before = crate::support::rss_bytes();
    for n in 1..=200 {
        let hints = Hints::new().with("n", n).with("big", body.as_str());
        assert_eq!(reference.db_for_read(&model, &hints).unwrap(), "replica");
    }
    let growth = crate::support::rss_bytes().saturating_sub(before);
    println!(
        "answer cache: 200 distinct 1 MiB inputs, RSS +{:.1} MiB",
        growth as f64 / 1048576.0
    );
    assert!(growth < 64 << 20, "RSS grew by {growth} bytes: large inputs are kept");
}

// ---- names ----

/// Strings of every kind, biased towards almost-valid names.
fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.-]{0,70}",
        "[A-Za-z0-9_.\\- ;'/\\\\%\\x00\\x{e9}]{0,70}",
        Just("default".to_owned()),
        Just("primary".to_owned()),
        Just("replica".to_owned()),
        vec(any::<u8>(), 0..100).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (0usize..20_000).prop_map(|n| "r".repeat(n)),
    ]
}

fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

#[test]
fn any_string_as_a_connection_name_is_a_registered_connection_or_an_error() {
    let rt = runtime();
    let engine = engine(&rt, &["primary", "replica"]);
    let allow = AllowList::new(["replica", "primary"]).unwrap();
    check(CASES * 2, names(), |s| {
        let valid = is_valid_name(&s);
        match ConnectionName::new(&s) {
            Ok(name) => {
                prop_assert!(valid);
                prop_assert_eq!(name.as_str(), s.as_str());
            }
            Err(e) => {
                prop_assert!(!valid);
                let invalid = matches!(e, Error::InvalidName { .. });
                prop_assert!(invalid, "{:?}", e);
                prop_assert!(e.to_string().len() < 1024);
            }
        }
        match engine.connection(&s) {
            Ok(conn) => {
                let expected = if s == "default" { "primary" } else { s.as_str() };
                prop_assert!(["default", "primary", "replica"].contains(&s.as_str()));
                let name = conn.name();
                prop_assert_eq!(name.as_str(), expected);
            }
            Err(Error::InvalidName { .. }) => prop_assert!(!valid),
            Err(Error::UnknownConnection { name, .. }) => {
                prop_assert!(valid);
                prop_assert_eq!(name, s.as_str());
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        match allow.check(&s) {
            Ok(name) => prop_assert!(name.as_str() == s && (s == "replica" || s == "primary")),
            Err(Error::NotAllowed { allowed, .. }) => {
                prop_assert!(s != "replica" && s != "primary");
                prop_assert_eq!(allowed.len(), 2);
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        Ok(())
    });
}
