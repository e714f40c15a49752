#!/usr/bin/env bash
# Runs every test: formatting, lints, the Rust unit/integration/doc tests, and the kernel tests
# driven by real Jupyter clients (jupyter_client, jupyter_kernel_test, …) over ZeroMQ.
# Usage: scripts/test.sh    (needs a Rust toolchain and python3; installs everything else itself)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== cargo test (unit, integration and doc tests)"
cargo test --locked --workspace --no-fail-fast

echo "== kernel tests with real Jupyter clients"
cargo build --locked -p rustmp
. "$root/scripts/venv.sh"
jupyter_tmp=$(mktemp -d)
trap 'rm -rf "$jupyter_tmp"' EXIT
"$root/target/debug/rustmp" install --prefix "$jupyter_tmp"
export JUPYTER_PATH="$jupyter_tmp/share/jupyter"
export JUPYTER_RUNTIME_DIR="$jupyter_tmp/runtime"
(cd tests/kernel && "$venv/bin/python" -m pytest -q -p no:cacheprovider)
