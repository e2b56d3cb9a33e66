#!/usr/bin/env bash
# Builds the AssemblyScript routers: ./build.sh OUT_DIR ->
# OUT_DIR/assemblyscript-reference.wasm (the reference policy) and
# OUT_DIR/assemblyscript-lag.wasm (routing by replica lag)
#
# Uses the compiler that ./install.sh (npm ci) put in node_modules/; never
# installs anything itself. Exit status 77: no compiler (the reason is on
# stderr); anything else but 0: the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"

missing() { echo "$*" >&2; exit 77; }

command -v node >/dev/null || missing "node not found (Node.js 20 or later)"
asc="$here/node_modules/.bin/asc"
[ -x "$asc" ] || missing "asc not found: run npm ci in example-routers/assemblyscript (or its install.sh)"
want="$(node -p "require('$here/package.json').devDependencies.assemblyscript")"
have="$("$asc" --version 2>/dev/null | sed -n 's/^Version //p' || true)"
[ "$have" = "$want" ] || missing "node_modules has asc ${have:-of an unknown version}, not the pinned $want: run npm ci in example-routers/assemblyscript"

mkdir -p "$out"
cd "$here"
# --runtime stub: a bump allocator, used only for the input buffer, the
# tenant map and the connections' state; --use abort=...: a trap instead of an `env.abort` import.
for router in reference lag; do
  "$asc" "assembly/$router.ts" -o "$out/assemblyscript-$router.wasm" \
    --runtime stub -O3 --noAssert --use abort=assembly/dbroute/trap
  echo "$out/assemblyscript-$router.wasm"
done
