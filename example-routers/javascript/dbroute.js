// dbroute.js: helpers for dbroute routers written in JavaScript, built into
// WebAssembly components by componentize-js (the world `routing` of
// wit/router.wit, package dbroute:router@1.0.0).
//
// A router module exports `router`: an object with the functions of the
// WIT interface `router` as methods, in jco's camelCase (init,
// deterministic, dbForRead, dbForWrite, allowRelation, allowMigrate,
// stateChanged). See reference.js. What this file gives:
//
// - answers for dbForRead and dbForWrite: use("replica"), refuse("message"),
//   NO_OPINION; allowRelation and allowMigrate answer true, false, or
//   undefined for no opinion;
// - hints: hint(hints, key), the hint's JSON value decoded (undefined when
//   the calling code gave no such hint), and stringHint(hints, key), the
//   value when it is a JSON string;
// - configuration: parseConfig(text), the JSON text init is given, decoded
//   (null when none was given), and stringMap(config, key), a Map of a
//   member such as {"tenants": {"acme": "tenant_acme"}};
// - refusing to load: throw new InitError("message") in init. componentize-js
//   turns a thrown string, or an object with a `payload`, into the error of
//   init's result<_, string>; any other exception (an Error, a TypeError)
//   traps, which the host takes for a router fault;
// - log(level, message): the host's log ("error", "warn", "info", "debug",
//   "trace").
//
// Types: build.sh generates TypeScript declarations from the WIT and checks
// this file and reference.js against them (tsc --checkJs).

import { log } from "dbroute:router/host@1.0.0";

export { log };

/** @typedef {import("dbroute:router/types@1.0.0").Decision} Decision */
/** @typedef {import("dbroute:router/types@1.0.0").Hint} Hint */

// ---- answers ----------------------------------------------------------------

/**
 * Use this connection.
 * @param {string} connection
 * @returns {Decision}
 */
export function use(connection) {
  return { tag: "connection", val: connection };
}

/**
 * Refuse the operation with this message: the host fails it and does not
 * fall back.
 * @param {string} message
 * @returns {Decision}
 */
export function refuse(message) {
  return { tag: "refuse", val: message };
}

/**
 * No opinion: the next router is asked; when none has one, the operation's
 * origin, else `default`.
 * @type {Decision}
 */
export const NO_OPINION = Object.freeze({ tag: "no-opinion" });

// ---- hints ------------------------------------------------------------------

/**
 * The hint `key`'s value, decoded from its JSON text (null for a `null`
 * hint); undefined when the calling code gave no such hint.
 * @param {Hint[]} hints
 * @param {string} key
 * @returns {unknown}
 */
export function hint(hints, key) {
  for (let i = 0; i < hints.length; i++) {
    if (hints[i].key === key) return JSON.parse(hints[i].value);
  }
  return undefined;
}

/**
 * The hint `key`'s value when it is a JSON string; undefined when there is
 * no such hint or its value is not a string.
 * @param {Hint[]} hints
 * @param {string} key
 * @returns {string | undefined}
 */
export function stringHint(hints, key) {
  for (let i = 0; i < hints.length; i++) {
    if (hints[i].key === key) {
      const value = JSON.parse(hints[i].value);
      return typeof value === "string" ? value : undefined;
    }
  }
  return undefined;
}

// ---- configuration ----------------------------------------------------------

/**
 * An error that refuses the load (or the new instance) with its message,
 * when thrown by init.
 */
export class InitError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "InitError";
    /** What componentize-js passes to the host as init's error. */
    this.payload = message;
  }
}

/**
 * The configuration init is given, decoded: null when none was given.
 * @param {string} text
 * @returns {unknown}
 */
export function parseConfig(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InitError(`the configuration is not JSON: ${e}`);
  }
}

/**
 * The member `key` of the configuration, an object whose values are
 * strings, as a Map. Empty when the configuration is not an object, or the
 * member is absent or null; any other member refuses the load with
 * `config.<key> must be an object whose values are strings`.
 * @param {unknown} config
 * @param {string} key
 * @returns {Map<string, string>}
 */
export function stringMap(config, key) {
  const map = new Map();
  const value = isObject(config) && Object.hasOwn(config, key) ? config[key] : null;
  if (value === null || value === undefined) return map;
  const refusal = `config.${key} must be an object whose values are strings`;
  if (!isObject(value)) throw new InitError(refusal);
  for (const [name, connection] of Object.entries(value)) {
    if (typeof connection !== "string") throw new InitError(refusal);
    map.set(name, connection);
  }
  return map;
}

/**
 * A JSON object (not an array, not null).
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
