//! Unit tests: the scanner, the inputs, the export path and the result
//! encoding.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::export::{Instance, Reply, encode_permission, encode_text};
use crate::json::{self, Cursor, InputError};
use crate::native;
use crate::testing::{self, Answer};
use crate::{Config, Connections, Decision, Kind, Migration, OpKind, Operation, Relation, Router, Value};

fn op(kind: OpKind, text: &str) -> Operation<'_> {
    Operation::parse(kind, text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn read(text: &str) -> Operation<'_> {
    op(OpKind::Read, text)
}

fn error(text: &str) -> InputError {
    Operation::parse(OpKind::Read, text).map(|_| ()).unwrap_err()
}

fn value(text: &str) -> Value<'_> {
    testing::value(text)
}

// ---- the scanner, through Operation ----

#[test]
fn reads_every_field_of_a_full_input() {
    let op = read(
        r#"{"op":"read","model":{"name":"User","table":"users","app":"auth","tags":["pii","hot"]},"hints":{"tenant":"acme"}}"#,
    );
    assert!(op.is_read());
    assert!(!op.is_write());
    assert_eq!(op.kind(), OpKind::Read);
    assert_eq!(op.model().name(), "User");
    assert_eq!(op.model().table(), Some("users"));
    assert_eq!(op.model().app(), Some("auth"));
    assert_eq!(op.model().tags().collect::<Vec<_>>(), ["pii", "hot"]);
    assert!(op.model().has_tag("pii"));
    assert!(op.model().has_tag("hot"));
    assert!(!op.model().has_tag("readonly"));
    assert!(op.hint("tenant").is_some_and(|t| t == "acme"));
    assert_eq!(op.origin(), None);
}

#[test]
fn the_origin_is_read_when_the_host_sends_one() {
    // ABI 1.1: the host's layout puts it last.
    let op = read(r#"{"op":"write","model":{"name":"User"},"hints":{"tenant":"acme"},"origin":"other"}"#);
    assert_eq!(op.origin(), Some("other"));
    assert!(op.hint("tenant").is_some_and(|t| t == "acme"));
    let op = read(r#"{"op":"write","model":{"name":"User"},"origin":"other"}"#);
    assert_eq!(op.origin(), Some("other"));
    // Anywhere, escaped, or null (none).
    let op = read(r#"{"origin":"oth\u0065r","op":"read","model":{"name":"User"}}"#);
    assert_eq!(op.origin(), Some("other"));
    let op = read(r#"{"op":"read","model":{"name":"User"},"origin":null}"#);
    assert_eq!(op.origin(), None);
    // Anything else is malformed.
    assert_eq!(
        error(r#"{"model":{"name":"User"},"origin":1}"#).what,
        "expected a string"
    );
    // A hint named origin is a hint, not the origin.
    let op = read(r#"{"model":{"name":"User"},"hints":{"origin":"x"}}"#);
    assert_eq!(op.origin(), None);
}

#[test]
fn field_order_does_not_matter() {
    let op = read(
        r#"{"hints":{"tenant":"acme"},"model":{"tags":["pii"],"app":"auth","name":"User","table":"users"},"op":"read"}"#,
    );
    assert_eq!(op.model().name(), "User");
    assert_eq!(op.model().table(), Some("users"));
    assert_eq!(op.model().app(), Some("auth"));
    assert!(op.model().has_tag("pii"));
    assert!(op.hint("tenant").is_some_and(|t| t == "acme"));
}

#[test]
fn optional_fields_may_be_missing_or_null() {
    let op = read(r#"{"model":{"name":"User"}}"#);
    assert_eq!(op.model().name(), "User");
    assert_eq!(op.model().table(), None);
    assert_eq!(op.model().app(), None);
    assert_eq!(op.model().tags().count(), 0);
    assert!(op.hint("tenant").is_none());
    assert_eq!(op.hints().kind(), Kind::Object);

    let op = read(r#"{"op":"read","model":{"name":"User","table":null,"app":null,"tags":null},"hints":null}"#);
    assert_eq!(op.model().table(), None);
    assert_eq!(op.model().app(), None);
    assert_eq!(op.model().tags().count(), 0);
    assert!(op.hint("tenant").is_none());

    let op = read(r#"{"model":{"name":"User","tags":[]},"hints":{}}"#);
    assert_eq!(op.model().tags().count(), 0);
    assert_eq!(op.hints().entries().count(), 0);
}

#[test]
fn unknown_fields_are_skipped_whatever_their_value() {
    let op = read(
        r#"{"version":2,"future":{"a":[1,2,{"b":null}],"c":"}]\"{["},"op":"read",
            "model":{"extra":[[[]]],"name":"User","deep":{"x":{"y":{"z":[true,false,null]}}},"n":-1.5e+3},
            "trailer":[{}, [], "", 0, -0, 0.25, 1E9, true]}"#,
    );
    assert_eq!(op.model().name(), "User");
}

#[test]
fn whitespace_anywhere() {
    let op = read(
        " \n\t{ \"model\" :\r\n { \"name\" : \"User\" , \"tags\" : [ \"a\" , \"b\" ] } , \"hints\" : { \"k\" : [ 1 , 2 ] } } \n",
    );
    assert_eq!(op.model().name(), "User");
    assert_eq!(op.model().tags().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(op.hint("k").map(|v| v.items().count()), Some(2));
}

#[test]
fn nested_hints() {
    let op = read(
        r#"{"model":{"name":"Order"},"hints":{"user":{"id":42,"org":{"name":"acme","tier":"gold"}},"ids":[1,2,3],"flag":true,"none":null,"ratio":0.5}}"#,
    );
    let user = op.hint("user").unwrap();
    assert_eq!(user.kind(), Kind::Object);
    assert_eq!(user.get("id").and_then(|v| v.as_i64()), Some(42));
    let org = user.get("org").unwrap();
    assert!(org.get("tier").is_some_and(|t| t == "gold"));
    assert_eq!(org.raw(), r#"{"name":"acme","tier":"gold"}"#);
    let ids: Vec<i64> = op.hint("ids").unwrap().items().filter_map(|v| v.as_i64()).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(op.hint("flag").and_then(|v| v.as_bool()), Some(true));
    assert!(op.hint("none").is_some_and(|v| v.is_null()));
    assert_eq!(op.hint("ratio").and_then(|v| v.as_f64()), Some(0.5));
    assert_eq!(op.hint("ratio").and_then(|v| v.as_i64()), None);
    // A key of a nested object is not a hint.
    assert!(op.hint("tier").is_none());
    assert!(op.hint("id").is_none());
}

#[test]
fn keys_that_look_like_known_fields_inside_values_are_not_fields() {
    let op = read(r#"{"hints":{"model":{"name":"Wrong"}},"model":{"name":"Right","x":{"name":"Wrong"}}}"#);
    assert_eq!(op.model().name(), "Right");
    let op = read(r#"{"x":"\"model\":{\"name\":\"Wrong\"}","model":{"name":"Right"}}"#);
    assert_eq!(op.model().name(), "Right");
}

#[test]
fn duplicate_keys_last_wins() {
    let op = read(r#"{"model":{"name":"A","name":"B"},"hints":{"t":1,"t":2}}"#);
    assert_eq!(op.model().name(), "B");
    assert_eq!(op.hint("t").and_then(|v| v.as_i64()), Some(2));
}

#[test]
fn plain_strings_are_borrowed() {
    let op = read(r#"{"model":{"name":"User","tags":["pii"]},"hints":{"tenant":"acme"}}"#);
    assert!(matches!(
        op.hint("tenant").unwrap().as_str(),
        Some(Cow::Borrowed("acme"))
    ));
    assert!(matches!(op.model().tags().next(), Some(Cow::Borrowed("pii"))));
}

#[test]
fn escapes_are_decoded_when_read() {
    let op = read(
        r#"{"model":{"name":"Us\"er\\","table":"a\/b\b\f\n\r\t","app":"\u0041pp","tags":["\u00e9t\u00E9","x"]},"hints":{"t\u0065nant":"ac\u006de","q":"\"quoted\""}}"#,
    );
    assert_eq!(op.model().name(), "Us\"er\\");
    assert_eq!(op.model().table(), Some("a/b\u{8}\u{c}\n\r\t"));
    assert_eq!(op.model().app(), Some("App"));
    assert_eq!(op.model().tags().collect::<Vec<_>>(), ["été", "x"]);
    assert!(op.model().has_tag("été"));
    assert!(!op.model().has_tag("ete"));
    // An escaped key matches, and an escaped value compares without decoding.
    let tenant = op.hint("tenant").unwrap();
    assert!(tenant == "acme");
    assert!(tenant != "acm");
    assert!(tenant != "acmee");
    assert!(matches!(tenant.as_str(), Some(Cow::Owned(s)) if s == "acme"));
    assert_eq!(op.hint("q").and_then(|v| v.as_str()).as_deref(), Some("\"quoted\""));
}

#[test]
fn unicode_text_and_surrogate_pairs() {
    // Raw UTF-8, a BMP escape and a surrogate pair for U+1F600.
    let op = read(
        r#"{"model":{"name":"Ünïcødé","app":"日本","tags":["\ud83d\ude00","😀"]},"hints":{"emoji":"\uD83D\uDE00!","key😀":1}}"#,
    );
    assert_eq!(op.model().name(), "Ünïcødé");
    assert_eq!(op.model().app(), Some("日本"));
    assert_eq!(op.model().tags().collect::<Vec<_>>(), ["😀", "😀"]);
    assert!(op.hint("emoji").is_some_and(|v| v == "😀!"));
    assert_eq!(op.hint("key😀").and_then(|v| v.as_i64()), Some(1));
}

#[test]
fn malformed_input_is_an_error() {
    let cases: &[(&str, &str)] = &[
        ("", "expected an object"),
        ("   ", "expected an object"),
        ("[]", "expected an object"),
        ("null", "expected an object"),
        ("{", "expected a string"),
        (r#"{"model""#, "expected ':'"),
        (r#"{"model":"#, "expected an object"),
        (r#"{"model":{"name":"User"}"#, "expected ',' or '}'"),
        (r#"{"model":{"name":"User"},}"#, "expected a string"),
        (
            r#"{"model":{"name":"User"}} x"#,
            "unexpected characters after the input object",
        ),
        (
            r#"{"model":{"name":"User"}}{}"#,
            "unexpected characters after the input object",
        ),
        (r#"{"model":{"name":"Us"#, "unterminated string"),
        ("{\"model\":{\"name\":\"U\nser\"}}", "control character in string"),
        (r#"{"model":{"name":"U\xser"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":"U\u12"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":"U\u12G4"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":"\ud83d"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":"\ud83dx"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":"\ud83d\u0041"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":"\ude00"}}"#, "invalid escape in string"),
        (r#"{"model":{"name":7}}"#, "expected a string"),
        (
            r#"{"model":{"name":"User","tags":"pii"}}"#,
            "model.tags must be an array of strings",
        ),
        (
            r#"{"model":{"name":"User","tags":[1]}}"#,
            "model.tags must be an array of strings",
        ),
        (r#"{"model":{"name":"User","tags":["a" "b"]}}"#, "expected ',' or ']'"),
        (r#"{"model":{"name":"User"},"hints":[]}"#, "hints must be an object"),
        (r#"{"model":{"name":"User"},"hints":{"a":}}"#, "expected a JSON value"),
        (r#"{"model":{"name":"User"},"hints":{"a":1,}}"#, "expected a string"),
        (
            r#"{"model":{"name":"User"},"hints":{"a":[1,]}}"#,
            "expected a JSON value",
        ),
        (r#"{"model":{"name":"User"},"hints":{"a":[1}}"#, "expected ',' or ']'"),
        (
            r#"{"model":{"name":"User"},"hints":{"a":{"b":1]}}"#,
            "expected ',' or '}'",
        ),
        (r#"{"model":{"name":"User"},"hints":{"a":tru}}"#, "invalid literal"),
        (r#"{"model":{"name":"User"},"hints":{"a":nul}}"#, "invalid literal"),
        (r#"{"model":{"name":"User"},"hints":{"a":01}}"#, "expected ',' or '}'"),
        (r#"{"model":{"name":"User"},"hints":{"a":-}}"#, "invalid number"),
        (r#"{"model":{"name":"User"},"hints":{"a":1.}}"#, "invalid number"),
        (r#"{"model":{"name":"User"},"hints":{"a":1e}}"#, "invalid number"),
        (r#"{"model":{"name":"User"},"hints":{"a":+1}}"#, "expected a JSON value"),
        (
            r#"{"model":{"name":"User"},"hints":{"a":'x'}}"#,
            "expected a JSON value",
        ),
        (
            r#"{"model":{"name":"User"},"hints":{"a":[[[["#,
            "unexpected end of input",
        ),
        (r#"{"hints":{}}"#, "model is missing"),
        (r#"{"model":{}}"#, "model.name is missing"),
        (r#"{"model":{"table":"users"}}"#, "model.name is missing"),
    ];
    for (text, what) in cases {
        let e = error(text);
        assert_eq!(e.what, *what, "input {text:?}");
        assert!(e.offset <= text.len(), "input {text:?}: offset {}", e.offset);
    }
}

/// What an operation says, in a form to compare.
fn summary(op: &Operation<'_>) -> String {
    let m = op.model();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {} {:?}",
        op.kind(),
        m.name(),
        m.table(),
        m.app(),
        m.tags().collect::<Vec<_>>(),
        op.hints().raw(),
        op.origin()
    )
}

#[test]
fn the_fast_path_takes_the_hosts_layout_and_agrees_with_the_general_parser() {
    let canonical = [
        r#"{"op":"read","model":{"name":"User"}}"#,
        r#"{"op":"write","model":{"name":"User","app":"auth"},"hints":{}}"#,
        r#"{"op":"read","model":{"name":"User","tags":[]}}"#,
        r#"{"op":"read","model":{"name":"User","table":"users","app":"auth","tags":["pii","hot"]},"hints":{"tenant":"acme","n":[1,{"a":null}],"s":"caf\u00e9"}}"#,
        r#"{"op":"read","model":{"name":"","table":"t"},"hints":{"x":{}}}"#,
        r#"{"op":"read","model":{"name":"Ünïcødé","tags":["日本"]}}"#,
        r#"{"op":"write","model":{"name":"User"},"origin":"other"}"#,
        r#"{"op":"write","model":{"name":"User","app":"auth"},"hints":{"tenant":"acme"},"origin":"replica-2.eu"}"#,
    ];
    for text in canonical {
        for kind in [OpKind::Read, OpKind::Write] {
            let fast =
                Operation::parse_canonical(kind, text).unwrap_or_else(|| panic!("the fast path should take {text}"));
            let general = Operation::parse_general(kind, text).unwrap();
            assert_eq!(summary(&fast), summary(&general), "{text}");
        }
    }
    // Well-formed, but not the host's layout: the general parser reads them.
    let other = [
        r#"{ "op":"read","model":{"name":"User"}}"#,
        r#"{"op":"read","model":{"name":"User"}} "#,
        r#"{"op":"read","model":{"name":"Us\u0065r"}}"#,
        r#"{"op":"read","model":{"name":"User","table":null}}"#,
        r#"{"op":"read","model":{"name":"User","tags":null}}"#,
        r#"{"op":"read","model":{"name":"User","tags":["a\"b"]}}"#,
        r#"{"op":"read","model":{"name":"User","schema":"s"}}"#,
        r#"{"op":"read","model":{"table":"users","name":"User"}}"#,
        r#"{"op":"read","model":{"name":"User","app":"a","table":"t"}}"#,
        r#"{"op":"read","hints":{},"model":{"name":"User"}}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":null}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":{},"new":1}"#,
        r#"{"model":{"name":"User"},"op":"read"}"#,
        r#"{"op":"re\u0061d","model":{"name":"User"}}"#,
        r#"{"op":"read","model":{"name":"User"},"origin":null}"#,
        r#"{"op":"read","model":{"name":"User"},"origin":"oth\u0065r"}"#,
        r#"{"op":"read","model":{"name":"User"},"origin":"other","hints":{}}"#,
        r#"{"op":"read","model":{"name":"User"},"origin":"a","origin":"b"}"#,
    ];
    for text in other {
        assert!(Operation::parse_canonical(OpKind::Read, text).is_none(), "{text}");
        assert!(Operation::parse_general(OpKind::Read, text).is_ok(), "{text}");
    }
    // Malformed input never gets through the fast path.
    let malformed = [
        r#"{"op":"read","model":{"name":"User"}}}"#,
        r#"{"op":"read","model":{"name":"User"}"#,
        r#"{"op":"read","model":{"name":"User}}"#,
        "{\"op\":\"read\",\"model\":{\"name\":\"U\nser\"}}",
        r#"{"op":"read","model":{"name":"User","tags":["a",]}}"#,
        r#"{"op":"read","model":{"name":"User","tags":["a"}}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":{"a":}}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":{"a":1,}}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":{"a":"\x"}}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":{}"#,
        r#"{"op":"read","model":{"name":"User"},"hints":{"#,
        r#"{"op":"read","model":{"name":"User"},"origin":"other"#,
        r#"{"op":"read","model":{"name":"User"},"origin":"other"}}"#,
        r#"{"op":"read","model":{"name":"User"},"origin":other}"#,
    ];
    for text in malformed {
        assert!(Operation::parse_canonical(OpKind::Read, text).is_none(), "{text}");
        assert!(Operation::parse_general(OpKind::Read, text).is_err(), "{text}");
    }
}

/// Every one-byte change (replacement, insertion or deletion) of inputs in
/// the host's layout: whenever the fast path takes the result, the general
/// parser must read the same operation from it.
#[test]
fn the_fast_path_never_disagrees_on_mutated_inputs() {
    let seeds = [
        r#"{"op":"read","model":{"name":"User","table":"users","app":"auth","tags":["pii","x"]},"hints":{"tenant":"acme","n":[1,{"a":null}]}}"#,
        r#"{"op":"write","model":{"name":"U"},"hints":{}}"#,
        r#"{"op":"write","model":{"name":"U"},"hints":{"t":"a"},"origin":"other"}"#,
        r#"{"op":"read","model":{"name":"U"},"origin":"o"}"#,
    ];
    let bytes = b"\"\\{}[],: x0n\n\x01";
    let mut checked = 0;
    for seed in seeds {
        let seed = seed.as_bytes();
        for i in 0..=seed.len() {
            let mut variants = Vec::new();
            for &c in bytes {
                if i < seed.len() {
                    let mut v = seed.to_vec();
                    v[i] = c;
                    variants.push(v);
                }
                let mut v = seed.to_vec();
                v.insert(i, c);
                variants.push(v);
            }
            if i < seed.len() {
                let mut v = seed.to_vec();
                v.remove(i);
                variants.push(v);
            }
            for v in variants {
                let Ok(text) = core::str::from_utf8(&v) else {
                    continue;
                };
                // Whatever the input, reading it never panics.
                if let Ok(op) = Operation::parse(OpKind::Read, text) {
                    let _ = summary(&op);
                    let _ = op.hint("tenant").map(|v| v.as_str());
                    for (_, v) in op.hints().entries() {
                        let _ = (v.items().count(), v.entries().count(), v.as_i64());
                    }
                }
                if let Some(fast) = Operation::parse_canonical(OpKind::Read, text) {
                    let general = Operation::parse_general(OpKind::Read, text)
                        .unwrap_or_else(|e| panic!("fast path took malformed {text}: {e}"));
                    assert_eq!(summary(&fast), summary(&general), "{text}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} variants took the fast path");
}

#[test]
fn error_offsets_point_at_the_problem() {
    assert_eq!(error(r#"{"model":{"name":"User"}} x"#).offset, 26);
    assert_eq!(error(r#"{"model":{"name":"U\x"}}"#).offset, 19);
    assert_eq!(error(r#"{"model" 1}"#).offset, 9);
}

#[test]
fn invalid_utf8_is_an_error() {
    let bytes = b"{\"model\":{\"name\":\"\xff\"}}";
    let e = json::text(bytes).unwrap_err();
    assert_eq!((e.offset, e.what), (18, "input is not valid UTF-8"));
    let mut router = Fixed;
    let (reply, out) = crate::export::decide(&mut router, OpKind::Read, bytes, |reply, text| {
        (reply, text.into_owned())
    });
    assert_eq!(reply, Reply::Refuse);
    assert_eq!(out, "malformed input: input is not valid UTF-8 (at byte 18)");
}

#[test]
fn deep_nesting_is_bounded() {
    let deep = |n: usize| format!(r#"{{"model":{{"name":"U"}},"x":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    // The innermost array is empty: it never holds a value, so it needs no
    // room on the scanner's stack.
    assert_eq!(read(&deep(129)).model().name(), "U");
    assert_eq!(error(&deep(130)).what, "nesting too deep");
    let objects = |n: usize| {
        format!(
            r#"{{"model":{{"name":"U"}},"x":{}1{}}}"#,
            r#"{"a":"#.repeat(n),
            "}".repeat(n)
        )
    };
    assert_eq!(read(&objects(128)).model().name(), "U");
    assert_eq!(error(&objects(129)).what, "nesting too deep");
}

#[test]
fn error_messages_are_written_without_fmt() {
    let mut out = String::new();
    InputError {
        offset: 1234567,
        what: "expected ':'",
    }
    .write_to(&mut out);
    assert_eq!(out, "malformed input: expected ':' (at byte 1234567)");
    out.clear();
    InputError { offset: 0, what: "x" }.write_to(&mut out);
    assert_eq!(out, "malformed input: x (at byte 0)");
}

// ---- Value ----

#[test]
fn value_kinds_and_numbers() {
    assert_eq!(value("null").kind(), Kind::Null);
    assert_eq!(value("true").kind(), Kind::Bool);
    assert_eq!(value("-1").kind(), Kind::Number);
    assert_eq!(value(r#""s""#).kind(), Kind::String);
    assert_eq!(value("[]").kind(), Kind::Array);
    assert_eq!(value("{}").kind(), Kind::Object);
    assert_eq!(value("9223372036854775807").as_i64(), Some(i64::MAX));
    assert_eq!(value("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(value("9223372036854775808").as_i64(), None);
    assert_eq!(value("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(value("18446744073709551616").as_u64(), None);
    assert_eq!(value("-1").as_u64(), None);
    assert_eq!(value("1e3").as_i64(), None);
    assert_eq!(value("1e3").as_f64(), Some(1000.0));
    assert_eq!(value("-0.25").as_f64(), Some(-0.25));
    assert_eq!(value(r#""1""#).as_f64(), None);
    assert_eq!(value("false").as_bool(), Some(false));
    assert_eq!(value("0").as_bool(), None);
    assert_eq!(value(" [1, 2] ").raw(), "[1, 2]");
}

#[test]
fn value_iteration() {
    let v = value(r#"{"a": [1, "two", {"three": 3}], "b\n": null, "c": {}}"#);
    let entries: Vec<(String, String)> = v
        .entries()
        .map(|(k, v)| (k.into_owned(), v.raw().to_string()))
        .collect();
    assert_eq!(
        entries,
        [
            ("a".to_string(), r#"[1, "two", {"three": 3}]"#.to_string()),
            ("b\n".to_string(), "null".to_string()),
            ("c".to_string(), "{}".to_string()),
        ]
    );
    let items: Vec<&str> = v.get("a").unwrap().items().map(|v| v.raw()).collect();
    assert_eq!(items, ["1", r#""two""#, r#"{"three": 3}"#]);
    assert_eq!(value("[]").items().count(), 0);
    assert_eq!(value("{}").entries().count(), 0);
    // Not an array / not an object: nothing to iterate, nothing to get.
    assert_eq!(value("{}").items().count(), 0);
    assert_eq!(value("[1]").entries().count(), 0);
    assert!(value("[1]").get("a").is_none());
    assert!(value(r#""a""#).get("a").is_none());
}

#[test]
fn value_compares_with_str() {
    assert!(value(r#""acme""#) == "acme");
    assert!(value(r#""acme""#) != "acm");
    assert!(value("1") != "1");
    assert!(value(r#""a\"b""#) == "a\"b");
}

#[test]
fn standalone_values_must_be_well_formed() {
    assert!(json::parse_value("[1,]").is_err());
    assert!(json::parse_value("1 2").is_err());
    assert!(json::parse_value(r#""\u00""#).is_err());
    assert!(json::parse_value("").is_err());
}

#[test]
fn cursor_skips_exactly_one_value() {
    let mut cur = Cursor::new(r#"[1,{"a":[2]}] , "next""#);
    cur.skip_value().unwrap();
    assert_eq!(cur.peek(), Some(b','));
}

// ---- the other inputs ----

#[test]
fn relation_input() {
    let text = r#"{"op":"relation","a":{"model":{"name":"Book"},"db":"default"},"b":{"db":"analytics","model":{"name":"Author","app":"lib"},"x":1},"hints":{"h":1}}"#;
    let rel = Relation::parse(text).unwrap();
    assert_eq!(rel.a().model().name(), "Book");
    assert_eq!(rel.a().db(), Some("default"));
    assert_eq!(rel.b().model().name(), "Author");
    assert_eq!(rel.b().model().app(), Some("lib"));
    assert_eq!(rel.b().db(), Some("analytics"));
    assert_eq!(rel.hint("h").and_then(|v| v.as_i64()), Some(1));
    let no_hints =
        Relation::parse(r#"{"a":{"model":{"name":"A"},"db":"x"},"b":{"model":{"name":"B"},"db":"y"}}"#).unwrap();
    assert_eq!(no_hints.hints().entries().count(), 0);

    let missing_b = Relation::parse(r#"{"a":{"model":{"name":"A"},"db":"x"}}"#).unwrap_err();
    assert_eq!(missing_b.what, "relation has no b");
    let missing_db =
        Relation::parse(r#"{"a":{"model":{"name":"A"}},"b":{"model":{"name":"B"},"db":"y"}}"#).unwrap_err();
    assert_eq!(missing_db.what, "relation side has no db");
    // ABI 1.1: an unsaved object has a null db.
    let unsaved =
        Relation::parse(r#"{"a":{"model":{"name":"A"},"db":null},"b":{"model":{"name":"B"},"db":"y"}}"#).unwrap();
    assert_eq!((unsaved.a().db(), unsaved.b().db()), (None, Some("y")));
    let not_a_name = Relation::parse(r#"{"a":{"model":{"name":"A"},"db":1},"b":{"model":{"name":"B"},"db":"y"}}"#);
    assert_eq!(not_a_name.unwrap_err().what, "expected a string");
}

#[test]
fn migration_input() {
    let m = Migration::parse(
        r#"{"op": "migrate", "db": "analytics", "model": {"name": "Event", "app": "metrics"}, "hints": {}}"#,
    )
    .unwrap();
    assert_eq!(m.db(), "analytics");
    let model = m.model().unwrap();
    assert_eq!(model.name(), "Event");
    assert_eq!(model.app(), Some("metrics"));
    assert!(m.hint("x").is_none());
    assert_eq!(
        Migration::parse(r#"{"model":{"name":"E"}}"#).unwrap_err().what,
        "db is missing"
    );
    assert_eq!(
        Migration::parse(r#"{"db":"x"}"#).unwrap_err().what,
        "model is missing (and there is no app)"
    );
    assert_eq!(
        Migration::parse(r#"{"db":"x","app":null}"#).unwrap_err().what,
        "model is missing (and there is no app)"
    );
    // ABI 1.1: an app label alone.
    let app = Migration::parse(r#"{"op":"migrate","db":"default","app":"metrics","hints":{"h":1}}"#).unwrap();
    assert_eq!(app.db(), "default");
    assert!(app.model().is_none());
    assert_eq!(app.app(), Some("metrics"));
    assert_eq!(app.hint("h").and_then(|v| v.as_i64()), Some(1));
    let escaped = Migration::parse(r#"{"db":"default","app":"m\u00e9trics"}"#).unwrap();
    assert_eq!(escaped.app(), Some("métrics"));
    // With a model, the model's app; a top-level app wins.
    assert_eq!(m.app(), Some("metrics"));
    let bare = Migration::parse(r#"{"db":"x","model":{"name":"E"}}"#).unwrap();
    assert_eq!(bare.app(), None);
    let both = Migration::parse(r#"{"db":"x","model":{"name":"E","app":"a"},"app":"b"}"#).unwrap();
    assert_eq!((both.model().map(|m| m.name()), both.app()), (Some("E"), Some("b")));
    assert_eq!(
        Migration::parse(r#"{"db":"x","app":1}"#).unwrap_err().what,
        "expected a string"
    );
}

#[derive(Default)]
struct Captured {
    config: String,
    connections: Vec<String>,
    replicas: Vec<String>,
    tenants: Vec<(String, String)>,
}

impl Router for Captured {
    fn init(&mut self, config: &Config<'_>, connections: &Connections<'_>) -> Result<(), String> {
        self.config = config.value().raw().to_string();
        self.connections = connections.iter().map(Cow::into_owned).collect();
        self.replicas = config.str_list("replicas")?;
        self.tenants = config.str_map("tenants")?.into_iter().collect();
        if !connections.contains("default") {
            return Err("no default".into());
        }
        assert_eq!(connections.len(), self.connections.len());
        assert!(!connections.is_empty());
        Ok(())
    }

    fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
        Decision::no_opinion()
    }
}

#[test]
fn init_input() {
    let r: Captured = testing::init(
        r#"{"config": {"replicas": ["replica1", "replica2"], "tenants": {"acme": "t_acme"}}, "connections": ["default", "replica1", "replica2"], "new": 1}"#,
    )
    .unwrap();
    assert_eq!(
        r.config,
        r#"{"replicas": ["replica1", "replica2"], "tenants": {"acme": "t_acme"}}"#
    );
    assert_eq!(r.connections, ["default", "replica1", "replica2"]);
    assert_eq!(r.replicas, ["replica1", "replica2"]);
    assert_eq!(r.tenants, [("acme".to_string(), "t_acme".to_string())]);

    let r: Captured = testing::init(r#"{"config":null,"connections":["default"]}"#).unwrap();
    assert_eq!(r.config, "null");
    assert!(r.replicas.is_empty() && r.tenants.is_empty());

    let r: Captured = testing::init(r#"{"connections":["default"]}"#).unwrap();
    assert_eq!(r.config, "null");

    let refuse = |text| testing::init::<Captured>(text).err().unwrap();
    assert_eq!(refuse(r#"{"config":null,"connections":[]}"#), "no default");
    assert_eq!(
        refuse(r#"{"config":{"replicas":"r1"},"connections":["default"]}"#),
        "config.replicas must be an array of strings"
    );
    assert_eq!(
        refuse(r#"{"config":{"replicas":["r1",2]},"connections":["default"]}"#),
        "config.replicas must be an array of strings"
    );
    assert_eq!(
        refuse(r#"{"config":{"tenants":{"a":1}},"connections":["default"]}"#),
        "config.tenants must be an object whose values are strings"
    );
    assert_eq!(
        refuse(r#"{"config":null,"connections":"default"}"#),
        "malformed input: connections must be an array of strings (at byte 29)"
    );
    assert_eq!(refuse("{"), "malformed input: expected a string (at byte 1)");
}

#[test]
fn config_str() {
    #[derive(Default)]
    struct Named(Option<String>);
    impl Router for Named {
        fn init(&mut self, config: &Config<'_>, _: &Connections<'_>) -> Result<(), String> {
            self.0 = config.str("name")?;
            assert_eq!(config.is_null(), self.0.is_none() && config.get("name").is_none());
            Ok(())
        }
        fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
            Decision::no_opinion()
        }
    }
    let named: Named = testing::init(r#"{"config":{"name":"x\u0079"}}"#).unwrap();
    assert_eq!(named.0.as_deref(), Some("xy"));
    let unnamed: Named = testing::init(r#"{"config":null}"#).unwrap();
    assert_eq!(unnamed.0, None);
    assert_eq!(
        testing::init::<Named>(r#"{"config":{"name":1}}"#).err().as_deref(),
        Some("config.name must be a string")
    );
}

// ---- dispatch, the instance and the encoding ----

/// Answers what the `answer` hint says, and records what it saw.
#[derive(Default)]
struct Fixed;

impl Router for Fixed {
    fn db_for_read<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
        match op.hint("answer").and_then(|v| v.as_str()) {
            Some(name) if name == "none" => Decision::no_opinion(),
            Some(name) => match name.strip_prefix("refuse:") {
                Some(message) => Decision::refuse(message.to_string()),
                None => Decision::use_connection(name),
            },
            // Borrowed from the operation's (lazily decoded) model name.
            None => Decision::use_connection(op.model().name()),
        }
    }

    fn db_for_write<'a>(&'a mut self, op: &'a Operation<'_>) -> Decision<'a> {
        assert!(op.is_write());
        Decision::refuse("no writes")
    }

    fn allow_relation(&mut self, rel: &Relation<'_>) -> Option<bool> {
        (rel.a().db() == rel.b().db()).then_some(true)
    }

    fn allow_migrate(&mut self, m: &Migration<'_>) -> Option<bool> {
        Some(m.db() == "default")
    }
}

#[test]
fn testing_helpers_report_what_the_host_would_get() {
    let mut r = Fixed;
    let ask = |r: &mut Fixed, answer: &str| {
        testing::read(
            r,
            &format!(r#"{{"model":{{"name":"M"}},"hints":{{"answer":"{answer}"}}}}"#),
        )
    };
    assert_eq!(ask(&mut r, "replica"), Answer::Use("replica".into()));
    assert_eq!(ask(&mut r, "none"), Answer::NoOpinion);
    assert_eq!(ask(&mut r, "refuse:nope"), Answer::Refuse("nope".into()));
    assert_eq!(ask(&mut r, "replica").connection(), Some("replica"));
    assert_eq!(ask(&mut r, "refuse:x").refusal(), Some("x"));
    assert_eq!(ask(&mut r, "none").connection(), None);
    assert_eq!(
        testing::read(&mut r, r#"{"model":{"name":"Esc\u0061ped"}}"#),
        Answer::Use("Escaped".into())
    );
    assert_eq!(
        testing::write(&mut r, r#"{"op":"write","model":{"name":"M"}}"#),
        Answer::Refuse("no writes".into())
    );
    assert_eq!(
        testing::read(&mut r, r#"{"model":{}}"#),
        Answer::Refuse("malformed input: model.name is missing (at byte 9)".into())
    );
    let rel = |a: &str, b: &str| {
        format!(
            r#"{{"op":"relation","a":{{"model":{{"name":"A"}},"db":"{a}"}},"b":{{"model":{{"name":"B"}},"db":"{b}"}},"hints":{{}}}}"#
        )
    };
    assert_eq!(testing::relation(&mut r, &rel("x", "x")), Some(true));
    assert_eq!(testing::relation(&mut r, &rel("x", "y")), None);
    assert_eq!(
        testing::migrate(&mut r, r#"{"op":"migrate","db":"default","model":{"name":"E"}}"#),
        Some(true)
    );
    assert_eq!(
        testing::migrate(&mut r, r#"{"op":"migrate","db":"other","model":{"name":"E"}}"#),
        Some(false)
    );
}

#[test]
#[should_panic(expected = "is not a connection name")]
fn testing_rejects_malformed_connection_names() {
    testing::read(&mut Fixed, r#"{"model":{"name":"M"},"hints":{"answer":"no spaces"}}"#);
}

#[test]
#[should_panic(expected = "router fault: allow_migrate: malformed input")]
fn testing_faults_on_malformed_migrate_input() {
    testing::migrate(&mut Fixed, r#"{"db":"x"}"#);
}

#[test]
fn result_encoding() {
    assert_eq!(encode_text(0x1000, 7, false), Some(0x0000_1000_0000_0007));
    assert_eq!(encode_text(0x1000, 7, true), Some(i64::MIN | 0x0000_1000_0000_0007));
    let r = encode_text(0x7FFF_FFFF, 0xFFFF_FFFF, true).unwrap();
    assert!(r < 0);
    let cleared = r & i64::MAX;
    assert_eq!((cleared >> 32, cleared & 0xFFFF_FFFF), (0x7FFF_FFFF, 0xFFFF_FFFF));
    let r = encode_text(0x7FFF_FFFF, 1, false).unwrap();
    assert!(r > 0);
    assert_eq!((r >> 32, r & 0xFFFF_FFFF), (0x7FFF_FFFF, 1));
    // A pointer at or above 2 GiB would set the sign bit; lengths are u32.
    assert_eq!(encode_text(0x8000_0000, 1, false), None);
    assert_eq!(encode_text(16, 1 << 32, false), None);
    assert_eq!(encode_permission(Some(true)), 1);
    assert_eq!(encode_permission(Some(false)), 0);
    assert_eq!(encode_permission(None), -1);
}

/// Drives an `Instance` as the exports do; natively pointers are 64-bit, so
/// the encoded result is checked on the answer text instead.
#[test]
fn instance_round_trip() {
    let mut inst: Instance<Captured> = Instance::new();
    let write_input = |inst: &mut Instance<Captured>, text: &str| {
        let ptr = inst.input_buffer(text.len()).unwrap();
        // What the host does: write the input at `ptr`.
        let buf = inst.input_mut();
        assert_eq!(buf.as_ptr() as usize, ptr);
        buf[..text.len()].copy_from_slice(text.as_bytes());
        (ptr, text.len())
    };
    let (ptr, len) = write_input(&mut inst, r#"{"config":null,"connections":["default"]}"#);
    assert_eq!(inst.init(ptr, len), Reply::NoOpinion);
    assert_eq!(inst.result(Reply::NoOpinion), 0);

    // The buffer is reused: a shorter input does not move it.
    let (ptr2, len2) = write_input(&mut inst, r#"{"model":{"name":"U"}}"#);
    assert_eq!(ptr2, ptr);
    assert_eq!(inst.decide(OpKind::Read, ptr2, len2), Reply::NoOpinion);

    let (ptr, len) = write_input(&mut inst, "{");
    assert_eq!(inst.decide(OpKind::Read, ptr, len), Reply::Refuse);
    assert_eq!(inst.answer(), "malformed input: expected a string (at byte 1)");

    let (ptr, len) = write_input(&mut inst, r#"{"config":null,"connections":[]}"#);
    assert_eq!(inst.init(ptr, len), Reply::Refuse);
    assert_eq!(inst.answer(), "no default");
}

/// An answer borrowed from the input is read where it is, in the input
/// buffer, not copied into the answer buffer.
#[test]
fn instance_points_at_an_answer_borrowed_from_the_input() {
    let mut inst: Instance<Fixed> = Instance::new();
    let write_input = |inst: &mut Instance<Fixed>, text: &str| {
        let ptr = inst.input_buffer(text.len()).unwrap();
        inst.input_mut()[..text.len()].copy_from_slice(text.as_bytes());
        (ptr, text.len())
    };
    let (ptr, len) = write_input(&mut inst, r#"{"config":null,"connections":["default"]}"#);
    assert_eq!(inst.init(ptr, len), Reply::NoOpinion);
    let input = r#"{"op":"read","model":{"name":"U"},"hints":{"answer":"replica"}}"#;
    let (ptr, len) = write_input(&mut inst, input);
    assert_eq!(inst.decide(OpKind::Read, ptr, len), Reply::Use);
    let (at, answer_len) = inst.answer_at();
    assert!(
        at >= ptr && at + answer_len <= ptr + len,
        "the answer is not in the input"
    );
    assert_eq!(&inst.input_mut()[at - ptr..at - ptr + answer_len], b"replica");
    assert!(inst.answer().is_empty(), "copied: {:?}", inst.answer());
}

#[test]
#[should_panic(expected = "router called before dbroute_init succeeded")]
fn calls_before_init_fault() {
    let mut inst: Instance<Fixed> = Instance::new();
    let ptr = inst.input_buffer(2).unwrap();
    inst.decide(OpKind::Read, ptr, 2);
}

#[test]
#[should_panic(expected = "input is not in the buffer dbroute_input returned")]
fn inputs_elsewhere_fault() {
    let mut inst: Instance<Fixed> = Instance::new();
    let ptr = inst.input_buffer(2).unwrap();
    inst.init(ptr + 1, 1);
}

#[test]
#[should_panic(expected = "input is not in the buffer dbroute_input returned")]
fn inputs_longer_than_the_buffer_fault() {
    let mut inst: Instance<Fixed> = Instance::new();
    let ptr = inst.input_buffer(2).unwrap();
    inst.init(ptr, 3);
}

#[test]
fn input_buffer_grows_and_keeps_its_size() {
    let mut inst: Instance<Fixed> = Instance::new();
    inst.input_buffer(10).unwrap();
    assert_eq!(inst.input_mut().len(), 10);
    inst.input_buffer(4).unwrap();
    assert_eq!(inst.input_mut().len(), 10);
    inst.input_buffer(100).unwrap();
    assert_eq!(inst.input_mut().len(), 100);
    assert_eq!(inst.input_buffer(usize::MAX), None);
}

#[test]
fn decisions_accept_borrowed_and_owned_text() {
    let owned = String::from("replica");
    assert_eq!(Decision::use_connection(&owned).connection(), Some("replica"));
    assert_eq!(Decision::use_connection(owned.as_str()).connection(), Some("replica"));
    assert_eq!(Decision::use_connection(owned.clone()).connection(), Some("replica"));
    assert_eq!(Decision::refuse(["a", "b"].join(",")).refusal(), Some("a,b"));
    assert!(Decision::default().is_no_opinion());
    assert_eq!(Decision::no_opinion().connection(), None);
}

// ---- native: an instance driven as a host drives the module ----

/// Writes `text` into `inst`'s input buffer; returns its length.
fn native_input<R: Router>(inst: &mut native::Instance<R>, text: &str) -> usize {
    let buffer = inst.input(text.len()).expect("memory for the input");
    assert_eq!(buffer.len(), text.len());
    buffer.copy_from_slice(text.as_bytes());
    text.len()
}

fn native_decide<R: Router>(inst: &mut native::Instance<R>, kind: OpKind, text: &str) -> (Reply, String) {
    let len = native_input(inst, text);
    inst.decide(kind, len, |reply, text| (reply, text.to_string()))
}

#[test]
fn native_instances_answer_as_the_exports_do() {
    let mut inst = native::Instance::<Fixed>::new();
    let len = native_input(&mut inst, r#"{"config":null,"connections":["default"]}"#);
    assert_eq!(inst.init(len), Ok(()));
    let read = |hints: &str| format!(r#"{{"op":"read","model":{{"name":"U"}},"hints":{hints}}}"#);
    // Borrowed from the input, from the model, owned, none, refused.
    for (input, expected) in [
        (read(r#"{"answer":"replica"}"#), (Reply::Use, "replica")),
        (r#"{"op":"read","model":{"name":"U"}}"#.to_string(), (Reply::Use, "U")),
        (read(r#"{"answer":"none"}"#), (Reply::NoOpinion, "")),
        (read(r#"{"answer":"refuse:not today"}"#), (Reply::Refuse, "not today")),
        (
            "{".to_string(),
            (Reply::Refuse, "malformed input: expected a string (at byte 1)"),
        ),
    ] {
        let (reply, text) = native_decide(&mut inst, OpKind::Read, &input);
        assert_eq!((reply, text.as_str()), expected, "{input}");
    }
    let write = r#"{"op":"write","model":{"name":"U"}}"#;
    assert_eq!(
        native_decide(&mut inst, OpKind::Write, write),
        (Reply::Refuse, "no writes".to_string())
    );
    let rel = r#"{"op":"relation","a":{"model":{"name":"A"},"db":"x"},"b":{"model":{"name":"B"},"db":"x"},"hints":{}}"#;
    let len = native_input(&mut inst, rel);
    assert_eq!(inst.allow_relation(len), Some(true));
    let migrate = r#"{"op":"migrate","db":"other","model":{"name":"A"},"hints":{}}"#;
    let len = native_input(&mut inst, migrate);
    assert_eq!(inst.allow_migrate(len), Some(false));
}

#[test]
fn native_init_refusals_carry_the_message() {
    let mut inst = native::Instance::<Captured>::new();
    let len = native_input(&mut inst, r#"{"config":null,"connections":[]}"#);
    assert_eq!(inst.init(len), Err("no default"));
    let len = native_input(&mut inst, "[");
    assert!(inst.init(len).is_err_and(|m| m.starts_with("malformed input")));
}

#[test]
#[should_panic(expected = "router called before dbroute_init succeeded")]
fn native_calls_before_init_panic() {
    let mut inst = native::Instance::<Fixed>::new();
    native_decide(&mut inst, OpKind::Read, r#"{"op":"read","model":{"name":"U"}}"#);
}

#[test]
#[should_panic(expected = "malformed allow_migrate input")]
fn native_malformed_permission_input_panics() {
    let mut inst = native::Instance::<Fixed>::new();
    let len = native_input(&mut inst, r#"{"config":null,"connections":["default"]}"#);
    assert_eq!(inst.init(len), Ok(()));
    let len = native_input(&mut inst, "{");
    inst.allow_migrate(len);
}

#[test]
#[should_panic(expected = "input is not in the buffer dbroute_input returned")]
fn native_inputs_longer_than_the_buffer_panic() {
    let mut inst = native::Instance::<Fixed>::new();
    let len = native_input(&mut inst, "{}");
    let _ = inst.init(len + 1);
}

#[test]
fn the_connections_state_is_read_and_checked() {
    let state = crate::State::parse(
        r#"{"connections":[
            {"name":"default","role":"primary","replica_of":null,"healthy":null,"lag_ms":null,"lag_bytes":null,"later":{"x":[1]}},
            {"name":"re\u0070lica","role":"replica","replica_of":"default","healthy":false,"lag_ms":12,"lag_bytes":34}],
          "generation":7}"#,
    )
    .unwrap();
    assert_eq!(state.connections().len(), 2);
    let replica = state.get("replica").unwrap();
    assert_eq!(replica.replica_of(), Some("default"));
    assert_eq!(
        (replica.healthy(), replica.lag_ms(), replica.lag_bytes()),
        (Some(false), Some(12), Some(34))
    );
    let primary = state.get("default").unwrap();
    assert!(!primary.is_replica() && primary.healthy().is_none() && primary.lag_ms().is_none());
    // Members may be absent: unknown.
    let bare = crate::State::parse(r#"{"connections":[{"name":"x"}]}"#).unwrap();
    assert_eq!(bare.get("x").unwrap().lag_ms(), None);
    for bad in [
        "",
        "{}",
        r#"{"connections":{}}"#,
        r#"{"connections":[1]}"#,
        r#"{"connections":[{"role":"primary"}]}"#,
        r#"{"connections":[{"name":"x","lag_ms":-1}]}"#,
        r#"{"connections":[{"name":"x","lag_ms":1.5}]}"#,
        r#"{"connections":[{"name":"x","healthy":"yes"}]}"#,
        r#"{"connections":[{"name":"x","replica_of":7}]}"#,
    ] {
        assert!(crate::State::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn only_a_router_that_reads_the_state_says_abi_1_2() {
    #[derive(Default)]
    struct Plain;
    impl Router for Plain {
        fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
            Decision::no_opinion()
        }
    }
    #[derive(Default)]
    struct Told(usize);
    impl Router for Told {
        const CONNECTION_STATE: bool = true;
        fn state(&mut self, state: crate::State) {
            self.0 = state.connections().len();
        }
        fn db_for_read(&mut self, _: &Operation<'_>) -> Decision<'_> {
            Decision::no_opinion()
        }
    }
    assert_eq!(crate::export::abi_minor::<Plain>(), 1);
    assert_eq!(crate::export::abi_minor::<Told>(), 2);
    let mut instance = native::Instance::<Told>::new();
    let init = r#"{"config":null,"connections":["default"]}"#;
    instance.input(init.len()).unwrap().copy_from_slice(init.as_bytes());
    instance.init(init.len()).unwrap();
    let state = r#"{"connections":[{"name":"default"},{"name":"replica","replica_of":"default"}]}"#;
    instance.input(state.len()).unwrap().copy_from_slice(state.as_bytes());
    instance.state(state.len());
    let mut router = Told::default();
    testing::state(&mut router, state);
    assert_eq!(router.0, 2);
}
