//! The library's cluster pool (`Pool::builder().mpi(..)`) on a real mpirun: 2 fake hosts × 2
//! ranks, and `Mpi::local()` (oversubscribed) on this host. This binary is the harness and
//! the program: `pool-… scenario NAME [HOST…]` builds a cluster pool (`program.rs`), whose
//! workers are copies of this binary on the ranks; the harness runs each scenario in a child
//! with a deadline and checks its verdict, its output lines and what is left afterwards
//! (harness = false; skips are failures under `CI=true`).

#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod early;
mod pipeline;
mod program;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;
use support::fake::{FakeCluster, UpError};
use support::run::{self, Finished};
use support::tally::Tally;
use support::{Outcome, ensure, procs};

/// The longest a scenario may take.
const DEADLINE: Duration = Duration::from_secs(90);
/// How long the job's processes may linger after the program ended.
const LINGER: Duration = Duration::from_secs(5);
/// The scenarios, those on this host alone (`Mpi::local()`, `Mpi::allocation()`) first.
const SCENARIOS: [&str; 17] = [
    "local_map",
    "early_exit",
    "transient",
    "stdout_lock",
    "last_data",
    "after_interrupt",
    "allocation",
    "two_hosts_map",
    "remote_panic",
    "killed_worker",
    "killed_rank",
    "output_lines",
    "bad_inputs",
    "interrupt",
    "unreachable_host",
    "recycled_workers",
    "pipelined",
];
/// How many of [`SCENARIOS`] run on this host alone.
const LOCAL: usize = 7;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("scenario") && args.len() >= 2 {
        return match program::run(&args[1], &args[2..]) {
            Ok(()) => {
                println!("VERDICT ok");
                ExitCode::SUCCESS
            }
            Err(why) => {
                println!("VERDICT failed: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let mut tally = Tally::default();
    let launcher = PathBuf::from(env!("CARGO_BIN_EXE_rustmp-mpi"));
    if let Some(why) = cannot_run(&launcher) {
        SCENARIOS.iter().for_each(|n| tally.skip(n, &why));
        return tally.finish();
    }
    tally.scenario("local_map", || local_map(&launcher));
    // The other scenarios on this host alone: each program checks everything itself.
    for &name in &SCENARIOS[1..LOCAL] {
        tally.scenario(name, || scenario(&launcher, None, name, false).map(drop));
    }
    // One extra node that nothing reaches: its orted can never call back (mpirun waits).
    let cluster = match FakeCluster::up_with(&[("RUSTMP_FAKE_UNREACHABLE", "1")]) {
        Ok(cluster) => cluster,
        Err(UpError::CannotHere(why)) => {
            SCENARIOS[LOCAL..].iter().for_each(|n| tally.skip(n, &why));
            return tally.finish();
        }
        Err(UpError::Failed(why)) => {
            println!("fake-cluster.sh up failed:\n{why}");
            tally.failed.push("fake cluster up".into());
            return tally.finish();
        }
    };
    let c = &cluster;
    let l = &launcher;
    tally.scenario("two_hosts_map", || two_hosts_map(l, c));
    tally.scenario("remote_panic", || simple(l, c, "panic", true));
    tally.scenario("killed_worker", || simple(l, c, "killed_worker", false));
    tally.scenario("killed_rank", || simple(l, c, "killed_rank", false));
    tally.scenario("output_lines", || output_lines(l, c));
    tally.scenario("bad_inputs", || simple(l, c, "bad_inputs", false));
    tally.scenario("interrupt", || interrupt(l, c));
    tally.scenario("unreachable_host", || unreachable(l, c));
    tally.scenario("recycled_workers", || simple(l, c, "recycled", false));
    tally.scenario("pipelined", || simple(l, c, "pipelined", false));
    tally.finish()
}

fn cannot_run(launcher: &std::path::Path) -> Option<String> {
    match run::run(Command::new(launcher).arg("probe"), Duration::from_secs(10)) {
        Ok(done) if done.status.code() == Some(3) => {
            return Some(
                "rustmp-mpi was built without the `mpi` feature (build with --features \
                 rustmp-mpi/mpi; needs Open MPI's mpicc and libclang)"
                    .into(),
            );
        }
        Ok(_) => {}
        Err(error) => return Some(error),
    }
    if run::run(
        Command::new("mpirun").arg("--version"),
        Duration::from_secs(10),
    )
    .is_err()
    {
        return Some("mpirun not found in PATH (install openmpi-bin)".into());
    }
    if !std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return Some("fake hosts need root (network namespaces, a bridge, /etc/hosts)".into());
    }
    None
}

/// Runs this binary as the program of `scenario`; its output, once it passed.
fn scenario(
    launcher: &std::path::Path,
    cluster: Option<&FakeCluster>,
    name: &str,
    hostfile: bool,
) -> Result<Finished, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(me);
    command
        .arg("scenario")
        .arg(name)
        .env("RUSTMP_MPI", launcher);
    for (key, _) in std::env::vars() {
        if key.starts_with("OMPI_MCA_") {
            command.env_remove(key);
        }
    }
    command
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    if let Some(cluster) = cluster {
        cluster.apply(&mut command);
        command.args(&cluster.hosts);
        if hostfile {
            command.env("POOL_TEST_HOSTFILE", &cluster.hostfile);
        }
    }
    let done = run::run(&mut command, DEADLINE)?;
    for line in done.stdout.lines().filter(|l| l.starts_with("RESULT")) {
        println!("  {line}");
    }
    ensure(
        done.status.success() && done.stdout.contains("VERDICT ok"),
        || done.describe(name),
    )?;
    Ok(done)
}

fn result<'a>(done: &'a Finished, key: &str) -> Option<&'a str> {
    done.stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT ")?.strip_prefix(key))
}

/// Nothing of the job is left: no process on the fake hosts, none running `rustmp-mpi`, the
/// program's staging directory (socket, secret) gone.
fn nothing_left(launcher: &std::path::Path, cluster: Option<&FakeCluster>, pid: &str) -> Outcome {
    let namespaces: BTreeSet<u64> = match cluster {
        Some(c) => {
            c.wait_empty(LINGER)?;
            c.netns.values().copied().collect()
        }
        None => BTreeSet::new(),
    };
    let left = procs::leftovers(&namespaces, launcher, None);
    ensure(left.is_empty(), || format!("left running: {left:#?}"))?;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let roots = [
        std::env::var("XDG_RUNTIME_DIR").unwrap_or_default(),
        "/tmp".into(),
    ];
    for root in roots.iter().filter(|r| !r.is_empty()) {
        let dir = PathBuf::from(root).join(format!("rustmp-{uid}/k{pid}"));
        ensure(!dir.exists(), || format!("{} is left", dir.display()))?;
    }
    Ok(())
}

/// `Mpi::local()`: 4 workers on this host (oversubscribed), all on this host; nothing left.
fn local_map(launcher: &std::path::Path) -> Outcome {
    let done = scenario(launcher, None, "map", false)?;
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let hosts = result(&done, "hosts=").unwrap_or("");
    ensure(hosts == here.trim(), || {
        format!("ran on {hosts}, not {here}")
    })?;
    nothing_left(launcher, None, result(&done, "closed pid=").unwrap_or("?"))
}

/// 2 fake hosts × 2 ranks: map(work, 0..100) right, both hosts ran tasks, starmap, imap,
/// imap_unordered, apply; close + join leave nothing on any host.
fn two_hosts_map(launcher: &std::path::Path, cluster: &FakeCluster) -> Outcome {
    let done = scenario(launcher, Some(cluster), "map", false)?;
    let hosts = result(&done, "hosts=").unwrap_or("");
    let want = cluster.hosts.join(",");
    ensure(hosts == want, || {
        format!("tasks ran on {hosts}, expected {want}")
    })?;
    nothing_left(
        launcher,
        Some(cluster),
        result(&done, "closed pid=").unwrap_or("?"),
    )
}

/// A scenario whose program checks everything itself (on the fake hostfile when `hostfile`);
/// nothing is left on the hosts afterwards.
fn simple(
    launcher: &std::path::Path,
    cluster: &FakeCluster,
    name: &str,
    hostfile: bool,
) -> Outcome {
    scenario(launcher, Some(cluster), name, hostfile)?;
    cluster.wait_empty(LINGER)
}

/// SIGINT to the program during a blocked map on the fake hosts: `Interrupted` within 1 s, a
/// new pool works, and nothing of either job is left anywhere.
fn interrupt(launcher: &std::path::Path, cluster: &FakeCluster) -> Outcome {
    let done = scenario(launcher, Some(cluster), "interrupt", false)?;
    let _ = done;
    cluster.wait_empty(LINGER)?;
    let namespaces: BTreeSet<u64> = cluster.netns.values().copied().collect();
    let left = procs::leftovers(&namespaces, launcher, None);
    ensure(left.is_empty(), || format!("left running: {left:#?}"))
}

/// Each worker's lines reach the program's stdout and stderr whole, prefixed with the worker,
/// its pid and its host.
fn output_lines(launcher: &std::path::Path, cluster: &FakeCluster) -> Outcome {
    let done = scenario(launcher, Some(cluster), "output", false)?;
    for x in 0..8 {
        for (text, stream) in [
            (format!("line {x} from the worker"), &done.stdout),
            (format!("err {x} from the worker"), &done.stderr),
        ] {
            let line = stream.lines().find(|l| l.ends_with(&text));
            let ok = line.is_some_and(|l| {
                l.starts_with("(MpiPoolWorker-")
                    && l.contains(" pid=")
                    && cluster.hosts.iter().any(|h| {
                        l.contains(&format!("@{h} ")) && l.contains(&format!(" host={h}) "))
                    })
            });
            ensure(ok, || {
                format!(
                    "no prefixed line `{text}`: {line:?}\n{}",
                    done.describe("output")
                )
            })?;
        }
    }
    // Each worker's initializer line comes before its task lines (a rank keeps its output in
    // order).
    let lines: Vec<&str> = done.stdout.lines().collect();
    for (at, line) in lines.iter().enumerate() {
        let Some(pid) = line
            .split(" pid=")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .filter(|_| line.contains(" from the worker"))
        else {
            continue;
        };
        let init = format!(" pid={pid} ");
        ensure(
            lines[..at]
                .iter()
                .any(|l| l.contains(&init) && l.ends_with(") initializer ran")),
            || {
                format!(
                    "no initializer line of pid {pid} before `{line}`:\n{}",
                    done.stdout
                )
            },
        )?;
    }
    println!(
        "  e.g. {}",
        done.stdout
            .lines()
            .find(|l| l.starts_with("(Mpi"))
            .unwrap_or("")
    );
    cluster.wait_empty(LINGER)
}

/// A host that cannot call back: `build` fails at the start timeout (4 s) with
/// `Error::Cluster`, and nothing of the job is left, on that host or here.
fn unreachable(launcher: &std::path::Path, cluster: &FakeCluster) -> Outcome {
    let host = cluster
        .env
        .iter()
        .find(|(k, _)| k == "RUSTMP_FAKE_UNREACHABLE_HOSTS")
        .map(|(_, v)| v.split(',').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
        .ok_or("the fake cluster has no unreachable host")?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(me);
    command
        .args(["scenario", "unreachable", &host])
        .env("RUSTMP_MPI", launcher);
    cluster.apply(&mut command);
    let done = run::run(&mut command, DEADLINE)?;
    for line in done.stdout.lines().filter(|l| l.starts_with("RESULT")) {
        println!("  {line}");
    }
    ensure(done.status.success(), || done.describe("unreachable"))?;
    let inode = std::fs::metadata(format!("/run/netns/{host}"))
        .map_err(|e| e.to_string())?
        .ino();
    let namespaces: BTreeSet<u64> = std::iter::once(inode)
        .chain(cluster.netns.values().copied())
        .collect();
    let start = std::time::Instant::now();
    loop {
        let left = procs::leftovers(&namespaces, launcher, None);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > LINGER {
            return Err(format!("left running: {left:#?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
