//! Routing by replica lag (ABI 1.2), in Zig (the same decisions as
//! example-routers/lag, the Rust one; the cases are in
//! example-routers/lag-cases.json):
//!
//! - configuration: {"max_lag_ms": 500}, a whole number of milliseconds
//!   (required);
//! - reads: the first replica, in the host's order, not known to be
//!   unhealthy and whose lag is known and at most max_lag_ms; when none
//!   qualifies, the primary of the first replica;
//! - writes: the primary the first replica streams from, up its chain;
//! - no state told yet, or no replica: no opinion.
//!
//! Deterministic: the host forgets its cached answers when the state
//! changes. Build: ./build.sh OUT_DIR

const dbroute = @import("dbroute.zig");

pub const deterministic = true;

var max_lag_ms: u64 = 0;
var told: ?*const dbroute.State = null;

pub fn init(config: dbroute.Json, connections: dbroute.Json) dbroute.Answer {
    _ = connections;
    const bound = config.get("max_lag_ms");
    const refusal = dbroute.refuse("config.max_lag_ms must be a whole number of milliseconds");
    if (bound.isAbsent() or bound.isNull()) return refusal;
    var n: u64 = 0;
    for (bound.s) |c| {
        if (c < '0' or c > '9' or n > (@as(u64, 1) << 60)) return refusal;
        n = n * 10 + (c - '0');
    }
    max_lag_ms = n;
    return 0;
}

pub fn state(s: *const dbroute.State) void {
    told = s;
}

fn firstReplica() ?*const dbroute.ConnState {
    const s = told orelse return null;
    for (s.all()) |*c| {
        if (c.replica_of != null) return c;
    }
    return null;
}

pub fn read(op: dbroute.Op) dbroute.Answer {
    _ = op;
    const s = told orelse return dbroute.noOpinion();
    for (s.all()) |c| {
        if (c.replica_of == null or c.healthy == false) continue;
        if (c.lag_ms) |ms| {
            if (ms <= max_lag_ms) return dbroute.use(c.name);
        }
    }
    const r = firstReplica() orelse return dbroute.noOpinion();
    return dbroute.use(r.replica_of.?);
}

pub fn write(op: dbroute.Op) dbroute.Answer {
    _ = op;
    const s = told orelse return dbroute.noOpinion();
    var c = firstReplica() orelse return dbroute.noOpinion();
    // Up the chain (bounded: a cycle cannot be declared).
    var steps: usize = 0;
    while (c.replica_of) |up| : (steps += 1) {
        if (steps == s.count) break;
        c = s.get(up) orelse return dbroute.use(up);
    }
    return dbroute.use(c.name);
}

comptime {
    dbroute.exportRouter(@This());
}
