#!/usr/bin/env bash
# Kernel timings (start to ready, first library cell, trivial cell, seed cell) in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cargo build --locked --release -p rustmp
venv="${RUSTMP_TEST_VENV:-$root/target/test-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import jupyter_client" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/kernel/requirements.txt
fi
jupyter_tmp=$(mktemp -d)
trap 'rm -rf "$jupyter_tmp"' EXIT
"$root/target/release/rustmp" install --prefix "$jupyter_tmp" >/dev/null
JUPYTER_PATH="$jupyter_tmp/share/jupyter" JUPYTER_RUNTIME_DIR="$jupyter_tmp/runtime" \
  "$venv/bin/python" benches/kernel_bench.py
