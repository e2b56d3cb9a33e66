/*
 * dbroute.h: the dbroute router ABI, version 1.2 (docs/ABI.md), for
 * freestanding C compiled with `clang --target=wasm32`.
 *
 * It gives a router author the whole ABI, so that the router's own file
 * holds only its policy:
 *
 *   - the input: `dbroute_input` (a buffer past the module's own memory,
 *     grown on demand), and views of the JSON the host writes there:
 *     `dbroute_op` (op, model, model.name, model.tags, hints, origin),
 *     `dbroute_migration` (db, model.name, app, hints), `dbroute_get`,
 *     `dbroute_str_is`, `dbroute_str_copy`, and a fixed-capacity string map
 *     for the configuration (`dbroute_str_map`);
 *   - the answers: `dbroute_use`, `dbroute_no_opinion`, `dbroute_refuse`,
 *     a message builder for refusals (`dbroute_msg_*`), DBROUTE_YES / NO /
 *     NO_OPINION for allow_migrate and allow_relation;
 *   - the connections' state (ABI 1.2): the `dbroute_state` type (every
 *     connection's name, primary, health and lag, decoded into static
 *     storage) and `dbroute_state_get`, for a router that defines
 *     DBROUTE_CONNECTION_STATE and uses DBROUTE_EXPORT_STATE;
 *   - the log: `dbroute_log`, the one import a router may have;
 *   - the exports: DBROUTE_EXPORT_INIT / READ / WRITE / MIGRATE / RELATION
 *     (and DBROUTE_EXPORT_STATE) wrap the author's functions in the ABI's
 *     exports, and
 *     DBROUTE_EXPORT_DETERMINISTIC declares the answers cacheable.
 *
 * Include it in one .c file: it defines functions and exports. No libc,
 * no allocator: build with
 *
 *   clang --target=wasm32 -std=c11 -O2 -ffreestanding -nostdlib -mbulk-memory \
 *     -Wl,--no-entry -Wl,--strip-all -o router.wasm router.c
 *
 * The JSON scanner reads what a router needs from the host's input without
 * allocating and without ever reading outside it. It is not a validator:
 * it finds members in well-formed JSON (what the host writes), and on
 * malformed JSON it either finds nothing or answers "malformed input".
 * The exports read their input in one pass over its members and the
 * model's, keeping op (db for allow_migrate), model, name, tags, hints,
 * origin and app and skipping the others; a hint is looked up only when the router asks
 * for it. An input whose members, or the model's, are not `"key": value`
 * pairs between commas is malformed.
 * Strings are compared and copied decoded (every escape of JSON, \uXXXX
 * with surrogate pairs included), so "Ev\u0065nt" is "Event". Limits:
 * nesting inside skipped values is matched by bracket count, not type;
 * a configuration map holds at most DBROUTE_MAP_ENTRIES entries and
 * DBROUTE_MAP_BYTES bytes of decoded keys and values (init refuses a larger
 * one, saying so); a refusal message is cut at DBROUTE_MSG_BYTES bytes (at
 * a character boundary).
 */
#ifndef DBROUTE_H
#define DBROUTE_H

#include <stdint.h>

#ifndef DBROUTE_MAP_ENTRIES
#define DBROUTE_MAP_ENTRIES 64
#endif
#ifndef DBROUTE_MAP_BYTES
#define DBROUTE_MAP_BYTES 4096
#endif
#ifndef DBROUTE_MSG_BYTES
#define DBROUTE_MSG_BYTES 1024
#endif

#define DBROUTE_API static __attribute__((unused))
/* The scanner's innermost helpers: inlined into each caller. */
#define DBROUTE__HOT static __attribute__((unused, always_inline))
#define DBROUTE_EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* ---- answers ---------------------------------------------------------- */

/* What db_for_read, db_for_write and dbroute_init return: 0 no opinion
 * (for init: ready), > 0 a connection name, < 0 a refusal. */
typedef int64_t dbroute_result;

/* allow_migrate and allow_relation. */
#define DBROUTE_YES 1
#define DBROUTE_NO 0
#define DBROUTE_NO_OPINION (-1)

DBROUTE_API uint32_t dbroute__strlen(const char *s) {
  uint32_t n = 0;
  while (s[n]) n++;
  return n;
}

DBROUTE_API dbroute_result dbroute__text(const char *ptr, uint32_t len, int refusal) {
  uint64_t r = ((uint64_t)(uintptr_t)ptr << 32) | len;
  if (refusal) r |= (uint64_t)1 << 63;
  return (dbroute_result)r;
}

/* No opinion: the next router is asked, then `default`. */
DBROUTE_API dbroute_result dbroute_no_opinion(void) { return 0; }

/* Use this connection. The bytes must stay put until the next call: a
 * literal, or static storage such as a dbroute_str_map. */
DBROUTE_API dbroute_result dbroute_use_n(const char *name, uint32_t len) {
  return dbroute__text(name, len, 0);
}
DBROUTE_API dbroute_result dbroute_use(const char *name) {
  return dbroute_use_n(name, dbroute__strlen(name));
}

/* Refuse the operation with a message (a literal or static storage). */
DBROUTE_API dbroute_result dbroute_refuse(const char *message) {
  return dbroute__text(message, dbroute__strlen(message), 1);
}

/* A refusal message put together from pieces, in a static buffer. */
static char dbroute__msg[DBROUTE_MSG_BYTES];
static uint32_t dbroute__msg_len;

DBROUTE_API void dbroute_msg_clear(void) { dbroute__msg_len = 0; }

DBROUTE_API void dbroute_msg_push_n(const char *s, uint32_t n) {
  uint32_t room = DBROUTE_MSG_BYTES - dbroute__msg_len;
  if (n > room) {
    /* Cut at a character boundary: never before a continuation byte. */
    n = room;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  }
  for (uint32_t i = 0; i < n; i++) dbroute__msg[dbroute__msg_len + i] = s[i];
  dbroute__msg_len += n;
}
DBROUTE_API void dbroute_msg_push(const char *s) { dbroute_msg_push_n(s, dbroute__strlen(s)); }

/* Refuse with the message built since dbroute_msg_clear(). */
DBROUTE_API dbroute_result dbroute_msg_refuse(void) {
  return dbroute__text(dbroute__msg, dbroute__msg_len, 1);
}

/* ---- log -------------------------------------------------------------- */

enum { DBROUTE_ERROR = 0, DBROUTE_WARN = 1, DBROUTE_INFO = 2, DBROUTE_DEBUG = 3, DBROUTE_TRACE = 4 };

__attribute__((import_module("dbroute"), import_name("log")))
void dbroute__host_log(int32_t level, const char *ptr, int32_t len);

/* A message for the host's log (imported only when a router calls it). */
DBROUTE_API void dbroute_log(int level, const char *message) {
  dbroute__host_log(level, message, (int32_t)dbroute__strlen(message));
}

/* ---- input ------------------------------------------------------------ */

static char *dbroute__in;
static uint32_t dbroute__in_cap;

/* The buffer the host writes each input to: the memory past the module's
 * own pages (nothing else in the module grows memory), grown on demand. */
DBROUTE_EXPORT("dbroute_input") int32_t dbroute_input(int32_t len) {
  if (len < 0) return 0;
  uintptr_t end = (uintptr_t)__builtin_wasm_memory_size(0) * 65536;
  if (!dbroute__in) dbroute__in = (char *)end;
  if ((uint32_t)len > dbroute__in_cap) {
    uintptr_t need = (uintptr_t)dbroute__in + (uint32_t)len;
    if (need > end) {
      uintptr_t pages = (need - end + 65535) / 65536;
      if (__builtin_wasm_memory_grow(0, pages) == (uintptr_t)-1) return 0;
      end += pages * 65536;
    }
    dbroute__in_cap = (uint32_t)(end - (uintptr_t)dbroute__in);
  }
  return (int32_t)(uintptr_t)dbroute__in;
}

DBROUTE_EXPORT("dbroute_abi_version") int32_t dbroute_abi_version(void) { return 1; }

/* ABI 1.1: this header reads an operation's `origin`, and allow_migrate
 * inputs with an app and no model (dbroute_migration.name is then absent),
 * so the host may send them. ABI 1.2: a router that defines
 * DBROUTE_CONNECTION_STATE before including this header reads the
 * connections' state (DBROUTE_EXPORT_STATE), and says 2; the host tells
 * the state only to such routers. */
#ifdef DBROUTE_CONNECTION_STATE
DBROUTE_EXPORT("dbroute_abi_minor") int32_t dbroute_abi_minor(void) { return 2; }
#else
DBROUTE_EXPORT("dbroute_abi_minor") int32_t dbroute_abi_minor(void) { return 1; }
#endif

/* ---- JSON ------------------------------------------------------------- */

/* One JSON value of the input, as its raw text (a string keeps its quotes
 * and escapes). len == 0: absent. */
typedef struct {
  const char *ptr;
  uint32_t len;
} dbroute_json;

/* Past the blanks at p (none, the common case, is told without a loop). */
DBROUTE_API const char *dbroute__ws(const char *p, const char *e) {
  if (p < e && (unsigned char)*p > ' ') return p;
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* Past the string that starts at p (a '"'), or 0. Eight bytes at a time
 * while eight are left: the first '"' or '\\' among them is found with
 * the zero-byte test (x - 0x01..) & ~x & 0x80.., whose lowest set bit is
 * exact. */
DBROUTE__HOT const char *dbroute__skip_str(const char *p, const char *e) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  p++;
  while (e - p >= 8) {
    uint64_t w, q, b, hit;
    __builtin_memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    hit = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
    if (!hit) {
      p += 8;
      continue;
    }
    p += __builtin_ctzll(hit) >> 3;
    if (*p == '"') return p + 1;
    p += 2;
  }
  for (; p < e; p++) {
    if (*p == '"') return p + 1;
    if (*p == '\\') p++;
  }
  return 0;
}

/* Past the value that starts at p, or 0 when there is none. */
DBROUTE_API const char *dbroute__skip(const char *p, const char *e) {
  if (p >= e) return 0;
  if (*p == '"') return dbroute__skip_str(p, e);
  if (*p == '{' || *p == '[') {
    uint32_t depth = 0;
    while (p < e) {
      char c = *p;
      if (c == '"') {
        p = dbroute__skip_str(p, e);
        if (!p) return 0;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      if ((c == '}' || c == ']') && --depth == 0) return p + 1;
      p++;
    }
    return 0;
  }
  /* A number, true, false or null: up to a delimiter, blank, quote or
   * bracket. */
  const char *start = p;
  while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ':' && *p != ' ' && *p != '\t' &&
         *p != '\n' && *p != '\r' && *p != '"' && *p != '{' && *p != '[')
    p++;
  return p > start ? p : 0;
}

DBROUTE_API int dbroute_is_string(dbroute_json v) { return v.len >= 2 && v.ptr[0] == '"'; }
DBROUTE_API int dbroute_is_object(dbroute_json v) { return v.len >= 2 && v.ptr[0] == '{'; }
DBROUTE_API int dbroute_is_array(dbroute_json v) { return v.len >= 2 && v.ptr[0] == '['; }
DBROUTE_API int dbroute_is_null(dbroute_json v) {
  return v.len == 4 && v.ptr[0] == 'n' && v.ptr[1] == 'u' && v.ptr[2] == 'l' && v.ptr[3] == 'l';
}

DBROUTE_API int dbroute__hex(const char *p, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

/* Decodes the character at p (inside a string, before e) into out[0..*n];
 * returns the position after it, or 0 for a bad escape. */
DBROUTE_API const char *dbroute__char(const char *p, const char *e, char out[4], uint32_t *n) {
  if (*p != '\\') {
    /* A whole UTF-8 sequence, so that a cut never splits a character. */
    unsigned char b = (unsigned char)*p;
    uint32_t k = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if ((uint32_t)(e - p) < k) return 0;
    for (uint32_t i = 0; i < k; i++) out[i] = p[i];
    *n = k;
    return p + k;
  }
  if (e - p < 2) return 0;
  char c = p[1];
  *n = 1;
  switch (c) {
    case '"': case '\\': case '/': out[0] = c; return p + 2;
    case 'b': out[0] = '\b'; return p + 2;
    case 'f': out[0] = '\f'; return p + 2;
    case 'n': out[0] = '\n'; return p + 2;
    case 'r': out[0] = '\r'; return p + 2;
    case 't': out[0] = '\t'; return p + 2;
    case 'u': break;
    default: return 0;
  }
  uint32_t cp, lo;
  if (e - p < 6 || !dbroute__hex(p + 2, &cp)) return 0;
  p += 6;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !dbroute__hex(p + 2, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
      return 0;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    p += 6;
  }
  if (cp < 0x80) {
    out[0] = (char)cp;
  } else if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    *n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    *n = 3;
  } else {
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    *n = 4;
  }
  return p;
}

/* Whether v is a JSON string whose decoded text is s[0..n]. Plain ASCII is
 * compared as it is; an escape or a multi-byte character is decoded. */
DBROUTE_API int dbroute_str_is_n(dbroute_json v, const char *s, uint32_t n) {
  if (!dbroute_is_string(v)) return 0;
  const char *p = v.ptr + 1, *e = v.ptr + v.len - 1;
  uint32_t i = 0;
  while (p < e) {
    unsigned char b = (unsigned char)*p;
    if (b != '\\' && b < 0xC0) {
      if (i == n || (char)b != s[i]) return 0;
      i++;
      p++;
      continue;
    }
    char buf[4];
    uint32_t k;
    p = dbroute__char(p, e, buf, &k);
    if (!p || k > n - i) return 0;
    for (uint32_t j = 0; j < k; j++)
      if (buf[j] != s[i++]) return 0;
  }
  return i == n;
}
DBROUTE_API int dbroute_str_is(dbroute_json v, const char *s) {
  return dbroute_str_is_n(v, s, dbroute__strlen(s));
}

/* Decodes the string v into out[0..cap]: its length, or -1 when v is not
 * a string, has a bad escape, or does not fit. */
DBROUTE_API int32_t dbroute_str_copy(dbroute_json v, char *out, uint32_t cap) {
  if (!dbroute_is_string(v)) return -1;
  const char *p = v.ptr + 1, *e = v.ptr + v.len - 1;
  uint32_t i = 0;
  while (p < e) {
    char buf[4];
    uint32_t k;
    p = dbroute__char(p, e, buf, &k);
    if (!p || k > cap - i) return -1;
    for (uint32_t j = 0; j < k; j++) out[i++] = buf[j];
  }
  return (int32_t)i;
}

/* Appends the decoded text of the string v to the refusal message, cut
 * (at a character boundary) when the message is full. */
DBROUTE_API void dbroute_msg_push_str(dbroute_json v) {
  if (!dbroute_is_string(v)) return;
  const char *p = v.ptr + 1, *e = v.ptr + v.len - 1;
  while (p < e) {
    char buf[4];
    uint32_t k;
    p = dbroute__char(p, e, buf, &k);
    if (!p || k > DBROUTE_MSG_BYTES - dbroute__msg_len) return;
    dbroute_msg_push_n(buf, k);
  }
}

/* Walks an object's members: dbroute__next(&cur, end, &key, &value)
 * while it returns 1. */
DBROUTE_API int dbroute__next(const char **cur, const char *e, dbroute_json *key, dbroute_json *value) {
  const char *p = dbroute__ws(*cur, e);
  if (p < e && (*p == ',' || *p == '{')) p = dbroute__ws(p + 1, e);
  if (p >= e || *p != '"') return 0;
  const char *k = p;
  p = dbroute__skip_str(p, e);
  if (!p) return 0;
  *key = (dbroute_json){k, (uint32_t)(p - k)};
  p = dbroute__ws(p, e);
  if (p >= e || *p != ':') return 0;
  p = dbroute__ws(p + 1, e);
  const char *v = p;
  p = dbroute__skip(p, e);
  if (!p) return 0;
  *value = (dbroute_json){v, (uint32_t)(p - v)};
  *cur = p;
  return 1;
}

/* The member `key` of the object obj (the last one, should it repeat);
 * absent when obj is not an object or has no such member. */
DBROUTE_API dbroute_json dbroute_get(dbroute_json obj, const char *key) {
  dbroute_json found = {0, 0}, k, v;
  if (!dbroute_is_object(obj)) return found;
  const char *p = obj.ptr, *e = obj.ptr + obj.len;
  while (dbroute__next(&p, e, &k, &v))
    if (dbroute_str_is(k, key)) found = v;
  return found;
}

/* Whether the array arr holds the string s. */
DBROUTE_API int dbroute_array_has_str(dbroute_json arr, const char *s) {
  if (!dbroute_is_array(arr)) return 0;
  const char *p = arr.ptr + 1, *e = arr.ptr + arr.len - 1;
  for (;;) {
    p = dbroute__ws(p, e);
    const char *v = p;
    p = dbroute__skip(p, e);
    if (!p) return 0;
    if (dbroute_str_is((dbroute_json){v, (uint32_t)(p - v)}, s)) return 1;
    p = dbroute__ws(p, e);
    if (p >= e || *p != ',') return 0;
    p++;
  }
}

/* The input as a JSON object value: its text, trailing blanks dropped. */
DBROUTE_API dbroute_json dbroute__whole(const char *ptr, int32_t len) {
  const char *e = ptr + (len > 0 ? len : 0);
  const char *p = dbroute__ws(ptr, e);
  const char *end = dbroute__skip(p, e);
  if (!end || *p != '{') return (dbroute_json){0, 0};
  return (dbroute_json){p, (uint32_t)(end - p)};
}

/* A db_for_read or db_for_write input. */
typedef struct {
  dbroute_json op;     /* "read" or "write" */
  dbroute_json model;  /* the model object */
  dbroute_json name;   /* model.name, a string (always present) */
  dbroute_json tags;   /* model.tags, an array of strings, or absent */
  dbroute_json hints;  /* an object, or absent */
  dbroute_json origin; /* the connection the row was read from, a string,
                          or absent (ABI 1.1) */
} dbroute_op;

/* An allow_migrate input: a model, or (ABI 1.1) an app label alone. */
typedef struct {
  dbroute_json db;    /* the connection, a string */
  dbroute_json model; /* the model object, or absent (an app alone) */
  dbroute_json name;  /* model.name, a string, or absent (an app alone) */
  dbroute_json app;   /* the app label: the input's app (asked without a
                         model), else model.app; a string, or absent */
  dbroute_json hints; /* an object, or absent */
} dbroute_migration;

/* One step through the members of an object, for the parsers below, which
 * read the input in one pass: *p is just past the object's '{' (first) or
 * past a member's value. Returns 1 with the next member's key in *key and
 * *p at its value; 0 at the object's '}', *p past it; -1 when the object is
 * malformed. */
DBROUTE__HOT int dbroute__key(const char **p, const char *e, int first, dbroute_json *key) {
  const char *q = dbroute__ws(*p, e);
  if (q >= e) return -1;
  if (*q == '}') {
    *p = q + 1;
    return 0;
  }
  if (!first) {
    if (*q != ',') return -1;
    q = dbroute__ws(q + 1, e);
  }
  if (q >= e || *q != '"') return -1;
  const char *k = q;
  q = dbroute__skip_str(q, e);
  if (!q) return -1;
  *key = (dbroute_json){k, (uint32_t)(q - k)};
  q = dbroute__ws(q, e);
  if (q >= e || *q != ':') return -1;
  *p = dbroute__ws(q + 1, e);
  return 1;
}

/* Past the value at p, or 0: dbroute__skip, with a string (most values
 * are) inline. */
DBROUTE__HOT const char *dbroute__value(const char *p, const char *e) {
  return p < e && *p == '"' ? dbroute__skip_str(p, e) : dbroute__skip(p, e);
}

/* Whether the key k is the ASCII name lit[0..n], n > 0. An escape makes a
 * string's text longer than its decoded bytes, so a key of n + 2 bytes is
 * compared as it is, and only a longer one that starts with an escape or
 * with lit[0] is decoded. */
DBROUTE_API int dbroute__key_is(dbroute_json k, const char *lit, uint32_t n) {
  if (k.len == n + 2) {
    for (uint32_t i = 0; i < n; i++)
      if (k.ptr[i + 1] != lit[i]) return 0;
    return 1;
  }
  return k.len > n + 2 && (k.ptr[1] == '\\' || k.ptr[1] == lit[0]) && dbroute_str_is_n(k, lit, n);
}
#define DBROUTE__KEY_IS(k, lit) dbroute__key_is((k), (lit), sizeof(lit) - 1)

/* Reads the model value at p, keeping its name, tags and app (the last
 * ones, should they repeat; absent when it is not an object): past it, or
 * 0. */
DBROUTE_API const char *dbroute__model(const char *p, const char *e, dbroute_json *model,
                                       dbroute_json *name, dbroute_json *tags, dbroute_json *app) {
  const char *v = p;
  *name = *tags = *app = (dbroute_json){0, 0};
  if (p < e && *p == '{') {
    dbroute_json k;
    int r;
    p++;
    for (int first = 1; (r = dbroute__key(&p, e, first, &k)) == 1; first = 0) {
      const char *at = p;
      if (!(p = dbroute__value(p, e))) return 0;
      dbroute_json value = {at, (uint32_t)(p - at)};
      if (DBROUTE__KEY_IS(k, "name")) *name = value;
      else if (DBROUTE__KEY_IS(k, "tags")) *tags = value;
      else if (DBROUTE__KEY_IS(k, "app")) *app = value;
    }
    if (r < 0) return 0;
  } else if (!(p = dbroute__skip(p, e))) {
    return 0;
  }
  *model = (dbroute_json){v, (uint32_t)(p - v)};
  return p;
}

/* Reads a db_for_read / db_for_write input (kind 0) or an allow_migrate
 * one (kind 1) in one pass over the top-level object, the model object
 * included: each member is read once, unknown ones skipped; the last of a
 * repeated member counts, as in dbroute_get. `extra` is the top-level
 * origin (kind 0) or app (kind 1). Returns 0 when the input is not a
 * well-formed object. */
DBROUTE_API int dbroute__parse(const char *ptr, int32_t len, int kind, dbroute_json *op_or_db,
                               dbroute_json *model, dbroute_json *name, dbroute_json *tags,
                               dbroute_json *model_app, dbroute_json *hints, dbroute_json *extra) {
  const char *e = ptr + (len > 0 ? len : 0);
  const char *p = dbroute__ws(ptr, e);
  dbroute_json k;
  int r;
  if (p >= e || *p != '{') return 0;
  p++;
  for (int first = 1; (r = dbroute__key(&p, e, first, &k)) == 1; first = 0) {
    if (DBROUTE__KEY_IS(k, "model")) {
      if (!(p = dbroute__model(p, e, model, name, tags, model_app))) return 0;
      continue;
    }
    const char *at = p;
    if (!(p = dbroute__value(p, e))) return 0;
    dbroute_json value = {at, (uint32_t)(p - at)};
    if (kind ? DBROUTE__KEY_IS(k, "db") : DBROUTE__KEY_IS(k, "op")) *op_or_db = value;
    else if (DBROUTE__KEY_IS(k, "hints")) *hints = value;
    else if (kind ? DBROUTE__KEY_IS(k, "app") : DBROUTE__KEY_IS(k, "origin")) *extra = value;
  }
  return r == 0;
}

DBROUTE_API int dbroute__parse_op(const char *ptr, int32_t len, dbroute_op *op) {
  dbroute_json app;
  *op = (dbroute_op){{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
  return dbroute__parse(ptr, len, 0, &op->op, &op->model, &op->name, &op->tags, &app, &op->hints,
                        &op->origin) &&
         dbroute_is_string(op->name);
}

/* A migration names a model (with a string name) or, without a model, an
 * app (a string). */
DBROUTE_API int dbroute__parse_migration(const char *ptr, int32_t len, dbroute_migration *m) {
  dbroute_json tags, model_app, app = {0, 0};
  *m = (dbroute_migration){{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
  if (!dbroute__parse(ptr, len, 1, &m->db, &m->model, &m->name, &tags, &model_app, &m->hints, &app) ||
      !dbroute_is_string(m->db))
    return 0;
  m->app = dbroute_is_string(app) ? app : model_app;
  return m->model.len ? dbroute_is_string(m->name) : dbroute_is_string(app);
}

/* The hint `key`, or absent. */
DBROUTE_API dbroute_json dbroute_hint(const dbroute_op *op, const char *key) {
  return dbroute_get(op->hints, key);
}

/* Whether the model carries tag `tag`. */
DBROUTE_API int dbroute_has_tag(const dbroute_op *op, const char *tag) {
  return dbroute_array_has_str(op->tags, tag);
}

/* Whether the model is called `name`. */
DBROUTE_API int dbroute_model_is(const dbroute_op *op, const char *name) {
  return dbroute_str_is(op->name, name);
}

/* Whether the operation's origin (the connection its row was read from,
 * ABI 1.1) is `name`; 0 when it has none. */
DBROUTE_API int dbroute_origin_is(const dbroute_op *op, const char *name) {
  return dbroute_str_is(op->origin, name);
}

/* ---- a configuration map of strings ------------------------------------ */

/* Decoded string keys and values, kept in the instance (static storage),
 * so its values can be answered as connection names. */
typedef struct {
  uint32_t count, used;
  uint16_t key[DBROUTE_MAP_ENTRIES], key_len[DBROUTE_MAP_ENTRIES];
  uint16_t val[DBROUTE_MAP_ENTRIES], val_len[DBROUTE_MAP_ENTRIES];
  char bytes[DBROUTE_MAP_BYTES];
} dbroute_str_map;

DBROUTE_API int dbroute__map_put(dbroute_str_map *m, dbroute_json v, uint16_t *at, uint16_t *len) {
  int32_t n = dbroute_str_copy(v, m->bytes + m->used, DBROUTE_MAP_BYTES - m->used);
  if (n < 0) return 0;
  *at = (uint16_t)m->used;
  *len = (uint16_t)n;
  m->used += (uint32_t)n;
  return 1;
}

/* Reads config.<key>, an object whose values are strings, into m (emptied
 * first). Missing or null: empty. Returns 0, or a refusal for dbroute_init
 * ("config.<key> must be an object whose values are strings"). */
DBROUTE_API dbroute_result dbroute_config_str_map(dbroute_json config, const char *key, dbroute_str_map *m) {
  m->count = m->used = 0;
  dbroute_json map = dbroute_get(config, key), k, v;
  if (map.len == 0 || dbroute_is_null(map)) return 0;
  dbroute_msg_clear();
  dbroute_msg_push("config.");
  dbroute_msg_push(key);
  if (!dbroute_is_object(map)) {
    dbroute_msg_push(" must be an object whose values are strings");
    return dbroute_msg_refuse();
  }
  const char *p = map.ptr, *e = map.ptr + map.len;
  while (dbroute__next(&p, e, &k, &v)) {
    if (!dbroute_is_string(v)) {
      dbroute_msg_push(" must be an object whose values are strings");
      return dbroute_msg_refuse();
    }
    uint32_t i = m->count;
    if (i == DBROUTE_MAP_ENTRIES || !dbroute__map_put(m, k, &m->key[i], &m->key_len[i]) ||
        !dbroute__map_put(m, v, &m->val[i], &m->val_len[i])) {
      dbroute_msg_push(" is too large for this router (or holds a bad escape)");
      return dbroute_msg_refuse();
    }
    m->count++;
  }
  return 0;
}

/* The value for the key that the JSON string `key` holds (the last one, as
 * in JSON), as *len bytes; 0 when key is not a string or not in m. */
DBROUTE_API const char *dbroute_map_get(const dbroute_str_map *m, dbroute_json key, uint32_t *len) {
  for (uint32_t i = m->count; i-- > 0;) {
    if (dbroute_str_is_n(key, m->bytes + m->key[i], m->key_len[i])) {
      *len = m->val_len[i];
      return m->bytes + m->val[i];
    }
  }
  return 0;
}

/* ---- the connections' state (ABI 1.2) ----------------------------------- */

/* How many connections a dbroute_state holds; more make the state call
 * trap (the host drops the instance: a fault). */
#ifndef DBROUTE_STATE_CONNECTIONS
#define DBROUTE_STATE_CONNECTIONS 64
#endif

/* One connection's state, decoded and kept (static storage), so its names
 * can be answered as connection names. */
typedef struct {
  char name[64];
  uint32_t name_len;
  char replica_of[64]; /* the connection it streams from */
  uint32_t replica_of_len; /* 0: a primary */
  int healthy;         /* 1 healthy, 0 unhealthy, -1 not checked yet */
  int64_t lag_ms;      /* a replica's lag in milliseconds; -1: unknown (or a primary) */
  int64_t lag_bytes;   /* WAL bytes still to replay; -1: unknown */
} dbroute_conn_state;

/* Every registered connection's state, in the host's order. */
typedef struct {
  uint32_t count;
  dbroute_conn_state c[DBROUTE_STATE_CONNECTIONS];
} dbroute_state;

/* A JSON whole number (no sign, fraction or exponent) into *out; null or
 * absent gives -1. Returns 0 for anything else. */
DBROUTE_API int dbroute__whole_number(dbroute_json v, int64_t *out) {
  if (v.len == 0 || dbroute_is_null(v)) {
    *out = -1;
    return 1;
  }
  int64_t n = 0;
  for (uint32_t i = 0; i < v.len; i++) {
    char c = v.ptr[i];
    if (c < '0' || c > '9' || n > (INT64_MAX - 9) / 10) return 0;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return 1;
}

/* Reads the dbroute_state input (a whole object) into st. Returns 0 when
 * it is malformed or holds more than DBROUTE_STATE_CONNECTIONS
 * connections. */
DBROUTE_API int dbroute_state_read(dbroute_json in, dbroute_state *st) {
  st->count = 0;
  dbroute_json list = dbroute_get(in, "connections");
  if (!dbroute_is_array(list)) return 0;
  const char *p = list.ptr + 1, *e = list.ptr + list.len - 1;
  p = dbroute__ws(p, e);
  while (p < e) {
    const char *v = p;
    p = dbroute__skip(p, e);
    if (!p || st->count == DBROUTE_STATE_CONNECTIONS) return 0;
    dbroute_json item = {v, (uint32_t)(p - v)};
    dbroute_conn_state *c = &st->c[st->count];
    int32_t n = dbroute_str_copy(dbroute_get(item, "name"), c->name, sizeof c->name);
    if (n <= 0) return 0;
    c->name_len = (uint32_t)n;
    dbroute_json of = dbroute_get(item, "replica_of");
    c->replica_of_len = 0;
    if (of.len && !dbroute_is_null(of)) {
      n = dbroute_str_copy(of, c->replica_of, sizeof c->replica_of);
      if (n <= 0) return 0;
      c->replica_of_len = (uint32_t)n;
    }
    dbroute_json healthy = dbroute_get(item, "healthy");
    if (healthy.len == 4 && healthy.ptr[0] == 't') c->healthy = 1;
    else if (healthy.len == 5 && healthy.ptr[0] == 'f') c->healthy = 0;
    else if (healthy.len == 0 || dbroute_is_null(healthy)) c->healthy = -1;
    else return 0;
    if (!dbroute__whole_number(dbroute_get(item, "lag_ms"), &c->lag_ms) ||
        !dbroute__whole_number(dbroute_get(item, "lag_bytes"), &c->lag_bytes))
      return 0;
    st->count++;
    p = dbroute__ws(p, e);
    if (p < e) {
      if (*p != ',') return 0;
      p = dbroute__ws(p + 1, e);
    }
  }
  return 1;
}

/* The state of the connection `name` in st, or 0. */
DBROUTE_API const dbroute_conn_state *dbroute_state_get(const dbroute_state *st, const char *name, uint32_t len) {
  for (uint32_t i = 0; i < st->count; i++) {
    const dbroute_conn_state *c = &st->c[i];
    if (c->name_len != len) continue;
    uint32_t j = 0;
    while (j < len && c->name[j] == name[j]) j++;
    if (j == len) return c;
  }
  return 0;
}

/* ---- exports ---------------------------------------------------------- */

/* Malformed input: refused by reads, writes and init (with a message),
 * a trap in allow_migrate (which cannot carry one: its input must name a
 * model with a string name, or an app), as the Rust SDK does. */
#define DBROUTE__MALFORMED "malformed input: not an operation object with a string model.name"

/* dbroute_deterministic() == 1: answers depend only on the input and the
 * init configuration, so the host may cache them. */
#define DBROUTE_EXPORT_DETERMINISTIC() \
  DBROUTE_EXPORT("dbroute_deterministic") int32_t dbroute_deterministic(void) { return 1; }

/* fn: dbroute_result fn(dbroute_json config, dbroute_json connections) */
#define DBROUTE_EXPORT_INIT(fn)                                                  \
  DBROUTE_EXPORT("dbroute_init") int64_t dbroute_init(int32_t ptr, int32_t len) { \
    dbroute_json in = dbroute__whole((const char *)(uintptr_t)ptr, len);        \
    if (in.len == 0) return dbroute_refuse("malformed input: not an object");   \
    return fn(dbroute_get(in, "config"), dbroute_get(in, "connections"));       \
  }

/* fn: dbroute_result fn(const dbroute_op *op) */
#define DBROUTE_EXPORT_READ(fn)                                                 \
  DBROUTE_EXPORT("db_for_read") int64_t db_for_read(int32_t ptr, int32_t len) { \
    dbroute_op op;                                                              \
    if (!dbroute__parse_op((const char *)(uintptr_t)ptr, len, &op))             \
      return dbroute_refuse(DBROUTE__MALFORMED);                                \
    return fn(&op);                                                             \
  }

/* fn: dbroute_result fn(const dbroute_op *op) */
#define DBROUTE_EXPORT_WRITE(fn)                                                  \
  DBROUTE_EXPORT("db_for_write") int64_t db_for_write(int32_t ptr, int32_t len) { \
    dbroute_op op;                                                                \
    if (!dbroute__parse_op((const char *)(uintptr_t)ptr, len, &op))               \
      return dbroute_refuse(DBROUTE__MALFORMED);                                  \
    return fn(&op);                                                               \
  }

/* fn: int fn(const dbroute_migration *m), DBROUTE_YES / NO / NO_OPINION */
#define DBROUTE_EXPORT_MIGRATE(fn)                                                   \
  DBROUTE_EXPORT("allow_migrate") int32_t allow_migrate(int32_t ptr, int32_t len) { \
    dbroute_migration m;                                                             \
    if (!dbroute__parse_migration((const char *)(uintptr_t)ptr, len, &m)) {         \
      dbroute_log(DBROUTE_ERROR, DBROUTE__MALFORMED);                                \
      __builtin_trap();                                                              \
    }                                                                                \
    return fn(&m);                                                                   \
  }

/* fn: void fn(const dbroute_state *state), called when the connections'
 * state changes (ABI 1.2; define DBROUTE_CONNECTION_STATE before including
 * this header). The state is read into static storage, so fn may keep the
 * pointer and answer its names. Malformed input traps (a fault). */
#define DBROUTE_EXPORT_STATE(fn)                                                            \
  static dbroute_state dbroute__state;                                                      \
  DBROUTE_EXPORT("dbroute_state") int32_t dbroute__state_export(int32_t ptr, int32_t len) { \
    dbroute_json in = dbroute__whole((const char *)(uintptr_t)ptr, len);                    \
    if (in.len == 0 || !dbroute_state_read(in, &dbroute__state)) {                          \
      dbroute_log(DBROUTE_ERROR, "malformed dbroute_state input");                          \
      __builtin_trap();                                                                     \
    }                                                                                       \
    fn(&dbroute__state);                                                                    \
    return 0;                                                                               \
  }

#endif /* DBROUTE_H */
