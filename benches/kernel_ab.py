"""Two rustmp kernel binaries side by side: start until the result of a first library cell.

For a change to the embedded crates (the library and rustmp_display), which rust-analyzer analyses
at every kernel's first library cell: build the kernel before and after the change, then

  scripts/bench-kernel-ab.sh BEFORE_BINARY AFTER_BINARY

Each binary gets one warm-up kernel (its build cache, cargo's registry and the page cache, as a
previous session would have left them), then fresh kernels alternate (A, B, A, B, ...) RUNS times
each. Printed per binary: the median of "start -> first library cell" and of "ready -> first
library cell", with every run's figure, the CPU time the kernel process itself used until then
(rust-analyzer runs there; cargo and rustc are its children and not counted: a figure that a busy
machine moves far less than the wall-clock ones), and the differences B - A. Reports only, never
fails on a figure; fails if a kernel dies or a cell errors.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_bench as kb  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))


def cpu_seconds(pid):
    """User + system CPU time of the process `pid` itself (all its threads, not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_library_cell(spec):
    kb.SPEC["rustmp"] = spec
    k = kb.Kernel("rustmp")
    try:
        k.run(kb.RUST_LIB)
        first = time.perf_counter() - k.t0
        return first, first - k.ready, cpu_seconds(k.pid)
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
            total, after_ready, cpu = runs[name][-1]
            print(f"run {i + 1} {name}: start->first library cell {total:.2f} s "
                  f"(ready->cell {after_ready:.2f} s; kernel process CPU {cpu:.2f} s)", flush=True)
    med = {}
    for name in specs:
        totals = [t for t, _, _ in runs[name]]
        after = [a for _, a, _ in runs[name]]
        cpus = [c for _, _, c in runs[name]]
        med[name] = (statistics.median(totals), statistics.median(after), statistics.median(cpus))
        print(f"{name} ({os.environ.get('BENCH_' + name, '?')}): median start->first library cell "
              f"{med[name][0]:.2f} s, ready->cell {med[name][1]:.2f} s, kernel process CPU "
              f"{med[name][2]:.2f} s; runs " + ", ".join(f"{t:.2f}" for t in totals))
    print(f"B - A: start->first library cell {med['B'][0] - med['A'][0]:+.2f} s, "
          f"ready->cell {med['B'][1] - med['A'][1]:+.2f} s, "
          f"kernel process CPU {med['B'][2] - med['A'][2]:+.2f} s "
          f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
