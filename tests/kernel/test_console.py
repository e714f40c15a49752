"""`jupyter console --kernel rustmp` in a pseudo-terminal, typed at as a user types.

The console starts its own kernel (with a connection file in a runtime dir of this test), runs a
cell whose child prints a line, gets Ctrl-C on a cell blocked on a child (the console forwards it
as an interrupt), and exits on Ctrl-D. What is checked is what the terminal shows, with the
terminal's escape sequences taken out.
"""
import contextlib
import os
import re
import signal
import sys
import time

import pexpect
import pytest

from conftest import WARMUP_TIMEOUT, pid_alive
from conftest import process_tree
from test_lab import processes_naming

CELL_TIMEOUT = 120
INTERRUPTED = "Interrupted: the cell was interrupted; the children created through multiprocessing were terminated"
# CSI and OSC sequences, other two-byte escapes, carriage returns and the terminal's bell.
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_=>]|[\r\x07]")


class Terminal:
    """A process in a pty and what its screen has shown, as plain text."""

    def __init__(self, child):
        self.child = child
        self.raw = ""
        self.seen = 0  # the end of what an earlier expect matched

    def text(self):
        return ESCAPES.sub("", self.raw)

    def expect(self, pattern, timeout):
        """Reads until `pattern` (a regex) shows up after the last match; returns the text from
        the last match to the end of this one. Fails at the deadline or if the terminal closes."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            m = regex.search(text, self.seen)
            if m:
                shown = text[self.seen:m.end()]
                self.seen = m.end()
                return shown
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {pattern!r} within {timeout} s; the terminal showed {text[self.seen:]!r}")
            try:
                self.raw += self.child.read_nonblocking(4096, timeout=min(left, 0.5))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                pytest.fail(f"the terminal closed before {pattern!r}; it showed {text[self.seen:]!r}")

    def type(self, line):
        self.child.send(line + "\r")


@pytest.fixture
def console(tmp_path):
    runtime = tmp_path / "runtime"
    env = dict(os.environ)
    env.update(JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               IPYTHONDIR=str(tmp_path / "ipython"), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    assert "JUPYTER_PATH" in env, "scripts/test.sh installs the kernelspec into a JUPYTER_PATH"
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    child = pexpect.spawn(jupyter, ["console", "--kernel", "rustmp"], env=env, encoding="utf-8",
                          codec_errors="replace", dimensions=(50, 200))
    yield Terminal(child), runtime
    if child.isalive():
        child.kill(signal.SIGKILL)
    child.close(force=True)
    for pid in processes_naming(str(runtime)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_console_forks_interrupts_with_ctrl_c_and_exits_leaving_no_kernel(console):
    term, runtime = console
    term.expect(r"In \[1\]: ", 120)
    kernels = processes_naming(str(runtime))
    assert kernels, "the console's kernel runs with a connection file in the test's runtime dir"

    # A cell that forks: the child's line shows, then the next prompt.
    term.type('use multiprocessing::*; let mut p = Process::new(|| println!("the child says {}", 6 * 7));'
              ' p.start().unwrap(); p.join().unwrap();')
    shown = term.expect(r"In \[2\]: ", WARMUP_TIMEOUT)
    assert re.search(r"^the child says 42$", shown, re.M), shown

    # A cell blocked on a child: Ctrl-C ends it with one Interrupted error and nothing else (the
    # cell waits with `?`, so the error has no "where" lines), the child is gone.
    term.type('let mut blocked = Process::new(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });'
              ' blocked.start()?; println!("child pid {}", blocked.pid().unwrap()); blocked.join()?;')
    pid = int(re.search(r"^child pid (\d+)$", term.expect(r"(?m)^child pid \d+\n", CELL_TIMEOUT), re.M).group(1))
    assert pid_alive(pid)
    time.sleep(0.5)  # the console is waiting on the kernel now
    term.child.send("\x03")
    shown = term.expect(r"In \[3\]: ", 30)
    lines = [line for line in shown.splitlines() if line.strip()]
    assert lines == ["^C" + INTERRUPTED, "In [3]: "] or lines == ["^C", INTERRUPTED, "In [3]: "], shown
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "the interrupted cell's child is terminated"

    # The kernel goes on: an earlier variable is still there.
    term.type("p.exitcode()")
    shown = term.expect(r"In \[4\]: ", CELL_TIMEOUT)
    assert re.search(r"Out\[3\]: Some\(0\)", shown), shown

    # Ctrl-D, confirm: the console exits 0, shuts its kernel down, leaves no process behind.
    tree = process_tree(processes_naming(str(runtime)))
    assert len(tree) > 1, "the kernel and its runtime run"
    term.child.send("\x04")
    term.expect(r"Do you really want to exit \(\[y\]/n\)\?", 30)
    term.type("y")
    term.expect(r"Shutting down kernel", 30)
    try:
        term.child.expect(pexpect.EOF, timeout=60)
    except pexpect.TIMEOUT:
        pytest.fail(f"the console did not exit within 60 s: {term.text()[term.seen:]!r}")
    term.child.close()
    assert term.child.exitstatus == 0, (term.child.exitstatus, term.child.signalstatus)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in tree if pid_alive(p)] == [], "a process of the kernel's tree survived"
