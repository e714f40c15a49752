"""The cluster pool from a notebook, on the fake hosts of scripts/fake-cluster.sh (network
namespaces with their own hostnames, reached by mpirun through an ssh-like agent, each with a
private staging directory): a cell's functions run on the ranks of an MPI job (each rank runs
`rustmp-mpi`, sent the cells' compiled code), their output comes back to the running cell, an
interrupt ends the job, and shutdown, restart or SIGKILL of the kernel leave nothing on any host.
The committed notebooks/cluster.ipynb runs there through `rustmp run` and nbconvert."""
import glob
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel

from conftest import KERNEL, WARMUP_TIMEOUT, execute, pid_alive, stream_text
from fake_cluster import fake_cluster, skip_or_fail  # noqa: F401 (a fixture)
from notebook_checks import check_cluster
from test_runner import rustmp_binary

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "cluster.ipynb"
BIN = Path(sys.executable).parent
# The processes of an MPI job, wherever they run.
JOB_NAMES = {"mpirun", "orted", "prterun", "prted", "rustmp-mpi"}


def launcher():
    """`rustmp-mpi` built with MPI: $RUSTMP_MPI (scripts/test.sh sets it), else target/debug's."""
    path = os.environ.get("RUSTMP_MPI") or str(ROOT / "target" / "debug" / "rustmp-mpi")
    try:
        said = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError as e:
        skip_or_fail(f"no rustmp-mpi at {path} ({e}): build it with --features rustmp-mpi/mpi")
    if "(with MPI)" not in said:
        skip_or_fail(f"{path} was built without MPI ({said.strip()}): build it with --features rustmp-mpi/mpi")
    return path


@pytest.fixture(scope="module")
def cluster_env(fake_cluster):  # noqa: F811 (the fixture)
    env = dict(os.environ, **fake_cluster.env, RUSTMP_MPI=launcher())
    return fake_cluster, env


def start(env):
    km, kc = start_new_kernel(kernel_name=KERNEL, startup_timeout=120, env=env)
    reply, _, _ = execute(kc, "use multiprocessing::*;", timeout=WARMUP_TIMEOUT)
    assert reply["content"]["status"] == "ok", reply["content"]
    return km, kc


@pytest.fixture(scope="module")
def kernel(cluster_env):
    km, kc = start(cluster_env[1])
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def on(cluster, code):
    """`code` with HOSTFILE replaced by the fake cluster's hostfile (a Rust string literal)."""
    return code.replace("HOSTFILE", '"' + cluster.hostfile + '"')


def a_new_pool_maps(kc, cluster, function, expected):
    """A cluster pool made now maps `function` over 0..4 to `expected`; nothing is left after."""
    out = run(kc, on(cluster, f"""
let fresh = Pool::builder().processes(2).mpi(Mpi::hostfile(HOSTFILE)).build().unwrap();
println!("fresh {{:?}}", fresh.map({function}, 0..4).unwrap());
drop(fresh);
"""))
    assert f"fresh {expected}\n" in out, out
    assert nothing_left(cluster) == set()


def run(kc, code, timeout=300):
    reply, outputs, _ = execute(kc, code, timeout=timeout)
    assert reply["content"]["status"] == "ok", (reply["content"], stream_text(outputs, "stderr"))
    return stream_text(outputs)


def job_processes(cluster):
    """Every process of an MPI job on this machine or a fake host: (pid, name)."""
    found = set()
    for host in cluster.hosts:
        done = subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True, timeout=30)
        for pid in done.stdout.split():
            found.add(int(pid))
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in JOB_NAMES:
                        found.add(int(entry))
            except OSError:
                pass
    named = set()
    for pid in found:
        if pid_alive(pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    named.add((pid, f.read().replace(b"\0", b" ").decode(errors="replace").strip()))
            except OSError:
                pass
    return named


def nothing_left(cluster, limit=5.0):
    deadline = time.time() + limit
    while True:
        left = job_processes(cluster)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)


POOL_CELL = r"""
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}
fn work(x: u64) -> u64 { x * x + 1 }
fn share(x: u64) -> (u64, String) { (work(x), hostname()) }
let pool = Pool::builder().mpi(Mpi::hostfile(HOSTFILE)).build().unwrap();
let results = pool.map(work, 0..100).unwrap();
println!("right {}", results == (0..100u64).map(|x| x * x + 1).collect::<Vec<_>>());
let mut count = std::collections::BTreeMap::new();
let mut values = Vec::new();
for (value, host) in pool.map_chunked(share, 0..100, 1).unwrap() {
    values.push(value);
    *count.entry(host).or_insert(0) += 1;
}
println!("shared right {}", values == results);
for (host, n) in &count { println!("share {host} {n}"); }
println!("here {}", hostname());
"""


def test_a_cells_function_maps_on_two_fake_hosts_and_later_cells_too(kernel, cluster_env):
    cluster, _ = cluster_env
    _, kc = kernel
    out = run(kc, on(cluster, POOL_CELL))
    assert "right true\n" in out and "shared right true\n" in out, out
    share = dict((h, int(n)) for h, n in re.findall(r"^share (\S+) (\d+)$", out, re.M))
    assert sorted(share) == sorted(cluster.hosts), out
    assert sum(share.values()) == 100 and all(n > 0 for n in share.values()), share
    here = re.search(r"^here (\S+)$", out, re.M).group(1)
    assert here not in share

    # A function of a later cell runs on the pool made earlier; what it prints comes back to
    # this cell whole, each line naming its worker and host.
    out = run(kc, r"""
fn later(x: u64) -> u64 {
    println!("later {x} on {}", hostname());
    eprintln!("to stderr {x}");
    3 * x + 7
}
println!("later {:?}", pool.map_chunked(later, 0..8, 1).unwrap());
""")
    assert "later [7, 10, 13, 16, 19, 22, 25, 28]\n" in out, out
    lines = re.findall(r"^\((MpiPoolWorker-\d+)@(\S+) pid=(\d+) host=(\S+)\) later (\d) on (\S+)$", out, re.M)
    assert sorted(int(l[4]) for l in lines) == list(range(8)), out
    assert all(l[1] == l[3] == l[5] and l[5] in cluster.hosts for l in lines), lines

    # A panic is an error with the remote message, location and backtrace; the pool goes on.
    out = run(kc, r"""
fn boom(x: u64) -> u64 { if x == 3 { panic!("boom at {x} on {}", hostname()) } x }
match pool.map(boom, 0..5) {
    Err(Error::Task(t)) => {
        println!("task error {} | {} | {}", t.message, t.worker, t.location.as_deref().unwrap_or("?"));
        println!("backtrace names boom: {}", t.backtrace.contains("boom"));
    }
    other => println!("unexpected {other:?}"),
}
println!("still {:?}", pool.map(later, 0..2).unwrap());
""")
    m = re.search(r"^task error boom at 3 on (\S+) \| MpiPoolWorker-\d+@(\S+) \| (.+)$", out, re.M)
    assert m and m.group(1) == m.group(2) and m.group(1) in cluster.hosts, out
    assert "backtrace names boom: true\n" in out, out
    assert "still [7, 10]\n" in out, out

    # Closing the pool ends the job: nothing is left on any host.
    assert job_processes(cluster), "the job runs"
    run(kc, "pool.close().unwrap(); pool.join().unwrap(); drop(pool);")
    assert nothing_left(cluster) == set()


def test_an_interrupt_ends_a_blocked_cluster_call_and_the_job(kernel, cluster_env):
    cluster, _ = cluster_env
    km, kc = kernel
    code = on(cluster, r"""
fn nap(x: u64) -> u64 { std::thread::sleep(std::time::Duration::from_secs(60)); x }
let napping = Pool::builder().processes(2).mpi(Mpi::hostfile(HOSTFILE)).build().unwrap();
println!("started");
napping.map(nap, 0..4).unwrap();
""")
    msg_id = kc.execute(code)
    deadline = time.time() + 120
    started = False
    while not started and time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=120)
        started = (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                   and "started" in msg["content"]["text"])
    assert started
    time.sleep(1.0)  # the tasks are running on the ranks
    assert job_processes(cluster)
    sent = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=30)
    elapsed = time.time() - sent
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted", reply["content"]
    assert elapsed < 1.0, elapsed
    assert nothing_left(cluster, limit=3.0) == set()
    # A new cluster pool works at once.
    run(kc, "fn bump(x: u64) -> u64 { x * x + 1 }")
    a_new_pool_maps(kc, cluster, "bump", "[1, 2, 5, 10]")


def test_a_host_that_cannot_load_the_code_fails_the_pool_at_creation(kernel, cluster_env):
    cluster, _ = cluster_env
    _, kc = kernel
    noexec = cluster.hosts[-1]
    out = run(kc, on(cluster, r"""
fn triple(x: u64) -> u64 { 3 * x }
// The fake hosts' agent mounts NODE's private staging directory noexec while mpirun's
// environment names it (scripts/fake-cluster.sh): the code shipped there cannot be loaded.
unsafe { std::env::set_var("RUSTMP_FAKE_NOEXEC", "NODE") };
let started = std::time::Instant::now();
let built = Pool::builder().mpi(Mpi::hostfile(HOSTFILE)).build();
unsafe { std::env::remove_var("RUSTMP_FAKE_NOEXEC") };
match built {
    Err(Error::Cluster(m)) => println!("refused after {:.1}s: {m}", started.elapsed().as_secs_f64()),
    Err(other) => println!("another error: {other:?}"),
    Ok(_) => println!("built"),
}
""".replace("NODE", noexec)))
    m = re.search(r"^refused after ([\d.]+)s: (.*)$", out, re.M)
    assert m, out
    assert float(m.group(1)) < 10, out
    assert re.search(rf"MpiPoolWorker-\d+@{noexec} cannot load the pool's code: \S+: .*failed to map segment",
                     m.group(2)), out
    assert nothing_left(cluster) == set()
    # Nothing is lost: a pool made next works.
    a_new_pool_maps(kc, cluster, "triple", "[0, 3, 6, 9]")


def test_a_killed_notebook_worker_is_replaced_and_its_staged_code_removed(kernel, cluster_env):
    cluster, _ = cluster_env
    _, kc = kernel
    who = r"""
fn who(_: u64) -> (u32, u32, String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let ppid = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    (std::process::id(), ppid, host)
}
"""
    out = run(kc, who + on(cluster, r"""
let watched = Pool::builder().mpi(Mpi::hostfile(HOSTFILE)).build().unwrap();
let mut seen = std::collections::BTreeSet::new();
for _ in 0..20 {
    seen.extend(watched.map_chunked(who, 0..16, 1).unwrap());
    if seen.len() == 4 { break; }
}
for (pid, rank, host) in &seen { println!("worker {pid} {rank} {host}"); }
"""))
    workers = [tuple(w) for w in re.findall(r"^worker (\d+) (\d+) (\S+)$", out, re.M)]
    assert len(workers) == 4, out
    pid, rank, host = int(workers[0][0]), int(workers[0][1]), workers[0][2]
    # Its staged code, seen through its rank's own view of the node's private /tmp.
    stages = lambda: glob.glob(f"/proc/{rank}/root/tmp/rustmp-{os.getuid()}/k{pid}-*")
    assert stages(), f"no stage of {pid} on {host}"
    os.kill(pid, signal.SIGKILL)
    out = run(kc, r"""
let mut after = std::collections::BTreeSet::new();
for _ in 0..20 {
    after.extend(watched.map_chunked(who, 0..16, 1).unwrap().into_iter().map(|w| w.0));
    if after.len() >= 4 { break; }
}
println!("after {after:?}");
""")
    after = {int(p) for p in re.search(r"^after \{(.*)\}$", out, re.M).group(1).split(", ")}
    assert len(after) >= 4 and pid not in after, out
    assert not pid_alive(pid)
    assert pid_alive(rank), "the rank runs the new worker"
    assert stages() == [], "the rank removed the killed worker's staged code"
    run(kc, "drop(watched);")
    assert nothing_left(cluster) == set()


MAKE_POOL = r"""
let pool = Pool::builder().mpi(Mpi::hostfile(HOSTFILE)).build().unwrap();
fn id(x: u64) -> u64 { x }
println!("{:?}", pool.map(id, 0..8).unwrap());
"""


@pytest.mark.parametrize("how", ["shutdown", "restart", "sigkill"])
def test_the_kernel_going_away_leaves_nothing_on_any_host(cluster_env, how):
    cluster, env = cluster_env
    assert nothing_left(cluster) == set()
    km, kc = start(env)
    try:
        out = run(kc, on(cluster, MAKE_POOL))
        assert "[0, 1, 2, 3, 4, 5, 6, 7]\n" in out, out
        assert job_processes(cluster), "the job runs"
        if how == "shutdown":
            km.shutdown_kernel(now=False)
        elif how == "restart":
            km.restart_kernel(now=False)
        else:
            os.kill(km.provisioner.process.pid, signal.SIGKILL)
        assert nothing_left(cluster) == set()
    finally:
        kc.stop_channels()
        if how == "sigkill":
            km.cleanup_resources()
        elif km.is_alive():
            km.shutdown_kernel(now=True)


def cluster_run_env(cluster_env):
    cluster, env = cluster_env
    return cluster, dict(env, RUSTMP_MPI_HOSTFILE=cluster.hostfile)


def read(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    return nb


def test_the_committed_cluster_notebook_holds_a_real_runs_outputs():
    check_cluster(read(NOTEBOOK), hosts=None)


def test_rustmp_run_executes_the_cluster_notebook_on_the_fake_hosts(tmp_path, cluster_env):
    cluster, env = cluster_run_env(cluster_env)
    env = {k: v for k, v in env.items() if not k.startswith("JUPYTER")}
    out = tmp_path / "cluster.ipynb"
    proc = subprocess.run([rustmp_binary(), "run", str(NOTEBOOK), "--output", str(out)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr
    check_cluster(read(out), hosts=cluster.hosts)
    assert nothing_left(cluster) == set()


def test_nbconvert_executes_the_cluster_notebook_on_the_fake_hosts(tmp_path, cluster_env):
    cluster, env = cluster_run_env(cluster_env)
    subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                    "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path), str(NOTEBOOK)],
                   check=True, timeout=900, capture_output=True, env=env)
    check_cluster(read(tmp_path / "cluster.ipynb"), hosts=cluster.hosts)
    assert nothing_left(cluster) == set()
