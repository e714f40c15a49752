//! The relay itself: placement, shipped programs, round trips, output lines, worker deaths.

use crate::support::fake::FakeCluster;
use crate::support::front::Front;
use crate::support::{Outcome, ensure, run};
use crate::{Job, LIMIT, REPLY, Setup, ask, echo_start, output_of, start, worker_ranks};
use rustmp_mpi::frame::{Frame, Kind};
use rustmp_mpi::proto::{Exited, Program, Start, Stream};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

/// The bridge is here, 2 worker ranks on each fake host; a worker that cannot start is a clear
/// error; the echo program shipped as bytes runs from an owner-only staging directory on every
/// rank; 40 squares come back right, each from the host and pid of its rank, both hosts
/// answering; a 200 kB answer arrives whole.
pub fn round_trip(
    setup: &Setup,
    cluster: &FakeCluster,
    front: &mut Front,
    job: &mut Job,
) -> Outcome {
    ensure(
        front.hellos.get(&0).is_some_and(|h| h.host == setup.here),
        || format!("the bridge is not here: {:?}", front.hellos),
    )?;
    let mut per_host = BTreeMap::new();
    for hello in front.hellos.range(1..).map(|(_, h)| h) {
        *per_host.entry(hello.host.clone()).or_insert(0) += 1;
    }
    let expected: BTreeMap<String, i32> = cluster.hosts.iter().map(|h| (h.clone(), 2)).collect();
    ensure(per_host == expected, || {
        format!("ranks per host {per_host:?}, expected {expected:?}")
    })?;
    let missing = Start {
        program: Program::Path("/no/such/worker".into()),
        args: vec![],
        env: vec![],
    };
    front.send(4, Kind::Start, missing.encode())?;
    let error = front.expect(REPLY, "start error", |f| {
        f.rank == 4 && f.kind == Kind::StartFailed
    })?;
    println!("  rank 4 says: {}", error.text());
    ensure(
        error.text().contains("/no/such/worker") && error.text().contains("No such file"),
        || error.text(),
    )?;
    // Bytes for no worker are an `Error`, never taken for a start's answer.
    front.send(4, Kind::Data, b"late\n".to_vec())?;
    let late = front.expect(REPLY, "error about late bytes", |f| {
        f.rank == 4 && matches!(f.kind, Kind::Error | Kind::StartFailed)
    })?;
    ensure(
        late.kind == Kind::Error && late.text().contains("not running"),
        || format!("{:?}: {}", late.kind, late.text()),
    )?;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let ranks = worker_ranks(front);
    for &rank in &ranks {
        start(front, job, rank, Kind::Start, echo_start(setup, rank)?)?;
        let started = &job.started[&rank];
        let dir = started.program.parent().unwrap_or(Path::new("/"));
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        ensure(meta.mode() & 0o777 == 0o700 && meta.uid() == uid, || {
            format!(
                "staging dir {} has mode {:o}",
                dir.display(),
                meta.mode() & 0o777
            )
        })?;
        let exe =
            std::fs::read_link(format!("/proc/{}/exe", started.pid)).map_err(|e| e.to_string())?;
        ensure(exe == started.program && exe != setup.echo, || {
            format!("the worker runs {exe:?}, not the staged copy")
        })?;
    }
    println!(
        "  staged: {:?}",
        job.started.values().map(|s| &s.program).collect::<Vec<_>>()
    );
    let mut hosts_used = BTreeSet::new();
    for k in 0..40u64 {
        let rank = ranks[k as usize % ranks.len()];
        let answer = ask(front, rank, &format!("square {k}"))?;
        let host = &front.hellos[&rank].host;
        let want = format!(
            "{} host={host} pid={} tag=tag{rank}",
            k * k,
            job.started[&rank].pid
        );
        ensure(answer == want, || {
            format!("rank {rank}: `{answer}`, expected `{want}`")
        })?;
        hosts_used.insert(host.clone());
    }
    ensure(hosts_used.len() == cluster.hosts.len(), || {
        format!("hosts used: {hosts_used:?}")
    })?;
    let timed = Instant::now();
    for k in 0..200u64 {
        let answer = ask(
            front,
            ranks[k as usize % ranks.len()],
            &format!("square {k}"),
        )?;
        ensure(answer.starts_with(&format!("{} ", k * k)), || {
            answer.clone()
        })?;
    }
    println!(
        "  round trip front -> bridge -> rank -> worker and back: {:.0} µs (mean of 200)",
        timed.elapsed().as_secs_f64() / 200.0 * 1e6
    );
    idle_cpu(front)?;
    let big = ask(front, ranks[3], "big 200000")?;
    ensure(
        big.len() == 200_000 && big.bytes().all(|b| b == b'x'),
        || format!("a big answer of {} bytes", big.len()),
    )
}

/// Each worker's lines arrive whole (one written in two pieces 30 ms apart comes as one), from
/// the right stream and rank; a partial line is flushed when the worker exits, before its
/// `Exited` with the exit code.
pub fn output_lines(front: &mut Front, job: &Job) -> Outcome {
    for (&rank, started) in &job.started {
        let word = format!("w{rank}");
        let answer = ask(front, rank, &format!("print {word}"))?;
        ensure(answer == "printed", || answer.clone())?;
        let host = front.hellos[&rank].host.clone();
        let expected = [
            (Stream::Stdout, format!("{word} one\n")),
            (Stream::Stdout, format!("{word} two halves\n")),
            (Stream::Stderr, format!("{word} err\n")),
        ];
        for (stream, line) in expected {
            front.expect(REPLY, &line, |f| {
                f.rank == rank
                    && output_of(f).is_some_and(|o| o.stream == stream && o.line == line.as_bytes())
            })?;
            println!(
                "  ({host} pid={}) {stream:?}: {}",
                started.pid,
                line.trim_end()
            );
        }
    }
    let stray: Vec<String> = front
        .unclaimed
        .iter()
        .filter(|f| f.kind == Kind::Output)
        .map(Frame::text)
        .collect();
    ensure(stray.is_empty(), || {
        format!("output lines not whole or not expected: {stray:?}")
    })?;
    let answer = ask(front, 1, "partial tail-without-newline")?;
    ensure(answer == "ok", || answer.clone())?;
    front.send(1, Kind::Data, b"exit 3\n".to_vec())?;
    let tail = front.expect(REPLY, "the partial line", |f| {
        f.rank == 1 && matches!(f.kind, Kind::Output | Kind::Exited)
    })?;
    ensure(
        output_of(&tail).is_some_and(|o| o.line == b"tail-without-newline"),
        || format!("{tail:?}"),
    )?;
    let exited = front.expect(REPLY, "exited", |f| f.rank == 1 && f.kind == Kind::Exited)?;
    let status = Exited::decode(&exited.payload).map_err(|e| e.to_string())?;
    ensure(
        status
            == Exited {
                code: Some(3),
                signal: None,
            },
        || format!("{status:?}"),
    )
}

/// SIGKILL to a worker → `Exited` with signal 9 within 5 s; `Restart` runs a new one, which
/// answers (rank 1, which exited in `output_lines`, is restarted too).
pub fn killed_worker(front: &mut Front, job: &mut Job) -> Outcome {
    start(front, job, 1, Kind::Restart, Vec::new())?;
    let victim = job.started[&2].pid;
    let killed = Instant::now();
    run::signal(victim, "KILL")?;
    let exited = front.expect(LIMIT, "exited after SIGKILL", |f| {
        f.rank == 2 && f.kind == Kind::Exited
    })?;
    println!(
        "  Exited {:.3} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let status = Exited::decode(&exited.payload).map_err(|e| e.to_string())?;
    ensure(status.signal == Some(9), || format!("{status:?}"))?;
    start(front, job, 2, Kind::Restart, Vec::new())?;
    ensure(job.started[&2].pid != victim, || "the same pid".into())?;
    for rank in [1, 2] {
        let answer = ask(front, rank, "square 12")?;
        ensure(answer.starts_with("144 "), || answer.clone())?;
    }
    Ok(())
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("bad stat")
    };
    Ok(tick(11)? + tick(12)?)
}

/// No busy polling: over a second with nothing to do, the bridge and every rank use under a
/// quarter of a core (they sleep in ppoll; a polling loop would use a whole core).
fn idle_cpu(front: &Front) -> Outcome {
    let pids: Vec<(u32, u32)> = front.hellos.iter().map(|(r, h)| (*r, h.pid)).collect();
    let before: Vec<u64> = pids
        .iter()
        .map(|(_, p)| cpu_ticks(*p))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after: Vec<u64> = pids
        .iter()
        .map(|(_, p)| cpu_ticks(*p))
        .collect::<Result<_, _>>()?;
    let seconds = start.elapsed().as_secs_f64();
    // Clock ticks are 1/100 s (USER_HZ) on Linux.
    let used: Vec<(u32, f64)> = pids
        .iter()
        .zip(before.iter().zip(&after))
        .map(|((rank, _), (b, a))| (*rank, (a - b) as f64 / 100.0 / seconds))
        .collect();
    println!("  idle CPU share per rank (0 = bridge): {used:.3?}");
    ensure(used.iter().all(|(_, share)| *share < 0.25), || {
        format!("busy while idle: {used:?}")
    })
}
