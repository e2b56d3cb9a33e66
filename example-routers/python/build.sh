#!/usr/bin/env bash
# Builds the Python routers: ./build.sh OUT_DIR -> OUT_DIR/python-reference.wasm
# (the reference policy) and OUT_DIR/python-hostile.wasm (misbehaving on
# purpose, for the host's tests), components of the world `routing`
# (wit/router.wit)
#
# Uses $COMPONENTIZE_PY, else the componentize-py that ./install.sh puts in
# $DBROUTE_PYTHON_VENV (or $HOME/.cache/dbroute/componentize-py-venv), else a
# `componentize-py` on PATH of the pinned version (requirements.txt). Exit
# status 77: no such componentize-py (the reason is on stderr); anything else
# but 0: the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit="$(cd "$here/../../wit" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
want="$(sed -n 's/^componentize-py==//p' "$here/requirements.txt")"
venv="${DBROUTE_PYTHON_VENV:-${HOME:-}/.cache/dbroute/componentize-py-venv}"

missing() { echo "$*" >&2; exit 77; }

if [ -n "${COMPONENTIZE_PY:-}" ]; then
  cpy="$COMPONENTIZE_PY"
elif [ -x "$venv/bin/componentize-py" ]; then
  cpy="$venv/bin/componentize-py"
elif command -v componentize-py >/dev/null; then
  cpy="$(command -v componentize-py)"
else
  missing "componentize-py not found (example-routers/python/install.sh installs componentize-py $want)"
fi
have="$("$cpy" --version 2>/dev/null | sed -n '1s/^componentize-py //p' || true)"
[ "$have" = "$want" ] || missing "$cpy is componentize-py ${have:-of an unknown version}, not the pinned $want (example-routers/python/install.sh installs it)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
# The component bundles every file of its Python path: give it a folder
# holding only the router's modules, under OUT_DIR (so nothing is written
# into the source folder, __pycache__ included).
src="$out/python-src"
rm -rf "$src"
mkdir -p "$src"
# Without a virtual environment to look in, componentize-py adds the
# site-packages of the Python it runs on to the path: unset, so that only
# the router's folder is bundled.
for router in reference hostile; do
  rm -rf "${src:?}/$router"
  mkdir -p "$src/$router"
  cp "$here/dbroute_router.py" "$here/$router.py" "$src/$router/"
  env -u VIRTUAL_ENV PYTHONNOUSERSITE=1 \
    "$cpy" -q -d "$wit" -w routing componentize "$router" \
    -p "$src/$router" -o "$out/python-$router.wasm"
  echo "$out/python-$router.wasm"
done
