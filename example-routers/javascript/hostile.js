// A router that misbehaves on purpose, for the host's tests
// (tests/integration/component_faults.rs): its configuration's `mode` says
// how dbForRead misbehaves, for the model `Hostile` only (every other read
// and every write goes to `default`, so a test can check that the next call
// is served). Not an example to follow.
//
// - loop: never returns; heap: allocates without end; throw: throws;
// - clock: answers `frozen` when Date.now() says 2025-01-01 twice, else
//   `moving`;
// - random: answers `r<n>`, n from the instance's first Math.random();
// - anything else: answers `default`.

import { parseConfig, use } from "./dbroute.js";

/** @type {string | undefined} */
let mode;

/** @type {typeof import("dbroute:router/router@1.0.0")} */
export const router = {
  init(config, _connections) {
    const parsed = parseConfig(config);
    mode = parsed && typeof parsed === "object" && "mode" in parsed ? String(parsed.mode) : undefined;
  },

  deterministic() {
    return false;
  },

  dbForRead(op) {
    if (op.model.name !== "Hostile") return use("default");
    if (mode === "loop") {
      for (;;) {
        // never returns
      }
    }
    if (mode === "heap") {
      const hoard = [];
      for (;;) hoard.push(new Uint8Array(8 << 20));
    }
    if (mode === "throw") throw new Error("this router throws on purpose");
    if (mode === "clock") {
      const first = Date.now();
      const same = first === Date.now() && first === 1735689600000;
      return use(same ? "frozen" : "moving");
    }
    if (mode === "random") return use(`r${Math.floor(Math.random() * 65536)}`);
    return use("default");
  },

  dbForWrite(_op) {
    return use("default");
  },

  allowRelation(_a, _b, _hints) {
    return undefined;
  },

  allowMigrate(_db, _target, _hints) {
    return undefined;
  },

  stateChanged(_connections) {},
};
