#!/usr/bin/env bash
# dbroute's Extism peer benchmark: builds the plugin (wasm32-unknown-unknown,
# `wasm-release` profile), then runs the criterion bench against it.
#
# Usage, from dbroute's root: bash benches/peers/extism/run.sh [criterion options]
# e.g. bash benches/peers/extism/run.sh --warm-up-time 1 --measurement-time 3
#
# CARGO_TARGET_DIR defaults to ~/.cache/dbroute/peers-target, apart from
# dbroute's own target directory; CARGO_BUILD_JOBS limits the build's jobs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/dbroute/peers-target}"
mkdir -p "$target"
CARGO_TARGET_DIR="$(cd "$target" && pwd)"
export CARGO_TARGET_DIR
cd "$here"

cargo build --locked --profile wasm-release --target wasm32-unknown-unknown -p dbroute-peer-extism-plugin
export DBROUTE_EXTISM_PLUGIN="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/dbroute_peer_extism_plugin.wasm"
echo "plugin: $DBROUTE_EXTISM_PLUGIN ($(wc -c <"$DBROUTE_EXTISM_PLUGIN") bytes)"

cargo bench --locked --bench extism -- "$@"
