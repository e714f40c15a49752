"""JupyterLab in headless Chromium on the rustmp kernel, driven as a user drives it.

A JupyterLab server runs on a free localhost port (its own runtime, config and settings dirs,
a token of its own), Debian's Chromium opens a notebook through Playwright, and the tests run
cells, press the toolbar's interrupt button, complete with Tab and restart the kernel from the
Kernel menu. What they check is what the page shows (the output areas' text, the completer's
items) and the notebook model behind it (the outputs JupyterLab would save).
`--LabApp.expose_app_in_browser=True` gives the tests `window.jupyterapp` to run commands.

Nothing here is skipped: without Chromium, JupyterLab or Playwright the tests fail.
"""
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from conftest import WARMUP_TIMEOUT, pid_alive, process_tree

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEED = Path(__file__).resolve().parents[2] / "notebooks" / "multiprocessing-qa.ipynb"
CELL_TIMEOUT = 120  # a cell of a warm kernel on a loaded 2-core VM
INTERRUPTED = "the cell was interrupted; the children created through multiprocessing were terminated"


def seed_cells():
    """Answer 6 of the seed notebook: the cell whose four processes print "Process number", and
    the cell before it that defines the random number helpers it calls."""
    nb = nbformat.read(str(SEED), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    answer = [i for i, s in enumerate(code) if "Process number" in s and "for i in 0..4" in s]
    assert len(answer) == 1, "the seed notebook has one Answer 6 cell"
    helpers = code[answer[0] - 1]
    assert "fn randint" in helpers and "fn fresh_seed" in helpers, helpers
    return helpers, code[answer[0]]


HELPERS, ANSWER_6 = seed_cells()
BLOCKED = """use multiprocessing::*;
let mut blocked = Process::new(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });
blocked.start().unwrap();
println!("child pid {}", blocked.pid().unwrap());
blocked.join().unwrap();"""
# The cells of the notebook the tests open, by name.
CELLS = {
    "helpers": HELPERS,
    "answer6": ANSWER_6,
    "earlier": "let earlier = 41;",
    "blocked": BLOCKED,
    "later": "earlier + 1",
    "complete": "",
    "after_restart": ('use multiprocessing::*;\n'
                      'let mut p = Process::new(|| println!("a child after the restart says {}", 6 * 7));\n'
                      'p.start().unwrap();\np.join().unwrap();'),
    "timeline": ('use multiprocessing::*;\n'
                 'fn nap(x: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(4)); x }\n'
                 'let tl_pool = Pool::new(2).unwrap();\n'
                 'tl_pool.map_chunked(nap, 0..24, 3).unwrap();\n'
                 'tl_pool.timeline()'),
}
INDEX = {name: i for i, name in enumerate(CELLS)}

# Helpers the tests call in the page: the notebook panel, running a cell through the app's
# commands without awaiting it in the page (a run is polled until it ends, so a test fails at
# its deadline instead of hanging), the outputs a cell shows and the ones its model holds.
PAGE_HELPERS = """() => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const t = {
    panel,
    runs: {},
    statuses: [],
    run(i) {
      const nb = panel.content;
      nb.activeCellIndex = i;
      nb.deselectAll();
      const key = 'run' + Object.keys(t.runs).length;
      t.runs[key] = 'running';
      app.commands.execute('notebook:run-cell').then(
        () => { t.runs[key] = 'done'; }, (e) => { t.runs[key] = 'failed: ' + e; });
      return key;
    },
    cell(i) { return panel.content.widgets[i]; },
    shown(i) {
      return Array.from(t.cell(i).node.querySelectorAll('.jp-OutputArea-output')).map(n => n.innerText);
    },
    outputs(i) { return t.cell(i).model.toJSON().outputs; },
    kernelStatus() { return panel.sessionContext.kernelDisplayStatus; },
  };
  panel.sessionContext.statusChanged.connect((_, s) => t.statuses.push(s));
  window.__t = t;
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_naming(text):
    """Pids of the live processes whose command line contains `text` (a kernel names its
    connection file, in the lab's own runtime dir; the children it forks share that line)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            pids.append(int(entry))
    return pids


class Lab:
    """A JupyterLab server with the test notebook, and Chromium on its page."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.runtime = tmp / "runtime"
        root = tmp / "root"
        root.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "rustmp", "display_name": "Rust (multiprocessing)", "language": "rust"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
        nbformat.write(nb, str(root / "lab.ipynb"))
        settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # No news or update toasts over the page.
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ)
        env.update(JUPYTER_RUNTIME_DIR=str(self.runtime), JUPYTER_CONFIG_DIR=str(tmp / "config"),
                   JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
                   IPYTHONDIR=str(tmp / "ipython"))
        assert "JUPYTER_PATH" in env, "scripts/test.sh installs the kernelspec into a JUPYTER_PATH"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "lab.log", "wb")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
             "--LabApp.extension_manager=readonly", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.playwright = None
        self.browser = None
        try:
            self.open()
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            self.kill_leftovers()
            raise

    def open(self):
        """Chromium on the notebook's page, once the server answers; the kernel started and idle."""
        self.wait_for_server()
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                                       timeout=120_000)
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(60_000)
        self.page.goto(f"{self.base}/lab/tree/lab.ipynb?token={self.token}", timeout=120_000)
        self.wait("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                  " && window.jupyterapp.shell.currentWidget.sessionContext"
                  " && window.jupyterapp.shell.currentWidget.content.widgets.length > 0", 120, "the notebook opens")
        self.page.evaluate(PAGE_HELPERS)
        self.wait("() => window.__t.panel.sessionContext.isReady", 120, "the notebook's kernel starts")
        kernel_name = self.page.evaluate("() => window.__t.panel.sessionContext.kernelDisplayName")
        assert kernel_name == "Rust (multiprocessing)", kernel_name
        self.wait_idle(120, "the kernel is idle")

    def server_log(self):
        self.log.flush()
        return (self.tmp / "lab.log").read_text(errors="replace")[-4000:]

    def wait_for_server(self):
        deadline = time.monotonic() + 120
        while True:
            if self.server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {self.server.returncode}:\n{self.server_log()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within 120 s:\n{self.server_log()}")
            time.sleep(0.5)

    def state(self):
        try:
            return self.page.evaluate("() => ({status: window.__t && window.__t.kernelStatus(),"
                                      " runs: window.__t && window.__t.runs,"
                                      " dialog: document.querySelector('.jp-Dialog')?.innerText})")
        except Exception as e:  # noqa: BLE001 (a description for a failure message)
            return repr(e)

    def wait(self, js, timeout, what, arg=None):
        """Waits until `js` is truthy in the page; fails (with what the page shows) at the deadline."""
        try:
            return self.page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=200).json_value()
        except PlaywrightTimeout:
            pytest.fail(f"{what}: not within {timeout} s; page state {self.state()}\n{self.server_log()}")

    def wait_idle(self, timeout, what):
        self.wait("() => window.__t.kernelStatus() === 'idle'", timeout, what)

    def start(self, name):
        return self.page.evaluate("(i) => window.__t.run(i)", INDEX[name])

    def finish(self, key, timeout, what):
        self.wait("(k) => window.__t.runs[k] !== 'running'", timeout, what, arg=key)
        result = self.page.evaluate("(k) => window.__t.runs[k]", key)
        assert result == "done", result

    def run(self, name, timeout=CELL_TIMEOUT):
        """Runs a cell of the notebook to its end; returns (the outputs its model holds, the
        texts its output areas show)."""
        self.finish(self.start(name), timeout, f"cell {name!r} ends")
        return self.outputs(name)

    def outputs(self, name):
        i = INDEX[name]
        model = self.page.evaluate("(i) => window.__t.outputs(i)", i)
        # The page renders what the model holds; wait until every output has its area.
        self.wait("([i, n]) => window.__t.shown(i).length === n", 30, f"cell {name!r} shows its outputs",
                  arg=[i, len(model)])
        return model, self.page.evaluate("(i) => window.__t.shown(i)", i)

    def cell(self, name):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(INDEX[name])

    def toolbar_button(self, command):
        return self.page.locator(f'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar [data-command="{command}"]')

    def stop(self):
        """Closes the browser, shuts the kernels down through the server's API, stops the server."""
        if self.browser is not None:
            self.browser.close()
            self.browser = None
        if self.playwright is not None:
            self.playwright.stop()
            self.playwright = None
        if self.server.poll() is None:
            try:
                headers = {"Authorization": f"token {self.token}"}
                with urllib.request.urlopen(urllib.request.Request(f"{self.base}/api/kernels", headers=headers),
                                            timeout=10) as r:
                    kernels = json.load(r)
                for k in kernels:
                    req = urllib.request.Request(f"{self.base}/api/kernels/{k['id']}", method="DELETE", headers=headers)
                    urllib.request.urlopen(req, timeout=60).close()
            finally:
                self.server.send_signal(signal.SIGTERM)
                try:
                    self.server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(self.server.pid, signal.SIGKILL)
                    self.server.wait()
        self.log.close()

    def kill_leftovers(self):
        """Kills what a failed test left: the kernel and its children, found by the runtime dir."""
        for pid in processes_naming(str(self.runtime)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    yield lab
    try:
        lab.stop()
    finally:
        lab.kill_leftovers()


def stream(outputs, name):
    return "".join(o["text"] for o in outputs if o["output_type"] == "stream" and o["name"] == name)


def test_answer_6_shows_four_lines_one_per_process(lab):
    model, _ = lab.run("helpers", timeout=WARMUP_TIMEOUT)
    assert model == [], model
    model, shown = lab.run("answer6")
    lines = "".join(shown).splitlines()
    assert len(lines) == 4, shown
    numbers = []
    for line in lines:
        m = re.fullmatch(r"Process number (\d), random number generated : (\d+)", line)
        assert m, line
        assert 1 <= int(m.group(2)) <= 100, line
        numbers.append(int(m.group(1)))
    assert sorted(numbers) == [0, 1, 2, 3], lines
    assert [o["output_type"] for o in model] == ["stream"] and stream(model, "stdout") == "".join(shown), model


def test_interrupt_button_ends_a_blocked_cell_with_one_error_and_a_later_cell_uses_an_earlier_variable(lab):
    model, _ = lab.run("earlier")
    assert model == [], model
    key = lab.start("blocked")
    blocked = lab.cell("blocked")
    pid_line = blocked.locator(".jp-OutputArea-output", has_text="child pid")
    pid_line.wait_for(timeout=CELL_TIMEOUT * 1000)
    pid = int(re.search(r"child pid (\d+)", pid_line.inner_text()).group(1))
    assert pid_alive(pid)
    button = lab.toolbar_button("notebook:interrupt-kernel")
    assert button.get_attribute("title") == "Interrupt the kernel"
    button.click()
    lab.finish(key, 30, "the interrupted cell ends")
    model, shown = lab.outputs("blocked")
    errors = [o for o in model if o["output_type"] == "error"]
    assert len(errors) == 1, model
    assert errors[0]["ename"] == "Interrupted" and errors[0]["evalue"] == INTERRUPTED, errors
    assert stream(model, "stdout") == f"child pid {pid}\n", model
    assert stream(model, "stderr") == "", model
    # The page says it once: the cell's line, then the one error, which opens with what was
    # stopped (then where the cell unwrapped it).
    assert len(shown) == 2 and shown[0].strip() == f"child pid {pid}", shown
    assert shown[1].strip().splitlines()[0] == f"Interrupted: {INTERRUPTED}", shown
    assert "".join(shown).count("the cell was interrupted") == 1, shown
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "the interrupted cell's child is terminated"
    lab.wait_idle(30, "the kernel is idle after the interrupt")
    model, shown = lab.run("later")
    assert [o["output_type"] for o in model] == ["execute_result"], model
    assert model[0]["data"]["text/plain"] == "42" and shown == ["42"], (model, shown)


def test_tab_after_multiprocessing_po_offers_pool(lab):
    editor = lab.cell("complete").locator(".cm-content")
    editor.click()
    lab.page.keyboard.type("multiprocessing::Po")
    lab.page.keyboard.press("Tab")
    completer = lab.page.locator(".jp-Completer")
    pool = completer.locator(".jp-Completer-item .jp-Completer-match").filter(has_text=re.compile(r"^Pool$"))
    try:
        pool.wait_for(timeout=CELL_TIMEOUT * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"no Pool in the completer; the editor holds {editor.inner_text()!r}, "
                    f"the completer shows {completer.all_inner_texts()!r}")
    offered = completer.locator(".jp-Completer-item .jp-Completer-match").all_inner_texts()
    assert all(item.startswith("Po") for item in offered), offered
    pool.click()
    lab.wait("() => window.__t.cell(%d).model.sharedModel.getSource() === 'multiprocessing::Pool'"
             % INDEX["complete"], 10, "choosing Pool completes the editor's text")


def test_a_pools_timeline_renders_as_an_svg_with_a_bar_per_chunk(lab):
    model, _ = lab.run("timeline")
    kinds = [o["output_type"] for o in model]
    assert kinds == ["display_data"], model
    assert "text/html" in model[0]["data"] and "image/svg+xml" in model[0]["data"], model[0]["data"].keys()
    i = INDEX["timeline"]
    bars = lab.page.evaluate(
        "(i) => Array.from(window.__t.cell(i).node.querySelectorAll('.jp-OutputArea-output svg rect.chunk'))"
        ".map(r => [r.getAttribute('y'), r.querySelector('title') && r.querySelector('title').textContent])", i)
    assert len(bars) == 8, bars
    assert len({y for y, _ in bars}) == 2, bars
    assert all(t and "nap" in t for _, t in bars), bars
    shot = Path(__file__).resolve().parents[2] / "target" / "lab-timeline.png"
    lab.cell("timeline").screenshot(path=str(shot))
    assert shot.stat().st_size > 0


def test_restart_from_the_kernel_menu_then_cells_run_again(lab):
    lab.page.keyboard.press("Escape")
    lab.page.evaluate("() => { window.__t.statuses.length = 0; }")
    lab.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Kernel$")).click()
    restart = lab.page.locator('.lm-Menu .lm-Menu-item[data-command="kernelmenu:restart"]')
    assert restart.locator(".lm-Menu-itemLabel").inner_text().strip() == "Restart Kernel…"
    restart.click()
    dialog = lab.page.locator(".jp-Dialog")
    accept = dialog.locator(".jp-Dialog-button.jp-mod-accept")
    assert accept.inner_text().strip() == "Restart"
    accept.click()
    dialog.wait_for(state="detached")
    lab.wait("() => window.__t.statuses.includes('restarting') && window.__t.kernelStatus() === 'idle'",
             120, "the kernel restarts")
    model, shown = lab.run("after_restart", timeout=WARMUP_TIMEOUT)
    assert stream(model, "stdout") == "a child after the restart says 42\n", model
    assert [s.strip() for s in shown] == ["a child after the restart says 42"], shown
    # A new kernel: the variable of before the restart is gone.
    model, _ = lab.run("later")
    assert [o["output_type"] for o in model] == ["error"], model
    assert "earlier" in model[0]["evalue"] + "".join(model[0]["traceback"]), model


def test_stopping_the_lab_leaves_no_kernel_process(lab):
    kernels = processes_naming(str(lab.runtime))
    assert kernels, "the kernel runs with a connection file in the lab's runtime dir"
    tree = process_tree(kernels)
    assert len(tree) > len(kernels), "the kernel's runtime is its child"
    lab.stop()
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in tree if pid_alive(p)] == [], "a process of the kernel's tree survived"
