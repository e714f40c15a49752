"""Errors point into the cell, not into the crate evcxr generates: compile errors (rustc's whole
message, renumbered, coloured), panics in the cell, in a function an earlier cell defined, in a
child process and in a pool worker, as `cell [N], line L, column C`; the same through
nbconvert and `rustmp run`."""
import os
import re
import subprocess
import sys

from conftest import execute, stream_text
from test_runner import RUN_TIMEOUT, notebook, outputs, run

ANSI = re.compile(r"\x1b\[[0-9;]*m")

HELPER = 'fn helper(x: u32) -> u32 {\n    if x == 3 { panic!("three"); }\n    x * 2\n}'


def cell(kc, code):
    reply, outputs, _ = execute(kc, code, stop_on_error=False)
    return reply["content"], outputs


def error_of(outputs):
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1, outputs
    return errors[0]


def test_a_compile_error_points_at_the_cells_line(kernel):
    _, kc = kernel
    reply, outputs = cell(kc, 'let mut s = String::new();\nlet n = 3;\ns.push_str(format!("foo {}", n));')
    assert reply["status"] == "error" and reply["ename"] == "CompilationError"
    n = reply["execution_count"]
    error = error_of(outputs)
    raw = "\n".join(error["traceback"])
    assert "\x1b[" in raw, "rustc's message is coloured"
    text = ANSI.sub("", raw)
    assert f"--> cell [{n}], line 3, column 12" in text, text
    assert re.search(r'^ *3 \| s\.push_str\(format!\("foo \{\}", n\)\);$', text, re.M), text
    assert "expected `&str`, found `String`" in text, text
    assert "src/lib.rs" not in text, text


def test_a_compile_error_keeps_rustcs_labels_and_help(kernel):
    _, kc = kernel
    reply, outputs = cell(kc, "let total: u64 = 1;\nlet small: u32 = total;")
    n = reply["execution_count"]
    text = ANSI.sub("", "\n".join(error_of(outputs)["traceback"]))
    assert f"--> cell [{n}], line 2, column 18" in text, text
    assert "expected due to this" in text, text
    assert "help:" in text, text
    assert "src/lib.rs" not in text, text


def test_a_panic_in_the_cell_and_in_an_earlier_cells_function(kernel):
    _, kc = kernel
    reply, _ = cell(kc, HELPER)
    assert reply["status"] == "ok", reply
    defined = reply["execution_count"]
    reply, outputs = cell(kc, 'let fine = helper(2);\nif fine == 4 {\n    panic!("four");\n}')
    n = reply["execution_count"]
    assert reply["ename"] == "panic"
    assert error_of(outputs)["traceback"][0] == f"panicked at cell [{n}], line 3, column 5:"
    reply, outputs = cell(kc, "let y = helper(3);\ny")
    assert error_of(outputs)["traceback"][0] == f"panicked at cell [{defined}], line 2, column 17:"


def test_a_childs_and_a_workers_panic_point_into_the_cells(kernel):
    _, kc = kernel
    reply, _ = cell(kc, HELPER.replace("helper", "helper2"))
    defined = reply["execution_count"]
    reply, outputs = cell(kc, "let mut p = Process::new(|| {\n    let v: Vec<u32> = Vec::new();\n    if v.is_empty() { panic!(\"empty child\") }\n});\n"
                              "p.start().unwrap();\np.join().unwrap();\np.exitcode()")
    n = reply["execution_count"]
    stderr = stream_text(outputs, "stderr")
    assert re.search(r"^Process Process-\d+:$", stderr, re.M), stderr[:500]
    assert f"panicked at cell [{n}], line 3, column 23:\nempty child" in stderr, stderr[:500]
    assert "src/lib.rs" not in stderr
    reply, outputs = cell(kc, "let pool = Pool::new(2).unwrap();\npool.map(helper2, 0..5)?")
    assert reply["status"] == "error"
    assert f"at cell [{defined}], line 2, column 17: three" in reply["evalue"], reply["evalue"]


PANIC_CELLS = (HELPER, "let a = 1;\nhelper(3)")


def test_rustmp_run_writes_the_cells_places(tmp_path):
    src = tmp_path / "panic.ipynb"
    notebook(src, *PANIC_CELLS)
    proc = run(src, "--allow-errors", "--output", tmp_path / "out.ipynb")
    assert proc.returncode == 0, proc.stderr
    _, code = outputs(tmp_path / "out.ipynb")
    error = [o for o in code[1].outputs if o["output_type"] == "error"][0]
    assert error["traceback"][0] == "panicked at cell [1], line 2, column 17:", error
    assert "cell [1], line 2, column 17" in proc.stderr


def test_nbconvert_shows_the_cells_places(tmp_path):
    src = tmp_path / "panic.ipynb"
    notebook(src, *PANIC_CELLS)
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    subprocess.run([jupyter, "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
                    "--output-dir", str(tmp_path / "out"), str(src)],
                   check=True, timeout=RUN_TIMEOUT, capture_output=True)
    _, code = outputs(tmp_path / "out" / "panic.ipynb")
    error = [o for o in code[1].outputs if o["output_type"] == "error"][0]
    assert error["traceback"][0] == "panicked at cell [1], line 2, column 17:", error
