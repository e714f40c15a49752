#!/usr/bin/env bash
# Renders every notebook in notebooks/ (committed with the outputs of a real run) to a standalone
# HTML handout: target/handouts/NAME.html (or $HANDOUT_DIR). To refresh the outputs first:
#   cargo run --release -p rustmp -- run --inplace notebooks/NAME.ipynb
# Usage: scripts/handouts.sh    (makes the Python venv with nbconvert if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="${HANDOUT_DIR:-$root/target/handouts}"
if [ -z "${JUPYTER:-}" ]; then
  . "$root/scripts/venv.sh"
  JUPYTER="$venv/bin/jupyter"
fi
"$JUPYTER" nbconvert --to html --output-dir "$out" notebooks/*.ipynb
echo "Handouts written to $out"
