//! The bridge and the rank relay on a real mpirun over 2 fake hosts × 2 ranks, driven by the
//! test front of `support/front.rs`: bytes round-trip front → worker → front, output lines
//! arrive whole and attributed, forged frames and outside connections run nothing, a killed
//! worker is reported and restarted, a killed rank ends the job within 5 s, and shutdown
//! leaves nothing (harness = false; one fake cluster, scenarios in sequence; skips are failures
//! under `CI=true`).

#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod ending;
mod flow;
mod intrusion;

use rustmp_mpi::frame::{Frame, Kind};
use rustmp_mpi::proto::{Output, Program, Start, Started};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;
use support::fake::{FakeCluster, UpError};
use support::front::{Front, Launch};
use support::tally::Tally;
use support::{Outcome, ensure, run};

/// The limit for noticing a death.
pub const LIMIT: Duration = Duration::from_secs(5);
/// How long a reply may take.
pub const REPLY: Duration = Duration::from_secs(10);
const SCENARIOS: [&str; 8] = [
    "round_trip",
    "output_lines",
    "killed_worker",
    "forged_frames",
    "outside_connections",
    "shutdown",
    "killed_rank",
    "front_closes",
];

/// The programs and this host.
pub struct Setup {
    /// `rustmp-mpi`.
    pub exe: PathBuf,
    /// `rustmp-mpi-echo`, the worker program shipped to the ranks.
    pub echo: PathBuf,
    /// This host's name.
    pub here: String,
}

/// What the scenarios learn about the running workers.
#[derive(Default)]
pub struct Job {
    /// Each rank's worker.
    pub started: BTreeMap<u32, Started>,
}

fn main() -> ExitCode {
    let mut tally = Tally::default();
    let setup = Setup {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_rustmp-mpi")),
        echo: PathBuf::from(env!("CARGO_BIN_EXE_rustmp-mpi-echo")),
        here: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    if let Some(why) = cannot_run(&setup) {
        SCENARIOS.iter().for_each(|name| tally.skip(name, &why));
        return tally.finish();
    }
    let cluster = match FakeCluster::up() {
        Ok(cluster) => cluster,
        Err(UpError::CannotHere(why)) => {
            SCENARIOS.iter().for_each(|name| tally.skip(name, &why));
            return tally.finish();
        }
        Err(UpError::Failed(why)) => {
            println!("fake-cluster.sh up failed:\n{why}");
            tally.failed.push("fake cluster up".into());
            return tally.finish();
        }
    };
    match launch(&setup, &cluster, true) {
        Err(why) => {
            println!("the job did not start:\n{why}");
            tally.failed.push("launch".into());
        }
        Ok(mut front) => {
            let mut job = Job::default();
            let (s, c) = (&setup, &cluster);
            tally.scenario("round_trip", || {
                flow::round_trip(s, c, &mut front, &mut job)
            });
            tally.scenario("output_lines", || flow::output_lines(&mut front, &job));
            tally.scenario("killed_worker", || {
                flow::killed_worker(&mut front, &mut job)
            });
            tally.scenario("forged_frames", || intrusion::forged_frames(&mut front));
            tally.scenario("outside_connections", || {
                intrusion::outside(s, c, &mut front, &job)
            });
            tally.scenario("shutdown", || ending::shutdown(s, c, front, &job));
        }
    }
    tally.scenario("killed_rank", || ending::killed_rank(&setup, &cluster));
    tally.scenario("front_closes", || ending::front_closes(&setup, &cluster));
    tally.finish()
}

/// Why the scenarios cannot run here, if they cannot.
fn cannot_run(setup: &Setup) -> Option<String> {
    match run::run(Command::new(&setup.exe).arg("probe"), REPLY) {
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
    if run::run(Command::new("mpirun").arg("--version"), REPLY).is_err() {
        return Some("mpirun not found in PATH (install openmpi-bin)".into());
    }
    if !std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return Some("fake hosts need root (network namespaces, a bridge, /etc/hosts)".into());
    }
    None
}

/// A job: the bridge here, 2 worker ranks on each fake host (a refused intruder first when
/// `rogue`).
pub fn launch(setup: &Setup, cluster: &FakeCluster, rogue: bool) -> Result<Front, String> {
    Front::launch(&Launch {
        exe: &setup.exe,
        here: &setup.here,
        hosts: cluster.hosts.iter().map(|h| format!("{h}:2")).collect(),
        workers: 2 * cluster.hosts.len(),
        env: cluster.env.clone(),
        rogue: rogue.then_some(setup.echo.as_path()),
    })
}

/// The `Start` payload that ships the echo program's bytes (with a tag per rank in its env).
pub fn echo_start(setup: &Setup, rank: u32) -> Result<Vec<u8>, String> {
    let bytes =
        std::fs::read(&setup.echo).map_err(|e| format!("read {}: {e}", setup.echo.display()))?;
    let start = Start {
        program: Program::Bytes {
            name: "echo-worker".into(),
            bytes,
        },
        args: vec![],
        env: vec![("RUSTMP_ECHO_TAG".into(), format!("tag{rank}").into())],
    };
    Ok(start.encode())
}

/// Starts (or restarts) the worker of `rank` and records it.
pub fn start(front: &mut Front, job: &mut Job, rank: u32, kind: Kind, payload: Vec<u8>) -> Outcome {
    front.send(rank, kind, payload)?;
    let frame = front.expect(REPLY, "started", |f| {
        f.rank == rank && matches!(f.kind, Kind::Started | Kind::StartFailed)
    })?;
    ensure(frame.kind == Kind::Started, || {
        format!("rank {rank} could not start: {}", frame.text())
    })?;
    let started = Started::decode(&frame.payload).map_err(|e| e.to_string())?;
    job.started.insert(rank, started);
    Ok(())
}

/// Sends one command line; the worker's answer line (its DATA bytes up to `\n`).
pub fn ask(front: &mut Front, rank: u32, line: &str) -> Result<String, String> {
    front.send(rank, Kind::Data, format!("{line}\n").into_bytes())?;
    let mut answer = Vec::new();
    while !answer.ends_with(b"\n") {
        let frame = front.expect(REPLY, line, |f| f.rank == rank && f.kind == Kind::Data)?;
        answer.extend_from_slice(&frame.payload);
    }
    answer.pop();
    String::from_utf8(answer).map_err(|e| e.to_string())
}

/// The worker ranks of a job.
pub fn worker_ranks(front: &Front) -> Vec<u32> {
    front.hellos.keys().copied().filter(|&r| r > 0).collect()
}

/// The output line a frame carries, if it is one.
pub fn output_of(frame: &Frame) -> Option<Output> {
    (frame.kind == Kind::Output)
        .then(|| Output::decode(&frame.payload).ok())
        .flatten()
}
