"""The fake cluster hosts of scripts/fake-cluster.sh (network namespaces rmpnode1.. on a veth
bridge, reached by Open MPI through an ssh-like rsh agent), for pytest.

Use it from a test module with `from fake_cluster import fake_cluster` and a `fake_cluster`
argument: the fixture brings the cluster up once per session and yields a `Cluster`, whose `env`
holds the variables mpirun needs (merge them into the environment of the kernel or `rustmp run`).
It is taken down at the end of the session, which leaves nothing behind (namespaces, bridge,
/etc/hosts lines, processes). Without root or Open MPI the tests that use it are skipped, and
under CI=true that is a failure.
"""
import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fake-cluster.sh"
# The script's exit status when this machine cannot host fake nodes (not root, no CAP_NET_ADMIN).
CANNOT_HERE = 77


@dataclasses.dataclass
class Cluster:
    env: dict  # KEY -> value, as `fake-cluster.sh up` printed them
    hosts: list  # the fake host names, in hostfile order
    hostfile: str  # the generated hostfile (`rmpnode1 slots=2` ...)
    unreachable: list  # hosts with no link (RUSTMP_FAKE_UNREACHABLE=N before `up`)


class CannotHere(Exception):
    """This machine cannot host the fake cluster; the message says why."""


def up(timeout=60):
    """Runs `fake-cluster.sh up` (which clears stale state first) and returns the Cluster."""
    if shutil.which("mpirun") is None:
        raise CannotHere("mpirun not found (install openmpi-bin)")
    done = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode == CANNOT_HERE:
        raise CannotHere(done.stderr.strip())
    if done.returncode != 0:
        raise RuntimeError(f"fake-cluster.sh up failed ({done.returncode}):\n{done.stderr}")
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return Cluster(env=env, hosts=env["RUSTMP_FAKE_HOSTS"].split(","),
                   hostfile=env["RUSTMP_FAKE_HOSTFILE"],
                   unreachable=[h for h in env.get("RUSTMP_FAKE_UNREACHABLE_HOSTS", "").split(",") if h])


def down(timeout=60):
    """Runs `fake-cluster.sh down`; raises when something could not be removed."""
    done = subprocess.run([str(SCRIPT), "down"], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"fake-cluster.sh down failed ({done.returncode}):\n{done.stderr}")


def skip_or_fail(why):
    """Skips the test, or fails it under CI=true, where MPI tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the fake cluster cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def fake_cluster():
    try:
        cluster = up()
    except CannotHere as why:
        skip_or_fail(str(why))
    try:
        yield cluster
    finally:
        down()
