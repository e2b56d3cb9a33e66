// dbroute.ts: the dbroute router ABI, version 1.2 (docs/ABI.md), for
// AssemblyScript routers (compiled with `--runtime stub`).
//
// A router's entry file re-exports the fixed exports and writes its own
// db_for_read / db_for_write / allow_migrate / dbroute_init, each a few
// lines around its policy (see reference.ts):
//
//   export { dbroute_abi_version, dbroute_abi_minor, dbroute_input, dbroute_deterministic } from "./dbroute";
//   export function db_for_read(ptr: usize, len: usize): i64 {
//     if (!Op.parse(ptr, len)) return malformed();
//     return Op.modelIs("Event") ? use("analytics") : use("replica");
//   }
//
// What it gives: the input buffer (dbroute_input), views of the host's JSON
// (Json values, Op, Migration, initConfig, StrMap for the configuration),
// the answers (use, noOpinion, refuse, Message for refusals put together
// from pieces, YES / NO / NO_OPINION), the connections' state (ABI 1.2:
// State, filled by dbroute_state; a router that reads it re-exports
// dbroute_state and dbroute_abi_minor_state as dbroute_abi_minor) and the
// log (log, the one import a router may have).
//
// A Json value is a u64: the position of its raw text in memory (high 32
// bits) and its length (low 32 bits; 0: absent). A string keeps its quotes
// and escapes; strIs and the map compare it decoded (every JSON escape,
// \uXXXX with surrogate pairs), so "Ev\u0065nt" is "Event".
//
// The scanner never allocates and never reads outside the input. It is not
// a validator: it finds members in well-formed JSON (what the host writes);
// on malformed JSON it finds nothing, or answers "malformed input".
// Op.parse and Migration.parse read the input in one pass over its members
// and the model's, keeping op (db for allow_migrate), model, name, tags,
// hints, origin and app and skipping the others; a hint is looked up only when the router
// asks for it. An input whose members, or the model's, are not
// `"key": value` pairs between commas is malformed. Limits:
// nesting inside skipped values is matched by bracket count, not type; a
// StrMap has a fixed capacity (init refuses a larger map, saying so); a
// refusal Message is cut at 1024 bytes, at a character boundary. The only
// allocations are the input buffer (grown when a larger input comes) and
// each StrMap's storage, made once.

// ---- answers ----------------------------------------------------------------

// allow_migrate and allow_relation.
export const YES: i32 = 1;
export const NO: i32 = 0;
export const NO_OPINION: i32 = -1;

function text(ptr: usize, len: usize, refusal: bool): i64 {
  let r = (<u64>ptr << 32) | <u64>len;
  if (refusal) r |= <u64>1 << 63;
  return <i64>r;
}

// No opinion: the next router is asked, then `default`.
export function noOpinion(): i64 {
  return 0;
}

// The buffer for a connection name given as a string (names are at most 64
// bytes; a longer one is cut and the host reports it as a bad name).
const NAME_BUF: usize = memory.data(256);

// Use this connection.
export function use(name: string): i64 {
  return text(NAME_BUF, encode(name, NAME_BUF, 256), false);
}

// Use the connection whose UTF-8 name is the `len` bytes at `ptr` (which
// must stay put until the next call, as a StrMap's values do).
export function useBytes(ptr: usize, len: usize): i64 {
  return text(ptr, len, false);
}

// Refuse the operation with this message.
export function refuse(message: string): i64 {
  Message.clear();
  Message.push(message);
  return Message.refusal();
}

// Malformed input: refused by reads, writes and init (with a message), a
// trap in allow_migrate (which cannot carry one), as the Rust SDK does.
const MALFORMED = "malformed input: not an operation object with a string model.name";

export function malformed(): i64 {
  return refuse(MALFORMED);
}

const MSG_CAP: usize = 1024;
const MSG_BUF: usize = memory.data(<i32>MSG_CAP);

// A refusal message put together from pieces, in a static buffer.
export class Message {
  static len: usize = 0;

  static clear(): void {
    Message.len = 0;
  }

  // Appends a string, cut at a character boundary when the buffer is full.
  static push(s: string): void {
    Message.len += encode(s, MSG_BUF + Message.len, MSG_CAP - Message.len);
  }

  // Appends the decoded text of the JSON string v.
  static pushStr(v: u64): void {
    if (!isString(v)) return;
    cur = ptrOf(v) + 1;
    const e = ptrOf(v) + lenOf(v) - 1;
    bad = false;
    while (cur < e) {
      const cp = nextChar(e);
      if (cp < 0) return;
      const n = utf8Len(cp);
      if (n > MSG_CAP - Message.len) return;
      putUtf8(cp, MSG_BUF + Message.len);
      Message.len += n;
    }
  }

  // Refuse with the message built since clear().
  static refusal(): i64 {
    return text(MSG_BUF, Message.len, true);
  }
}

// ---- log --------------------------------------------------------------------

export const ERROR = 0;
export const WARN = 1;
export const INFO = 2;
export const DEBUG = 3;
export const TRACE = 4;

// @ts-ignore: decorator
@external("dbroute", "log")
declare function hostLog(level: i32, ptr: usize, len: usize): void;

const LOG_BUF: usize = memory.data(1024);

// A message for the host's log (cut at 1024 bytes).
export function log(level: i32, message: string): void {
  hostLog(level, LOG_BUF, encode(message, LOG_BUF, 1024));
}

// Stops the call (a trap: the host reports a router fault). The helper
// passes `--use abort=assembly/dbroute/trap`, so no `env.abort` import.
export function trap(message: string | null, file: string | null, line: u32, column: u32): void {
  unreachable();
}

// ---- UTF-8 ------------------------------------------------------------------

function utf8Len(cp: i32): usize {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

function putUtf8(cp: i32, at: usize): void {
  if (cp < 0x80) {
    store<u8>(at, cp);
  } else if (cp < 0x800) {
    store<u8>(at, 0xC0 | (cp >> 6));
    store<u8>(at + 1, 0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    store<u8>(at, 0xE0 | (cp >> 12));
    store<u8>(at + 1, 0x80 | ((cp >> 6) & 0x3F));
    store<u8>(at + 2, 0x80 | (cp & 0x3F));
  } else {
    store<u8>(at, 0xF0 | (cp >> 18));
    store<u8>(at + 1, 0x80 | ((cp >> 12) & 0x3F));
    store<u8>(at + 2, 0x80 | ((cp >> 6) & 0x3F));
    store<u8>(at + 3, 0x80 | (cp & 0x3F));
  }
}

// The code point of `s` at index i (a surrogate pair makes one).
function codePoint(s: string, i: i32): i32 {
  const c = s.charCodeAt(i);
  if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.length) {
    const lo = s.charCodeAt(i + 1);
    if (lo >= 0xDC00 && lo <= 0xDFFF) return 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
  }
  return c;
}

// Writes s as UTF-8 at `at`, at most `cap` bytes, whole characters only;
// returns the bytes written.
function encode(s: string, at: usize, cap: usize): usize {
  // ASCII (connection names are) four code units at a time, then one at a
  // time, then the rest.
  const units = changetype<usize>(s);
  const len = s.length;
  let n: usize = 0;
  let i = 0;
  while (i + 4 <= len && n + 4 <= cap) {
    const w = load<u64>(units + (<usize>i << 1));
    if (w & 0xFF80FF80FF80FF80) break;
    const lo = (w & 0xFF) | ((w >> 8) & 0xFF00);
    const hi = ((w >> 16) & 0xFF0000) | ((w >> 24) & 0xFF000000);
    store<u32>(at + n, <u32>(lo | hi));
    n += 4;
    i += 4;
  }
  while (i < len && n < cap) {
    const c = load<u16>(units + (<usize>i << 1));
    if (c >= 0x80) break;
    store<u8>(at + n, <u8>c);
    n++;
    i++;
  }
  while (i < len) {
    const cp = codePoint(s, i);
    const k = utf8Len(cp);
    if (k > cap - n) break;
    putUtf8(cp, at + n);
    n += k;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return n;
}

// ---- JSON -------------------------------------------------------------------

export function ptrOf(v: u64): usize {
  return <usize>(v >> 32);
}
export function lenOf(v: u64): usize {
  return <usize>(v & 0xFFFFFFFF);
}
function json(p: usize, e: usize): u64 {
  return (<u64>p << 32) | <u64>(e - p);
}

export function isAbsent(v: u64): bool {
  return lenOf(v) == 0;
}
export function isString(v: u64): bool {
  return lenOf(v) >= 2 && load<u8>(ptrOf(v)) == 0x22;
}
export function isObject(v: u64): bool {
  return lenOf(v) >= 2 && load<u8>(ptrOf(v)) == 0x7B;
}
export function isArray(v: u64): bool {
  return lenOf(v) >= 2 && load<u8>(ptrOf(v)) == 0x5B;
}
export function isNull(v: u64): bool {
  return lenOf(v) == 4 && load<u32>(ptrOf(v)) == 0x6C6C756E; // "null"
}

// @ts-ignore: decorator
@inline function isWs(c: u8): bool {
  return c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D;
}

// @ts-ignore: decorator
@inline function ws(p: usize, e: usize): usize {
  // None, the common case, is told without a loop.
  if (p < e && load<u8>(p) > 0x20) return p;
  while (p < e && isWs(load<u8>(p))) p++;
  return p;
}

// Past the string that starts at p (a '"'), or 0. Eight bytes at a time
// while eight are left: the first '"' or '\\' among them is found with the
// zero-byte test (x - 0x01..) & ~x & 0x80.., whose lowest set bit is exact.
// @ts-ignore: decorator
@inline function skipStr(p: usize, e: usize): usize {
  const ones: u64 = 0x0101010101010101;
  const highs: u64 = 0x8080808080808080;
  p++;
  while (p + 8 <= e) {
    const w = load<u64>(p);
    const q = w ^ (ones * 0x22);
    const b = w ^ (ones * 0x5C);
    const hit = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
    if (!hit) {
      p += 8;
      continue;
    }
    p += <usize>(ctz<u64>(hit) >> 3);
    if (load<u8>(p) == 0x22) return p + 1;
    p += 2;
  }
  for (; p < e; p++) {
    const c = load<u8>(p);
    if (c == 0x22) return p + 1;
    if (c == 0x5C) p++;
  }
  return 0;
}

// Past the value that starts at p, or 0 when there is none.
function skip(p: usize, e: usize): usize {
  if (p >= e) return 0;
  const first = load<u8>(p);
  if (first == 0x22) return skipStr(p, e);
  if (first == 0x7B || first == 0x5B) {
    let depth = 0;
    while (p < e) {
      const c = load<u8>(p);
      if (c == 0x22) {
        p = skipStr(p, e);
        if (!p) return 0;
        continue;
      }
      if (c == 0x7B || c == 0x5B) depth++;
      if (c == 0x7D || c == 0x5D) {
        depth--;
        if (depth == 0) return p + 1;
      }
      p++;
    }
    return 0;
  }
  // A number, true, false or null: up to a delimiter, blank, quote or
  // bracket.
  const start = p;
  while (p < e) {
    const c = load<u8>(p);
    if (c == 0x2C || c == 0x7D || c == 0x5D || c == 0x3A || isWs(c)) break;
    if (c == 0x22 || c == 0x7B || c == 0x5B) break;
    p++;
  }
  return p > start ? p : 0;
}

function hex4(p: usize): i32 {
  let v = 0;
  for (let i: usize = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + i);
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

// The decoder's position in a string's contents, and whether it met a bad
// escape: globals, so that nothing is allocated.
let cur: usize = 0;
let bad = false;

// The next code point of the string contents at `cur` (before e), moving
// `cur` past it; -1 (and bad = true) for a bad escape.
function nextChar(e: usize): i32 {
  const b = <i32>load<u8>(cur);
  if (b != 0x5C) {
    // Raw UTF-8 (the host writes valid UTF-8).
    const n: usize = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (e - cur < n) return fail();
    let cp = n == 1 ? b : n == 2 ? b & 0x1F : n == 3 ? b & 0x0F : b & 0x07;
    for (let i: usize = 1; i < n; i++) cp = (cp << 6) | (<i32>load<u8>(cur + i) & 0x3F);
    cur += n;
    return cp;
  }
  if (e - cur < 2) return fail();
  const c = <i32>load<u8>(cur + 1);
  cur += 2;
  if (c == 0x22 || c == 0x5C || c == 0x2F) return c;
  if (c == 0x62) return 0x08;
  if (c == 0x66) return 0x0C;
  if (c == 0x6E) return 0x0A;
  if (c == 0x72) return 0x0D;
  if (c == 0x74) return 0x09;
  if (c != 0x75 || e - cur < 4) return fail();
  let cp = hex4(cur);
  cur += 4;
  if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return fail();
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (e - cur < 6 || load<u8>(cur) != 0x5C || load<u8>(cur + 1) != 0x75) return fail();
    const lo = hex4(cur + 2);
    if (lo < 0xDC00 || lo > 0xDFFF) return fail();
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    cur += 6;
  }
  return cp;
}

function fail(): i32 {
  bad = true;
  return -1;
}

// Whether v is a JSON string whose decoded text is `lit`. Plain ASCII is
// compared as it is; an escape or a multi-byte character is decoded.
export function strIs(v: u64, lit: string): bool {
  if (!isString(v)) return false;
  cur = ptrOf(v) + 1;
  const e = ptrOf(v) + lenOf(v) - 1;
  bad = false;
  const n = lit.length;
  const units = changetype<usize>(lit);
  let i = 0;
  while (cur < e) {
    const b = <i32>load<u8>(cur);
    if (b != 0x5C && b < 0x80) {
      if (i >= n || <i32>load<u16>(units + (<usize>i << 1)) != b) return false;
      i++;
      cur++;
      continue;
    }
    const cp = nextChar(e);
    if (cp < 0 || i >= n || codePoint(lit, i) != cp) return false;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return i == n;
}

// Whether v is a JSON string whose decoded text is the `n` UTF-8 bytes at p.
export function strIsBytes(v: u64, p: usize, n: usize): bool {
  if (!isString(v)) return false;
  cur = ptrOf(v) + 1;
  const e = ptrOf(v) + lenOf(v) - 1;
  bad = false;
  let i: usize = 0;
  const scratch = LOG_BUF; // 4 bytes, used only between two stores here
  while (cur < e) {
    const b = load<u8>(cur);
    if (b != 0x5C && b < 0xC0) {
      if (i == n || b != load<u8>(p + i)) return false;
      i++;
      cur++;
      continue;
    }
    const cp = nextChar(e);
    if (cp < 0) return false;
    const k = utf8Len(cp);
    if (k > n - i) return false;
    putUtf8(cp, scratch);
    for (let j: usize = 0; j < k; j++) if (load<u8>(scratch + j) != load<u8>(p + i + j)) return false;
    i += k;
  }
  return i == n;
}

// Decodes the string v to UTF-8 at `out` (at most `cap` bytes): its length,
// or -1 when v is not a string, has a bad escape, or does not fit.
export function strCopy(v: u64, out: usize, cap: usize): isize {
  if (!isString(v)) return -1;
  cur = ptrOf(v) + 1;
  const e = ptrOf(v) + lenOf(v) - 1;
  bad = false;
  let n: usize = 0;
  while (cur < e) {
    const cp = nextChar(e);
    if (cp < 0) return -1;
    const k = utf8Len(cp);
    if (k > cap - n) return -1;
    putUtf8(cp, out + n);
    n += k;
  }
  return <isize>n;
}

// An object's members, one at a time: set `memberAt` to the object's
// position, then call nextMember(end) while it is true; each call leaves
// the member in memberKey and memberValue.
let memberAt: usize = 0;
let memberKey: u64 = 0;
let memberValue: u64 = 0;

function nextMember(e: usize): bool {
  let p = ws(memberAt, e);
  if (p < e && (load<u8>(p) == 0x2C || load<u8>(p) == 0x7B)) p = ws(p + 1, e);
  if (p >= e || load<u8>(p) != 0x22) return false;
  const k = p;
  p = skipStr(p, e);
  if (!p) return false;
  memberKey = json(k, p);
  p = ws(p, e);
  if (p >= e || load<u8>(p) != 0x3A) return false;
  p = ws(p + 1, e);
  const v = p;
  p = skip(p, e);
  if (!p) return false;
  memberValue = json(v, p);
  memberAt = p;
  return true;
}

// The member `key` of the object obj (the last one, should it repeat);
// absent (0) when obj is not an object or has no such member.
export function get(obj: u64, key: string): u64 {
  if (!isObject(obj)) return 0;
  let found: u64 = 0;
  memberAt = ptrOf(obj);
  const e = ptrOf(obj) + lenOf(obj);
  while (nextMember(e)) {
    const value = memberValue;
    const at = memberAt;
    if (strIs(memberKey, key)) found = value;
    memberAt = at;
  }
  return found;
}

// Whether the array arr holds the string s.
export function hasStr(arr: u64, s: string): bool {
  if (!isArray(arr)) return false;
  let p = ptrOf(arr) + 1;
  const e = ptrOf(arr) + lenOf(arr) - 1;
  while (p < e) {
    p = ws(p, e);
    const v = p;
    p = skip(p, e);
    if (!p) return false;
    if (strIs(json(v, p), s)) return true;
    p = ws(p, e);
    if (p >= e || load<u8>(p) != 0x2C) return false;
    p++;
  }
  return false;
}

// The input at ptr as a JSON object; absent when it is not one.
function whole(ptr: usize, len: usize): u64 {
  const e = ptr + len;
  const p = ws(ptr, e);
  const end = skip(p, e);
  if (!end || load<u8>(p) != 0x7B) return 0;
  return json(p, end);
}

// The parsers below read the input in one pass over the top-level object,
// the model object included: each member is read once, unknown ones
// skipped; the last of a repeated member counts, as in get. `walkAt` is
// the position of the walk: just past an object's '{', then past each
// member's value.
let walkAt: usize = 0;

// Not a key: the object is malformed.
const BAD: u64 = <u64>-1;

// The next member's key, walkAt then at its value; 0 at the object's '}'
// (walkAt past it); BAD when the object is malformed.
// @ts-ignore: decorator
@inline function walkKey(e: usize, first: bool): u64 {
  let p = ws(walkAt, e);
  if (p >= e) return BAD;
  let c = load<u8>(p);
  if (c == 0x7D) {
    walkAt = p + 1;
    return 0;
  }
  if (!first) {
    if (c != 0x2C) return BAD;
    p = ws(p + 1, e);
    if (p >= e) return BAD;
    c = load<u8>(p);
  }
  if (c != 0x22) return BAD;
  const k = p;
  p = skipStr(p, e);
  if (!p) return BAD;
  const key = json(k, p);
  p = ws(p, e);
  if (p >= e || load<u8>(p) != 0x3A) return BAD;
  walkAt = ws(p + 1, e);
  return key;
}

// The value at walkAt, walkAt then past it; 0 when there is none.
// @ts-ignore: decorator
@inline function walkValue(e: usize): u64 {
  const v = walkAt;
  const end = v < e && load<u8>(v) == 0x22 ? skipStr(v, e) : skip(v, e);
  if (!end) return 0;
  walkAt = end;
  return json(v, end);
}

// Whether the key k is the ASCII name lit. An escape makes a string's text
// longer than its decoded bytes, so a key of lit.length + 2 bytes is
// compared as it is, and only a longer one that starts with an escape or
// with lit's first character is decoded.
// @ts-ignore: decorator
@inline function keyIs(k: u64, lit: string): bool {
  const n = <usize>lit.length;
  const len = lenOf(k);
  const p = ptrOf(k) + 1;
  const units = changetype<usize>(lit);
  if (len == n + 2) {
    for (let j: usize = 0; j < n; j++) {
      if (<u32>load<u8>(p + j) != <u32>load<u16>(units + (j << 1))) return false;
    }
    return true;
  }
  if (len <= n + 2) return false;
  const first = <u32>load<u8>(p);
  return (first == 0x5C || first == <u32>load<u16>(units)) && strIs(k, lit);
}

// What parseFields read: `op` (or `db`), the model, its name, tags and
// app, the hints, and `origin` (or the top-level `app`).
let fieldFirst: u64 = 0;
let fieldModel: u64 = 0;
let fieldName: u64 = 0;
let fieldTags: u64 = 0;
let fieldModelApp: u64 = 0;
let fieldHints: u64 = 0;
let fieldExtra: u64 = 0;

// Reads a db_for_read / db_for_write input (first: "op", extra: "origin")
// or an allow_migrate one ("db", "app") into the field* globals; false
// when its members, or the model's, are not `"key": value` pairs between
// commas.
function parseFields(ptr: usize, len: usize, first: string, extra: string): bool {
  fieldFirst = fieldModel = fieldName = fieldTags = fieldModelApp = fieldHints = fieldExtra = 0;
  const e = ptr + len;
  const p = ws(ptr, e);
  if (p >= e || load<u8>(p) != 0x7B) return false;
  walkAt = p + 1;
  for (let k = walkKey(e, true); k; k = walkKey(e, false)) {
    if (k == BAD) return false;
    if (keyIs(k, "model")) {
      fieldName = fieldTags = fieldModelApp = 0;
      const v = walkAt;
      if (v < e && load<u8>(v) == 0x7B) {
        walkAt = v + 1;
        for (let mk = walkKey(e, true); mk; mk = walkKey(e, false)) {
          if (mk == BAD) return false;
          const value = walkValue(e);
          if (!value) return false;
          if (keyIs(mk, "name")) fieldName = value;
          else if (keyIs(mk, "tags")) fieldTags = value;
          else if (keyIs(mk, "app")) fieldModelApp = value;
        }
        fieldModel = json(v, walkAt);
      } else {
        fieldModel = walkValue(e);
        if (!fieldModel) return false;
      }
      continue;
    }
    const value = walkValue(e);
    if (!value) return false;
    if (keyIs(k, first)) fieldFirst = value;
    else if (keyIs(k, "hints")) fieldHints = value;
    else if (keyIs(k, extra)) fieldExtra = value;
  }
  return true;
}

// The db_for_read or db_for_write input of this call.
export class Op {
  static op: u64 = 0; // "read" or "write"
  static model: u64 = 0; // the model object
  static name: u64 = 0; // model.name, a string
  static tags: u64 = 0; // model.tags, an array of strings, or absent
  static hints: u64 = 0; // an object, or absent
  static origin: u64 = 0; // the connection the row was read from, a string, or absent (ABI 1.1)

  // Reads the input; false when it is malformed (no string model.name).
  static parse(ptr: usize, len: usize): bool {
    const ok = parseFields(ptr, len, "op", "origin");
    Op.op = fieldFirst;
    Op.model = fieldModel;
    Op.name = fieldName;
    Op.tags = fieldTags;
    Op.hints = fieldHints;
    Op.origin = fieldExtra;
    return ok && isString(Op.name);
  }

  // The hint `key`, or absent.
  static hint(key: string): u64 {
    return get(Op.hints, key);
  }
  // Whether the model carries `tag`.
  static hasTag(tag: string): bool {
    return hasStr(Op.tags, tag);
  }
  // Whether the model is called `name`.
  static modelIs(name: string): bool {
    return strIs(Op.name, name);
  }
  // Whether the operation's origin is `name` (false when it has none).
  static originIs(name: string): bool {
    return strIs(Op.origin, name);
  }
}

// The allow_migrate input of this call: a model, or (ABI 1.1, for a router
// that re-exports dbroute_abi_minor) an app label alone.
export class Migration {
  static db: u64 = 0; // the connection, a string
  static model: u64 = 0; // the model object, or absent (an app alone)
  static name: u64 = 0; // model.name, a string, or absent (an app alone)
  static app: u64 = 0; // the input's app (asked without a model), else model.app; a string, or absent
  static hints: u64 = 0; // an object, or absent

  // Reads the input; on malformed input (no string db; no model with a
  // string name, nor an app), logs and traps (allow_migrate cannot carry a
  // message).
  static parse(ptr: usize, len: usize): void {
    const ok = parseFields(ptr, len, "db", "app");
    Migration.db = fieldFirst;
    Migration.model = fieldModel;
    Migration.name = fieldName;
    Migration.app = isString(fieldExtra) ? fieldExtra : fieldModelApp;
    Migration.hints = fieldHints;
    const named = Migration.model ? isString(Migration.name) : isString(fieldExtra);
    if (!ok || !named || !isString(Migration.db)) {
      log(ERROR, MALFORMED);
      unreachable();
    }
  }
}

// The dbroute_init input: its config (absent when the input is malformed).
export function initConfig(ptr: usize, len: usize): u64 {
  return get(whole(ptr, len), "config");
}

// A map of decoded string keys and values with a fixed capacity; its
// storage is allocated once, when it is made.
export class StrMap {
  count: i32 = 0;
  used: usize = 0;
  // Per entry: key offset, key length, value offset, value length (u32s).
  entries: usize;
  bytes: usize;

  constructor(public maxEntries: i32, public maxBytes: usize) {
    this.entries = heap.alloc(<usize>maxEntries * 16);
    this.bytes = heap.alloc(maxBytes);
  }

  private put(v: u64, slot: usize): bool {
    const n = strCopy(v, this.bytes + this.used, this.maxBytes - this.used);
    if (n < 0) return false;
    store<u32>(slot, <u32>this.used);
    store<u32>(slot + 4, <u32>n);
    this.used += <usize>n;
    return true;
  }

  // Reads config.<key>, an object whose values are strings (emptied
  // first). Missing or null: empty. Returns 0, or a refusal for
  // dbroute_init: "config.<key> must be an object whose values are strings".
  fromConfig(config: u64, key: string): i64 {
    this.count = 0;
    this.used = 0;
    const map = get(config, key);
    if (isAbsent(map) || isNull(map)) return 0;
    Message.clear();
    Message.push("config.");
    Message.push(key);
    if (!isObject(map)) {
      Message.push(" must be an object whose values are strings");
      return Message.refusal();
    }
    memberAt = ptrOf(map);
    const e = ptrOf(map) + lenOf(map);
    while (nextMember(e)) {
      const k = memberKey;
      const v = memberValue;
      const at = memberAt;
      if (!isString(v)) {
        Message.push(" must be an object whose values are strings");
        return Message.refusal();
      }
      const slot = this.entries + <usize>this.count * 16;
      if (this.count == this.maxEntries || !this.put(k, slot) || !this.put(v, slot + 8)) {
        Message.push(" is too large for this router (or holds a bad escape)");
        return Message.refusal();
      }
      this.count++;
      memberAt = at;
    }
    return 0;
  }

  // The connection for the key the JSON string `key` holds (the last one,
  // as in JSON), as an answer; noOpinion() (0) when `key` is not a string
  // or not in the map.
  get(key: u64): i64 {
    for (let i = this.count - 1; i >= 0; i--) {
      const slot = this.entries + <usize>i * 16;
      if (strIsBytes(key, this.bytes + load<u32>(slot), load<u32>(slot + 4))) {
        return useBytes(this.bytes + load<u32>(slot + 8), load<u32>(slot + 12));
      }
    }
    return 0;
  }
}

// ---- the connections' state (ABI 1.2) ---------------------------------------

// A JSON whole number (no sign, fraction or exponent); -1 for null or
// absent, -2 for anything else.
export function wholeNumber(v: u64): i64 {
  if (isAbsent(v) || isNull(v)) return -1;
  let n: i64 = 0;
  const p = ptrOf(v);
  for (let i: usize = 0; i < lenOf(v); i++) {
    const c = load<u8>(p + i);
    if (c < 0x30 || c > 0x39 || n > 0x0CCCCCCCCCCCCCCC) return -2;
    n = n * 10 + <i64>(c - 0x30);
  }
  return n;
}

// Every registered connection's state, in the host's order, as the last
// dbroute_state call told it: at most STATE_MAX connections and
// STATE_BYTES bytes of names (a larger state traps: a fault). Connection i
// is 0 <= i < State.count; its names are kept here, so they can be answered
// with State.use.
const STATE_MAX: i32 = 64;
const STATE_BYTES: usize = 4096;
// Per connection: name offset, name length, replica_of offset, replica_of
// length (0: a primary), healthy (1, 0, -1 not checked yet), then lag_ms
// (4 bytes unused) and lag_bytes (i64, -1 unknown): 40 bytes.
const STATE_ENTRY: usize = 40;

export class State {
  // How many connections; -1 before the first dbroute_state call.
  static count: i32 = -1;
  static entries: usize = 0;
  static bytes: usize = 0;
  static used: usize = 0;

  private static entry(i: i32): usize {
    return State.entries + <usize>i * STATE_ENTRY;
  }
  // Whether connection i is a replica.
  static isReplica(i: i32): bool {
    return load<u32>(State.entry(i) + 12) != 0;
  }
  // 1 healthy, 0 unhealthy, -1 not checked yet.
  static healthy(i: i32): i32 {
    return load<i32>(State.entry(i) + 16);
  }
  // A replica's lag in milliseconds; -1 unknown (or a primary).
  static lagMs(i: i32): i64 {
    return load<i64>(State.entry(i) + 24);
  }
  // WAL bytes still to replay; -1 unknown.
  static lagBytes(i: i32): i64 {
    return load<i64>(State.entry(i) + 32);
  }
  // Use connection i.
  static use(i: i32): i64 {
    const e = State.entry(i);
    return useBytes(State.bytes + load<u32>(e), load<u32>(e + 4));
  }
  // Use the connection connection i streams from.
  static usePrimaryOf(i: i32): i64 {
    const e = State.entry(i);
    return useBytes(State.bytes + load<u32>(e + 8), load<u32>(e + 12));
  }
  // The index of the connection connection i streams from, or -1 (a
  // primary, or one not in the state).
  static primaryOf(i: i32): i32 {
    const e = State.entry(i);
    const at = State.bytes + load<u32>(e + 8), n = load<u32>(e + 12);
    if (n == 0) return -1;
    for (let j = 0; j < State.count; j++) {
      const f = State.entry(j);
      if (load<u32>(f + 4) != n) continue;
      const name = State.bytes + load<u32>(f);
      let same = true;
      for (let k: u32 = 0; k < n; k++) {
        if (load<u8>(name + k) != load<u8>(at + k)) {
          same = false;
          break;
        }
      }
      if (same) return j;
    }
    return -1;
  }

  private static copy(v: u64, slot: usize): bool {
    const n = strCopy(v, State.bytes + State.used, STATE_BYTES - State.used);
    if (n <= 0) return false;
    store<u32>(slot, <u32>State.used);
    store<u32>(slot + 4, <u32>n);
    State.used += <usize>n;
    return true;
  }

  // Reads the dbroute_state input; false when it is malformed or too large.
  static read(ptr: usize, len: usize): bool {
    if (!State.entries) {
      State.entries = heap.alloc(<usize>STATE_MAX * STATE_ENTRY);
      State.bytes = heap.alloc(STATE_BYTES);
    }
    State.count = 0;
    State.used = 0;
    const list = get(whole(ptr, len), "connections");
    if (!isArray(list)) return false;
    let p = ptrOf(list) + 1;
    const e = ptrOf(list) + lenOf(list) - 1;
    p = ws(p, e);
    while (p < e) {
      const v = p;
      p = skip(p, e);
      if (!p || State.count == STATE_MAX) return false;
      const item = json(v, p);
      if (!isObject(item)) return false;
      const slot = State.entry(State.count);
      if (!State.copy(get(item, "name"), slot)) return false;
      const upstream = get(item, "replica_of");
      store<u32>(slot + 8, 0);
      store<u32>(slot + 12, 0);
      if (!isAbsent(upstream) && !isNull(upstream) && !State.copy(upstream, slot + 8)) return false;
      const healthy = get(item, "healthy");
      const h = lenOf(healthy);
      if (h == 4 && load<u8>(ptrOf(healthy)) == 0x74) store<i32>(slot + 16, 1);
      else if (h == 5 && load<u8>(ptrOf(healthy)) == 0x66) store<i32>(slot + 16, 0);
      else if (h == 0 || isNull(healthy)) store<i32>(slot + 16, -1);
      else return false;
      const lagMs = wholeNumber(get(item, "lag_ms"));
      const lagBytes = wholeNumber(get(item, "lag_bytes"));
      if (lagMs < -1 || lagBytes < -1) return false;
      store<i64>(slot + 24, lagMs);
      store<i64>(slot + 32, lagBytes);
      State.count++;
      p = ws(p, e);
      if (p < e) {
        if (load<u8>(p) != 0x2C) return false;
        p = ws(p + 1, e);
      }
    }
    return true;
  }
}

// ---- the fixed exports (re-export them from the entry file) -----------------

let inputPtr: usize = 0;
let inputCap: usize = 0;

// The buffer the host writes each input to, grown when a larger one comes.
export function dbroute_input(len: i32): usize {
  if (len < 0) return 0;
  if (!inputPtr || <usize>len > inputCap) {
    const cap = max<usize>(<usize>len, 1024);
    inputPtr = inputPtr ? heap.realloc(inputPtr, cap) : heap.alloc(cap);
    inputCap = cap;
  }
  return inputPtr;
}

export function dbroute_abi_version(): i32 {
  return 1;
}

// ABI 1.1: re-export it when the router reads an allow_migrate input with
// an app and no model (Migration.name is then absent): the host sends such
// inputs only to routers that export it. Op.origin needs nothing: the host
// sends it to every router.
export function dbroute_abi_minor(): i32 {
  return 1;
}

// ABI 1.2: re-export it as dbroute_abi_minor, with dbroute_state, when the
// router reads the connections' state (State): the host tells the state
// only to routers that say 2.
export function dbroute_abi_minor_state(): i32 {
  return 2;
}

// The connections' state (ABI 1.2): fills State. Malformed input traps.
export function dbroute_state(ptr: usize, len: usize): i32 {
  if (!State.read(ptr, len)) {
    log(ERROR, "malformed dbroute_state input");
    unreachable();
  }
  return 0;
}

// Re-export it only when the router's answers depend on nothing but the
// input and the init configuration: the host may then cache them.
export function dbroute_deterministic(): i32 {
  return 1;
}
