#!/usr/bin/env bash
# Builds the C routers: ./build.sh OUT_DIR -> OUT_DIR/c-reference.wasm (the
# reference policy) and OUT_DIR/c-lag.wasm (routing by replica lag)
#
# Needs clang with the wasm32 target and wasm-ld (Debian: apt-get install
# clang lld). $CLANG and $WASM_LD choose others. Exit status 77: a tool is
# missing (the reason is on stderr); anything else but 0: the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"

missing() { echo "$*" >&2; exit 77; }

clang="$(command -v "${CLANG:-clang}" || true)"
[ -n "$clang" ] || missing "${CLANG:-clang} not found (Debian package clang)"
"$clang" --print-targets 2>/dev/null | grep -q 'wasm32' || missing "$clang has no wasm32 target"
wasm_ld="${WASM_LD:-$(command -v wasm-ld || compgen -c wasm-ld- | sort -V | tail -n 1 || true)}"
[ -n "$wasm_ld" ] && wasm_ld="$(command -v "$wasm_ld" || true)"
[ -n "$wasm_ld" ] || missing "${WASM_LD:-wasm-ld} not found (Debian package lld)"

mkdir -p "$out"
# clang runs the linker as `wasm-ld`, found on PATH.
if [ "$(basename "$wasm_ld")" != wasm-ld ] || [ "$(command -v wasm-ld || true)" != "$wasm_ld" ]; then
  mkdir -p "$out/bin"
  ln -sf "$wasm_ld" "$out/bin/wasm-ld"
  export PATH="$out/bin:$PATH"
fi
for router in reference lag; do
  "$clang" --target=wasm32 -std=c11 -O2 -ffreestanding -nostdlib -mbulk-memory \
    -Wall -Wextra -Werror \
    -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 \
    -o "$out/c-$router.wasm" "$here/$router.c"
  echo "$out/c-$router.wasm"
done
