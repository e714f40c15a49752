#!/usr/bin/env bash
# Kernel timings (start to ready, first library cell, trivial cell, seed cell) in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cargo build --locked --release -p rustmp
. "$root/scripts/venv.sh"
jupyter_tmp=$(mktemp -d)
trap 'rm -rf "$jupyter_tmp"' EXIT
"$root/target/release/rustmp" install --prefix "$jupyter_tmp" >/dev/null
JUPYTER_PATH="$jupyter_tmp/share/jupyter" JUPYTER_RUNTIME_DIR="$jupyter_tmp/runtime" \
  "$venv/bin/python" benches/kernel_bench.py
