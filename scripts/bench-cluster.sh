#!/usr/bin/env bash
# The cluster pool against mpi4py.futures.MPIPoolExecutor on the fake hosts, side by side, on the
# same mpirun layout (mpi/benches/cluster_vs_mpi4py.rs says what is measured and printed):
#
#   scripts/bench-cluster.sh [--quick]
#
# As root (the fake cluster needs it; it is machine-wide: nobody else may use it meanwhile).
# Builds rustmp-mpi and the bench in release with the `mpi` feature, makes the bench venv with
# mpi4py built against this machine's Open MPI (MPICC=mpicc; never the test venv), brings the fake
# cluster up, runs the bench RUNS times idle and, with LOAD=1, RUNS times more with a busy loop on
# one core, and takes the cluster down.
#
# Environment: RUNS (default 2), LOAD (default 1: also measure under load; 0: idle only),
# BENCH_VENV (default target/bench-venv), CARGO_TARGET_DIR (cargo's).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${BENCH_VENV:-$root/target/bench-venv}
mpi4py_version=4.1.2

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import mpi4py.futures" 2>/dev/null; then
  python3 -m venv "$venv"
  MPICC=mpicc "$venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-binary mpi4py "mpi4py==$mpi4py_version"
fi
venv=$(cd "$venv" && pwd)

bench=(cargo bench --locked -p rustmp-mpi --features rustmp-mpi/mpi --bench cluster_vs_mpi4py)
nice "${bench[@]}" --no-run

# A clean MPI environment, then the fake cluster's (as mpi/tests and tests/kernel do).
for key in $(env | sed -n 's/^\(OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p'); do
  unset "$key"
done
busy=
cleanup() {
  if [ -n "$busy" ]; then kill "$busy" 2>/dev/null || true; fi
  scripts/fake-cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
cluster_env=$(scripts/fake-cluster.sh up)
while IFS='=' read -r key value; do
  [ -n "$key" ] && export "$key=$value"
done <<<"$cluster_env"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export BENCH_PYTHON="$venv/bin/python" BENCH_HOSTS="$RUSTMP_FAKE_HOSTS"

run() {
  for i in $(seq 1 "${RUNS:-2}"); do
    echo "== $1, run $i"
    "${bench[@]}" -- "${@:2}"
  done
}
run idle "$@"
if [ "${LOAD:-1}" = 1 ]; then
  # One core busy for the whole of these runs (this machine has 2).
  bash -c 'while :; do :; done' &
  busy=$!
  run "under load (a busy loop on one core)" "$@"
  kill "$busy"
  busy=
fi
