#!/usr/bin/env bash
# Kernel timings (start to ready, first library cell, trivial cell, seed cell) in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# RUSTMP_BENCH_PROFILE=dev measures the test build (its dependencies are optimized too).
profile="${RUSTMP_BENCH_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --locked --release -p rustmp
  bin="$root/target/release/rustmp"
else
  cargo build --locked -p rustmp
  bin="$root/target/debug/rustmp"
fi
. "$root/scripts/venv.sh"
jupyter_tmp=$(mktemp -d)
trap 'rm -rf "$jupyter_tmp"' EXIT
"$bin" install --prefix "$jupyter_tmp" >/dev/null
JUPYTER_PATH="$jupyter_tmp/share/jupyter" JUPYTER_RUNTIME_DIR="$jupyter_tmp/runtime" \
  "$venv/bin/python" benches/kernel_bench.py
