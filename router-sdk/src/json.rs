//! The JSON scanner: one pass over the input bytes, no allocation.
//!
//! The scanner ([`Cursor`], [`skip_value`]) validates everything it passes
//! over, including values it skips, and hands out views that borrow the
//! input: [`Value`] (any JSON value, as its raw text) and [`RawStr`] (the
//! contents of a string, still escaped). A string is decoded only when it is
//! read and holds an escape; plain strings are borrowed as they are. A
//! `Value`'s accessors read text that was validated when the `Value` was
//! made, so they only look at strings and brackets ([`skip_valid`]).
//!
//! Because the input is checked to be UTF-8 up front, every slice the
//! scanner cuts at an ASCII delimiter is itself valid UTF-8.
//!
//! Speed: a decision must cost well under a microsecond, in a module
//! compiled by a JIT that optimises little. So strings are scanned eight
//! bytes at a time ([`special_byte`]), the hot helpers are inlined into
//! their callers (a call costs a stack frame in linear memory), and nothing
//! shifts a `u128` (a helper call on wasm32). `Operation` adds a fast path
//! for the layout the host writes (`input.rs`).

use alloc::borrow::Cow;
use alloc::string::String;
use core::cell::OnceCell;
use core::fmt;

/// Nesting deeper than this (arrays and objects inside each other) is
/// refused, so that skipping a value needs no recursion and no allocation.
const MAX_DEPTH: u32 = 128;

/// Why an input could not be read: what was wrong, and at which byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InputError {
    pub(crate) offset: usize,
    pub(crate) what: &'static str,
}

impl InputError {
    /// Appends `malformed input: <what> (at byte <offset>)` to `out`,
    /// without `core::fmt` (which would add kilobytes to every router).
    pub(crate) fn write_to(&self, out: &mut String) {
        out.push_str("malformed input: ");
        out.push_str(self.what);
        out.push_str(" (at byte ");
        push_decimal(out, self.offset);
        out.push(')');
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed input: {} (at byte {})", self.what, self.offset)
    }
}

pub(crate) type Result<T> = core::result::Result<T, InputError>;

fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Checks that `bytes` are UTF-8, which every later slice relies on.
#[inline(always)]
pub(crate) fn text(bytes: &[u8]) -> Result<&str> {
    core::str::from_utf8(bytes).map_err(|e| InputError {
        offset: e.valid_up_to(),
        what: "input is not valid UTF-8",
    })
}

/// The contents of a JSON string, between its quotes, escapes not decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> RawStr<'a> {
    /// A string's contents with no escape.
    #[inline(always)]
    pub(crate) fn plain(raw: &'a str) -> Self {
        RawStr { raw, escaped: false }
    }

    /// Whether the decoded string is `name`, a short literal: the parsers'
    /// key dispatch. Inlined, it compiles to a length test and a few byte
    /// compares, with no call to `memcmp`.
    #[inline(always)]
    pub(crate) fn is(&self, name: &'static str) -> bool {
        if self.escaped {
            return self.eq_escaped(name);
        }
        let (raw, name) = (self.raw.as_bytes(), name.as_bytes());
        if raw.len() != name.len() {
            return false;
        }
        let mut i = 0;
        while i < name.len() {
            if raw[i] != name[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Whether the decoded string equals `s`; never allocates.
    pub(crate) fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.eq_escaped(s)
        } else {
            self.raw == s
        }
    }

    #[cold]
    #[inline(never)]
    fn eq_escaped(&self, s: &str) -> bool {
        let raw = self.raw.as_bytes();
        let mut rest = s.as_bytes();
        let mut i = 0;
        while let Some(&b) = raw.get(i) {
            if b == b'\\' {
                let Some((c, next)) = unescape(raw, i) else {
                    return false;
                };
                let mut buf = [0u8; 4];
                let Some(tail) = rest.strip_prefix(c.encode_utf8(&mut buf).as_bytes()) else {
                    return false;
                };
                rest = tail;
                i = next;
            } else {
                match rest.split_first() {
                    Some((&first, tail)) if first == b => rest = tail,
                    _ => return false,
                }
                i += 1;
            }
        }
        rest.is_empty()
    }

    /// The decoded string: borrowed when it has no escape.
    pub(crate) fn to_cow(self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(decode(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

/// A string of the input that is decoded on first read, if it needs to be.
pub(crate) struct Text<'a> {
    raw: RawStr<'a>,
    decoded: OnceCell<String>,
}

impl<'a> Text<'a> {
    pub(crate) fn new(raw: RawStr<'a>) -> Self {
        Text {
            raw,
            decoded: OnceCell::new(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        if self.raw.escaped {
            self.decoded.get_or_init(|| decode(self.raw.raw))
        } else {
            self.raw.raw
        }
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Decodes string contents that the scanner has already validated.
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(raw.get(run..i).unwrap_or_default());
        match unescape(bytes, i) {
            Some((c, next)) => {
                out.push(c);
                i = next;
            }
            // Unreachable for validated input; keep going rather than panic.
            None => {
                out.push(char::REPLACEMENT_CHARACTER);
                i += 1;
            }
        }
        run = i;
    }
    out.push_str(raw.get(run..).unwrap_or_default());
    out
}

/// Decodes the escape that starts at `b[i]` (a backslash): the character and
/// the index just past the escape, or `None` when it is not a valid escape.
/// A `\u` high surrogate must be followed by a `\u` low surrogate; a lone
/// surrogate of either kind is invalid (it has no UTF-8 form).
fn unescape(b: &[u8], i: usize) -> Option<(char, usize)> {
    let c = match *b.get(i + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(b, i + 2)?;
            return match high {
                0xD800..=0xDBFF => {
                    if b.get(i + 6) != Some(&b'\\') || b.get(i + 7) != Some(&b'u') {
                        return None;
                    }
                    let low = hex4(b, i + 8)?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?;
                    Some((c, i + 12))
                }
                0xDC00..=0xDFFF => None,
                _ => Some((char::from_u32(high)?, i + 6)),
            };
        }
        _ => return None,
    };
    Some((c, i + 2))
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let mut v = 0;
    for &d in b.get(i..i + 4)? {
        v = v * 16 + char::from(d).to_digit(16)?;
    }
    Some(v)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the first byte at or after `i` that ends the plain part of
/// a string: a quote, a backslash or a control character; `bytes.len()` if
/// none. Eight bytes at a time: wasm32 has 64-bit loads, and a string's
/// bytes are most of an input.
#[inline(always)]
pub(crate) fn special_byte(bytes: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte of `x ^ c * ONES` is zero where `x` has `c`; `(v - ONES) &
        // !v & HIGHS` flags zero bytes, and `(x - 0x20 * ONES) & !x & HIGHS`
        // bytes below 0x20. Borrows can only flag bytes above a flagged
        // one, so the lowest flag is exact.
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGHS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// The rest of a string from `bytes[i]`, which is an escape, a control
/// character, or the end of the input.
#[cold]
#[inline(never)]
fn string_slow<'a>(text: &'a str, start: usize, mut i: usize) -> Result<(RawStr<'a>, usize)> {
    let bytes = text.as_bytes();
    let fail = |offset, what| Err(InputError { offset, what });
    let mut escaped = false;
    loop {
        match bytes.get(i) {
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                match unescape(bytes, i) {
                    Some((_, next)) => i = next,
                    None => return fail(i, "invalid escape in string"),
                }
            }
            Some(0..=0x1f) => return fail(i, "control character in string"),
            Some(_) => i += 1,
            None => return fail(i, "unterminated string"),
        }
    }
    match text.get(start..i) {
        Some(raw) => Ok((RawStr { raw, escaped }, i + 1)),
        None => fail(start, "string is not valid UTF-8"),
    }
}

/// The index of the first byte at or after `i` that is not whitespace.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Scans a string whose opening quote is at `b[i - 1]`, validating it: the
/// index after its closing quote, or `usize::MAX` when it is malformed
/// (`string_slow` then says why).
#[inline(never)]
fn string_end(b: &[u8], mut i: usize) -> usize {
    loop {
        let j = special_byte(b, i);
        match b.get(j) {
            Some(b'"') => return j + 1,
            Some(b'\\') => match unescape(b, j) {
                Some((_, next)) => i = next,
                None => return usize::MAX,
            },
            _ => return usize::MAX,
        }
    }
}

/// Skips the JSON value at `b[pos..]` (after whitespace), validating it,
/// without recursion: the index after it.
#[inline(never)]
pub(crate) fn skip_value(text: &str, pos: usize) -> Result<usize> {
    let b = text.as_bytes();
    let fail = |offset, what| Err(InputError { offset, what });
    // A string at `b[i]`: the index after it.
    let string = |i: usize| match string_end(b, i + 1) {
        usize::MAX => match string_slow(text, i + 1, i + 1) {
            Err(e) => Err(e),
            Ok((_, end)) => Ok(end),
        },
        end => Ok(end),
    };
    // A key at `b[i]` and its colon: the index after the colon.
    let key = |i: usize| {
        if b.get(i) != Some(&b'"') {
            return fail(i, "expected a string");
        }
        let i = ws(b, string(i)?);
        if b.get(i) != Some(&b':') {
            return fail(i, "expected ':'");
        }
        Ok(i + 1)
    };
    // Bit `d` set: the container at depth `d + 1` is an object. (Words
    // rather than a `u128`: wasm32 would call a helper for each shift.)
    let mut objects = [0u64; (MAX_DEPTH / 64) as usize];
    let mut depth: u32 = 0;
    let mut i = pos;
    'value: loop {
        i = ws(b, i);
        match b.get(i) {
            Some(b'"') => i = string(i)?,
            Some(&open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                i = ws(b, i + 1);
                if b.get(i) == Some(&close) {
                    i += 1;
                } else {
                    if depth == MAX_DEPTH {
                        return fail(i, "nesting too deep");
                    }
                    let (word, bit) = ((depth / 64) as usize, depth % 64);
                    depth += 1;
                    if open == b'{' {
                        objects[word] |= 1 << bit;
                        i = key(i)?;
                    } else {
                        objects[word] &= !(1 << bit);
                    }
                    continue 'value;
                }
            }
            Some(b't') => i = literal(b, i, b"true")?,
            Some(b'f') => i = literal(b, i, b"false")?,
            Some(b'n') => i = literal(b, i, b"null")?,
            Some(b'-' | b'0'..=b'9') => i = number(b, i)?,
            Some(_) => return fail(i, "expected a JSON value"),
            None => return fail(i, "unexpected end of input"),
        }
        // A value is complete: close the containers it completes.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            let top = depth - 1;
            let in_object = objects[(top / 64) as usize] & (1 << (top % 64)) != 0;
            i = ws(b, i);
            match b.get(i) {
                Some(b',') => {
                    i = ws(b, i + 1);
                    if in_object {
                        i = key(i)?;
                    }
                    continue 'value;
                }
                Some(b'}') if in_object => {
                    i += 1;
                    depth -= 1;
                }
                Some(b']') if !in_object => {
                    i += 1;
                    depth -= 1;
                }
                _ if in_object => return fail(i, "expected ',' or '}'"),
                _ => return fail(i, "expected ',' or ']'"),
            }
        }
    }
}

/// `word` (`true`, `false` or `null`) at `b[i]`: the index after it.
fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize> {
    if b.get(i..).is_some_and(|rest| rest.starts_with(word)) {
        Ok(i + word.len())
    } else {
        Err(InputError {
            offset: i,
            what: "invalid literal",
        })
    }
}

/// A number at `b[i]`: the index after it.
fn number(b: &[u8], mut i: usize) -> Result<usize> {
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let start = i;
    let fail = || {
        Err(InputError {
            offset: start,
            what: "invalid number",
        })
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(i + 1),
        _ => return fail(),
    };
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return fail();
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return fail();
        }
        i = end;
    }
    Ok(i)
}

/// Skips the value at `b[i]` of JSON already validated: the index after it.
/// Only strings and brackets need looking at.
#[inline(never)]
pub(crate) fn skip_valid(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0u32;
    loop {
        match b.get(i) {
            Some(b'"') => i = end_of_valid_string(b, i + 1),
            Some(b'{' | b'[') => {
                depth += 1;
                i += 1;
                continue;
            }
            Some(b'}' | b']') => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                i += 1;
            }
            Some(b',' | b' ' | b'\t' | b'\n' | b'\r') if depth == 0 => return i,
            Some(_) => {
                i += 1;
                continue;
            }
            None => return i,
        }
        if depth == 0 {
            return i;
        }
    }
}

/// The index after the closing quote of a valid string whose contents
/// start at `b[i]`.
#[inline(always)]
fn end_of_valid_string(b: &[u8], mut i: usize) -> usize {
    loop {
        let j = special_byte(b, i);
        match b.get(j) {
            Some(b'\\') => i = j + 2,
            Some(_) => return j + 1,
            None => return j,
        }
    }
}

/// A position in a UTF-8 input, moving forward only.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn error(&self, what: &'static str) -> InputError {
        InputError { offset: self.pos, what }
    }

    fn fail<T>(&self, what: &'static str) -> Result<T> {
        Err(self.error(what))
    }

    /// Skips whitespace and returns the next byte, without consuming it.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        let mut pos = self.pos;
        let next = loop {
            match bytes.get(pos) {
                Some(b' ' | b'\t' | b'\n' | b'\r') => pos += 1,
                next => break next.copied(),
            }
        };
        self.pos = pos;
        next
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    /// Checks that nothing but whitespace is left.
    pub(crate) fn finish(mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("unexpected characters after the input object"),
        }
    }

    /// Scans a string and returns its contents, escapes validated.
    pub(crate) fn string(&mut self) -> Result<RawStr<'a>> {
        if self.peek() != Some(b'"') {
            return self.fail("expected a string");
        }
        let bytes = self.text.as_bytes();
        let start = self.pos + 1;
        let i = special_byte(bytes, start);
        // The usual string: no escape, up to its closing quote.
        if bytes.get(i) == Some(&b'"')
            && let Some(raw) = self.text.get(start..i)
        {
            self.pos = i + 1;
            return Ok(RawStr::plain(raw));
        }
        let (raw, end) = string_slow(self.text, start, i)?;
        self.pos = end;
        Ok(raw)
    }

    /// A string, or `None` for `null`.
    pub(crate) fn opt_string(&mut self) -> Result<Option<RawStr<'a>>> {
        if self.null()? {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// Consumes `null` if it comes next.
    pub(crate) fn null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        self.pos = literal(self.text.as_bytes(), self.pos, word)?;
        Ok(())
    }

    /// An object member's key and the colon after it.
    fn key(&mut self) -> Result<RawStr<'a>> {
        let key = self.string()?;
        self.expect(b':', "expected ':'")?;
        Ok(key)
    }

    /// Skips any JSON value, validating it.
    pub(crate) fn skip_value(&mut self) -> Result<()> {
        self.pos = skip_value(self.text, self.pos)?;
        Ok(())
    }

    /// Scans any JSON value and returns a view of it.
    pub(crate) fn value(&mut self) -> Result<Value<'a>> {
        self.peek();
        let start = self.pos;
        self.skip_value()?;
        match self.text.get(start..self.pos) {
            Some(raw) => Ok(Value { raw }),
            None => self.fail("value is not valid UTF-8"),
        }
    }

    /// Scans an object, calling `member` with each key; `member` must
    /// consume exactly the member's value.
    pub(crate) fn object(&mut self, mut member: impl FnMut(&mut Self, RawStr<'a>) -> Result<()>) -> Result<()> {
        self.expect(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or '}'"),
            }
        }
    }

    /// An object, as a view; `None` for `null`.
    pub(crate) fn opt_object(&mut self, what: &'static str) -> Result<Option<Value<'a>>> {
        match self.peek() {
            Some(b'n') => self.literal(b"null").map(|()| None),
            Some(b'{') => self.value().map(Some),
            _ => self.fail(what),
        }
    }

    /// An array of strings, as a view; `None` for `null`.
    pub(crate) fn opt_string_array(&mut self, what: &'static str) -> Result<Option<Value<'a>>> {
        if self.null()? {
            return Ok(None);
        }
        let start = self.pos;
        self.expect(b'[', what)?;
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return self.fail(what);
                }
                self.string()?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.fail("expected ',' or ']'"),
                }
            }
        }
        match self.text.get(start..self.pos) {
            Some(raw) => Ok(Some(Value { raw })),
            None => self.fail(what),
        }
    }
}

/// The type of a JSON [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number, integer or not.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// A view of one JSON value of the input: a hint, the init config, or a part
/// of them.
///
/// A `Value` is the value's raw JSON text, already validated; its accessors
/// read it in place. Nothing is copied unless a string holding an escape is
/// read as a string.
///
/// # Examples
///
/// ```
/// use dbroute_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct ShardRouter;
///
/// impl Router for ShardRouter {
///     fn db_for_read(&mut self, op: &Operation<'_>) -> Decision<'_> {
///         match op.hint("shard").and_then(|v| v.as_i64()) {
///             Some(n) if n % 2 == 0 => Decision::use_connection("even"),
///             Some(_) => Decision::use_connection("odd"),
///             None => Decision::no_opinion(),
///         }
///     }
/// }
///
/// let mut router = ShardRouter;
/// let answer = dbroute_sdk::testing::read(
///     &mut router,
///     r#"{"op":"read","model":{"name":"Order"},"hints":{"shard":7}}"#,
/// );
/// assert_eq!(answer.connection(), Some("odd"));
/// ```
#[derive(Clone, Copy)]
pub struct Value<'a> {
    raw: &'a str,
}

impl<'a> Value<'a> {
    pub(crate) const NULL: Value<'static> = Value { raw: "null" };

    /// `raw` must be one well-formed JSON value, without surrounding
    /// whitespace.
    #[inline(always)]
    pub(crate) fn validated(raw: &'a str) -> Self {
        Value { raw }
    }

    pub(crate) const EMPTY_OBJECT: Value<'static> = Value { raw: "{}" };
    pub(crate) const EMPTY_ARRAY: Value<'static> = Value { raw: "[]" };

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self.raw.as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') | None => Kind::Null,
            Some(_) => Kind::Number,
        }
    }

    /// The value's JSON text, exactly as the host wrote it (for example to
    /// hash a shard key whatever its type).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer (no fraction, no
    /// exponent) in range.
    ///
    /// ```
    /// # let json = dbroute_sdk::testing::value;
    /// assert_eq!(json("-42").as_i64(), Some(-42));
    /// assert_eq!(json("4.2").as_i64(), None);
    /// assert_eq!(json("\"42\"").as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        let (negative, digits) = match self.raw.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, self.raw),
        };
        if digits.is_empty() {
            return None;
        }
        let mut n: i64 = 0;
        for b in digits.bytes() {
            if !b.is_ascii_digit() {
                return None;
            }
            let d = i64::from(b - b'0');
            n = n.checked_mul(10)?;
            n = if negative { n.checked_sub(d)? } else { n.checked_add(d)? };
        }
        Some(n)
    }

    /// The value as a `u64`, if it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        if self.raw.is_empty() {
            return None;
        }
        let mut n: u64 = 0;
        for b in self.raw.bytes() {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        Some(n)
    }

    /// The value as an `f64`, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        if self.kind() == Kind::Number {
            self.raw.parse().ok()
        } else {
            None
        }
    }

    /// The value as a string, if it is one: borrowed from the input, or
    /// decoded into an owned string when it holds an escape.
    ///
    /// ```
    /// # let json = dbroute_sdk::testing::value;
    /// assert_eq!(json(r#""acme""#).as_str().as_deref(), Some("acme"));
    /// assert_eq!(json(r#""caf\u00e9""#).as_str().as_deref(), Some("café"));
    /// assert_eq!(json("7").as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        self.string_contents().map(RawStr::to_cow)
    }

    /// The contents of a string value, still escaped.
    #[inline]
    fn string_contents(&self) -> Option<RawStr<'a>> {
        if self.kind() != Kind::String {
            return None;
        }
        let raw = self.raw.get(1..self.raw.len() - 1)?;
        Some(RawStr {
            raw,
            escaped: raw.as_bytes().contains(&b'\\'),
        })
    }

    /// The member `key` of an object (the last one, should the key repeat);
    /// `None` if this is not an object or has no such member.
    ///
    /// ```
    /// # let json = dbroute_sdk::testing::value;
    /// let user = json(r#"{"id": 7, "org": {"name": "acme"}}"#);
    /// let org = user.get("org").and_then(|org| org.get("name"));
    /// assert!(org.is_some_and(|name| name == "acme"));
    /// assert!(user.get("missing").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        if self.raw.len() == 2 {
            return None; // `{}` (no hints: the common case) or not an object.
        }
        let mut members = self.members();
        let mut found = None;
        while let Some((k, value)) = members.next_span() {
            if members.key_is(k, key) {
                found = Some(value);
            }
        }
        let (start, end) = found?;
        Some(Value {
            raw: self.raw.get(start..end)?,
        })
    }

    /// A walk over the members of an object (none if this is not one).
    fn members(&self) -> Members<'a> {
        let b = self.raw.as_bytes();
        Members {
            raw: self.raw,
            pos: if b.first() == Some(&b'{') { ws(b, 1) } else { usize::MAX },
        }
    }

    /// The elements of an array, in order; nothing if this is not an array.
    ///
    /// ```
    /// # let json = dbroute_sdk::testing::value;
    /// let ids: Vec<i64> = json("[1, 2, 3]").items().filter_map(|v| v.as_i64()).collect();
    /// assert_eq!(ids, [1, 2, 3]);
    /// ```
    pub fn items(&self) -> Items<'a> {
        let b = self.raw.as_bytes();
        let pos = match b.first() {
            Some(b'[') => ws(b, 1),
            _ => usize::MAX,
        };
        Items {
            raw: self.raw,
            pos: if b.get(pos) == Some(&b']') { usize::MAX } else { pos },
        }
    }

    /// The members of an object, in order, as `(key, value)`; nothing if this
    /// is not an object.
    ///
    /// ```
    /// # let json = dbroute_sdk::testing::value;
    /// let keys: Vec<_> = json(r#"{"a": 1, "b": [2]}"#).entries().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            members: self.members(),
        }
    }

    /// Whether this is a string equal to `s`; never allocates.
    fn str_eq(&self, s: &str) -> bool {
        self.string_contents().is_some_and(|raw| raw.eq_str(s))
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// A value equals a `str` when it is a JSON string with that content.
impl PartialEq<str> for Value<'_> {
    fn eq(&self, other: &str) -> bool {
        self.str_eq(other)
    }
}

/// A value equals a `&str` when it is a JSON string with that content.
impl PartialEq<&str> for Value<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.str_eq(other)
    }
}

/// The elements of a JSON array: see [`Value::items`].
#[derive(Clone, Debug)]
pub struct Items<'a> {
    raw: &'a str,
    /// Where the next element starts; `usize::MAX` when there is none.
    pos: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.pos == usize::MAX {
            return None;
        }
        let b = self.raw.as_bytes();
        let start = self.pos;
        let end = skip_valid(b, start);
        let next = ws(b, end);
        self.pos = if b.get(next) == Some(&b',') {
            ws(b, next + 1)
        } else {
            usize::MAX
        };
        Some(Value {
            raw: self.raw.get(start..end)?,
        })
    }
}

/// A walk over the members of a validated object: byte spans.
#[derive(Clone, Debug)]
struct Members<'a> {
    raw: &'a str,
    /// Where the next member's key starts; `usize::MAX` when there is none.
    pos: usize,
}

impl<'a> Members<'a> {
    /// The next member: the span of its key's contents and of its value.
    #[inline]
    fn next_span(&mut self) -> Option<((usize, usize), (usize, usize))> {
        let b = self.raw.as_bytes();
        let i = self.pos;
        if b.get(i) != Some(&b'"') {
            self.pos = usize::MAX;
            return None;
        }
        let key_end = end_of_valid_string(b, i + 1);
        let start = ws(b, ws(b, key_end) + 1);
        let end = if b.get(start) == Some(&b'"') {
            end_of_valid_string(b, start + 1)
        } else {
            skip_valid(b, start)
        };
        let next = ws(b, end);
        self.pos = if b.get(next) == Some(&b',') {
            ws(b, next + 1)
        } else {
            usize::MAX
        };
        Some(((i + 1, key_end - 1), (start, end)))
    }

    /// Whether the key at `span` is `name`.
    #[inline]
    fn key_is(&self, (start, end): (usize, usize), name: &str) -> bool {
        let b = self.raw.as_bytes();
        let Some(key) = b.get(start..end) else {
            return false;
        };
        if key.contains(&b'\\') {
            return self
                .raw
                .get(start..end)
                .is_some_and(|raw| RawStr { raw, escaped: true }.eq_str(name));
        }
        let name = name.as_bytes();
        key.len() == name.len() && key.iter().zip(name).all(|(a, b)| a == b)
    }

    fn key(&self, (start, end): (usize, usize)) -> Option<RawStr<'a>> {
        let raw = self.raw.get(start..end)?;
        Some(RawStr {
            raw,
            escaped: raw.as_bytes().contains(&b'\\'),
        })
    }
}

/// The members of a JSON object: see [`Value::entries`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    members: Members<'a>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (Cow<'a, str>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, (start, end)) = self.members.next_span()?;
        let key = self.members.key(key)?.to_cow();
        let value = Value {
            raw: self.members.raw.get(start..end)?,
        };
        Some((key, value))
    }
}

/// Strings of the input: a model's tags, or the registered connections.
///
/// Each item is borrowed from the input unless it holds an escape.
#[derive(Clone, Debug)]
pub struct Strings<'a> {
    items: Items<'a>,
}

impl<'a> Strings<'a> {
    /// `list` must be a validated array of strings.
    pub(crate) fn new(list: Value<'a>) -> Self {
        Strings { items: list.items() }
    }
}

impl<'a> Iterator for Strings<'a> {
    type Item = Cow<'a, str>;

    fn next(&mut self) -> Option<Cow<'a, str>> {
        self.items.next().and_then(|v| v.as_str())
    }
}

/// Whether the array of strings `list` holds `s`; never allocates.
pub(crate) fn list_contains(list: Value<'_>, s: &str) -> bool {
    list.items().any(|v| v.str_eq(s))
}

/// Parses one standalone JSON value (used by the testing helpers).
pub(crate) fn parse_value(text: &str) -> Result<Value<'_>> {
    let mut cur = Cursor::new(text);
    let value = cur.value()?;
    cur.finish()?;
    Ok(value)
}
