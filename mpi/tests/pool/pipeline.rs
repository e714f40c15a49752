//! A cluster worker has a few chunks in flight (the one it runs and some queued behind it):
//! `pool-test scenario pipelined HOST…` checks that a map of many small chunks gives every
//! result once and in order, and that a worker killed with chunks queued behind its running one
//! fails only that chunk (`WorkerDied`), the others running elsewhere, none lost or run twice.

use multiprocessing::{Error, Pool};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// Tasks run by this process so far (in a worker).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// A task's answer: its input, the worker's pid and which of that worker's runs it was (1, 2…).
type Run = (u64, u32, u64);

fn counted(x: u64) -> Run {
    (x, std::process::id(), RUNS.fetch_add(1, SeqCst) + 1)
}

/// Task 10 works a while (the manager queues chunks behind it meanwhile), then is SIGKILLed.
fn killed_at_10(x: u64) -> Run {
    if x == 10 {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill on our own pid.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(2));
    counted(x)
}

/// Items 0, 4 and 8 are long (400 ms), the others 40 ms: where each ran.
fn uneven(x: u64) -> (u64, u32) {
    let ms = if x.is_multiple_of(4) { 400 } else { 40 };
    std::thread::sleep(Duration::from_millis(ms));
    (x, std::process::id())
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Each worker's runs are numbered 1, 2, … with no gap: a chunk that ran twice would leave one
/// (its second answer is dropped), unless it was a worker's last run.
fn check_no_gaps(runs: &[Run]) -> Result<(), String> {
    let mut by_pid: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for &(_, pid, n) in runs {
        by_pid.entry(pid).or_default().push(n);
    }
    for (pid, mut ns) in by_pid {
        ns.sort();
        check(ns.iter().copied().eq(1..=ns.len() as u64), || {
            format!("worker {pid} ran {ns:?}: a run is missing (a chunk ran twice?)")
        })?;
    }
    Ok(())
}

pub fn pipelined(hosts: &[String]) -> Result<(), String> {
    let pool = Pool::builder()
        .processes(4)
        .mpi(crate::program::mpi(hosts))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let mut all: Vec<Run> = Vec::new();
    // imap (chunksize 1): item 10 fails, every other comes once, in order.
    let mut dead = None;
    for (i, got) in pool
        .imap(killed_at_10, 0..60u64)
        .map_err(|e| e.to_string())?
        .enumerate()
    {
        match got {
            Err(Error::WorkerDied { worker, pid, .. }) if i == 10 => {
                println!("RESULT died worker={worker} pid={pid}");
                dead = Some(pid);
            }
            Ok(run) if i != 10 && run.0 == i as u64 => all.push(run),
            other => return Err(format!("imap item {i}: {other:?}")),
        }
    }
    let dead = dead.ok_or("no WorkerDied")?;
    // Another worker took item 10's queued successors: no worker ran twice (4 + 1 replacement).
    let ran: std::collections::BTreeSet<u32> = all.iter().map(|r| r.1).chain([dead]).collect();
    check(ran.len() <= 5, || format!("imap ran on {ran:?}"))?;
    // A map of many chunks of 1: every result once, in order, from every worker.
    let out = pool
        .map_chunked(counted, 0..3000u64, 1)
        .map_err(|e| format!("map: {e}"))?;
    let xs: Vec<u64> = out.iter().map(|r| r.0).collect();
    check(xs.iter().copied().eq(0..3000), || {
        "map results out of order".into()
    })?;
    let pids: std::collections::BTreeSet<u32> = out.iter().map(|r| r.1).collect();
    println!("RESULT pipelined map workers={pids:?}");
    check(pids.len() == 4 && !pids.contains(&dead), || {
        format!("the map ran on {pids:?} ({dead} was killed)")
    })?;
    all.extend(out);
    check_no_gaps(&all)?;
    // Every worker's last chunks were short, of the map above: the next call's first chunks go
    // out one per worker (not 8 each, dealt round-robin), so its long items 0, 4 and 8 run on
    // different workers as in a local pool.
    let placed = pool
        .map_chunked(uneven, 0..12u64, 1)
        .map_err(|e| format!("uneven map: {e}"))?;
    let long: Vec<u32> = placed
        .iter()
        .filter(|r| r.0.is_multiple_of(4))
        .map(|r| r.1)
        .collect();
    println!("RESULT long items ran on {long:?}");
    let distinct: std::collections::BTreeSet<u32> = long.iter().copied().collect();
    check(distinct.len() == 3, || {
        format!("the long items 0, 4, 8 ran on {long:?}: queued behind each other")
    })?;
    drop(pool);
    // With maxtasksperchild, a worker is never sent more chunks than it may run.
    let recycled = Pool::builder()
        .processes(2)
        .maxtasksperchild(3)
        .mpi(crate::program::mpi(hosts))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let out = recycled
        .map_chunked(counted, 0..24u64, 1)
        .map_err(|e| format!("recycled map: {e}"))?;
    let mut per_pid: BTreeMap<u32, usize> = BTreeMap::new();
    for r in &out {
        *per_pid.entry(r.1).or_default() += 1;
    }
    println!("RESULT maxtasksperchild(3) runs per worker {per_pid:?}");
    check(per_pid.values().all(|&n| n <= 3), || {
        format!("a worker ran more than 3 chunks: {per_pid:?}")
    })
}
