//! dbroute.zig: the dbroute router ABI, version 1.2 (docs/ABI.md), for Zig
//! routers built for wasm32-freestanding.
//!
//! A router file declares its policy and calls `exportRouter` once:
//!
//!     const dbroute = @import("dbroute.zig");
//!     pub const deterministic = true;          // optional
//!     pub fn init(config: dbroute.Json, connections: dbroute.Json) dbroute.Answer { ... } // optional
//!     pub fn read(op: dbroute.Op) dbroute.Answer { ... }      // optional
//!     pub fn write(op: dbroute.Op) dbroute.Answer { ... }     // optional
//!     pub fn migrate(m: dbroute.Migration) ?bool { ... }      // optional
//!     pub fn state(s: *const dbroute.State) void { ... }     // optional (ABI 1.2)
//!     comptime { dbroute.exportRouter(@This()); }
//!
//! The module gives the input buffer (`dbroute_input`: the memory past the
//! module's own pages, grown on demand), views of the host's JSON (`Json`,
//! `Op`, `Migration`, `StrMap` for the configuration), the answers
//! (`use`, `noOpinion`, `refuse`, and `Message` for refusals put together
//! from pieces), the connections' state (`State`, ABI 1.2: a router that
//! declares `state` is told it, and says 2 in `dbroute_abi_minor`) and the
//! log (`log`, the one import a router may have).
//!
//! The JSON scanner reads what a router needs without allocating and
//! without reading outside the input. It is not a validator: it finds
//! members in well-formed JSON (what the host writes); on malformed JSON it
//! finds nothing, or answers "malformed input". The exports read their
//! input in one pass over its members and the model's, keeping op (db for
//! allow_migrate), model, name, tags, hints, origin and app and skipping
//! the others; a
//! hint is looked up only when the router asks for it. An input whose
//! members, or the model's, are not `"key": value` pairs between commas is
//! malformed. Strings are compared and copied decoded (every JSON escape,
//! \uXXXX with surrogate pairs), so "Ev\u0065nt" is "Event". Limits:
//! nesting inside skipped values is matched by bracket count, not type; a
//! `StrMap` has a fixed capacity (init refuses a larger map, saying so); a
//! refusal `Message` is cut at 1024 bytes, at a character boundary.

// ---- answers --------------------------------------------------------------

/// What `read`, `write` and `init` return: 0 no opinion (for init: ready),
/// > 0 a connection name, < 0 a refusal.
pub const Answer = i64;

fn text(bytes: []const u8, refusal: bool) Answer {
    var r: u64 = (@as(u64, @intFromPtr(bytes.ptr)) << 32) | @as(u64, bytes.len);
    if (refusal) r |= @as(u64, 1) << 63;
    return @bitCast(r);
}

/// No opinion: the next router is asked, then `default`.
pub fn noOpinion() Answer {
    return 0;
}

/// Use this connection. The bytes must stay put until the next call: a
/// literal, or a global such as a `StrMap`.
pub fn use(name: []const u8) Answer {
    return text(name, false);
}

/// Refuse the operation with this message (a literal or a global).
pub fn refuse(message: []const u8) Answer {
    return text(message, true);
}

/// A refusal message put together from pieces, in a global buffer.
pub const Message = struct {
    var buf: [1024]u8 = undefined;
    var len: usize = 0;

    pub fn clear() void {
        len = 0;
    }

    /// Appends bytes, cut at a character boundary when the buffer is full.
    pub fn push(s: []const u8) void {
        var n = s.len;
        if (n > buf.len - len) {
            n = buf.len - len;
            while (n > 0 and (s[n] & 0xC0) == 0x80) n -= 1;
        }
        @memcpy(buf[len..][0..n], s[0..n]);
        len += n;
    }

    /// Appends the decoded text of the JSON string `v`.
    pub fn pushStr(v: Json) void {
        var it = v.chars() orelse return;
        while (it.next()) |c| {
            if (c.len > buf.len - len) return;
            push(c.slice());
        }
    }

    /// Refuse with the message built since `clear()`.
    pub fn refusal() Answer {
        return refuse(buf[0..len]);
    }
};

// ---- log ------------------------------------------------------------------

pub const Level = enum(i32) { err = 0, warn = 1, info = 2, debug = 3, trace = 4 };

extern "dbroute" fn log(level: i32, ptr: [*]const u8, len: usize) void;

/// A message for the host's log (imported only when a router calls it).
pub fn logMessage(level: Level, message: []const u8) void {
    log(@intFromEnum(level), message.ptr, message.len);
}

// ---- JSON -----------------------------------------------------------------

fn isWs(c: u8) bool {
    return c == ' ' or c == '\t' or c == '\n' or c == '\r';
}

/// Past the blanks at s[i] (none, the common case, is told without a loop).
fn ws(s: []const u8, i: usize) usize {
    if (i < s.len and s[i] > ' ') return i;
    var j = i;
    while (j < s.len and isWs(s[j])) j += 1;
    return j;
}

/// Past the string that starts at s[i] (a '"'), or null. Eight bytes at a
/// time while eight are left: the first '"' or '\\' among them is found
/// with the zero-byte test (x - 0x01..) & ~x & 0x80.., whose lowest set bit
/// is exact.
fn skipStr(s: []const u8, i: usize) ?usize {
    const ones: u64 = 0x0101010101010101;
    const highs: u64 = 0x8080808080808080;
    var j = i + 1;
    while (j + 8 <= s.len) {
        const w = @as(*align(1) const u64, @ptrCast(s[j..].ptr)).*;
        const q = w ^ (ones * '"');
        const b = w ^ (ones * '\\');
        const hit = (((q -% ones) & ~q) | ((b -% ones) & ~b)) & highs;
        if (hit == 0) {
            j += 8;
            continue;
        }
        j += @ctz(hit) >> 3;
        if (s[j] == '"') return j + 1;
        j += 2;
    }
    while (j < s.len) : (j += 1) {
        if (s[j] == '"') return j + 1;
        if (s[j] == '\\') j += 1;
    }
    return null;
}

/// Past the value that starts at s[i], or null when there is none.
fn skip(s: []const u8, i: usize) ?usize {
    if (i >= s.len) return null;
    switch (s[i]) {
        '"' => return skipStr(s, i),
        '{', '[' => {
            var depth: usize = 0;
            var j = i;
            while (j < s.len) {
                switch (s[j]) {
                    '"' => {
                        j = skipStr(s, j) orelse return null;
                        continue;
                    },
                    '{', '[' => depth += 1,
                    '}', ']' => {
                        depth -= 1;
                        if (depth == 0) return j + 1;
                    },
                    else => {},
                }
                j += 1;
            }
            return null;
        },
        else => {
            // A number, true, false or null: up to a delimiter, blank,
            // quote or bracket.
            var j = i;
            while (j < s.len) : (j += 1) {
                switch (s[j]) {
                    ',', '}', ']', ':', ' ', '\t', '\n', '\r', '"', '{', '[' => break,
                    else => {},
                }
            }
            return if (j > i) j else null;
        },
    }
}

fn hex4(s: []const u8) ?u21 {
    var v: u21 = 0;
    for (s[0..4]) |c| {
        const d: u21 = switch (c) {
            '0'...'9' => c - '0',
            'a'...'f' => c - 'a' + 10,
            'A'...'F' => c - 'A' + 10,
            else => return null,
        };
        v = v * 16 + d;
    }
    return v;
}

/// One decoded character: 1 to 4 bytes of UTF-8.
pub const Char = struct {
    bytes: [4]u8 = undefined,
    len: usize = 0,

    pub fn slice(self: *const Char) []const u8 {
        return self.bytes[0..self.len];
    }
};

/// The characters of a JSON string, decoded. `bad` is set when it stopped
/// at a bad escape.
pub const Chars = struct {
    s: []const u8,
    i: usize = 0,
    bad: bool = false,

    pub fn next(self: *Chars) ?Char {
        const s = self.s;
        if (self.i >= s.len or self.bad) return null;
        var c = Char{};
        if (s[self.i] != '\\') {
            // A whole UTF-8 sequence, so that a cut never splits a character.
            const b = s[self.i];
            const n: usize = if (b >= 0xF0) 4 else if (b >= 0xE0) 3 else if (b >= 0xC0) 2 else 1;
            if (s.len - self.i < n) return self.fail();
            @memcpy(c.bytes[0..n], s[self.i..][0..n]);
            c.len = n;
            self.i += n;
            return c;
        }
        if (s.len - self.i < 2) return self.fail();
        c.len = 1;
        c.bytes[0] = switch (s[self.i + 1]) {
            '"', '\\', '/' => s[self.i + 1],
            'b' => 0x08,
            'f' => 0x0C,
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => return self.unicode(),
            else => return self.fail(),
        };
        self.i += 2;
        return c;
    }

    fn fail(self: *Chars) ?Char {
        self.bad = true;
        return null;
    }

    fn unicode(self: *Chars) ?Char {
        const s = self.s;
        if (s.len - self.i < 6) return self.fail();
        var cp = hex4(s[self.i + 2 ..]) orelse return self.fail();
        self.i += 6;
        if (cp >= 0xDC00 and cp <= 0xDFFF) return self.fail();
        if (cp >= 0xD800 and cp <= 0xDBFF) {
            if (s.len - self.i < 6 or s[self.i] != '\\' or s[self.i + 1] != 'u') return self.fail();
            const lo = hex4(s[self.i + 2 ..]) orelse return self.fail();
            if (lo < 0xDC00 or lo > 0xDFFF) return self.fail();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            self.i += 6;
        }
        var c = Char{};
        if (cp < 0x80) {
            c.bytes[0] = @intCast(cp);
            c.len = 1;
        } else if (cp < 0x800) {
            c.bytes[0] = @intCast(0xC0 | (cp >> 6));
            c.bytes[1] = @intCast(0x80 | (cp & 0x3F));
            c.len = 2;
        } else if (cp < 0x10000) {
            c.bytes[0] = @intCast(0xE0 | (cp >> 12));
            c.bytes[1] = @intCast(0x80 | ((cp >> 6) & 0x3F));
            c.bytes[2] = @intCast(0x80 | (cp & 0x3F));
            c.len = 3;
        } else {
            c.bytes[0] = @intCast(0xF0 | (cp >> 18));
            c.bytes[1] = @intCast(0x80 | ((cp >> 12) & 0x3F));
            c.bytes[2] = @intCast(0x80 | ((cp >> 6) & 0x3F));
            c.bytes[3] = @intCast(0x80 | (cp & 0x3F));
            c.len = 4;
        }
        return c;
    }
};

/// One JSON value of the input, as its raw text (a string keeps its quotes
/// and escapes). Empty: absent.
pub const Json = struct {
    s: []const u8 = "",

    pub fn isString(v: Json) bool {
        return v.s.len >= 2 and v.s[0] == '"';
    }
    pub fn isObject(v: Json) bool {
        return v.s.len >= 2 and v.s[0] == '{';
    }
    pub fn isArray(v: Json) bool {
        return v.s.len >= 2 and v.s[0] == '[';
    }
    pub fn isNull(v: Json) bool {
        return v.s.len == 4 and v.s[0] == 'n' and v.s[1] == 'u' and v.s[2] == 'l' and v.s[3] == 'l';
    }
    pub fn isAbsent(v: Json) bool {
        return v.s.len == 0;
    }

    /// The decoded characters of a string; null when `v` is not one.
    pub fn chars(v: Json) ?Chars {
        if (!v.isString()) return null;
        return .{ .s = v.s[1 .. v.s.len - 1] };
    }

    /// Whether `v` is a string whose decoded text is `lit`. Plain ASCII is
    /// compared as it is; an escape or a multi-byte character is decoded.
    pub fn strIs(v: Json, lit: []const u8) bool {
        var it = v.chars() orelse return false;
        const s = it.s;
        var i: usize = 0;
        while (it.i < s.len) {
            const b = s[it.i];
            if (b != '\\' and b < 0xC0) {
                if (i == lit.len or b != lit[i]) return false;
                i += 1;
                it.i += 1;
                continue;
            }
            const c = it.next() orelse return false;
            if (c.len > lit.len - i) return false;
            for (c.slice()) |x| {
                if (x != lit[i]) return false;
                i += 1;
            }
        }
        return i == lit.len;
    }

    /// Decodes the string `v` into `out`: the text, or null when `v` is not
    /// a string, has a bad escape, or does not fit.
    pub fn strCopy(v: Json, out: []u8) ?[]u8 {
        var it = v.chars() orelse return null;
        var i: usize = 0;
        while (it.next()) |c| {
            if (c.len > out.len - i) return null;
            @memcpy(out[i..][0..c.len], c.slice());
            i += c.len;
        }
        return if (it.bad) null else out[0..i];
    }

    /// The members of an object (none when `v` is not one).
    pub fn members(v: Json) Members {
        return .{ .s = if (v.isObject()) v.s else "" };
    }

    /// The member `key` (the last one, should it repeat); absent when `v`
    /// is not an object or has no such member.
    pub fn get(v: Json, key: []const u8) Json {
        var found = Json{};
        var it = v.members();
        while (it.next()) |m| {
            if (m.key.strIs(key)) found = m.value;
        }
        return found;
    }

    /// The elements of an array (none when `v` is not one).
    pub fn items(v: Json) Items {
        return .{ .s = if (v.isArray()) v.s[0 .. v.s.len - 1] else "" };
    }

    /// Whether `v` is an array holding the string `lit`.
    pub fn hasStr(v: Json, lit: []const u8) bool {
        var it = v.items();
        while (it.next()) |item| {
            if (item.strIs(lit)) return true;
        }
        return false;
    }
};

pub const Member = struct { key: Json, value: Json };

pub const Members = struct {
    s: []const u8,
    i: usize = 0,

    pub fn next(self: *Members) ?Member {
        const s = self.s;
        var i = ws(s, self.i);
        if (i < s.len and (s[i] == ',' or s[i] == '{')) i = ws(s, i + 1);
        if (i >= s.len or s[i] != '"') return null;
        const k = i;
        i = skipStr(s, i) orelse return null;
        const key = Json{ .s = s[k..i] };
        i = ws(s, i);
        if (i >= s.len or s[i] != ':') return null;
        i = ws(s, i + 1);
        const v = i;
        i = skip(s, i) orelse return null;
        self.i = i;
        return .{ .key = key, .value = .{ .s = s[v..i] } };
    }
};

pub const Items = struct {
    s: []const u8,
    i: usize = 1,

    pub fn next(self: *Items) ?Json {
        const s = self.s;
        if (self.i > s.len) return null;
        var i = ws(s, self.i);
        const v = i;
        i = skip(s, i) orelse return null;
        const item = Json{ .s = s[v..i] };
        i = ws(s, i);
        self.i = if (i < s.len and s[i] == ',') i + 1 else s.len + 1;
        return item;
    }
};

/// The input as a JSON object; absent when it is not one.
fn whole(ptr: [*]const u8, len: usize) Json {
    const s = ptr[0..len];
    const i = ws(s, 0);
    const end = skip(s, i) orelse return .{};
    if (s[i] != '{') return .{};
    return .{ .s = s[i..end] };
}

/// One step at a time through the members of an object, for the parsers
/// below, which read the input in one pass: `i` is just past the object's
/// '{', then past each member's value.
const Walk = struct {
    s: []const u8,
    i: usize,
    first: bool = true,

    /// The next member's key, `i` then at its value; null at the object's
    /// '}' (`i` past it).
    inline fn key(w: *Walk) error{Malformed}!?Json {
        const s = w.s;
        var i = ws(s, w.i);
        if (i >= s.len) return error.Malformed;
        if (s[i] == '}') {
            w.i = i + 1;
            return null;
        }
        if (!w.first) {
            if (s[i] != ',') return error.Malformed;
            i = ws(s, i + 1);
        }
        w.first = false;
        if (i >= s.len or s[i] != '"') return error.Malformed;
        const k = i;
        i = skipStr(s, i) orelse return error.Malformed;
        const name = Json{ .s = s[k..i] };
        i = ws(s, i);
        if (i >= s.len or s[i] != ':') return error.Malformed;
        w.i = ws(s, i + 1);
        return name;
    }

    /// The value at `i`, `i` then past it.
    inline fn value(w: *Walk) error{Malformed}!Json {
        const s = w.s;
        const v = w.i;
        const end = (if (v < s.len and s[v] == '"') skipStr(s, v) else skip(s, v)) orelse return error.Malformed;
        w.i = end;
        return .{ .s = s[v..end] };
    }
};

/// Whether the key `k` is the ASCII name `lit` (not empty). An escape makes
/// a string's text longer than its decoded bytes, so a key of `lit.len + 2`
/// bytes is compared as it is, and only a longer one that starts with an
/// escape or with `lit[0]` is decoded.
inline fn keyIs(k: Json, comptime lit: []const u8) bool {
    comptime if (lit.len == 0) @compileError("keyIs needs a name");
    if (k.s.len == lit.len + 2) {
        inline for (lit, 0..) |c, j| {
            if (k.s[j + 1] != c) return false;
        }
        return true;
    }
    return k.s.len > lit.len + 2 and (k.s[1] == '\\' or k.s[1] == lit[0]) and k.strIs(lit);
}

/// What the parsers read: `op` (or `db`), the model, its name, tags and
/// app, the hints, and `origin` (or the top-level `app`).
const Fields = struct {
    first: Json = .{},
    model: Json = .{},
    name: Json = .{},
    tags: Json = .{},
    model_app: Json = .{},
    hints: Json = .{},
    extra: Json = .{},
};

/// Reads a `db_for_read` / `db_for_write` input (`first` "op", `extra`
/// "origin") or an `allow_migrate` one ("db", "app") in one pass over the
/// top-level object, the model object included: each member is read once,
/// unknown ones skipped; the last of a repeated member counts, as in
/// `Json.get`. Null when its members, or the model's, are not
/// `"key": value` pairs between commas.
fn parseFields(ptr: [*]const u8, len: usize, comptime first: []const u8, comptime extra: []const u8) ?Fields {
    return scanFields(ptr[0..len], first, extra) catch null;
}

fn scanFields(s: []const u8, comptime first: []const u8, comptime extra: []const u8) error{Malformed}!Fields {
    var f = Fields{};
    const i = ws(s, 0);
    if (i >= s.len or s[i] != '{') return error.Malformed;
    var w = Walk{ .s = s, .i = i + 1 };
    while (try w.key()) |k| {
        if (keyIs(k, "model")) {
            f.name = .{};
            f.tags = .{};
            f.model_app = .{};
            const v = w.i;
            if (v < s.len and s[v] == '{') {
                var m = Walk{ .s = s, .i = v + 1 };
                while (try m.key()) |mk| {
                    const value = try m.value();
                    if (keyIs(mk, "name")) {
                        f.name = value;
                    } else if (keyIs(mk, "tags")) {
                        f.tags = value;
                    } else if (keyIs(mk, "app")) {
                        f.model_app = value;
                    }
                }
                w.i = m.i;
                f.model = .{ .s = s[v..m.i] };
            } else {
                f.model = try w.value();
            }
            continue;
        }
        const value = try w.value();
        if (keyIs(k, first)) {
            f.first = value;
        } else if (keyIs(k, "hints")) {
            f.hints = value;
        } else if (keyIs(k, extra)) {
            f.extra = value;
        }
    }
    return f;
}

/// A `db_for_read` or `db_for_write` input.
pub const Op = struct {
    /// "read" or "write".
    op: Json,
    /// The model object.
    model: Json,
    /// model.name, a string (always present).
    name: Json,
    /// model.tags, an array of strings, or absent.
    tags: Json,
    /// An object, or absent.
    hints: Json,
    /// The connection the row was read from, a string, or absent (ABI 1.1).
    origin: Json,

    fn parse(ptr: [*]const u8, len: usize) ?Op {
        const f = parseFields(ptr, len, "op", "origin") orelse return null;
        if (!f.name.isString()) return null;
        return .{ .op = f.first, .model = f.model, .name = f.name, .tags = f.tags, .hints = f.hints, .origin = f.extra };
    }

    /// The hint `key`, or absent.
    pub fn hint(self: Op, key: []const u8) Json {
        return self.hints.get(key);
    }
    /// Whether the model carries `tag`.
    pub fn hasTag(self: Op, tag: []const u8) bool {
        return self.tags.hasStr(tag);
    }
    /// Whether the model is called `name`.
    pub fn modelIs(self: Op, name: []const u8) bool {
        return self.name.strIs(name);
    }
    /// Whether the operation's origin is `name` (false when it has none).
    pub fn originIs(self: Op, name: []const u8) bool {
        return self.origin.strIs(name);
    }
};

/// An `allow_migrate` input: a model, or (ABI 1.1) an app label alone.
pub const Migration = struct {
    /// The connection, a string.
    db: Json,
    /// The model object, or absent (an app alone).
    model: Json,
    /// model.name, a string, or absent (an app alone).
    name: Json,
    /// The app label: the input's `app` (asked without a model), else
    /// model.app; a string, or absent.
    app: Json,
    /// An object, or absent.
    hints: Json,

    /// A migration names a model (with a string name) or, without a model,
    /// an app (a string).
    fn parse(ptr: [*]const u8, len: usize) ?Migration {
        const f = parseFields(ptr, len, "db", "app") orelse return null;
        if (!f.first.isString()) return null;
        if (if (f.model.isAbsent()) !f.extra.isString() else !f.name.isString()) return null;
        const app = if (f.extra.isString()) f.extra else f.model_app;
        return .{ .db = f.first, .model = f.model, .name = f.name, .app = app, .hints = f.hints };
    }
};

/// A map of decoded string keys and values with a fixed capacity, kept in
/// a global so that its values can be answered as connection names.
pub fn StrMap(comptime max_entries: usize, comptime max_bytes: usize) type {
    return struct {
        const Self = @This();
        count: usize = 0,
        used: usize = 0,
        keys: [max_entries][]const u8 = undefined,
        values: [max_entries][]const u8 = undefined,
        bytes: [max_bytes]u8 = undefined,

        fn put(self: *Self, v: Json) ?[]const u8 {
            const copy = v.strCopy(self.bytes[self.used..]) orelse return null;
            self.used += copy.len;
            return copy;
        }

        /// Reads config.<key>, an object whose values are strings (emptied
        /// first). Missing or null: empty. Returns 0, or a refusal for
        /// `init`: "config.<key> must be an object whose values are strings".
        pub fn fromConfig(self: *Self, config: Json, comptime key: []const u8) Answer {
            self.count = 0;
            self.used = 0;
            const map = config.get(key);
            if (map.isAbsent() or map.isNull()) return 0;
            const prefix = "config." ++ key;
            if (!map.isObject()) return refuse(prefix ++ " must be an object whose values are strings");
            var it = map.members();
            while (it.next()) |m| {
                if (!m.value.isString()) return refuse(prefix ++ " must be an object whose values are strings");
                if (self.count == max_entries) return refuse(prefix ++ " is too large for this router");
                const k = self.put(m.key) orelse return refuse(prefix ++ " is too large for this router (or holds a bad escape)");
                const v = self.put(m.value) orelse return refuse(prefix ++ " is too large for this router (or holds a bad escape)");
                self.keys[self.count] = k;
                self.values[self.count] = v;
                self.count += 1;
            }
            return 0;
        }

        /// The value for the key the JSON string `key` holds (the last one,
        /// as in JSON); null when `key` is not a string or not in the map.
        pub fn get(self: *const Self, key: Json) ?[]const u8 {
            var i = self.count;
            while (i > 0) {
                i -= 1;
                if (key.strIs(self.keys[i])) return self.values[i];
            }
            return null;
        }
    };
}

// ---- the connections' state (ABI 1.2) ---------------------------------------

/// One connection's state, its names decoded and kept (in the `State`).
pub const ConnState = struct {
    name: []const u8 = "",
    /// The connection it streams from; null for a primary.
    replica_of: ?[]const u8 = null,
    /// true healthy, false unhealthy, null not checked yet.
    healthy: ?bool = null,
    /// A replica's lag in milliseconds; null unknown (or a primary).
    lag_ms: ?u64 = null,
    /// WAL bytes still to replay; null unknown.
    lag_bytes: ?u64 = null,
};

/// Every registered connection's state, in the host's order: at most 64
/// connections and 4096 bytes of names (a larger state makes the state
/// call trap: a fault). Kept in a global by `exportRouter`, so its names
/// can be answered as connection names.
pub const State = struct {
    count: usize = 0,
    used: usize = 0,
    conns: [64]ConnState = undefined,
    bytes: [4096]u8 = undefined,

    /// The connections.
    pub fn all(self: *const State) []const ConnState {
        return self.conns[0..self.count];
    }

    /// The state of the connection `name`, or null.
    pub fn get(self: *const State, name: []const u8) ?*const ConnState {
        for (self.all()) |*c| {
            if (c.name.len == name.len and for (c.name, name) |a, b| {
                if (a != b) break false;
            } else true) return c;
        }
        return null;
    }

    fn copy(self: *State, v: Json) ?[]const u8 {
        const out = v.strCopy(self.bytes[self.used..]) orelse return null;
        self.used += out.len;
        return out;
    }

    /// Reads the `dbroute_state` input; false when it is malformed or too
    /// large.
    fn read(self: *State, in: Json) bool {
        self.count = 0;
        self.used = 0;
        const list = in.get("connections");
        if (!list.isArray()) return false;
        var it = list.items();
        while (it.next()) |item| {
            if (item.isAbsent()) break;
            if (self.count == self.conns.len or !item.isObject()) return false;
            var c = ConnState{};
            c.name = self.copy(item.get("name")) orelse return false;
            const of = item.get("replica_of");
            if (!of.isAbsent() and !of.isNull()) c.replica_of = self.copy(of) orelse return false;
            const healthy = item.get("healthy");
            if (healthy.s.len == 4 and healthy.s[0] == 't') {
                c.healthy = true;
            } else if (healthy.s.len == 5 and healthy.s[0] == 'f') {
                c.healthy = false;
            } else if (!healthy.isAbsent() and !healthy.isNull()) return false;
            c.lag_ms = wholeNumber(item.get("lag_ms")) catch return false;
            c.lag_bytes = wholeNumber(item.get("lag_bytes")) catch return false;
            self.conns[self.count] = c;
            self.count += 1;
        }
        return true;
    }
};

/// A JSON whole number (no sign, fraction or exponent); null for null or
/// absent.
fn wholeNumber(v: Json) error{Malformed}!?u64 {
    if (v.isAbsent() or v.isNull()) return null;
    var n: u64 = 0;
    for (v.s) |c| {
        if (c < '0' or c > '9' or n > (@as(u64, 1) << 63) / 10) return error.Malformed;
        n = n * 10 + (c - '0');
    }
    return n;
}

/// The state the last `dbroute_state` call told (ABI 1.2).
var told_state: State = .{};

// ---- the exports ----------------------------------------------------------

var input_at: usize = 0;
var input_cap: usize = 0;

/// The buffer the host writes each input to: the memory past the module's
/// own pages (nothing else in the module grows memory), grown on demand.
fn dbrouteInput(len: i32) callconv(.c) usize {
    if (len < 0) return 0;
    const want: usize = @intCast(len);
    var end = @wasmMemorySize(0) * 65536;
    if (input_at == 0) input_at = end;
    if (want > input_cap) {
        const need = input_at + want;
        if (need > end) {
            const pages = (need - end + 65535) / 65536;
            if (@wasmMemoryGrow(0, pages) < 0) return 0;
            end += pages * 65536;
        }
        input_cap = end - input_at;
    }
    return input_at;
}

fn abiVersion() callconv(.c) i32 {
    return 1;
}

/// ABI 1.1: this file reads an operation's `origin`, and `allow_migrate`
/// inputs with an app and no model (`Migration.name` is then absent), so
/// the host may send them.
fn abiMinor() callconv(.c) i32 {
    return 1;
}

/// ABI 1.2: a router that declares `state` reads the connections' state.
fn abiMinorState() callconv(.c) i32 {
    return 2;
}

fn yes() callconv(.c) i32 {
    return 1;
}

/// Malformed input: refused by reads, writes and init (with a message), a
/// trap in allow_migrate (which cannot carry one), as the Rust SDK does.
const malformed = "malformed input: not an operation object with a string model.name";

/// Defines the ABI's exports for the router `R` (a file or a struct): see
/// the top of this file.
pub fn exportRouter(comptime R: type) void {
    @export(&dbrouteInput, .{ .name = "dbroute_input" });
    @export(&abiVersion, .{ .name = "dbroute_abi_version" });
    if (@hasDecl(R, "state")) {
        @export(&abiMinorState, .{ .name = "dbroute_abi_minor" });
    } else {
        @export(&abiMinor, .{ .name = "dbroute_abi_minor" });
    }
    if (@hasDecl(R, "deterministic") and R.deterministic) {
        @export(&yes, .{ .name = "dbroute_deterministic" });
    }
    const S = struct {
        fn init(ptr: [*]const u8, len: usize) callconv(.c) i64 {
            const input = whole(ptr, len);
            if (input.isAbsent()) return refuse("malformed input: not an object");
            return R.init(input.get("config"), input.get("connections"));
        }
        fn read(ptr: [*]const u8, len: usize) callconv(.c) i64 {
            const op = Op.parse(ptr, len) orelse return refuse(malformed);
            return R.read(op);
        }
        fn write(ptr: [*]const u8, len: usize) callconv(.c) i64 {
            const op = Op.parse(ptr, len) orelse return refuse(malformed);
            return R.write(op);
        }
        fn migrate(ptr: [*]const u8, len: usize) callconv(.c) i32 {
            const m = Migration.parse(ptr, len) orelse {
                logMessage(.err, malformed);
                @trap();
            };
            const answer: ?bool = R.migrate(m);
            return if (answer) |a| @intFromBool(a) else -1;
        }
        fn state(ptr: [*]const u8, len: usize) callconv(.c) i32 {
            if (!told_state.read(whole(ptr, len))) {
                logMessage(.err, "malformed dbroute_state input");
                @trap();
            }
            R.state(&told_state);
            return 0;
        }
    };
    if (@hasDecl(R, "init")) @export(&S.init, .{ .name = "dbroute_init" });
    if (@hasDecl(R, "read")) @export(&S.read, .{ .name = "db_for_read" });
    if (@hasDecl(R, "write")) @export(&S.write, .{ .name = "db_for_write" });
    if (@hasDecl(R, "migrate")) @export(&S.migrate, .{ .name = "allow_migrate" });
    if (@hasDecl(R, "state")) @export(&S.state, .{ .name = "dbroute_state" });
}
