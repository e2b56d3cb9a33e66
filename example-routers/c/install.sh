#!/usr/bin/env bash
# Installs clang and wasm-ld from Debian's packages (clang, lld) unless they
# are there already. Needs root, or sudo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if command -v clang >/dev/null && command -v wasm-ld >/dev/null; then
  echo "$(clang --version | head -n 1); $(wasm-ld --version)"
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang lld >/dev/null
# The next cargo build looks for toolchains again.
touch "$here/build.sh"
echo "$(clang --version | head -n 1); $(wasm-ld --version)"
