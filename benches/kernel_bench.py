"""rustmp kernel timings, measured through jupyter_client over ZeroMQ, in one run.

Run it with scripts/bench-kernel.sh (builds the kernel, installs its kernelspec in a temporary
JUPYTER_PATH, makes the venv). Figures:
  start_to_ready_s       kernel process start until kernel_info answered and IOPub up (wait_for_ready)
  first_library_cell_s   a fresh kernel's first cell that uses the library, warm cache
  trivial_cell_ms        round trip of `1 + 1` (median of 20)
  seed_cell_ms           round trip of the seed's four-process cell (median of 10)
"""
import json
import statistics
import sys
import time

from jupyter_client.manager import KernelManager

SEED_CELL = r"""
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


def run(kc, code, timeout=600):
    t = time.perf_counter()
    msg_id = kc.execute(code)
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            break
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["content"]["status"] == "ok", reply["content"]
    return time.perf_counter() - t


def fresh_kernel():
    km = KernelManager(kernel_name="rustmp")
    t = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc, time.perf_counter() - t


def main():
    # Warm the cache (the embedded crates' build) once, as a previous session would have.
    km, kc, _ = fresh_kernel()
    run(kc, "use multiprocessing::Process; 1")
    kc.stop_channels()
    km.shutdown_kernel(now=False)

    km, kc, ready = fresh_kernel()
    first = run(kc, "use multiprocessing::Process; let p = Process::new(|| ()); p.name().to_string()")
    trivial = [run(kc, "1 + 1") for _ in range(20)]
    seed = [run(kc, SEED_CELL) for _ in range(10)]
    kc.stop_channels()
    km.shutdown_kernel(now=False)

    res = {
        "start_to_ready_s": round(ready, 3),
        "first_library_cell_s": round(first, 3),
        "trivial_cell_ms": round(statistics.median(trivial) * 1000, 1),
        "seed_cell_ms": round(statistics.median(seed) * 1000, 1),
    }
    targets = {"start_to_ready_s": 2.5, "first_library_cell_s": 3.0, "trivial_cell_ms": 250.0}
    print(f"{'figure':<22} | {'measured':>9} | {'target':>8} | met?")
    for k, v in res.items():
        t = targets.get(k)
        met = "-" if t is None else ("yes" if v <= t else "NO (missed)")
        print(f"{k:<22} | {v:>9} | {('<= ' + str(t)) if t else '':>8} | {met}")
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
