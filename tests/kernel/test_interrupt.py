"""Interrupts keep state: a cell blocked in the library ends with Interrupted within 1 s, the
children are terminated, variables survive; a cell stuck in pure computation is ended by a
restart that says so; an interrupt while idle harms nothing."""
import os
import threading
import time

from conftest import execute, stream_text


def interrupt_after(km, delay):
    t = threading.Timer(delay, km.interrupt_kernel)
    t.start()
    return t


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_interrupt_a_blocked_join_keeps_variables_and_kills_children(kernel):
    km, kc = kernel
    reply, _, _ = execute(kc, "let keep_me = 41;")
    assert reply["content"]["status"] == "ok"
    code = r"""
let mut forever = Process::new(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });
forever.start().unwrap();
println!("child pid {}", forever.pid().unwrap());
forever.join().unwrap();
"""
    msg_id = kc.execute(code)
    # Wait for the child to be running, then interrupt.
    pid = None
    deadline = time.time() + 120
    while pid is None and time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            pid = int(msg["content"]["text"].split()[-1])
    assert pid and pid_alive(pid)
    sent = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    elapsed = time.time() - sent
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted", reply["content"]
    assert elapsed < 1.0, elapsed
    deadline = time.time() + 5
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    reply, outputs, _ = execute(kc, "keep_me + 1")
    assert reply["content"]["status"] == "ok"
    result = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert result[0]["content"]["data"]["text/plain"] == "42"


def test_interrupt_pure_computation_restarts_and_says_variables_were_lost(kernel):
    km, kc = kernel
    execute(kc, "let before_restart = 1;")
    timer = interrupt_after(km, 1.0)
    reply, outputs, _ = execute(kc, "let mut n: u64 = 0; loop { n = n.wrapping_add(1); std::hint::black_box(n); }", timeout=60)
    timer.join()
    assert reply["content"]["status"] == "error"
    assert "variables were lost" in reply["content"]["evalue"], reply["content"]
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1
    reply, _, _ = execute(kc, "before_restart")
    assert reply["content"]["status"] == "error"  # gone, as the message said
    reply, outputs, _ = execute(kc, 'println!("alive again");')
    assert stream_text(outputs) == "alive again\n"


def test_interrupt_while_idle_harms_nothing(kernel):
    km, kc = kernel
    execute(kc, "let idle_value = 7;")
    km.interrupt_kernel()
    time.sleep(0.5)
    reply, outputs, _ = execute(kc, "idle_value * 6")
    assert reply["content"]["status"] == "ok"
    assert [m for m in outputs if m["msg_type"] == "execute_result"][0]["content"]["data"]["text/plain"] == "42"
