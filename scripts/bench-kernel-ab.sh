#!/usr/bin/env bash
# Two rustmp kernel binaries, fresh kernels interleaved: start until a first library cell's result
# (benches/kernel_ab.py says what is printed). For changes to the embedded crates:
#
#   scripts/bench-kernel-ab.sh BEFORE_BINARY AFTER_BINARY
#
# Environment: RUNS (default 5), RUSTMP_TEST_VENV (default target/test-venv),
# RUSTMP_CACHE_DIR (default ~/.cache/rustmp-bench, as scripts/bench-kernel.sh).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2
  exit 2
fi
a=$(realpath "$1")
b=$(realpath "$2")
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/scripts/venv.sh"
jupyter_tmp=$(mktemp -d)
trap 'rm -rf "$jupyter_tmp"' EXIT
"$a" install --prefix "$jupyter_tmp" --name rustmp_a >/dev/null
"$b" install --prefix "$jupyter_tmp" --name rustmp_b >/dev/null
JUPYTER_PATH="$jupyter_tmp/share/jupyter" JUPYTER_RUNTIME_DIR="$jupyter_tmp/runtime" \
  RUSTMP_CACHE_DIR="${RUSTMP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rustmp-bench}" \
  BENCH_A="$a" BENCH_B="$b" BENCH_REPO_ROOT="$root" \
  RUNS="${RUNS:-5}" "$venv/bin/python" benches/kernel_ab.py
