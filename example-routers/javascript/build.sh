#!/usr/bin/env bash
# Builds the JavaScript router, a WebAssembly component of the world
# `routing` (wit/router.wit): ./build.sh OUT_DIR ->
# OUT_DIR/javascript-reference.wasm (the reference policy: reference.js and
# dbroute.js), OUT_DIR/javascript-hostile.wasm (misbehaving on purpose, for
# the host's tests) and OUT_DIR/javascript-types/ (the TypeScript declarations of
# the world for a router, generated from the WIT, which both files are
# type-checked against first).
#
# Uses the tools that ./install.sh (npm ci) put in node_modules/; never
# installs anything itself. Exit status 77: no toolchain (the reason is on
# stderr); anything else but 0: the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"

missing() { echo "$*" >&2; exit 77; }

command -v node >/dev/null || missing "node not found (Node.js 20 or later)"
[ "$(node -p 'process.versions.node.split(".")[0] >= 20')" = true ] ||
  missing "node $(node --version) is too old (Node.js 20 or later)"
# Every package package.json pins, at its version.
wrong="$(cd "$here" && node -e '
  const want = require("./package.json").devDependencies;
  for (const [name, version] of Object.entries(want)) {
    let have;
    try { have = require(`./node_modules/${name}/package.json`).version; } catch {}
    if (have !== version) console.log(have ? `${name} is ${have}, not ${version}` : `${name} ${version} is missing`);
  }')"
[ -z "$wrong" ] ||
  missing "node_modules is not what package.json pins ($(echo "$wrong" | paste -sd ';' | sed 's/;/; /g')): run npm ci in example-routers/javascript (or its install.sh)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
bin=node_modules/.bin
types="$out/javascript-types"

# The declarations, then the type check: a method missing from `router`, a
# wrong answer's shape or an unknown log level fails the build here.
rm -rf "$types"
node types.mjs "$types" >/dev/null
"$bin/tsc" --noEmit --allowJs --checkJs --strict --target es2022 --lib es2022 \
  --module esnext --moduleResolution bundler --types "" \
  reference.js hostile.js dbroute.js "$types/routing.d.ts"

# -d http fetch-event: no fetch() and no wasi:http imports (the host gives
# none). No --aot: it downloads weval.
for router in reference hostile; do
  wasm="$out/javascript-$router.wasm"
  rm -f "$wasm"
  "$bin/componentize-js" "$router.js" --wit ../../wit/router.wit --world-name routing \
    --disable http fetch-event --out "$wasm"

  # Its imports: dbroute:router's and WASI 0.2's io, clocks, cli, filesystem
  # and random, nothing else.
  imports="$("$bin/jco" wit "$wasm" | sed -n 's/^ *import \([^;]*\);$/\1/p')"
  [ -n "$imports" ] || { echo "no imports found in $wasm" >&2; exit 1; }
  if other="$(echo "$imports" | grep -Ev '^(dbroute:router/(host|types)@1\.0\.0|wasi:(io|clocks|cli|filesystem|random)/[a-z-]+@0\.2\.[0-9]+)$')"; then
    echo "$wasm imports what the host does not give: $other" >&2
    exit 1
  fi
  echo "$wasm"
done
