// Routing by replica lag (ABI 1.2), in AssemblyScript (the same decisions
// as example-routers/lag, the Rust one; the cases are in
// example-routers/lag-cases.json):
//
// - configuration: {"max_lag_ms": 500}, a whole number of milliseconds
//   (required);
// - reads: the first replica, in the host's order, not known to be
//   unhealthy and whose lag is known and at most max_lag_ms; when none
//   qualifies, the primary of the first replica;
// - writes: the primary the first replica streams from, up its chain;
// - no state told yet, or no replica: no opinion.
//
// Deterministic: the host forgets its cached answers when the state
// changes. Build: ./build.sh OUT_DIR

import { State, get, initConfig, noOpinion, refuse, wholeNumber } from "./dbroute";

export { dbroute_abi_version, dbroute_input, dbroute_deterministic, dbroute_state } from "./dbroute";
export { dbroute_abi_minor_state as dbroute_abi_minor } from "./dbroute";

let maxLagMs: i64 = 0;

export function dbroute_init(ptr: usize, len: usize): i64 {
  // Absent or null: -1; not a whole number: -2.
  maxLagMs = wholeNumber(get(initConfig(ptr, len), "max_lag_ms"));
  if (maxLagMs < 0) return refuse("config.max_lag_ms must be a whole number of milliseconds");
  return 0;
}

// The first replica in the state, or -1.
function firstReplica(): i32 {
  for (let i = 0; i < State.count; i++) if (State.isReplica(i)) return i;
  return -1;
}

export function db_for_read(ptr: usize, len: usize): i64 {
  for (let i = 0; i < State.count; i++) {
    if (!State.isReplica(i) || State.healthy(i) == 0) continue;
    const lag = State.lagMs(i);
    if (lag >= 0 && lag <= maxLagMs) return State.use(i);
  }
  const r = firstReplica();
  return r < 0 ? noOpinion() : State.usePrimaryOf(r);
}

export function db_for_write(ptr: usize, len: usize): i64 {
  let c = firstReplica();
  if (c < 0) return noOpinion();
  // Up the chain (bounded: a cycle cannot be declared).
  for (let steps = 0; steps < State.count && State.isReplica(c); steps++) {
    const up = State.primaryOf(c);
    if (up < 0) return State.usePrimaryOf(c);
    c = up;
  }
  return State.use(c);
}
