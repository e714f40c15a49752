"""No orphans: after shutdown, restart, or a SIGKILL of the kernel, or when the Jupyter server that
started it is gone, no process of its tree survives."""
import os
import signal
import subprocess
import sys
import time

from conftest import execute, pid_alive, process_tree, start_kernel, stream_text

TREE_CELL = r"""
let mut sleeper = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(600)));
sleeper.start().unwrap();
fn pid_of(_: u32) -> u32 { std::process::id() }
let pool = Pool::new(2).unwrap();
let mut pids = pool.map_chunked(pid_of, 0..20, 1).unwrap();
pids.sort(); pids.dedup();
println!("{} {} {}", std::process::id(), sleeper.pid().unwrap(), pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "));
"""


def tree(kc):
    reply, outputs, _ = execute(kc, TREE_CELL)
    assert reply["content"]["status"] == "ok", reply["content"]
    pids = [int(p) for p in stream_text(outputs).split()]
    assert len(pids) >= 3 and all(pid_alive(p) for p in pids)
    return pids


def all_gone(pids, limit=5.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


def test_shutdown_leaves_nothing():
    km, kc = start_kernel()
    pids = tree(kc) + [km.provisioner.process.pid]
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    assert all_gone(pids) is True


def test_restart_leaves_nothing_of_the_old_kernel():
    km, kc = start_kernel()
    pids = tree(kc) + [km.provisioner.process.pid]
    km.restart_kernel(now=False)
    assert all_gone(pids) is True
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_sigkill_of_the_kernel_leaves_nothing():
    km, kc = start_kernel()
    kernel_pid = km.provisioner.process.pid
    pids = tree(kc)
    os.kill(kernel_pid, signal.SIGKILL)
    assert all_gone(pids + [kernel_pid]) is True
    kc.stop_channels()
    km.cleanup_resources()


SERVER = r"""
import sys, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=120)
print(km.provisioner.process.pid, flush=True)
time.sleep(600)
"""


def test_the_kernel_exits_when_the_jupyter_server_that_started_it_is_killed():
    # jupyter_client sets JPY_PARENT_PID to its own pid; a server killed with SIGKILL cannot shut
    # its kernels down, so the kernel watches that pid.
    from conftest import KERNEL
    server = subprocess.Popen([sys.executable, "-c", SERVER, KERNEL], stdout=subprocess.PIPE, text=True)
    try:
        kernel_pid = int(server.stdout.readline())
        time.sleep(1.0)
        pids = sorted(process_tree([kernel_pid]))
        assert all(pid_alive(p) for p in pids), "the kernel's tree exited while its server was alive"
        server.kill()
        server.wait()
        assert all_gone(pids, limit=10.0) is True
    finally:
        server.kill()
