"""`rustmp install` lays the kernelspec out where Jupyter finds it, for each location option."""
import json
import os
import subprocess

from jupyter_client.kernelspec import KernelSpecManager

RUSTMP = os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "rustmp")


def install(args, env_extra, tmp_path):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([RUSTMP, "install", *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def check_spec(kernel_dir, name):
    spec = json.load(open(os.path.join(kernel_dir, "kernel.json")))
    assert spec["display_name"] == "Rust (multiprocessing)"
    assert spec["language"] == "rust"
    assert spec["interrupt_mode"] == "message"
    assert spec["argv"][1:] == ["kernel", "--connection-file", "{connection_file}"]
    assert os.path.isabs(spec["argv"][0])
    for logo in ("logo-32x32.png", "logo-64x64.png"):
        with open(os.path.join(kernel_dir, logo), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_user_install_goes_to_the_jupyter_data_dir(tmp_path):
    data = tmp_path / "data"
    install(["--user", "--name", "RustMP-User"], {"JUPYTER_DATA_DIR": str(data)}, tmp_path)
    check_spec(data / "kernels" / "rustmp-user", "rustmp-user")
    ksm = KernelSpecManager(kernel_dirs=[str(data / "kernels")])
    assert "rustmp-user" in ksm.find_kernel_specs()


def test_default_is_the_user_dir_and_sys_prefix_uses_the_active_env(tmp_path):
    data = tmp_path / "data"
    install([], {"JUPYTER_DATA_DIR": str(data)}, tmp_path)
    check_spec(data / "kernels" / "rustmp", "rustmp")
    env_prefix = tmp_path / "venv"
    install(["--sys-prefix"], {"VIRTUAL_ENV": str(env_prefix)}, tmp_path)
    check_spec(env_prefix / "share" / "jupyter" / "kernels" / "rustmp", "rustmp")


def test_prefix_install_is_found_through_a_jupyter_path_list(tmp_path):
    prefix = tmp_path / "p"
    install(["--prefix", str(prefix), "--name", "rustmp-p"], {}, tmp_path)
    jupyter_path = os.pathsep.join([str(tmp_path / "nothing-here"), str(prefix / "share" / "jupyter")])
    out = subprocess.run(
        [os.path.join(os.path.dirname(os.sys.executable), "jupyter-kernelspec"), "list", "--json"],
        env=dict(os.environ, JUPYTER_PATH=jupyter_path),
        capture_output=True, text=True, check=True,
    )
    assert "rustmp-p" in json.loads(out.stdout)["kernelspecs"]


def test_version():
    out = subprocess.run([RUSTMP, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rustmp ")


def test_an_installed_copy_works_without_the_checkout_and_with_a_fresh_cache(tmp_path):
    """The library's sources travel inside the binary: a copy elsewhere, with an empty cache,
    runs a cell that uses multiprocessing with no :dep."""
    import shutil

    from jupyter_client.manager import start_new_kernel

    from conftest import execute, stream_text

    bindir = tmp_path / "bin"
    bindir.mkdir()
    copy = bindir / "rustmp"
    shutil.copy2(RUSTMP, copy)
    prefix = tmp_path / "prefix"
    subprocess.run([str(copy), "install", "--prefix", str(prefix), "--name", "rustmp-copy"], check=True, capture_output=True)
    env = {"JUPYTER_PATH": str(prefix / "share" / "jupyter"), "RUSTMP_CACHE_DIR": str(tmp_path / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        km, kc = start_new_kernel(kernel_name="rustmp-copy", startup_timeout=120)
        try:
            reply, outputs, _ = execute(
                kc,
                'use multiprocessing::Process;\nlet mut p = Process::new(|| println!("from the copy"));\np.start().unwrap();\np.join().unwrap();',
                timeout=900,
            )
            assert reply["content"]["status"] == "ok", reply["content"]
            assert stream_text(outputs) == "from the copy\n"
            assert (tmp_path / "cache" / "crates").is_dir()
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
