# Sourced by the scripts: makes (once) the venv with the Jupyter clients the tests and benchmarks
# drive, and sets $venv to it.
venv="${RUSTMP_TEST_VENV:-$root/target/test-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import jupyter_kernel_test, nbclient, jupyterlab, playwright, jupyter_console, pexpect" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/kernel/requirements.txt"
fi
