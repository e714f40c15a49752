"""The first cell: while the kernel is idle after start it primes rust-analyzer (so the user's
first cell does not pay for its first analysis), priming leaves nothing behind, and a request
that arrives while the engine starts is not made to wait for priming. The trimmed copy of the
standard library given to rust-analyzer still lets it infer `HashMap`'s methods."""
import os
import tempfile
import time

from jupyter_client.manager import start_new_kernel

from conftest import KERNEL, WARMUP_TIMEOUT, execute

PRIMED = "rust-analyzer primed"


def fresh(log):
    # jupyter_client's start_new_kernel stops a kernel that does not become ready.
    return start_new_kernel(kernel_name=KERNEL, startup_timeout=120,
                            env=dict(os.environ, RUSTMP_TIMING="1"), stderr=log)


def complete(kc, code):
    msg_id = kc.complete(code, len(code))
    while True:
        reply = kc.get_shell_msg(timeout=WARMUP_TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]["matches"]


def test_an_idle_kernel_primes_rust_analyzer_and_keeps_no_trace():
    with tempfile.NamedTemporaryFile("w+", prefix="rustmp-stderr-") as log:
        km, kc = fresh(log)
        try:
            deadline = time.time() + 300
            while PRIMED not in open(log.name).read():
                assert time.time() < deadline, "the idle kernel never primed rust-analyzer"
                time.sleep(0.2)
            reply, outputs, _ = execute(kc, "use multiprocessing::Process;\nlet p = Process::new(|| ());\np.name().to_string()")
            assert reply["content"]["status"] == "ok", reply["content"]
            result = [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]
            assert result == [{"text/plain": '"Process-1"'}], outputs
            # Priming defined nothing: only the cell's own variable exists.
            reply, outputs, _ = execute(kc, ":vars")
            shown = "".join(m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result")
            names = [line.split(":")[0].strip() for line in shown.splitlines() if line.strip()]
            assert names == ["p"], shown
            methods = complete(kc, "let mut m = std::collections::HashMap::<u8, u8>::new();\nm.ins")
            assert any(c.startswith("insert") for c in methods), methods
            names = complete(kc, "multiprocessing::Po")
            assert any(c.startswith("Pool") for c in names), names
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def test_a_request_during_start_does_not_wait_for_priming():
    with tempfile.NamedTemporaryFile("w+", prefix="rustmp-stderr-") as log:
        km, kc = fresh(log)
        try:
            reply, _, _ = execute(kc, "1 + 1", timeout=WARMUP_TIMEOUT)
            assert reply["content"]["status"] == "ok", reply["content"]
            text = open(log.name).read()
            assert "engine start" in text, text
            assert PRIMED not in text, "the first request waited for priming"
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
