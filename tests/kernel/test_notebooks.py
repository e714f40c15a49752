"""The committed notebooks, executed the ways users execute them: nbconvert (the installed
kernelspec), `rustmp run` (no Jupyter), nbval and papermill; and the HTML handouts."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from notebook_checks import CHECKS, NOTEBOOKS
from test_runner import no_jupyter_env, rustmp_binary

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
TIMEOUT = 900  # a cold cache builds the embedded crates first
BIN = Path(sys.executable).parent


def read(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    return nb


def test_the_committed_notebooks_hold_the_outputs_of_a_real_run():
    for name in NOTEBOOKS:
        nb = read(NB_DIR / name)
        assert nb.metadata["kernelspec"]["name"] == "rustmp"
        CHECKS[name](nb)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_nbconvert_executes_the_notebook(tmp_path, name):
    start = time.monotonic()
    subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                    "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path), str(NB_DIR / name)],
                   check=True, timeout=TIMEOUT, capture_output=True)
    print(f"nbconvert {name}: {time.monotonic() - start:.1f} s")
    CHECKS[name](read(tmp_path / name))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_rustmp_run_executes_the_notebook(tmp_path, name):
    out = tmp_path / name
    start = time.monotonic()
    proc = subprocess.run([rustmp_binary(), "run", str(NB_DIR / name), "--output", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=no_jupyter_env())
    print(f"rustmp run {name}: {time.monotonic() - start:.1f} s")
    assert proc.returncode == 0, proc.stderr
    nb = read(out)
    CHECKS[name](nb)
    # The ids and the metadata of the committed notebook are kept.
    committed = read(NB_DIR / name)
    assert [c.id for c in nb.cells] == [c.id for c in committed.cells]
    assert nb.metadata["kernelspec"] == committed.metadata["kernelspec"]


def test_nbval_lax_passes_on_the_committed_notebooks():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           *[str(NB_DIR / n) for n in NOTEBOOKS]],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_papermill_executes_the_notebooks(tmp_path):
    for name in NOTEBOOKS:
        subprocess.run([str(BIN / "papermill"), "--kernel", "rustmp", str(NB_DIR / name), str(tmp_path / name)],
                       check=True, timeout=TIMEOUT, capture_output=True)
        CHECKS[name](read(tmp_path / name))


def test_handouts_render_the_outputs_into_html(tmp_path):
    env = dict(os.environ, HANDOUT_DIR=str(tmp_path), JUPYTER=str(BIN / "jupyter"))
    subprocess.run(["bash", str(ROOT / "scripts" / "handouts.sh")], check=True, timeout=600, env=env,
                   capture_output=True)
    html = (tmp_path / "multiprocessing-qa.html").read_text()
    for expected in ["Question 6", "Gamma(0.5) = 1.7724538509055159", "Gamma(10) = 362880.0", "ticket5",
                     "Process number 3, random number generated"]:
        assert expected in html
    assert (tmp_path / "tutorial.html").exists()
    assert shutil.which("jupyter", path=str(BIN))
