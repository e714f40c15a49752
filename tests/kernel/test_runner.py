"""`rustmp run`: headless notebook execution, checked on small notebooks made here.

The runner is the kernel binary itself (found through the installed kernelspec) and runs with a
PATH that has no Jupyter on it.
"""
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

RUN_TIMEOUT = 900  # a cold cache builds the embedded crates first


def rustmp_binary():
    return KernelSpecManager().get_kernel_spec("rustmp").argv[0]


def no_jupyter_env():
    """The environment without the test venv: no python packages, no jupyter command."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "JUPYTER_PATH", "PYTHONPATH")}
    venv_bin = os.path.dirname(os.path.realpath(shutil.which("python") or ""))
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if os.path.realpath(p) != venv_bin)
    assert shutil.which("jupyter", path=env["PATH"]) is None
    return env


def run(*args, timeout=RUN_TIMEOUT, stdin=None):
    return subprocess.run([rustmp_binary(), "run", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=no_jupyter_env(), stdin=stdin)


def notebook(path, *cells, language="rust", minor=5):
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = minor
    nb.metadata["kernelspec"] = {"name": "rustmp", "display_name": "Rust (multiprocessing)", "language": language}
    nb.metadata["custom"] = {"kept": True}
    for c in cells:
        if isinstance(c, tuple):
            source, meta = c
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata.update(meta)
        elif c.startswith("#"):
            cell = nbformat.v4.new_markdown_cell(c)
        else:
            cell = nbformat.v4.new_code_cell(c)
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return nb


def outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    return nb, [c for c in nb.cells if c.cell_type == "code"]


def text_of(cell, name="stdout"):
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == name)


def test_outputs_counts_metadata_and_ids_are_written(tmp_path):
    src = tmp_path / "demo.ipynb"
    original = notebook(
        src,
        "# A heading",
        'println!("hello"); print!("no newline");',
        "let x = 40 + 2;\nx",
        "",
        ('println!("tagged");', {"tags": ["custom-tag"]}),
        "use multiprocessing::Process;\n"
        "let mut ps: Vec<Process> = (0..3).map(|i| Process::new(move || println!(\"child {i}\"))).collect();\n"
        "for p in &mut ps { p.start().unwrap(); }\n"
        "for p in &mut ps { p.join().unwrap(); }",
        'rustmp_display::html("<b>bold</b>");',
        'let d = rustmp_display::Display::text("first");\nd.update_text("second");',
        'eprintln!("to stderr");',
    )
    proc = run(src)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "demo.nbconvert.ipynb"
    nb, code = outputs(out)
    # Terminal: each cell's progress and output.
    assert "In [1]: println!(\"hello\")" in proc.stdout
    assert "Out[2]: 42" in proc.stdout
    assert "# A heading" in proc.stdout
    assert "to stderr" in proc.stderr
    # The notebook: outputs, counts (the empty cell is not run), metadata and ids kept.
    assert [c.execution_count for c in code] == [1, 2, None, 3, 4, 5, 6, 7]
    assert text_of(code[0]) == "hello\nno newline"
    assert code[1].outputs[0]["output_type"] == "execute_result"
    assert code[1].outputs[0]["data"]["text/plain"] == "42"
    assert code[1].outputs[0]["execution_count"] == 2
    assert code[3].metadata["tags"] == ["custom-tag"]
    assert sorted(text_of(code[4]).splitlines()) == ["child 0", "child 1", "child 2"]
    assert code[5].outputs[0]["output_type"] == "display_data"
    assert code[5].outputs[0]["data"]["text/html"] == "<b>bold</b>"
    assert code[6].outputs[0]["data"]["text/plain"] == "second"
    assert text_of(code[7], "stderr") == "to stderr\n"
    assert [c.id for c in nb.cells] == [c.id for c in original.cells]
    assert nb.metadata["custom"] == {"kept": True}
    assert nb.metadata["language_info"]["name"] == "rust"
    # Jupyter's layout: one-space indent, multi-line text as a list of lines.
    raw = json.loads(out.read_text())
    assert raw["cells"][1]["outputs"][0]["text"] == ["hello\n", "no newline"]
    assert out.read_text().startswith('{\n "cells": [')


def test_a_failing_cell_stops_the_run_unless_errors_are_allowed(tmp_path):
    src = tmp_path / "fail.ipynb"
    notebook(src, 'println!("before");', 'let n: u32 = "text";', 'panic!("boom")', "1 + 1")
    proc = run(src, "--output", tmp_path / "out.ipynb")
    assert proc.returncode == 1, proc.stderr
    assert "code cell 2 failed (CompilationError" in proc.stderr
    assert "panicked" not in proc.stderr.split("rustmp run: code cell")[-1]
    _, code = outputs(tmp_path / "out.ipynb")
    assert code[1].outputs[-1]["output_type"] == "error"
    assert code[1].outputs[-1]["ename"] == "CompilationError"
    assert code[2].execution_count is None and code[2].outputs == []

    proc = run(src, "--allow-errors", "--output", tmp_path / "all.ipynb")
    assert proc.returncode == 0, proc.stderr
    _, code = outputs(tmp_path / "all.ipynb")
    assert code[2].outputs[-1]["output_type"] == "error"
    assert "boom" in code[2].outputs[-1]["evalue"]
    assert code[3].outputs[0]["data"]["text/plain"] == "2"


def test_raises_exception_tag_allows_that_cell_only(tmp_path):
    src = tmp_path / "tag.ipynb"
    notebook(src, ('panic!("expected")', {"tags": ["raises-exception"]}), "3 * 3")
    proc = run(src)
    assert proc.returncode == 0, proc.stderr
    _, code = outputs(tmp_path / "tag.nbconvert.ipynb")
    assert code[0].outputs[-1]["ename"] == "panic"
    assert code[1].outputs[0]["data"]["text/plain"] == "9"


def test_a_cell_past_its_timeout_is_interrupted_and_the_run_fails(tmp_path):
    src = tmp_path / "slow.ipynb"
    notebook(
        src,
        "let kept = 7;",
        "use multiprocessing::Process;\n"
        "let mut p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(600)));\n"
        "p.start().unwrap();\np.join().unwrap();",
        "kept",
    )
    # The first cell warms the engine up (several seconds): give it room, then a short limit
    # would still hit the blocked join.
    proc = run(src, "--timeout", "20", "--output", tmp_path / "out.ipynb", timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "code cell 2 timed out after 20" in proc.stderr
    _, code = outputs(tmp_path / "out.ipynb")
    assert code[1].outputs[-1]["ename"] == "Interrupted"
    assert code[2].execution_count is None


def test_inplace_rewrites_only_a_successful_run(tmp_path):
    good = tmp_path / "good.ipynb"
    notebook(good, '"in place"')
    proc = run(good, "--inplace")
    assert proc.returncode == 0, proc.stderr
    _, code = outputs(good)
    assert code[0].outputs[0]["data"]["text/plain"] == '"in place"'
    assert not (tmp_path / "good.nbconvert.ipynb").exists()

    bad = tmp_path / "bad.ipynb"
    notebook(bad, "let x: u8 = 300;")
    before = bad.read_bytes()
    proc = run(bad, "--inplace")
    assert proc.returncode == 1
    assert "left unchanged" in proc.stderr
    assert bad.read_bytes() == before


@pytest.mark.parametrize("content, message", [
    ("this is not json", "is not a Jupyter notebook (nbformat 4): not valid JSON"),
    ('{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}', "nbformat 3 is not supported"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "has no list of cells"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 5}]}',
     "cell 1 has no valid source"),
])
def test_what_is_not_a_notebook_gets_a_clear_error(tmp_path, content, message):
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    proc = run(path, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "panicked" not in proc.stderr


def test_a_notebook_of_another_language_is_refused(tmp_path):
    path = tmp_path / "py.ipynb"
    notebook(path, "print('hi')", language="python")
    proc = run(path, timeout=60)
    assert proc.returncode == 2
    assert "is a notebook for python, not Rust" in proc.stderr
    missing = run(tmp_path / "missing.ipynb", timeout=60)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def blocking_cell(pid_file, join="p.join().unwrap();"):
    """A cell whose child writes its pid to `pid_file`, then the cell waits for it (10 minutes)."""
    return ("use multiprocessing::Process;\n"
            f"let mut p = Process::new(|| {{ std::fs::write({json.dumps(str(pid_file))}, std::process::id().to_string()).unwrap(); "
            "std::thread::sleep(std::time::Duration::from_secs(600)); });\n"
            f"p.start().unwrap();\n{join}")


def wait_for_child(pid_file, runner):
    """The child's pid, once the blocking cell's child has started."""
    deadline = time.time() + RUN_TIMEOUT
    while not pid_file.exists() or not pid_file.read_text():
        assert time.time() < deadline and runner.poll() is None
        time.sleep(0.1)
    return int(pid_file.read_text())


def assert_gone_within_5_s(pid):
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.1)
    state = open(f"/proc/{pid}/stat").read().split()[2] if os.path.exists(f"/proc/{pid}") else "gone"
    assert state in ("gone", "Z"), state


def test_killing_the_runner_leaves_no_process_behind(tmp_path):
    pid_file = tmp_path / "child.pid"
    src = tmp_path / "hang.ipynb"
    notebook(src, blocking_cell(pid_file))
    runner = subprocess.Popen([rustmp_binary(), "run", str(src)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=no_jupyter_env())
    try:
        child = wait_for_child(pid_file, runner)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        assert_gone_within_5_s(child)
    finally:
        if runner.poll() is None:
            runner.kill()


@pytest.mark.parametrize("join", ["p.join().unwrap();", "p.join()?;"])
def test_ctrl_c_interrupts_the_cell_and_writes_what_ran(tmp_path, join):
    pid_file = tmp_path / "child.pid"
    src = tmp_path / "ctrlc.ipynb"
    notebook(src, "let kept = 1;", blocking_cell(pid_file, join), "kept")
    out = tmp_path / "out.ipynb"
    runner = subprocess.Popen([rustmp_binary(), "run", str(src), "--output", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=no_jupyter_env())
    try:
        child = wait_for_child(pid_file, runner)
        runner.send_signal(signal.SIGINT)
        _, stderr = runner.communicate(timeout=60)
        assert runner.returncode == 130, stderr
        assert "interrupted at code cell 2" in stderr
        _, code = outputs(out)
        # One error output says what was stopped; nothing about it on stderr.
        errors = [o for o in code[1].outputs if o["output_type"] == "error"]
        assert len(errors) == 1 and errors[0]["ename"] == "Interrupted", code[1].outputs
        assert errors[0]["evalue"] == \
            "the cell was interrupted; the children created through multiprocessing were terminated"
        assert text_of(code[1], "stderr") == ""
        assert stderr.count("the children created through multiprocessing were terminated") == 1, stderr
        assert code[2].execution_count is None
        assert_gone_within_5_s(child)
    finally:
        if runner.poll() is None:
            runner.kill()


QUESTION_MARK_CELL = ('eprintln!("a warning before the error");\n'
                      'Err(std::io::Error::other("boom through the question mark"))?;')


def test_an_error_through_question_mark_is_written_once(tmp_path):
    src = tmp_path / "qm.ipynb"
    notebook(src, QUESTION_MARK_CELL, "1 + 2")
    proc = run(src, "--allow-errors", "--output", tmp_path / "out.ipynb")
    assert proc.returncode == 0, proc.stderr
    _, code = outputs(tmp_path / "out.ipynb")
    errors = [o for o in code[0].outputs if o["output_type"] == "error"]
    assert len(errors) == 1, code[0].outputs
    assert text_of(code[0], "stderr") == "a warning before the error\n"
    assert errors[0]["ename"] == "Error" and errors[0]["evalue"] == "boom through the question mark"
    assert errors[0]["traceback"] == ["Error: boom through the question mark"]
    # The terminal too: the cell's stderr, then the error, once.
    assert proc.stderr.count("boom through the question mark") == 1, proc.stderr
    assert "a warning before the error" in proc.stderr
    assert code[1].outputs[0]["data"]["text/plain"] == "3"


def test_nbconvert_shows_an_error_through_question_mark_once(tmp_path):
    src = tmp_path / "qm.ipynb"
    notebook(src, QUESTION_MARK_CELL)
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    subprocess.run([jupyter, "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
                    "--output-dir", str(tmp_path / "out"), str(src)],
                   check=True, timeout=RUN_TIMEOUT, capture_output=True)
    _, code = outputs(tmp_path / "out" / "qm.ipynb")
    errors = [o for o in code[0].outputs if o["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["evalue"] == "boom through the question mark", code[0].outputs
    assert text_of(code[0], "stderr") == "a warning before the error\n"


INPUT_CELL = 'let name = rustmp_display::input("Your name? ");\nprintln!("hello {name}");'


def test_input_without_a_terminal_answers_empty_and_warns_once(tmp_path):
    src = tmp_path / "ask.ipynb"
    notebook(src, INPUT_CELL)
    proc = run(src, "--output", tmp_path / "out.ipynb", stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    _, code = outputs(tmp_path / "out.ipynb")
    # The notebook records the prompt with the (empty) answer, then what the cell printed.
    assert text_of(code[0]) == "Your name? \nhello \n", code[0].outputs
    warnings = [line for line in proc.stderr.splitlines() if "asked for input" in line]
    assert len(warnings) == 1, proc.stderr
    assert "Your name? " in warnings[0] and "stdin is not a terminal" in warnings[0], warnings


def read_until(fd, needle, deadline, child):
    """Reads the pty until `needle` shows up; kills the child and fails at the deadline."""
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            child.kill()
            pytest.fail(f"no {needle!r} within the deadline; the terminal showed {seen.decode(errors='replace')!r}")
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every copy of the slave side is closed
            chunk = b""
        if not chunk:
            child.kill()
            pytest.fail(f"the terminal closed before {needle!r}: {seen.decode(errors='replace')!r}")
        seen += chunk
    return seen


def test_input_on_a_terminal_reads_the_answer(tmp_path):
    src = tmp_path / "ask.ipynb"
    notebook(src, INPUT_CELL)
    master, slave = pty.openpty()
    child = subprocess.Popen([rustmp_binary(), "run", str(src), "--output", str(tmp_path / "out.ipynb")],
                             stdin=slave, stdout=slave, stderr=slave, env=no_jupyter_env(),
                             start_new_session=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        # The prompt at the start of a line (the progress line quotes the source, prompt included).
        read_until(master, b"\nYour name? ", deadline, child)
        os.write(master, b"Ada\n")
        shown = read_until(master, b"hello Ada", time.monotonic() + 120, child)
        assert child.wait(timeout=120) == 0, shown.decode(errors="replace")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    _, code = outputs(tmp_path / "out.ipynb")
    assert text_of(code[0]) == "Your name? Ada\nhello Ada\n", code[0].outputs
