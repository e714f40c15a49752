"""Two rustmp kernel binaries side by side: start until the result of a first library cell.

For a change to the embedded crates (the library and rustmp_display), which rust-analyzer analyses
at every kernel's first library cell: build the kernel before and after the change, then

  scripts/bench-kernel-ab.sh BEFORE_BINARY AFTER_BINARY

Each binary gets one warm-up kernel (its build cache, cargo's registry and the page cache, as a
previous session would have left them), then fresh kernels alternate (A, B, A, B, ...) RUNS times
each. Printed per binary: the median of "start -> first library cell" and of "ready -> first
library cell", with every run's figure, and the difference B - A. Reports only, never fails on a
figure; fails if a kernel dies or a cell errors.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_bench as kb  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))


def first_library_cell(spec):
    kb.SPEC["rustmp"] = spec
    k = kb.Kernel("rustmp")
    try:
        k.run(kb.RUST_LIB)
        first = time.perf_counter() - k.t0
        return first, first - k.ready
    finally:
        k.close()


def main():
    specs = {"A": "rustmp_a", "B": "rustmp_b"}
    for name, spec in specs.items():
        print(f"warm-up {name} ...", flush=True)
        first_library_cell(spec)
    runs = {name: [] for name in specs}
    for i in range(RUNS):
        for name, spec in specs.items():
            runs[name].append(first_library_cell(spec))
            total, after_ready = runs[name][-1]
            print(f"run {i + 1} {name}: start->first library cell {total:.2f} s "
                  f"(ready->cell {after_ready:.2f} s)", flush=True)
    med = {}
    for name in specs:
        totals = [t for t, _ in runs[name]]
        after = [a for _, a in runs[name]]
        med[name] = (statistics.median(totals), statistics.median(after))
        print(f"{name} ({os.environ.get('BENCH_' + name, '?')}): median start->first library cell "
              f"{med[name][0]:.2f} s, ready->cell {med[name][1]:.2f} s; runs "
              + ", ".join(f"{t:.2f}" for t in totals))
    print(f"B - A: start->first library cell {med['B'][0] - med['A'][0]:+.2f} s, "
          f"ready->cell {med['B'][1] - med['A'][1]:+.2f} s "
          f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
