"""The wire protocol as real clients see it: signatures, malformed frames, sessions, status,
execution counts, stop_on_error, stdin, comms, heartbeat."""
import json
import time

import zmq
from jupyter_client.session import Session

from conftest import execute, stream_text


def kernel_info_answered(kc, timeout=10):
    msg_id = kc.kernel_info()
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def raw_shell(km):
    """A second DEALER on the shell port, to send hand-made frames."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(f"{km.transport}://{km.ip}:{km.shell_port}")
    return sock


def test_badly_signed_unsigned_and_malformed_messages_are_dropped_and_the_kernel_keeps_serving(kernel):
    km, kc = kernel
    sock = raw_shell(km)
    good = Session(key=km.session.key, signature_scheme=km.session.signature_scheme)
    bad = Session(key=b"not-the-key", signature_scheme=km.session.signature_scheme)
    msg = bad.msg("kernel_info_request", {})
    bad.send(sock, msg)  # wrong signature
    frames = good.serialize(good.msg("kernel_info_request", {}))
    frames[1] = b""  # unsigned
    sock.send_multipart(frames)
    sock.send_multipart([b"<IDS|MSG>", b"x"])  # too few frames
    sock.send_multipart([b"no delimiter at all"])
    frames = good.serialize(good.msg("kernel_info_request", {}))
    frames[4] = b"{not json"
    frames[1] = good.sign(frames[2:6])
    sock.send_multipart(frames)
    # A correctly signed message carrying a binary buffer is fine.
    good.send(sock, good.msg("comm_msg", {"comm_id": "x", "data": {}}), buffers=[b"\x00\x01\x02"])
    # The replayed copy of a valid message is refused, the first copy answered.
    frames = good.serialize(good.msg("kernel_info_request", {}))
    sock.send_multipart(frames)
    sock.send_multipart(frames)
    time.sleep(1.0)
    replies = []
    while sock.poll(500):
        replies.append(sock.recv_multipart())
    assert len(replies) == 1, "only the single valid kernel_info_request is answered"
    sock.close()
    assert kernel_info_answered(kc)["content"]["status"] == "ok"


def test_kernel_info_session_and_status_on_shell_and_control(kernel):
    km, kc = kernel
    reply = kernel_info_answered(kc)
    info = reply["content"]
    assert info["protocol_version"] == "5.5"
    assert info["implementation"] == "rustmp"
    li = info["language_info"]
    assert li["name"] == "rust" and li["file_extension"] == ".rs" and li["pygments_lexer"] == "rust"
    assert reply["header"]["session"] != kc.session.session, "the kernel has its own session id"
    # control: busy/idle around the request
    msg = kc.session.msg("kernel_info_request", {})
    kc.control_channel.send(msg)
    ctl = kc.control_channel.get_msg(timeout=10)
    assert ctl["msg_type"] == "kernel_info_reply"
    states = []
    deadline = time.time() + 5
    while len(states) < 2 and time.time() < deadline:
        m = kc.get_iopub_msg(timeout=5)
        if m["parent_header"].get("msg_id") == msg["header"]["msg_id"] and m["msg_type"] == "status":
            states.append(m["content"]["execution_state"])
    assert states == ["busy", "idle"]


def test_heartbeat_echoes(kernel):
    km, _ = kernel
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.connect(f"{km.transport}://{km.ip}:{km.hb_port}")
    s.send(b"echo-me-123")
    assert s.poll(5000)
    assert s.recv() == b"echo-me-123"
    s.close()


def test_execution_count_silent_and_store_history(kernel):
    _, kc = kernel
    r1, _, _ = execute(kc, "1")
    n = r1["content"]["execution_count"]
    r2, outputs, _ = execute(kc, 'println!("quiet")', silent=True)
    assert r2["content"]["execution_count"] == n
    assert [m for m in outputs if m["msg_type"] in ("stream", "execute_input", "execute_result")] == []
    r3, _, _ = execute(kc, "2", store_history=False)
    assert r3["content"]["execution_count"] == n
    r4, _, _ = execute(kc, "3")
    assert r4["content"]["execution_count"] == n + 1


def test_compile_error_is_exactly_one_error_with_ename_evalue_traceback(kernel):
    _, kc = kernel
    reply, outputs, _ = execute(kc, "let x: u32 = \"not a number\";")
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "CompilationError" and c["traceback"]
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1


def test_an_error_returned_through_question_mark_is_an_error(kernel):
    _, kc = kernel
    execute(kc, "let kept_before = 5;")
    reply, outputs, _ = execute(
        kc, "let q: Queue<i32> = Queue::new()?;\nq.get_timeout(std::time::Duration::from_millis(5))?;")
    c = reply["content"]
    assert c["status"] == "error", c
    assert c["ename"] == "Error" and c["evalue"] == "the queue is empty", c
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["content"]["evalue"] == "the queue is empty"
    reply, outputs, _ = execute(kc, "kept_before")
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["5"]


def test_stop_on_error_aborts_queued_cells(kernel):
    _, kc = kernel
    first = kc.execute('panic!("first fails")')
    second = kc.execute('println!("must not run")')
    replies = {}
    while len(replies) < 2:
        r = kc.get_shell_msg(timeout=60)
        replies[r["parent_header"]["msg_id"]] = r["content"]
    assert replies[first]["status"] == "error"
    assert replies[second]["status"] == "aborted"
    # And without stop_on_error the next cell runs.
    a = kc.execute('panic!("fails again")', stop_on_error=False)
    b = kc.execute("5")
    replies = {}
    while len(replies) < 2:
        r = kc.get_shell_msg(timeout=60)
        replies[r["parent_header"]["msg_id"]] = r["content"]
    assert replies[a]["status"] == "error" and replies[b]["status"] == "ok"


def test_input_request_when_allowed(kernel):
    _, kc = kernel
    code = 'let name = rustmp_display::input("name? "); println!("hello {name}");'
    msg_id = kc.execute(code, allow_stdin=True)
    req = kc.get_stdin_msg(timeout=120)
    assert req["msg_type"] == "input_request"
    assert req["content"]["prompt"] == "name? "
    kc.input("Ada")
    from conftest import collect

    outputs, _ = collect(kc, msg_id)
    assert stream_text(outputs) == "hello Ada\n"
    kc.get_shell_msg(timeout=10)


def test_comm_info_and_unknown_comm_open(kernel):
    _, kc = kernel
    msg = kc.session.msg("comm_info_request", {})
    kc.shell_channel.send(msg)
    reply = kc.get_shell_msg(timeout=10)
    assert reply["msg_type"] == "comm_info_reply" and reply["content"]["comms"] == {}
    open_msg = kc.session.msg("comm_open", {"comm_id": "c-1", "target_name": "nobody", "data": {}})
    kc.shell_channel.send(open_msg)
    deadline = time.time() + 10
    closed = None
    while time.time() < deadline and closed is None:
        m = kc.get_iopub_msg(timeout=10)
        if m["msg_type"] == "comm_close":
            closed = m
    assert closed is not None and closed["content"]["comm_id"] == "c-1"


def test_dep_for_other_crates_keeps_working(kernel):
    _, kc = kernel
    reply, _, _ = execute(kc, ':dep itoa = "1"', timeout=600)
    assert reply["content"]["status"] == "ok", reply["content"]
    reply, outputs, _ = execute(kc, "itoa::Buffer::new().format(4096).to_string()", timeout=600)
    assert reply["content"]["status"] == "ok", reply["content"]
    result = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert result[0]["content"]["data"]["text/plain"] == '"4096"'
    # The library is still the same single copy: a process started before is joined after.
    reply, outputs, _ = execute(kc, 'let mut late = Process::new(|| println!("still here")); late.start().unwrap(); late.join().unwrap(); late.exitcode()')
    assert stream_text(outputs) == "still here\n"


def test_ipc_transport(tmp_path, monkeypatch):
    """jupyter_client's `transport='ipc'` (Unix sockets named after the connection file)."""
    from jupyter_client.manager import KernelManager
    from conftest import WARMUP_TIMEOUT
    monkeypatch.chdir(tmp_path)
    km = KernelManager(kernel_name="rustmp", transport="ipc")
    km.start_kernel()
    try:
        assert km.get_connection_info()["transport"] == "ipc"
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply, outputs, _ = execute(kc, 'println!("over ipc"); 6 * 7', timeout=WARMUP_TIMEOUT)
        assert reply["content"]["status"] == "ok"
        assert stream_text(outputs) == "over ipc\n"
        assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["42"]
        assert kc.hb_channel.is_beating()
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)


def usage(kc):
    msg = kc.session.msg("usage_request", {})
    kc.control_channel.send(msg)
    while True:
        reply = kc.control_channel.get_msg(timeout=10)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            assert reply["msg_type"] == "usage_reply"
            return reply["content"]


def test_usage_request_counts_the_children(kernel):
    """usage_reply as ipykernel's (jupyter-resource-usage): the kernel's tree, children included."""
    _, kc = kernel
    first = usage(kc)
    for key in ["hostname", "pid", "kernel_cpu", "kernel_memory", "cpu_count", "host_virtual_memory"]:
        assert key in first, first
    assert first["host_virtual_memory"]["total"] > 0
    # A background child that holds 200 MB and burns CPU for a while.
    reply, _, _ = execute(kc, """
let mut usage_hog = Process::new(|| {
    let v = vec![1u8; 200 << 20];
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed() < std::time::Duration::from_secs(3) { x = x.wrapping_add(std::hint::black_box(v[x as usize % v.len()] as u64)); }
    std::hint::black_box(x);
});
usage_hog.start().unwrap();""")
    assert reply["content"]["status"] == "ok", reply["content"]
    time.sleep(1.5)
    during = usage(kc)
    assert during["kernel_memory"] > first["kernel_memory"] + (150 << 20), (first, during)
    assert during["kernel_cpu"] > 20, during
    execute(kc, "usage_hog.join().unwrap();")


def test_question_mark_before_a_path_pages_its_documentation(kernel):
    """IPython's `?obj` (spelled before the path: `x?` is Rust's `?` operator): the docs go to the
    pager as a `page` payload; without docs, one line says so; `x?` stays Rust."""
    _, kc = kernel
    reply, outputs, _ = execute(kc, "?std::vec::Vec")
    c = reply["content"]
    assert c["status"] == "ok", c
    pages = [p for p in c["payload"] if p["source"] == "page"]
    assert len(pages) == 1 and "Vec" in pages[0]["data"]["text/plain"], c["payload"]
    assert not [m for m in outputs if m["msg_type"] in ("execute_result", "error")]
    reply, outputs, _ = execute(kc, "?no_such_thing_here")
    assert reply["content"]["payload"] == []
    assert stream_text(outputs) == "no documentation found for `no_such_thing_here`\n"
    reply, _, _ = execute(kc, 'let parsed: Result<u8, std::num::ParseIntError> = "7".parse();')
    reply, outputs, _ = execute(kc, "parsed?")
    assert reply["content"]["status"] == "ok" and reply["content"]["payload"] == []
    assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["7"]
