/*
 * The dbroute reference policy, in freestanding C (the same decisions as
 * example-routers/reference, the Rust one; the cases are in
 * example-routers/reference-cases.json):
 *
 *   - a `tenant` hint (a string) that the configuration's tenant map
 *     ({"tenants": {"acme": "tenant_acme"}}) maps to a connection sends
 *     reads and writes there; an unmapped tenant changes nothing;
 *   - otherwise reads go to `replica`, writes to `default`, except the
 *     `Event` model, which reads and writes on `analytics`;
 *   - writes to a model tagged `readonly` are refused, tenant or not, with
 *     the message `writes to read-only model <Name> are forbidden`;
 *   - allow_migrate: `Event` only on `analytics` (yes there, no elsewhere);
 *     any other model no on `analytics`, no opinion elsewhere (an app asked
 *     about without a model counts as another model).
 *
 * Deterministic: the host may cache its answers. Build: ./build.sh OUT_DIR
 */
#include "dbroute.h"

static dbroute_str_map tenants;

static dbroute_result init(dbroute_json config, dbroute_json connections) {
  (void)connections;
  dbroute_result r = dbroute_config_str_map(config, "tenants", &tenants);
  if (r == 0) dbroute_log(DBROUTE_DEBUG, "reference router (C) ready");
  return r;
}

/* The connection the operation's tenant maps to, or 0. */
static const char *tenant_db(const dbroute_op *op, uint32_t *len) {
  return dbroute_map_get(&tenants, dbroute_hint(op, "tenant"), len);
}

static dbroute_result read(const dbroute_op *op) {
  uint32_t len;
  const char *db = tenant_db(op, &len);
  if (db) return dbroute_use_n(db, len);
  if (dbroute_model_is(op, "Event")) return dbroute_use("analytics");
  return dbroute_use("replica");
}

static dbroute_result write(const dbroute_op *op) {
  if (dbroute_has_tag(op, "readonly")) {
    dbroute_msg_clear();
    dbroute_msg_push("writes to read-only model ");
    dbroute_msg_push_str(op->name);
    dbroute_msg_push(" are forbidden");
    return dbroute_msg_refuse();
  }
  uint32_t len;
  const char *db = tenant_db(op, &len);
  if (db) return dbroute_use_n(db, len);
  if (dbroute_model_is(op, "Event")) return dbroute_use("analytics");
  return dbroute_use("default");
}

static int migrate(const dbroute_migration *m) {
  int on_analytics = dbroute_str_is(m->db, "analytics");
  if (dbroute_str_is(m->name, "Event")) return on_analytics ? DBROUTE_YES : DBROUTE_NO;
  return on_analytics ? DBROUTE_NO : DBROUTE_NO_OPINION;
}

DBROUTE_EXPORT_DETERMINISTIC()
DBROUTE_EXPORT_INIT(init)
DBROUTE_EXPORT_READ(read)
DBROUTE_EXPORT_WRITE(write)
DBROUTE_EXPORT_MIGRATE(migrate)
