//! Real `mpirun` jobs of the `rustmp-mpi probe` binary: on this host (`--oversubscribe`, 4
//! ranks), on 2 fake hosts × 2 ranks (network namespaces from `scripts/fake-cluster.sh`), and in
//! the cluster pool's layout (rank 0 here, the other ranks on the fake hosts). One fake cluster
//! for the whole run, scenarios in sequence (harness = false).
//!
//! Without Open MPI, a binary built without the `mpi` feature, or without root, the scenarios
//! that cannot run print `skipped: <why>`; under `CI=true` a skip is a failure.

#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};
use support::fake::{FakeCluster, UpError};
use support::tally::Tally;
use support::{Outcome, ensure, probe, procs, run};

/// The longest any one `mpirun` may take (a launch takes ~1 s here).
const JOB_DEADLINE: Duration = Duration::from_secs(60);
/// How long daemons and ranks may linger after their job ended.
const LINGER: Duration = Duration::from_secs(3);
/// The exit status of `rustmp-mpi probe` when built without the `mpi` feature.
const EXIT_NO_MPI: i32 = 3;
/// The scenarios that need the fake cluster, in the order they run.
const ON_FAKE_HOSTS: [&str; 4] = [
    "two_fake_hosts",
    "bridge_layout",
    "killed_rank",
    "nothing_left",
];
/// How soon a job must end after one of its ranks was killed (the limit for an error).
const KILLED_LIMIT: Duration = Duration::from_secs(5);
/// The value the scenarios put in `RUSTMP_PROBE_MARKER`.
const MARKER: &str = "from-mpirun-side";

struct Setup {
    exe: PathBuf,
    hostname: String,
    own_netns: u64,
    scratch: PathBuf,
}

fn main() -> ExitCode {
    let mut tally = Tally::default();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_rustmp-mpi"));
    if let Some(why) = mpi_missing(&exe) {
        for name in std::iter::once("single_host").chain(ON_FAKE_HOSTS) {
            tally.skip(name, &why);
        }
        return tally.finish();
    }
    let scratch = std::env::temp_dir().join(format!("rustmp-mpi-test-{}", std::process::id()));
    let setup = Setup {
        exe,
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        own_netns: procs::netns_of("self").unwrap_or(0),
        scratch: scratch.clone(),
    };
    let _ = std::fs::create_dir_all(&scratch);
    tally.scenario("single_host", || single_host(&setup));
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !is_root {
        let why = "fake hosts need root (network namespaces, a bridge, /etc/hosts)";
        for name in ON_FAKE_HOSTS {
            tally.skip(name, why);
        }
    } else {
        match FakeCluster::up() {
            Err(UpError::CannotHere(why)) => {
                for name in ON_FAKE_HOSTS {
                    tally.skip(name, &why);
                }
            }
            Err(UpError::Failed(why)) => {
                println!("fake-cluster.sh up failed:\n{why}");
                tally.failed.push("fake cluster up".to_string());
            }
            Ok(mut cluster) => {
                tally.scenario("two_fake_hosts", || two_fake_hosts(&setup, &cluster));
                tally.scenario("bridge_layout", || bridge_layout(&setup, &cluster));
                tally.scenario("killed_rank", || killed_rank(&setup, &cluster));
                tally.scenario("nothing_left", || nothing_left(&setup, &mut cluster));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    tally.finish()
}

/// Why the MPI scenarios cannot run here, if they cannot.
fn mpi_missing(exe: &Path) -> Option<String> {
    // A probe outside mpirun is an MPI singleton (no mpirun needed): it shows whether the binary
    // was built with MPI at all.
    match run::run(Command::new(exe).arg("probe"), JOB_DEADLINE) {
        Ok(done) if done.status.code() == Some(EXIT_NO_MPI) => {
            return Some(
                "rustmp-mpi was built without the `mpi` feature (build with --features \
                 rustmp-mpi/mpi; needs Open MPI's mpicc and libclang)"
                    .to_string(),
            );
        }
        Ok(_) => {}
        Err(error) => return Some(format!("cannot run {}: {error}", exe.display())),
    }
    match run::run(Command::new("mpirun").arg("--version"), JOB_DEADLINE) {
        Ok(done) if done.status.success() => None,
        Ok(done) => Some(done.describe("mpirun --version")),
        Err(_) => Some("mpirun not found in PATH (install openmpi-bin)".to_string()),
    }
}

/// An `mpirun` command with no fake-cluster settings from the caller's environment.
fn mpirun() -> Command {
    let mut command = Command::new("mpirun");
    for (key, _) in std::env::vars() {
        if key.starts_with("OMPI_MCA_") || key.starts_with("RUSTMP_FAKE_") {
            command.env_remove(key);
        }
    }
    command.env("RUSTMP_PROBE_MARKER", MARKER);
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        command
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    command
}

/// Runs `command`, which must succeed, and checks its probe output.
fn probe_job(command: &mut Command, what: &str) -> Result<probe::Probe, String> {
    let done = run::run(command, JOB_DEADLINE)?;
    ensure(done.status.success(), || done.describe(what))?;
    let parsed = probe::parse(&done.stdout).map_err(|e| format!("{e}\n{}", done.describe(what)))?;
    println!(
        "  {what}: {} ranks in {:.2} s, per host {:?}",
        parsed.ranks.len(),
        done.elapsed.as_secs_f64(),
        parsed.per_host()
    );
    Ok(parsed)
}

/// A file that exists here; fake hosts must not see it.
fn witness(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let file = dir.join(format!("probe-witness-{}", std::process::id()));
    std::fs::write(&file, b"here").map_err(|e| format!("write {}: {e}", file.display()))?;
    Ok(file)
}

/// 4 ranks on this host, oversubscribed: each is here, sees our files and inherited our
/// environment (a local launch does), and rank 0 heard from every other rank.
fn single_host(setup: &Setup) -> Outcome {
    let file = witness(&setup.scratch)?;
    let job = probe_job(
        mpirun()
            .args(["--oversubscribe", "-np", "4"])
            .arg(&setup.exe)
            .arg("probe")
            .arg("--check-path")
            .arg(&file),
        "mpirun --oversubscribe -np 4",
    )?;
    ensure(job.ranks.len() == 4, || {
        format!("{} ranks, 4 expected", job.ranks.len())
    })?;
    for rank in &job.ranks {
        ensure(
            rank.host == setup.hostname && rank.netns == setup.own_netns,
            || {
                format!(
                    "rank {rank:?} is not on this host ({}, netns {})",
                    setup.hostname, setup.own_netns
                )
            },
        )?;
        ensure(rank.sees == "yes" && rank.marker == MARKER, || {
            format!(
                "rank {rank:?} should see {} and have the marker",
                file.display()
            )
        })?;
    }
    no_process_runs(setup, &BTreeSet::new(), None)
}

/// 2 fake hosts × 2 ranks from the generated hostfile: ranks 0,1 on rmpnode1 and 2,3 on
/// rmpnode2, each in its host's network namespace, none seeing this host's staging directory or
/// the variable that was not forwarded; then no daemon or rank is left on either host.
fn two_fake_hosts(setup: &Setup, cluster: &FakeCluster) -> Outcome {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let file = witness(&PathBuf::from(format!("/tmp/rustmp-{uid}")))?;
    let result = probe_job(
        cluster
            .apply(&mut mpirun())
            .arg("--hostfile")
            .arg(&cluster.hostfile)
            .args(["-np", "4"])
            .arg(&setup.exe)
            .arg("probe")
            .arg("--check-path")
            .arg(&file),
        "mpirun --hostfile <fake> -np 4",
    );
    let _ = std::fs::remove_file(&file);
    let job = result?;
    let expected: BTreeMap<String, usize> = cluster.hosts.iter().map(|h| (h.clone(), 2)).collect();
    ensure(job.per_host() == expected, || {
        format!("ranks per host {:?}, expected {expected:?}", job.per_host())
    })?;
    for rank in &job.ranks {
        on_fake_host(rank, cluster)?;
        ensure(rank.sees == "no", || {
            format!("rank {rank:?} sees {} (shared staging)", file.display())
        })?;
        ensure(rank.marker == "absent", || {
            format!("rank {rank:?} inherited mpirun's environment")
        })?;
    }
    cluster.wait_empty(LINGER)
}

/// The cluster pool's layout (risk 1 of the plan): one mpirun, rank 0 on this host by
/// `--host <hostname>:1`, ranks 1–4 on the fake hosts by `--host rmpnode1:2,rmpnode2:2`, a
/// variable forwarded to them with `-x` in their app context, and the kernel's cache directory (RUSTMP_CACHE_DIR) private to
/// each fake host.
fn bridge_layout(setup: &Setup, cluster: &FakeCluster) -> Outcome {
    let cache = setup.scratch.join("cache");
    let file = witness(&cache)?;
    let hosts: Vec<String> = cluster.hosts.iter().map(|h| format!("{h}:2")).collect();
    let job = probe_job(
        cluster
            .apply(&mut mpirun())
            .env("RUSTMP_CACHE_DIR", &cache)
            .args(["-np", "1", "--host"])
            .arg(format!("{}:1", setup.hostname))
            .arg(&setup.exe)
            .args(["probe", "--check-path"])
            .arg(&file)
            // `-x` belongs to the app context it is written in (Open MPI 4.1): the workers'.
            .args([
                ":",
                "-x",
                "RUSTMP_PROBE_MARKER",
                "-np",
                "4",
                "--host",
                &hosts.join(","),
            ])
            .arg(&setup.exe)
            .args(["probe", "--check-path"])
            .arg(&file),
        "mpirun -np 1 --host <here>:1 : -np 4 --host <fake>",
    )?;
    let zero = &job.ranks[0];
    ensure(
        zero.host == setup.hostname && zero.netns == setup.own_netns && zero.sees == "yes",
        || format!("rank 0 {zero:?} is not on this host"),
    )?;
    for rank in &job.ranks[1..] {
        on_fake_host(rank, cluster)?;
        ensure(rank.sees == "no", || {
            format!("rank {rank:?} sees the kernel's cache {}", file.display())
        })?;
    }
    for rank in &job.ranks {
        ensure(rank.marker == MARKER, || {
            format!("rank {rank:?} did not get the -x variable")
        })?;
    }
    let mut per_host = job.per_host();
    per_host.remove(&setup.hostname);
    let expected: BTreeMap<String, usize> = cluster.hosts.iter().map(|h| (h.clone(), 2)).collect();
    ensure(per_host == expected, || {
        format!("worker ranks per host {per_host:?}, expected {expected:?}")
    })?;
    cluster.wait_empty(LINGER)
}

/// SIGKILL to a rank on a fake host while the job runs (every rank inside the job, rank 0 here):
/// mpirun ends within [`KILLED_LIMIT`], its message names the rank, its pid, its host and the
/// signal, and nothing of the job is left on any host. With `--mca odls_base_sigkill_timeout 0`:
/// Open MPI's default waits 1 s for each process it kills, one after another (4 s here for 4
/// ranks left), which would break the limit on a bigger job.
fn killed_rank(setup: &Setup, cluster: &FakeCluster) -> Outcome {
    let hosts: Vec<String> = cluster.hosts.iter().map(|h| format!("{h}:2")).collect();
    let mut job = run::spawn(
        cluster
            .apply(&mut mpirun())
            .args([
                "--mca",
                "odls_base_sigkill_timeout",
                "0",
                "-np",
                "1",
                "--host",
            ])
            .arg(format!("{}:1", setup.hostname))
            .arg(&setup.exe)
            .args(["probe", "--hold", "60"])
            .args([":", "-np", "4", "--host", &hosts.join(",")])
            .arg(&setup.exe)
            .args(["probe", "--hold", "60"]),
    )?;
    job.wait_for(JOB_DEADLINE, |out| out.contains("probe-done"))?;
    let running = probe::parse(&job.stdout_now())?;
    let last_host = cluster.hosts.last().cloned().unwrap_or_default();
    let victim = running
        .ranks
        .iter()
        .find(|r| r.host == last_host)
        .ok_or_else(|| format!("no rank on {last_host}: {:?}", running.ranks))?
        .clone();
    let killed = Instant::now();
    run::signal(victim.pid, "KILL")?;
    let done = job.finish(JOB_DEADLINE)?;
    let took = killed.elapsed();
    println!(
        "  mpirun ended {:.2} s after rank {} on {} was killed",
        took.as_secs_f64(),
        victim.rank,
        victim.host
    );
    ensure(!done.status.success() && took <= KILLED_LIMIT, || {
        format!(
            "the job should fail within {} s of the kill\n{}",
            KILLED_LIMIT.as_secs(),
            done.describe("mpirun")
        )
    })?;
    let says = format!(
        "process rank {} with PID {} on node {} exited on signal 9",
        victim.rank, victim.pid, victim.host
    );
    ensure(done.stderr.contains(&says), || {
        format!("mpirun does not say `{says}`:\n{}", done.stderr)
    })?;
    cluster.wait_empty(LINGER)?;
    no_process_runs(setup, &cluster.netns.values().copied().collect(), None)
}

/// `fake-cluster.sh down` leaves no namespace, bridge or hosts line, and no process: none in
/// the fake hosts' namespaces, none running the probe, none started through the agent.
fn nothing_left(setup: &Setup, cluster: &mut FakeCluster) -> Outcome {
    let namespaces: BTreeSet<u64> = cluster.netns.values().copied().collect();
    let agent = cluster.agent.clone();
    cluster.down()?;
    let listed = run::run(Command::new("ip").args(["netns", "list"]), JOB_DEADLINE)?;
    ensure(!listed.stdout.contains("rmpnode"), || {
        format!("namespaces left: {}", listed.stdout)
    })?;
    let links = run::run(
        Command::new("ip").args(["-o", "link", "show"]),
        JOB_DEADLINE,
    )?;
    ensure(
        !links.stdout.contains("rmpbr0") && !links.stdout.contains("veth-rmpnode"),
        || format!("links left: {}", links.stdout),
    )?;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    ensure(!hosts.contains("rustmp-fake-cluster"), || {
        format!("/etc/hosts lines left:\n{hosts}")
    })?;
    ensure(!agent.exists(), || format!("{} left", agent.display()))?;
    no_process_runs(setup, &namespaces, Some(&agent))
}

fn on_fake_host(rank: &probe::Rank, cluster: &FakeCluster) -> Outcome {
    ensure(cluster.netns.get(&rank.host) == Some(&rank.netns), || {
        format!(
            "rank {rank:?} is not in the namespace of its host ({:?})",
            cluster.netns
        )
    })
}

/// No process (other than this one) is in `namespaces`, runs the probe or mentions `agent`
/// (waiting up to [`LINGER`] for them to go).
fn no_process_runs(setup: &Setup, namespaces: &BTreeSet<u64>, agent: Option<&Path>) -> Outcome {
    let start = Instant::now();
    loop {
        let left = procs::leftovers(namespaces, &setup.exe, agent);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > LINGER {
            return Err(format!("left running: {left:#?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
