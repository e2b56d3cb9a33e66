// The dbroute reference policy, in JavaScript (the same decisions as
// example-routers/reference, the Rust one; the cases are in
// example-routers/reference-cases.json):
//
// - a `tenant` hint (a string) that the configuration's tenant map
//   ({"tenants": {"acme": "tenant_acme"}}) maps to a connection sends reads
//   and writes there; an unmapped tenant changes nothing;
// - otherwise reads go to `replica`, writes to `default`, except the
//   `Event` model, which reads and writes on `analytics`;
// - writes to a model tagged `readonly` are refused, tenant or not, with
//   the message `writes to read-only model <Name> are forbidden`;
// - allowMigrate: `Event` only on `analytics` (true there, false
//   elsewhere); any other model false on `analytics`, no opinion elsewhere
//   (an app asked about without a model counts as another model).
//
// Deterministic: the host may cache its answers. Build: ./build.sh OUT_DIR

import { log, parseConfig, refuse, stringHint, stringMap, use } from "./dbroute.js";

/** @typedef {import("dbroute:router/types@1.0.0").Operation} Operation */

const REPLICA = use("replica");
const DEFAULT = use("default");
const ANALYTICS = use("analytics");

/** Tenant -> connection, from config.tenants; set by init. @type {Map<string, string>} */
let tenants = new Map();

/**
 * The connection the operation's tenant maps to, if any.
 * @param {Operation} op
 */
function tenantDb(op) {
  if (tenants.size === 0) return undefined;
  const tenant = stringHint(op.hints, "tenant");
  return tenant === undefined ? undefined : tenants.get(tenant);
}

/** @type {typeof import("dbroute:router/router@1.0.0")} */
export const router = {
  init(config, _connections) {
    tenants = stringMap(parseConfig(config), "tenants");
    log("debug", "reference router (JavaScript) ready");
  },

  deterministic() {
    return true;
  },

  dbForRead(op) {
    const db = tenantDb(op);
    if (db !== undefined) return use(db);
    return op.model.name === "Event" ? ANALYTICS : REPLICA;
  },

  dbForWrite(op) {
    if (op.model.tags.includes("readonly")) {
      return refuse(`writes to read-only model ${op.model.name} are forbidden`);
    }
    const db = tenantDb(op);
    if (db !== undefined) return use(db);
    return op.model.name === "Event" ? ANALYTICS : DEFAULT;
  },

  allowRelation(_a, _b, _hints) {
    return undefined; // no opinion
  },

  allowMigrate(db, target, _hints) {
    const onAnalytics = db === "analytics";
    if (target.tag === "model" && target.val.name === "Event") return onAnalytics;
    return onAnalytics ? false : undefined;
  },

  stateChanged(_connections) {
    // The policy does not depend on the connections' state.
  },
};
