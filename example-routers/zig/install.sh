#!/usr/bin/env bash
# Installs the pinned Zig (requirements.txt: the PyPI package ziglang) into a
# virtual environment, $DBROUTE_ZIG_VENV or $HOME/.cache/dbroute/zig-venv,
# unless it is there already, and puts a `zig` launcher in its bin/.
# ./build.sh finds it there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${DBROUTE_ZIG_VENV:-$HOME/.cache/dbroute/zig-venv}"
want="$(sed -n 's/^ziglang==//p' "$here/requirements.txt")"

if [ "$("$venv/bin/zig" version 2>/dev/null || true)" = "$want" ]; then
  echo "zig $want: $venv/bin/zig"
  exit 0
fi
python="${PYTHON:-$(command -v python3 || true)}"
[ -n "$python" ] || { echo "python3 not found: it is needed to install zig" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cat > "$venv/bin/zig" <<LAUNCHER
#!/bin/sh
exec "$venv/bin/python" -m ziglang "\$@"
LAUNCHER
chmod +x "$venv/bin/zig"
# The next cargo build looks for toolchains again.
touch "$here/build.sh"
echo "zig $("$venv/bin/zig" version): $venv/bin/zig"
