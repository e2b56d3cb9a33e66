//! The dbroute reference policy, in Zig (the same decisions as
//! example-routers/reference, the Rust one; the cases are in
//! example-routers/reference-cases.json):
//!
//! - a `tenant` hint (a string) that the configuration's tenant map
//!   ({"tenants": {"acme": "tenant_acme"}}) maps to a connection sends
//!   reads and writes there; an unmapped tenant changes nothing;
//! - otherwise reads go to `replica`, writes to `default`, except the
//!   `Event` model, which reads and writes on `analytics`;
//! - writes to a model tagged `readonly` are refused, tenant or not, with
//!   the message `writes to read-only model <Name> are forbidden`;
//! - allow_migrate: `Event` only on `analytics` (true there, false
//!   elsewhere); any other model false on `analytics`, no opinion elsewhere
//!   (an app asked about without a model counts as another model).
//!
//! Deterministic: the host may cache its answers. Build: ./build.sh OUT_DIR

const dbroute = @import("dbroute.zig");

pub const deterministic = true;

var tenants: dbroute.StrMap(64, 4096) = .{};

pub fn init(config: dbroute.Json, connections: dbroute.Json) dbroute.Answer {
    _ = connections;
    const r = tenants.fromConfig(config, "tenants");
    if (r == 0) dbroute.logMessage(.debug, "reference router (Zig) ready");
    return r;
}

pub fn read(op: dbroute.Op) dbroute.Answer {
    if (tenants.get(op.hint("tenant"))) |db| return dbroute.use(db);
    if (op.modelIs("Event")) return dbroute.use("analytics");
    return dbroute.use("replica");
}

pub fn write(op: dbroute.Op) dbroute.Answer {
    if (op.hasTag("readonly")) {
        dbroute.Message.clear();
        dbroute.Message.push("writes to read-only model ");
        dbroute.Message.pushStr(op.name);
        dbroute.Message.push(" are forbidden");
        return dbroute.Message.refusal();
    }
    if (tenants.get(op.hint("tenant"))) |db| return dbroute.use(db);
    if (op.modelIs("Event")) return dbroute.use("analytics");
    return dbroute.use("default");
}

pub fn migrate(m: dbroute.Migration) ?bool {
    const on_analytics = m.db.strIs("analytics");
    if (m.name.strIs("Event")) return on_analytics;
    return if (on_analytics) false else null;
}

comptime {
    dbroute.exportRouter(@This());
}
