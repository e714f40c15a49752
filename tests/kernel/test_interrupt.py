"""Interrupts keep state: a cell blocked in the library ends with Interrupted within 1 s, the
children are terminated, variables survive; a cell stuck in pure computation is ended by a
restart that says so; an interrupt while idle harms nothing. An interrupted cell, like any cell
that returns an error through `?`, says so once: one error output, nothing repeated on stderr."""
import os
import threading
import time

from conftest import collect, execute, pid_alive, stream_text


def interrupt_after(km, delay):
    t = threading.Timer(delay, km.interrupt_kernel)
    t.start()
    return t


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


def errors_of(outputs):
    return [m["content"] for m in outputs if m["msg_type"] == "error"]


def streams_of(outputs):
    return [m["content"] for m in outputs if m["msg_type"] == "stream"]


def test_an_interrupted_question_mark_join_is_one_interrupted_error_and_nothing_on_stderr(kernel):
    km, kc = kernel
    code = r"""
let mut sleeper = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(600)));
sleeper.start()?;
println!("child pid {}", sleeper.pid().unwrap());
sleeper.join()?;
"""
    msg_id = kc.execute(code)
    seen = []
    pid = None
    deadline = time.time() + 120
    while pid is None and time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(msg)
        if msg["msg_type"] == "stream" and msg["content"]["text"].startswith("child pid"):
            pid = int(msg["content"]["text"].split()[-1])
    assert pid and pid_alive(pid)
    km.interrupt_kernel()
    rest, _ = collect(kc, msg_id, timeout=30)
    outputs = seen + rest
    reply = kc.get_shell_msg(timeout=30)
    errors = errors_of(outputs)
    assert len(errors) == 1, errors
    # stdout has the cell's own line only; stderr has nothing (no message, no `?` wording).
    assert [s["text"] for s in streams_of(outputs)] == [f"child pid {pid}\n"], streams_of(outputs)
    error = errors[0]
    assert error["ename"] == "Interrupted", error
    # What was stopped, said once and briefly.
    assert error["evalue"] == "the cell was interrupted; the children created through multiprocessing were terminated"
    assert error["traceback"] == ["Interrupted: " + error["evalue"]], error["traceback"]
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted" and reply["content"]["evalue"] == error["evalue"]
    deadline = time.time() + 5
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_an_error_through_question_mark_is_one_error_output_and_not_repeated_on_stderr(kernel):
    _, kc = kernel
    code = r"""
eprintln!("a warning the cell printed first");
let error = "the cell's own line that prints a variable named error";
eprintln!("{}", error);
println!("on stdout");
Err(std::io::Error::other("boom: the disk is on fire"))?;
"""
    reply, outputs, late = execute(kc, code, linger=0.3)
    assert late == []
    errors = errors_of(outputs)
    assert len(errors) == 1, errors
    # Every other line the cell wrote is kept, the error's message is not repeated.
    assert stream_text(outputs, "stderr") == (
        "a warning the cell printed first\n"
        "the cell's own line that prints a variable named error\n")
    assert errors[0]["ename"] == "Error"
    assert errors[0]["evalue"] == "boom: the disk is on fire"
    assert errors[0]["traceback"] == ["Error: boom: the disk is on fire"]
    assert reply["content"]["status"] == "error"
    assert reply["content"]["evalue"] == "boom: the disk is on fire"
    assert stream_text(outputs) == "on stdout\n"


def test_a_custom_error_with_several_lines_is_the_whole_evalue_and_not_on_stderr(kernel):
    _, kc = kernel
    code = r"""
#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the first line of a custom error")?;
        write!(f, "and its second line")
    }
}
Err::<(), Boom>(Boom)?;
"""
    reply, outputs, _ = execute(kc, code)
    errors = errors_of(outputs)
    assert len(errors) == 1, errors
    assert errors[0]["ename"] == "Error"
    assert errors[0]["evalue"] == "the first line of a custom error\nand its second line"
    assert stream_text(outputs, "stderr") == ""
    assert reply["content"]["status"] == "error"
    # The kernel is fine afterwards, and eprintln! still works as std's.
    reply, outputs, _ = execute(kc, 'let x = 3; eprintln!("x = {x}"); eprintln!("{}", x);')
    assert reply["content"]["status"] == "ok"
    assert stream_text(outputs, "stderr") == "x = 3\n3\n"
