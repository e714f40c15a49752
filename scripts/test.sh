#!/usr/bin/env bash
# Runs every test of the workspace: formatting, lints, unit + integration tests, doctests.
# Usage: scripts/test.sh            (from anywhere; needs only cargo, which installs the Rust deps)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== cargo test (unit, integration and doc tests)"
cargo test --locked --workspace --no-fail-fast
