#!/usr/bin/env bash
# Kernel timings of rustmp beside evcxr_jupyter 0.22 and ipykernel, fresh kernels interleaved, in
# one run (benches/kernel_bench.py says what each figure is). Reports, never fails on a target;
# fails if a kernel dies or a cell errors.
#
#   scripts/bench-kernel.sh
#
# Environment:
#   RUSTMP_BENCH_PROFILE=dev  measure the debug build (its dependencies are optimized too);
#                             default: release
#   RUNS=3                    runs per figure (medians are printed)
#   CARGO_TARGET_DIR          where the rustmp build is (default: target/)
#   EVCXR_JUPYTER_ROOT        `cargo install --root` of evcxr_jupyter 0.22.0, installed there once
#                             if absent (default: target/evcxr_jupyter)
#   RUSTMP_TEST_VENV          the venv with the Jupyter clients and ipykernel (default:
#                             target/test-venv)
#   RUSTMP_CACHE_DIR          rustmp's cache (default: ~/.cache/rustmp-bench, outside the cargo
#                             workspace, whose build slots cargo would take for its members; warmed by the
#                             bench's warm-up kernel; kept apart from other kernels' build slots)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${RUSTMP_BENCH_PROFILE:-release}"
if [ "$profile" = release ]; then
  nice cargo build --locked --release -p rustmp
  bin="$target/release/rustmp"
else
  nice cargo build --locked -p rustmp
  bin="$target/debug/rustmp"
fi

evcxr_root="${EVCXR_JUPYTER_ROOT:-$root/target/evcxr_jupyter}"
evcxr_bin="$evcxr_root/bin/evcxr_jupyter"
if [ ! -x "$evcxr_bin" ]; then
  echo "installing evcxr_jupyter 0.22.0 into $evcxr_root (once; takes minutes)" >&2
  nice cargo install --locked evcxr_jupyter --version 0.22.0 --root "$evcxr_root"
fi

. "$root/scripts/venv.sh"
if ! "$venv/bin/python" -c "import ipykernel" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/benches/requirements.txt"
fi

jupyter_tmp=$(mktemp -d)
trap 'rm -rf "$jupyter_tmp"' EXIT
"$bin" install --prefix "$jupyter_tmp" >/dev/null
# evcxr_jupyter's --install writes into ~/.local; this is the kernel.json it writes.
mkdir -p "$jupyter_tmp/share/jupyter/kernels/evcxr_bench"
"$venv/bin/python" - "$evcxr_bin" "$jupyter_tmp/share/jupyter/kernels/evcxr_bench/kernel.json" <<'PY'
import json, sys
json.dump({"argv": [sys.argv[1], "--control_file", "{connection_file}"],
           "display_name": "Rust (evcxr_jupyter 0.22)", "language": "rust",
           "interrupt_mode": "message"}, open(sys.argv[2], "w"), indent=2)
PY
# ipykernel's spec, run by the venv's python (its warning that the prefix is not on the default
# path is shown only if the install fails).
"$venv/bin/python" -m ipykernel install --prefix "$jupyter_tmp" --name python3 >"$jupyter_tmp/ipykernel-install.log" 2>&1 ||
  { cat "$jupyter_tmp/ipykernel-install.log" >&2; exit 1; }
mkdir -p "$jupyter_tmp/evcxr-config"

JUPYTER_PATH="$jupyter_tmp/share/jupyter" JUPYTER_RUNTIME_DIR="$jupyter_tmp/runtime" \
  RUSTMP_CACHE_DIR="${RUSTMP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rustmp-bench}" \
  BENCH_EVCXR_CONFIG_DIR="$jupyter_tmp/evcxr-config" BENCH_REPO_ROOT="$root" \
  RUNS="${RUNS:-3}" "$venv/bin/python" benches/kernel_bench.py
