#!/usr/bin/env bash
# Installs the pinned componentize-py (requirements.txt) into a virtual
# environment, $DBROUTE_PYTHON_VENV or
# $HOME/.cache/dbroute/componentize-py-venv, unless it is there already.
# ./build.sh finds it there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${DBROUTE_PYTHON_VENV:-$HOME/.cache/dbroute/componentize-py-venv}"
want="$(sed -n 's/^componentize-py==//p' "$here/requirements.txt")"

# The installed version, read from the package's metadata (a quick look at a
# folder name: neither pip nor the tool is started).
installed() {
  local d
  for d in "$venv"/lib/python3*/site-packages/componentize_py-*.dist-info; do
    [ -d "$d" ] || continue
    d="${d##*/componentize_py-}"
    echo "${d%.dist-info}"
    return
  done
}

if [ -x "$venv/bin/componentize-py" ] && [ "$(installed)" = "$want" ]; then
  echo "componentize-py $want: $venv/bin/componentize-py"
  exit 0
fi
python="${PYTHON:-$(command -v python3 || true)}"
[ -n "$python" ] || { echo "python3 not found: it is needed to install componentize-py" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
# The next cargo build looks for toolchains again.
touch "$here/build.sh"
echo "componentize-py $(installed): $venv/bin/componentize-py"
