"""Shared fixtures: a running rustmp kernel, driven by jupyter_client over real ZeroMQ sockets.

The test script installs the kernelspec into a temporary JUPYTER_PATH before pytest starts.
"""
import os
import queue
import time

import pytest
from jupyter_client.manager import start_new_kernel

KERNEL = "rustmp"
# The first cell of a fresh kernel builds the embedded crates when the cache is cold.
WARMUP_TIMEOUT = 900


def collect(kc, msg_id, timeout=120, linger=0.3):
    """Reads IOPub until this request's idle; returns (outputs, late) where `late` holds the
    messages for this request that arrived within `linger` seconds after idle."""
    outputs = []
    deadline = time.time() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.time()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        outputs.append(msg)
    late = []
    end = time.time() + linger
    while time.time() < end:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.01, end - time.time()))
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id:
            late.append(msg)
    return outputs, late


def execute(kc, code, timeout=120, linger=0.0, **kwargs):
    """Runs a cell; returns (reply, outputs, late)."""
    msg_id = kc.execute(code, **kwargs)
    outputs, late = collect(kc, msg_id, timeout=timeout, linger=linger)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return reply, outputs, late


def pid_alive(pid):
    """True while `pid` runs (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def process_tree(pids):
    """The processes `pids` and all their descendants (the kernel, its runtime, their children)."""
    seen, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return seen


def stream_text(outputs, name="stdout"):
    return "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def start_kernel():
    km, kc = start_new_kernel(kernel_name=KERNEL, startup_timeout=120)
    reply, _, _ = execute(kc, "use multiprocessing::*;", timeout=WARMUP_TIMEOUT)
    assert reply["content"]["status"] == "ok", reply["content"]
    return km, kc


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_kernel()
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)
