#!/usr/bin/env bash
# Builds the Zig routers: ./build.sh OUT_DIR -> OUT_DIR/zig-reference.wasm (the
# reference policy) and OUT_DIR/zig-lag.wasm (routing by replica lag)
#
# Uses $ZIG, else the zig that ./install.sh puts in $DBROUTE_ZIG_VENV (or
# $HOME/.cache/dbroute/zig-venv), else a `zig` on PATH of the pinned version
# (requirements.txt). Exit status 77: no such zig (the reason is on stderr);
# anything else but 0: the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
want="$(sed -n 's/^ziglang==//p' "$here/requirements.txt")"
venv="${DBROUTE_ZIG_VENV:-${HOME:-}/.cache/dbroute/zig-venv}"

missing() { echo "$*" >&2; exit 77; }

if [ -n "${ZIG:-}" ]; then
  zig="$ZIG"
elif [ -x "$venv/bin/zig" ]; then
  zig="$venv/bin/zig"
elif command -v zig >/dev/null; then
  zig="$(command -v zig)"
else
  missing "zig not found (example-routers/zig/install.sh installs zig $want)"
fi
have="$("$zig" version 2>/dev/null || true)"
[ "$have" = "$want" ] || missing "$zig is zig ${have:-of an unknown version}, not the pinned $want (example-routers/zig/install.sh installs it)"

mkdir -p "$out"
cd "$here"
for router in reference lag; do
  "$zig" build-exe "$router.zig" -target wasm32-freestanding -fno-entry -rdynamic \
    -O ReleaseFast -fstrip --stack 65536 \
    --cache-dir "$out/zig-cache" -femit-bin="$out/zig-$router.wasm"
  echo "$out/zig-$router.wasm"
done
