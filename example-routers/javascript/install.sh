#!/usr/bin/env bash
# Installs the pinned tools (package.json, exactly as package-lock.json
# says: componentize-js, jco, the WASI shim componentize-js loads, and
# TypeScript for the type check) into node_modules/ with `npm ci`, unless
# those versions are there already. Needs Node.js 20 or later and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
# Each pinned package's version in node_modules, against package.json.
pinned() {
  node -e '
    const want = require("./package.json").devDependencies;
    for (const [name, version] of Object.entries(want)) {
      let have;
      try { have = require(`./node_modules/${name}/package.json`).version; } catch {}
      if (have !== version) process.exit(1);
    }'
}
if ! pinned; then
  npm ci --no-audit --no-fund
  # The next cargo build looks for toolchains again.
  touch "$here/build.sh"
fi
echo "node $(node --version); componentize-js $(node_modules/.bin/componentize-js --version);" \
  "jco $(node_modules/.bin/jco --version); tsc $(node_modules/.bin/tsc --version | sed 's/^Version //')"
