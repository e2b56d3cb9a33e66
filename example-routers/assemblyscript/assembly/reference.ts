// The dbroute reference policy, in AssemblyScript (the same decisions as
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
// - allow_migrate: `Event` only on `analytics` (yes there, no elsewhere);
//   any other model no on `analytics`, no opinion elsewhere (an app asked
//   about without a model counts as another model).
//
// Deterministic: the host may cache its answers. Build: ./build.sh OUT_DIR

import {
  DEBUG, Message, Migration, NO, NO_OPINION, Op, StrMap, YES,
  initConfig, log, malformed, strIs, use,
} from "./dbroute";

export { dbroute_abi_version, dbroute_abi_minor, dbroute_input, dbroute_deterministic } from "./dbroute";

const tenants = new StrMap(64, 4096);

export function dbroute_init(ptr: usize, len: usize): i64 {
  const r = tenants.fromConfig(initConfig(ptr, len), "tenants");
  if (r == 0) log(DEBUG, "reference router (AssemblyScript) ready");
  return r;
}

export function db_for_read(ptr: usize, len: usize): i64 {
  if (!Op.parse(ptr, len)) return malformed();
  const tenant = tenants.get(Op.hint("tenant"));
  if (tenant) return tenant;
  return use(Op.modelIs("Event") ? "analytics" : "replica");
}

export function db_for_write(ptr: usize, len: usize): i64 {
  if (!Op.parse(ptr, len)) return malformed();
  if (Op.hasTag("readonly")) {
    Message.clear();
    Message.push("writes to read-only model ");
    Message.pushStr(Op.name);
    Message.push(" are forbidden");
    return Message.refusal();
  }
  const tenant = tenants.get(Op.hint("tenant"));
  if (tenant) return tenant;
  return use(Op.modelIs("Event") ? "analytics" : "default");
}

export function allow_migrate(ptr: usize, len: usize): i32 {
  Migration.parse(ptr, len);
  const onAnalytics = strIs(Migration.db, "analytics");
  if (strIs(Migration.name, "Event")) return onAnalytics ? YES : NO;
  return onAnalytics ? NO : NO_OPINION;
}
