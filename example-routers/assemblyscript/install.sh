#!/usr/bin/env bash
# Installs the pinned AssemblyScript compiler (package.json, exactly as
# package-lock.json says) into node_modules/ with `npm ci`, unless that
# version is there already. Needs Node.js 20 or later and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
want="$(node -p 'require("./package.json").devDependencies.assemblyscript')"
have="$(node_modules/.bin/asc --version 2>/dev/null | sed -n 's/^Version //p' || true)"
if [ "$have" != "$want" ]; then
  npm ci --no-audit --no-fund
  # The next cargo build looks for toolchains again.
  touch "$here/build.sh"
fi
echo "node $(node --version); asc $(node_modules/.bin/asc --version | sed -n 's/^Version //p')"
