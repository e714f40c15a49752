"""rustmp kernel timings beside evcxr_jupyter 0.22 and ipykernel, through jupyter_client over ZeroMQ.

Run it with scripts/bench-kernel.sh (builds rustmp, installs evcxr_jupyter and ipykernel once, writes
the three kernelspecs into a temporary JUPYTER_PATH). Each run measures every figure on fresh
kernels, interleaved (rustmp, evcxr_jupyter, ipykernel, then the next figure); medians over RUNS:

  std_first_cell_s      kernel process start until the result of a first std-only cell, sent as
                        soon as the kernel is ready (ipykernel: a cell that starts a Process)
  start_to_ready_s      the same kernels: start until kernel_info answered and IOPub up
  lib_first_cell_s      start until the result of a first cell that uses the library
                        (evcxr_jupyter: with `:dep multiprocessing = { path = REPO }` in that cell,
                        built in the kernel's own temporary directory, as a fresh kernel does)
  lib_cell_after_5s_s   a first library cell sent 5 s after ready: that cell alone
  trivial_cell_ms       round trip of `1 + 1` (median of 20), in the lib_first_cell kernel
  seed_cell_ms          round trip of a four-process cell (median of 3), in the same kernel
  peak_tree_mib         peak RSS of the kernel's process tree (kernel and all descendants,
                        summed, sampled every 50 ms from /proc) over that kernel's whole life
  peak_tree_pss_mib     the same with PSS (a page shared by forked processes counts once)
  floor                 one rustc run of a trivial crate (bin, and cdylib as evcxr builds cells)

One warm-up kernel of each kind runs the library cell first (rustmp's cache, cargo's registry and the
page cache, as a previous session would have left them). A last rustmp kernel (RUSTMP_TIMING=1) and a last
evcxr_jupyter kernel show where a first library cell's time goes: rustmp's timing lines, the
kernel process's own CPU time and the spans in which builds ran.
Reports only: a missed target prints "NO (missed)"; a kernel that dies or a cell that errors fails.
"""
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from jupyter_client.manager import KernelManager

RUNS = int(os.environ.get("RUNS", "3"))
REPO = os.environ.get("BENCH_REPO_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVCXR_CONFIG_DIR = os.environ.get("BENCH_EVCXR_CONFIG_DIR")
KINDS = ["rustmp", "evcxr", "ipykernel"]
SPEC = {"rustmp": "rustmp", "evcxr": "evcxr_bench", "ipykernel": "python3"}
NAME = {"rustmp": "rustmp", "evcxr": "evcxr_jupyter", "ipykernel": "ipykernel"}

RUST_STD = "let v: Vec<u64> = (1..=10).collect(); v.iter().sum::<u64>()"
RUST_LIB = ("use multiprocessing::Process;\n"
            "let mut p = Process::new(|| println!(\"child\"));\n"
            "p.start().unwrap(); p.join().unwrap(); p.exitcode()")
RUST_SEED = r"""
{
    let mut processes = Vec::new();
    for i in 0..4 {
        let mut p = multiprocessing::Process::new(move || {
            println!("Process number {i}, random number generated : {}", 1 + std::process::id() % 100);
        });
        p.start().unwrap();
        processes.push(p);
    }
    for p in &mut processes { p.join().unwrap(); }
}
"""
PY_LIB = ("import multiprocessing\n"
          "p = multiprocessing.Process(target=print, args=('child',))\n"
          "p.start(); p.join(); p.exitcode")
PY_SEED = """
import multiprocessing, os
processes = [multiprocessing.Process(target=print, args=(f"Process number {i}, random number generated : {1 + os.getpid() % 100}",))
             for i in range(4)]
for p in processes: p.start()
for p in processes: p.join()
"""


def cells(kind):
    """(std cell, library cell, seed cell) for a kernel kind."""
    if kind == "ipykernel":
        return PY_LIB, PY_LIB, PY_SEED
    if kind == "evcxr":
        dep = f":dep multiprocessing = {{ path = {json.dumps(REPO)} }}\n"
        return RUST_STD, dep + RUST_LIB, RUST_SEED
    return RUST_STD, RUST_LIB, RUST_SEED


class KernelDied(RuntimeError):
    pass


class Kernel:
    """A fresh kernel of one kind; its stdout and stderr go to a log file (or a timestamping reader)."""

    def __init__(self, kind, timing=False):
        self.kind = kind
        self.km = KernelManager(kernel_name=SPEC[kind])
        env = dict(os.environ)
        for var in ("EVCXR_TMPDIR", "EVCXR_CONFIG_DIR", "RUSTMP_TIMING", "RUST_SRC_PATH"):
            env.pop(var, None)
        if kind == "evcxr" and EVCXR_CONFIG_DIR:
            env["EVCXR_CONFIG_DIR"] = EVCXR_CONFIG_DIR  # empty: no user init.evcxr or prelude
        if kind != "rustmp":
            env.pop("RUSTMP_CACHE_DIR", None)
        self.lines = []
        if timing:
            if kind == "rustmp":
                env["RUSTMP_TIMING"] = "1"
            self.log = None
            out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
        else:
            self.log = tempfile.TemporaryFile(mode="w+b")
            out = {"stdout": self.log, "stderr": self.log}
        self.t0 = time.perf_counter()
        self.km.start_kernel(env=env, **out)
        self.pid = self.km.provisioner.process.pid
        if timing:
            threading.Thread(target=self._read_output, daemon=True).start()
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=300)
        except RuntimeError as e:
            self.fail(f"did not become ready: {e}")
        self.ready = time.perf_counter() - self.t0

    def _read_output(self):
        for raw in self.km.provisioner.process.stdout:
            self.lines.append((time.perf_counter() - self.t0, raw.decode(errors="replace").rstrip()))

    def output_tail(self):
        if self.log is None:
            return "\n".join(line for _, line in self.lines[-20:])
        self.log.seek(0)
        return b"\n".join(self.log.read().splitlines()[-20:]).decode(errors="replace")

    def fail(self, why):
        alive = self.km.is_alive()
        raise KernelDied(f"{NAME[self.kind]} kernel (pid {self.pid}) {why}"
                         f"{'' if alive else ' (the kernel process is gone)'}\n"
                         f"--- its output, last lines ---\n{self.output_tail()}")

    def run(self, code, timeout=900):
        """Runs a cell; returns its round trip in seconds (send until reply and idle)."""
        t = time.perf_counter()
        msg_id = self.kc.execute(code)
        deadline = t + timeout
        idle = reply = None
        while idle is None or reply is None:
            if time.perf_counter() > deadline:
                self.fail(f"gave no answer in {timeout} s to {code!r}")
            if idle is None:
                try:
                    msg = self.kc.get_iopub_msg(timeout=1)
                except queue.Empty:
                    if not self.km.is_alive():
                        self.fail(f"died running {code!r}")
                    continue
                if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                        and msg["content"]["execution_state"] == "idle"):
                    idle = time.perf_counter()
                continue
            try:
                msg = self.kc.get_shell_msg(timeout=1)
            except queue.Empty:
                if not self.km.is_alive():
                    self.fail(f"died running {code!r}")
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                reply = msg
        if reply["content"]["status"] != "ok":
            c = reply["content"]
            self.fail(f"answered {c.get('status')} to {code!r}: {c.get('ename')}: {c.get('evalue')}\n"
                      + "\n".join(c.get("traceback", [])))
        return time.perf_counter() - t

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        if self.log is not None:
            self.log.close()


PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def process_tree(root):
    """{pid: (comm, rss bytes, cpu seconds)} for root and all its descendants, from /proc."""
    procs, children = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # Fields from the state on: ppid 1, utime 11, stime 12, rss 21 (pages).
        procs[int(name)] = (comm, int(fields[21]) * PAGE, (int(fields[11]) + int(fields[12])) / TICK)
        children.setdefault(int(fields[1]), []).append(int(name))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in tree:
            tree[pid] = procs[pid]
            todo.extend(children.get(pid, []))
    return tree


def pss(pid):
    """Proportional set size in bytes (shared pages divided among their sharers), 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler:
    """Samples a kernel's process tree every 50 ms: the peak of its summed RSS (and of its summed
    PSS, which counts a page shared by forked processes once), and each process's first and last
    sighting and CPU time (a timeline of the builds it runs)."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.peak_rss = self.peak_pss = 0
        self.seen = {}  # pid -> [comm, first, last, cpu]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            now = time.perf_counter() - self.kernel.t0
            tree = process_tree(self.kernel.pid)
            self.peak_rss = max(self.peak_rss, sum(rss for _, rss, _ in tree.values()))
            self.peak_pss = max(self.peak_pss, sum(pss(pid) for pid in tree))
            for pid, (comm, _, cpu) in tree.items():
                s = self.seen.setdefault(pid, [comm, now, now, cpu])
                s[0], s[2], s[3] = comm, now, cpu
            self.stop.wait(0.05)

    def finish(self):
        """Stops sampling; returns (peak RSS, peak PSS) in MiB."""
        self.stop.set()
        self.thread.join()
        return self.peak_rss / 2**20, self.peak_pss / 2**20


def measure_std(kind):
    k = Kernel(kind)
    try:
        k.run(cells(kind)[0])
        return {"std_first_cell_s": time.perf_counter() - k.t0, "start_to_ready_s": k.ready}
    finally:
        k.close()


def measure_lib(kind):
    _, lib, seed = cells(kind)
    k = None
    sampler = None
    try:
        k = Kernel(kind)
        sampler = Sampler(k)
        k.run(lib)
        first = time.perf_counter() - k.t0
        trivial = [k.run("1 + 1") for _ in range(20)]
        seeds = [k.run(seed) for _ in range(3)]
        return {"lib_first_cell_s": first,
                "trivial_cell_ms": statistics.median(trivial) * 1000,
                "seed_cell_ms": statistics.median(seeds) * 1000,
                **dict(zip(("peak_tree_mib", "peak_tree_pss_mib"), sampler.finish()))}
    finally:
        if sampler is not None:
            sampler.finish()
        if k is not None:
            k.close()


def measure_lib_after_5s(kind):
    k = Kernel(kind)
    try:
        time.sleep(5)
        return {"lib_cell_after_5s_s": k.run(cells(kind)[1])}
    finally:
        k.close()


def floor():
    """Median of 3 rustc runs of a trivial bin crate and a trivial cdylib crate."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "trivial.rs")
        with open(src, "w") as f:
            f.write("fn main() {}\n")
        lib = os.path.join(d, "lib.rs")
        with open(lib, "w") as f:
            f.write("#[unsafe(no_mangle)]\npub extern \"C\" fn f() {}\n")
        for key, cmd in [("floor_rustc_bin_s", ["rustc", "--edition", "2021", "-o", os.path.join(d, "x"), src]),
                         ("floor_rustc_cdylib_s", ["rustc", "--edition", "2021", "--crate-type", "cdylib",
                                                   "-o", os.path.join(d, "libx.so"), lib])]:
            times = []
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run(cmd, check=True)
                times.append(time.perf_counter() - t)
            out[key] = statistics.median(times)
    return out


BUILD_TOOLS = ("cargo", "rustc", "cc", "collect2", "ld", "rust-lld", "build-script")


def build_spans(seen, root, start, end):
    """The spans (merged across gaps under 0.1 s) in which build tools of the tree ran between
    start and end: [(first, last, {comm: count}, cpu seconds as last sampled)]."""
    builds = sorted((x for pid, x in seen.items() if pid != root and x[0].startswith(BUILD_TOOLS)
                     and start <= x[1] <= end), key=lambda x: x[1])
    spans = []
    for comm, first, last, cpu in builds:
        if spans and first <= spans[-1][1] + 0.1:
            span = spans[-1]
            span[1] = max(span[1], last + 0.05)
        else:
            span = [first, last + 0.05, {}, 0.0]
            spans.append(span)
        span[2][comm] = span[2].get(comm, 0) + 1
        span[3] += cpu
    return spans


def print_spans(spans):
    wall = sum(e - b for b, e, _, _ in spans)
    print(f"  builds: {wall:.2f} s of wall time in {len(spans)} span(s), "
          f"{sum(sp[3] for sp in spans):.2f} s CPU (as last sampled):")
    for b, e, comms, cpu in spans:
        what = ", ".join(f"{c} x{n}" if n > 1 else c for c, n in comms.items())
        print(f"  {b:6.2f} .. {e:6.2f}  {what}; {cpu:.2f} s CPU")


def where_the_time_goes(kind):
    """A fresh kernel (rustmp: with RUSTMP_TIMING=1), its library cell sent as soon as it is ready,
    then three trivial cells: rustmp's timing lines, the CPU time of the kernel process itself,
    and the spans in which builds (cargo, rustc, the linker, build scripts) ran, in seconds from
    the kernel's start."""
    k = Kernel(kind, timing=True)
    sampler = Sampler(k)
    try:
        sent = time.perf_counter() - k.t0
        k.run(cells(kind)[1])
        done = time.perf_counter() - k.t0
        cpu_first = process_tree(k.pid).get(k.pid, ("", 0, 0.0))[2]
        trivial = []
        for _ in range(3):
            t = time.perf_counter() - k.t0
            trivial.append((t, t + k.run("1 + 1")))
        cpu_trivial = process_tree(k.pid).get(k.pid, ("", 0, 0.0))[2] - cpu_first
    finally:
        sampler.finish()
        k.close()
    print(f"\n{NAME[kind]}: where a fresh kernel's first library cell's time goes (seconds from the "
          f"kernel's start): ready {k.ready:.2f}, cell sent {sent:.2f}, result {done:.2f}")
    for t, line in k.lines:
        if line.startswith("rustmp timing") and t <= done + 0.05:
            print(f"  {t:6.2f}  {line}")
    print(f"  the kernel process itself: {cpu_first:.2f} s CPU by then (evcxr, rust-analyzer, the kernel)")
    print_spans(build_spans(sampler.seen, k.pid, 0, done))
    b, e = trivial[-1]
    print(f"  then three `1 + 1` cells: {', '.join(f'{(y - x) * 1000:.0f}' for x, y in trivial)} ms; "
          f"the kernel process used {cpu_trivial * 1000:.0f} ms CPU in all; the last one, {b:.2f} .. {e:.2f}:")
    for t, line in k.lines:
        if line.startswith("rustmp timing") and b <= t <= e + 0.05:
            print(f"  {t:6.2f}  {line}")
    print_spans(build_spans(sampler.seen, k.pid, b, e))


FIGURES = [
    # key, label, unit digits, target: ("ratio", x) rustmp/evcxr <= x, or ("abs", x) rustmp <= x
    ("std_first_cell_s", "start -> first std cell (s)", 2, ("ratio", 0.8)),
    ("lib_first_cell_s", "start -> first library cell (s)", 2, ("ratio", 0.35)),
    ("lib_cell_after_5s_s", "library cell sent 5 s after ready (s)", 2, ("abs", 0.5)),
    ("trivial_cell_ms", "trivial cell round trip (ms)", 1, ("ratio", 0.6)),
    ("peak_tree_mib", "peak RSS of the process tree (MiB)", 0, ("ratio", 0.8)),
    ("peak_tree_pss_mib", "peak PSS of the process tree (MiB)", 0, None),
    ("start_to_ready_s", "start -> ready (s)", 2, None),
    ("seed_cell_ms", "four-process cell round trip (ms)", 1, None),
]


def main():
    print(f"warming up one kernel of each kind; then {RUNS} run(s), fresh kernels interleaved", flush=True)
    for kind in KINDS:
        k = Kernel(kind)
        try:
            k.run(cells(kind)[1])
        finally:
            k.close()
    samples = {kind: {} for kind in KINDS}
    for r in range(RUNS):
        for measure in (measure_std, measure_lib, measure_lib_after_5s):
            for kind in KINDS:
                for key, v in measure(kind).items():
                    samples[kind].setdefault(key, []).append(v)
        print(f"run {r + 1}/{RUNS} done", flush=True)
    fl = floor()
    med = {kind: {key: statistics.median(vs) for key, vs in samples[kind].items()} for kind in KINDS}

    header = ["figure", "rustmp", "evcxr_jupyter", "ipykernel", "rustmp/evcxr", "target", "met?"]
    rows = []
    for key, label, digits, target in FIGURES:
        r, e, p = (med[kind][key] for kind in KINDS)
        ratio = r / e if e else float("nan")
        if target is None:
            tgt, met = "", "-"
        elif target[0] == "ratio":
            tgt, met = f"<= {target[1]}x", "yes" if ratio <= target[1] else "NO (missed)"
        else:
            tgt, met = f"<= {target[1]} s", "yes" if r <= target[1] else "NO (missed)"
        rows.append([label, f"{r:.{digits}f}", f"{e:.{digits}f}", f"{p:.{digits}f}", f"{ratio:.2f}", tgt, met])
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    fmt = lambda row: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
    print(f"\nmedians of {RUNS} run(s), load average {os.getloadavg()[0]:.2f}")
    print(fmt(header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))

    fb, fc = fl["floor_rustc_bin_s"], fl["floor_rustc_cdylib_s"]
    print(f"\nfloor: one rustc run of a trivial crate: bin {fb:.3f} s, cdylib {fc:.3f} s (median of 3)")
    for key, label, _, _ in FIGURES:
        if key.endswith("_s") or key.endswith("_ms"):
            v = med["rustmp"][key] / (1000 if key.endswith("_ms") else 1)
            print(f"  rustmp {label}: {v / fb:.1f}x the bin floor, {v / fc:.1f}x the cdylib floor")

    where_the_time_goes("rustmp")
    where_the_time_goes("evcxr")

    res = {"runs": RUNS, **{k: round(v, 4) for k, v in fl.items()}}
    for kind in KINDS:
        res[NAME[kind]] = {key: round(v, 4) for key, v in med[kind].items()}
        res[NAME[kind]]["samples"] = {key: [round(x, 4) for x in vs] for key, vs in samples[kind].items()}
    print(json.dumps(res))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KernelDied as e:
        print(f"kernel_bench: {e}", file=sys.stderr)
        sys.exit(1)
