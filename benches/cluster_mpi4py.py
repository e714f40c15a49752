"""mpi4py.futures.MPIPoolExecutor's side of `scripts/bench-cluster.sh` (the peer of our cluster
pool, mpi/benches/cluster_vs_mpi4py.rs, which starts this script and reads what it prints).

Rank 0 of a job started as

    mpirun -np 1 --host <this host>:1 PYTHON -m mpi4py.futures THIS_FILE MODE [COUNTS...] \\
         : -np N --host h1:s1,h2:s2 PYTHON -m mpi4py.futures THIS_FILE

runs this file; ranks 1..N are MPIPoolExecutor's shared pool of workers (they import this file
as `__mp_main__` for the task functions). It prints `RESULT key value` lines:

    throughput CHUNKED_TASKS CHUNKSIZE SINGLE_TASKS APPLY_ROUNDS
        map_chunked_tasks_per_s, map_single_tasks_per_s, apply_us (median)
    cpu TASKS BURN_N REPEATS
        cpu_s (the fastest of REPEATS maps of TASKS burn(BURN_N) calls, chunksize 1)
"""

import statistics
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def trivial(x):
    return x + 1


def burn(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def throughput(pool, chunked, chunksize, single, rounds):
    # Every worker has started and imported this file.
    list(pool.map(trivial, range(4 * 64), chunksize=1))
    start = time.perf_counter()
    out = list(pool.map(trivial, range(chunked), chunksize=chunksize))
    took = time.perf_counter() - start
    assert out[-1] == chunked
    print(f"RESULT map_chunked_tasks_per_s {chunked / took:.1f}")
    start = time.perf_counter()
    out = list(pool.map(trivial, range(single), chunksize=1))
    took = time.perf_counter() - start
    assert out[-1] == single
    print(f"RESULT map_single_tasks_per_s {single / took:.1f}")
    for x in range(20):
        pool.submit(trivial, x).result()
    times = []
    for x in range(rounds):
        start = time.perf_counter()
        pool.submit(trivial, x).result()
        times.append(time.perf_counter() - start)
    print(f"RESULT apply_us {statistics.median(times) * 1e6:.1f}")


def cpu(pool, tasks, n, repeats):
    list(pool.map(trivial, range(16), chunksize=1))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        list(pool.map(burn, [n] * tasks, chunksize=1))
        best = min(best, time.perf_counter() - start)
    print(f"RESULT cpu_s {best:.4f}")


def main():
    mode, counts = sys.argv[1], [int(a) for a in sys.argv[2:]]
    with MPIPoolExecutor() as pool:
        if mode == "throughput":
            throughput(pool, *counts)
        elif mode == "cpu":
            cpu(pool, *counts)
        else:
            raise SystemExit(f"unknown mode {mode}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
