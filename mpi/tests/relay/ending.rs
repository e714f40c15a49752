//! The end of a job: shutdown, a killed rank, and nothing left behind.

use crate::support::fake::FakeCluster;
use crate::support::front::Front;
use crate::support::{Outcome, ensure, procs, run};
use crate::{Job, LIMIT, Setup, echo_start, launch, start};
use rustmp_mpi::frame::Kind;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// `Stop` to rank 0: every worker is killed and reported, every rank says goodbye, the socket
/// closes and mpirun exits 0 within 5 s; the staging directories are gone and nothing of the
/// job is left on any host.
pub fn shutdown(setup: &Setup, cluster: &FakeCluster, mut front: Front, job: &Job) -> Outcome {
    let stopped = Instant::now();
    front.send(0, Kind::Stop, Vec::new())?;
    for &rank in job.started.keys() {
        front.expect(LIMIT, "exited", |f| {
            f.rank == rank && f.kind == Kind::Exited
        })?;
        front.expect(LIMIT, "bye", |f| f.rank == rank && f.kind == Kind::Bye)?;
    }
    front.wait_closed(LIMIT)?;
    let done = front.job.finish(LIMIT + Duration::from_secs(5))?;
    let took = stopped.elapsed();
    println!("  job over {:.2} s after the stop", took.as_secs_f64());
    ensure(done.status.success() && took <= LIMIT, || {
        done.describe("mpirun")
    })?;
    for started in job.started.values() {
        let dir = started.program.parent().unwrap_or(Path::new("/"));
        ensure(!dir.exists(), || format!("{} is left", dir.display()))?;
    }
    leaves_nothing(setup, cluster)
}

/// No process on the fake hosts, none running `rustmp-mpi` or the echo program anywhere.
fn leaves_nothing(setup: &Setup, cluster: &FakeCluster) -> Outcome {
    cluster.wait_empty(LIMIT)?;
    let namespaces: BTreeSet<u64> = cluster.netns.values().copied().collect();
    let start = Instant::now();
    loop {
        let mut left = procs::leftovers(&namespaces, &setup.exe, None);
        left.extend(procs::leftovers(&BTreeSet::new(), &setup.echo, None));
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > LIMIT {
            return Err(format!("left running: {left:#?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL to a worker rank (not its worker): the front sees the bridge's socket close and
/// mpirun fail within 5 s, naming the rank; nothing is left on any host.
pub fn killed_rank(setup: &Setup, cluster: &FakeCluster) -> Outcome {
    let mut front = launch(setup, cluster, false)?;
    let mut job = Job::default();
    for rank in 1..=4 {
        start(
            &mut front,
            &mut job,
            rank,
            Kind::Start,
            echo_start(setup, rank)?,
        )?;
    }
    let victim = front.hellos[&3].clone();
    let killed = Instant::now();
    run::signal(victim.pid, "KILL")?;
    let closed = front.wait_closed(LIMIT)?;
    let done = front.job.finish(LIMIT + Duration::from_secs(5))?;
    let took = killed.elapsed();
    println!(
        "  socket closed {:.2} s, mpirun ended {:.2} s after the kill",
        closed.as_secs_f64(),
        took.as_secs_f64()
    );
    ensure(!done.status.success() && took <= LIMIT, || {
        done.describe("mpirun")
    })?;
    let says = format!(
        "process rank 3 with PID {} on node {}",
        victim.pid, victim.host
    );
    ensure(done.stderr.contains(&says), || {
        format!("mpirun does not say `{says}`:\n{}", done.stderr)
    })?;
    leaves_nothing(setup, cluster)?;
    stages_gone(&job)
}

/// The front's socket closes (the kernel died): the bridge stops the ranks, mpirun exits
/// within 5 s, the staging directories are gone and nothing is left on any host.
pub fn front_closes(setup: &Setup, cluster: &FakeCluster) -> Outcome {
    let mut front = launch(setup, cluster, false)?;
    let mut job = Job::default();
    for rank in 1..=4 {
        start(
            &mut front,
            &mut job,
            rank,
            Kind::Start,
            echo_start(setup, rank)?,
        )?;
    }
    front.hang_up();
    let closed = Instant::now();
    let done = front.job.finish(LIMIT + Duration::from_secs(5))?;
    let took = closed.elapsed();
    println!(
        "  mpirun ended {:.2} s after the front closed",
        took.as_secs_f64()
    );
    ensure(done.status.success() && took <= LIMIT, || {
        done.describe("mpirun")
    })?;
    leaves_nothing(setup, cluster)?;
    stages_gone(&job)
}

fn stages_gone(job: &Job) -> Outcome {
    for started in job.started.values() {
        let dir = started.program.parent().unwrap_or(Path::new("/"));
        ensure(!dir.exists(), || format!("{} is left", dir.display()))?;
    }
    Ok(())
}
