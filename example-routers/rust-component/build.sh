#!/usr/bin/env bash
# Builds the reference policy as a WebAssembly component, in Rust with
# wit-bindgen: ./build.sh OUT_DIR -> OUT_DIR/rust-component-reference.wasm
#
# Needs cargo and the wasm32-wasip2 target of the toolchain that the
# repository's rust-toolchain.toml pins (rustup installs it with that
# toolchain; `rustup target add wasm32-wasip2` adds it to one installed
# without it). The crate is a cargo workspace of its own, built in
# OUT_DIR/target. Exit status 77: cargo or the target is missing (the reason
# is on stderr); anything else but 0: the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
target=wasm32-wasip2

missing() { echo "$*" >&2; exit 77; }

# Set by an outer cargo that runs this script (a build script): they would
# change or break this build (example-routers/artifacts/build.rs, OUTER_ENV).
unset CARGO_ENCODED_RUSTFLAGS RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET \
  CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_BUILD_BUILD_DIR CARGO_MAKEFLAGS \
  MAKEFLAGS MFLAGS RUSTC_WORKSPACE_WRAPPER CARGO_PRIMARY_PACKAGE

# In this folder, rustup picks the toolchain of rust-toolchain.toml.
cd "$here"
command -v cargo >/dev/null || missing "cargo not found (https://rustup.rs)"
if command -v rustup >/dev/null; then
  toolchain="$(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1 || true)"
  rustup target list --installed 2>/dev/null | grep -qx "$target" ||
    missing "the Rust target $target is not installed for ${toolchain:-the active toolchain} (rustup target add $target)"
else
  sysroot="$(rustc --print sysroot 2>/dev/null || true)"
  [ -d "$sysroot/lib/rustlib/$target" ] ||
    missing "the Rust target $target is not installed in ${sysroot:-the sysroot of rustc}"
fi

mkdir -p "$out"
CARGO_TARGET_DIR="$out/target" cargo build --locked --release --target "$target" \
  --manifest-path "$here/Cargo.toml"
cp "$out/target/$target/release/dbroute_router_rust_component.wasm" "$out/rust-component-reference.wasm"
echo "$out/rust-component-reference.wasm"
