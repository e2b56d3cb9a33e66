/*
 * Routing by replica lag (ABI 1.2), in freestanding C (the same decisions
 * as example-routers/lag, the Rust one; the cases are in
 * example-routers/lag-cases.json):
 *
 *   - configuration: {"max_lag_ms": 500}, a whole number of milliseconds
 *     (required);
 *   - reads: the first replica, in the host's order, not known to be
 *     unhealthy and whose lag is known and at most max_lag_ms; when none
 *     qualifies, the primary of the first replica;
 *   - writes: the primary the first replica streams from, up its chain;
 *   - no state told yet, or no replica: no opinion.
 *
 * Deterministic: the host forgets its cached answers when the state
 * changes. Build: ./build.sh OUT_DIR
 */
#define DBROUTE_CONNECTION_STATE
#include "dbroute.h"

static int64_t max_lag_ms;
static const dbroute_state *state;

static dbroute_result init(dbroute_json config, dbroute_json connections) {
  (void)connections;
  if (!dbroute__whole_number(dbroute_get(config, "max_lag_ms"), &max_lag_ms) || max_lag_ms < 0)
    return dbroute_refuse("config.max_lag_ms must be a whole number of milliseconds");
  return 0;
}

static void told(const dbroute_state *st) { state = st; }

/* The first replica in the state, or 0. */
static const dbroute_conn_state *first_replica(void) {
  for (uint32_t i = 0; state && i < state->count; i++)
    if (state->c[i].replica_of_len) return &state->c[i];
  return 0;
}

static dbroute_result read(const dbroute_op *op) {
  (void)op;
  for (uint32_t i = 0; state && i < state->count; i++) {
    const dbroute_conn_state *c = &state->c[i];
    if (c->replica_of_len && c->healthy != 0 && c->lag_ms >= 0 && c->lag_ms <= max_lag_ms)
      return dbroute_use_n(c->name, c->name_len);
  }
  const dbroute_conn_state *r = first_replica();
  return r ? dbroute_use_n(r->replica_of, r->replica_of_len) : dbroute_no_opinion();
}

static dbroute_result write(const dbroute_op *op) {
  (void)op;
  const dbroute_conn_state *c = first_replica();
  if (!c) return dbroute_no_opinion();
  /* Up the chain (bounded: a cycle cannot be declared). */
  for (uint32_t i = 0; i < state->count && c->replica_of_len; i++) {
    const dbroute_conn_state *up = dbroute_state_get(state, c->replica_of, c->replica_of_len);
    if (!up) return dbroute_use_n(c->replica_of, c->replica_of_len);
    c = up;
  }
  return dbroute_use_n(c->name, c->name_len);
}

DBROUTE_EXPORT_DETERMINISTIC()
DBROUTE_EXPORT_INIT(init)
DBROUTE_EXPORT_STATE(told)
DBROUTE_EXPORT_READ(read)
DBROUTE_EXPORT_WRITE(write)
