//! The program side: `pool-test scenario NAME` builds a cluster pool and checks it, printing
//! `RESULT key=value` lines for the harness; it exits 0 when every check passed.

use multiprocessing::{Error, Mpi, Pool};
use std::time::{Duration, Instant};

/// A task's answer: its input squared, where it ran (after 5 ms of work: the map lasts long
/// enough for every worker to take part).
pub fn work(x: u64) -> (u64, String, u32, u32) {
    std::thread::sleep(Duration::from_millis(5));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() } as u32;
    (x * x, host.trim().to_string(), std::process::id(), parent)
}

fn boom(x: u64) -> u64 {
    if x == 7 {
        panic!("boom at {x}");
    }
    x
}

fn die(x: u64) -> u64 {
    if x == 3 {
        // SAFETY: kill on our own pid.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x
}

fn slow(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    x
}

fn shout(x: u64) -> u64 {
    println!("line {x} from the worker");
    eprintln!("err {x} from the worker");
    x
}

/// The cluster: this host (no hosts), the fake cluster's hostfile (`POOL_TEST_HOSTFILE`), or
/// the hosts with 2 slots each.
fn say_ready() {
    println!("initializer ran");
}

pub(crate) fn mpi(hosts: &[String]) -> Mpi {
    let mpi = if hosts.is_empty() {
        Mpi::local()
    } else if let Some(file) = std::env::var_os("POOL_TEST_HOSTFILE") {
        Mpi::hostfile(file)
    } else {
        Mpi::hosts(hosts.iter().map(|h| format!("{h}:2")))
    };
    mpi.start_timeout(Duration::from_secs(30))
}

fn pool(hosts: &[String], n: usize) -> Result<Pool, String> {
    Pool::builder()
        .processes(n)
        .mpi(mpi(hosts))
        .build()
        .map_err(|e| format!("build: {e}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// A map over 0..100: right results, and the hosts that ran tasks.
fn map_on(pool: &Pool) -> Result<Vec<String>, String> {
    let out = pool.map(work, 0..100u64).map_err(|e| format!("map: {e}"))?;
    let squares: Vec<u64> = out.iter().map(|o| o.0).collect();
    let want: Vec<u64> = (0..100u64).map(|x| x * x).collect();
    check(squares == want, || format!("map gave {squares:?}"))?;
    let mut hosts: Vec<String> = out.iter().map(|o| o.1.clone()).collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

/// Runs one scenario; `hosts` empty = `Mpi::local()`.
pub fn run(name: &str, hosts: &[String]) -> Result<(), String> {
    match name {
        "map" => {
            let pool = pool(hosts, 4)?;
            let used = map_on(&pool)?;
            println!("RESULT hosts={}", used.join(","));
            let starred = pool
                .starmap(|a: u64, b: u64| a + b, vec![(1, 2), (3, 4)])
                .map_err(|e| format!("starmap: {e}"))?;
            check(starred == vec![3, 7], || format!("starmap {starred:?}"))?;
            let lazy: Vec<u64> = pool
                .imap(boom, 0..5u64)
                .map_err(|e| e.to_string())?
                .map(|r| r.unwrap_or(u64::MAX))
                .collect();
            check(lazy == vec![0, 1, 2, 3, 4], || format!("imap {lazy:?}"))?;
            let mut unordered: Vec<u64> = pool
                .imap_unordered(slow, 0..8u64)
                .map_err(|e| e.to_string())?
                .map(|r| r.unwrap_or(u64::MAX))
                .collect();
            unordered.sort();
            check(unordered == (0..8).collect::<Vec<_>>(), || {
                format!("{unordered:?}")
            })?;
            let one = pool.apply(work, (6,)).map_err(|e| e.to_string())?;
            check(one.0 == 36, || format!("apply {one:?}"))?;
            pool.close().map_err(|e| format!("close: {e}"))?;
            pool.join().map_err(|e| format!("join: {e}"))?;
            println!("RESULT closed pid={}", std::process::id());
            Ok(())
        }
        "panic" => {
            let pool = pool(hosts, 4)?;
            match pool.map(boom, 0..20u64) {
                Err(Error::Task(t)) => {
                    println!("RESULT panic worker={} location={:?}", t.worker, t.location);
                    check(t.message.contains("boom at 7"), || t.message.clone())?;
                    check(
                        t.location
                            .as_deref()
                            .is_some_and(|l| l.contains("program.rs")),
                        || format!("{:?}", t.location),
                    )?;
                    check(
                        t.worker.starts_with("MpiPoolWorker-") && t.worker.contains('@'),
                        || t.worker.clone(),
                    )?;
                    check(t.backtrace.contains("boom"), || t.backtrace.clone())?;
                }
                other => return Err(format!("expected a task error, got {other:?}")),
            }
            check(map_on(&pool).is_ok(), || "no map after the panic".into())
        }
        "killed_worker" => {
            let pool = pool(hosts, 4)?;
            let started = Instant::now();
            let dead = match pool.map_chunked(die, 0..8u64, 1) {
                Err(Error::WorkerDied {
                    worker,
                    exitcode,
                    pid,
                }) => {
                    println!("RESULT died worker={worker} pid={pid} code={exitcode}");
                    check(exitcode == -9 && worker.contains('@'), || worker.clone())?;
                    pid
                }
                other => return Err(format!("expected WorkerDied, got {other:?}")),
            };
            check(started.elapsed() < Duration::from_secs(5), || {
                format!("took {:?}", started.elapsed())
            })?;
            map_on(&pool)?;
            // The rank's worker was started again: 4 live workers answer, none is the dead one.
            let mut pids = std::collections::BTreeSet::new();
            let until = Instant::now() + Duration::from_secs(10);
            while pids.len() < 4 && Instant::now() < until {
                let out = pool
                    .map_chunked(work, 0..40u64, 1)
                    .map_err(|e| e.to_string())?;
                pids.extend(out.iter().map(|o| o.2));
            }
            println!("RESULT workers after the death: {pids:?}");
            check(pids.len() == 4 && !pids.contains(&dead), || {
                format!("workers {pids:?} after {dead} died")
            })
        }
        "killed_rank" => {
            let pool = pool(hosts, 4)?;
            let (_, _, _, rank) = pool.apply(work, (1,)).map_err(|e| e.to_string())?;
            let pending = pool.map_async(slow, 0..200u64).map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(300));
            let killed = Instant::now();
            std::process::Command::new("kill")
                .args(["-KILL", &rank.to_string()])
                .status()
                .map_err(|e| e.to_string())?;
            let got = pending.get();
            let took = killed.elapsed();
            println!(
                "RESULT rank_killed after={:.2}s got={got:?}",
                took.as_secs_f64()
            );
            check(matches!(got, Err(Error::Cluster(_))), || format!("{got:?}"))?;
            check(took < Duration::from_secs(5), || format!("took {took:?}"))?;
            let later = pool.apply(work, (2,));
            check(matches!(later, Err(Error::Cluster(_))), || {
                format!("a later call: {later:?}")
            })?;
            drop(pool);
            let again = self::pool(hosts, 4)?;
            map_on(&again).map(|_| ())
        }
        "output" => {
            let pool = Pool::builder()
                .processes(4)
                .initializer(say_ready)
                .mpi(mpi(hosts))
                .build()
                .map_err(|e| format!("build: {e}"))?;
            let out = pool.map(shout, 0..8u64).map_err(|e| e.to_string())?;
            check(out == (0..8).collect::<Vec<_>>(), || format!("{out:?}"))
        }
        "recycled" => {
            // maxtasksperchild(1): every chunk in a new worker, restarted on its rank.
            let pool = Pool::builder()
                .processes(2)
                .maxtasksperchild(1)
                .mpi(mpi(hosts))
                .build()
                .map_err(|e| format!("build: {e}"))?;
            let out = pool
                .map_chunked(work, 0..6u64, 1)
                .map_err(|e| e.to_string())?;
            let squares: Vec<u64> = out.iter().map(|o| o.0).collect();
            check(squares == vec![0, 1, 4, 9, 16, 25], || {
                format!("{squares:?}")
            })?;
            let pids: std::collections::BTreeSet<u32> = out.iter().map(|o| o.2).collect();
            println!("RESULT recycled pids={pids:?}");
            check(pids.len() == 6, || {
                format!("6 chunks ran in workers {pids:?}")
            })
        }
        "early_exit" => crate::early::early_exit(),
        "transient" => crate::early::transient(),
        "stdout_lock" => crate::early::stdout_lock(),
        "last_data" => crate::early::last_data(),
        "after_interrupt" => crate::early::after_interrupt(),
        "allocation" => allocation(),
        "bad_inputs" => bad_inputs(),
        "interrupt" => interrupt(hosts),
        "unreachable" => unreachable(hosts),
        "pipelined" => crate::pipeline::pipelined(hosts),
        other => Err(format!("no scenario {other}")),
    }
}

/// Each bad input is an `Error::Cluster` at `build`, within seconds, naming the cause.
fn bad_inputs() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("pool-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, "rmpnode1 slots=2\nrmpnode2 slots=lots\n")
        .map_err(|e| e.to_string())?;
    let cases: Vec<(&str, Mpi, &str)> = vec![
        ("unknown host", Mpi::hosts(["rmpnode9:1"]), "rmpnode9"),
        (
            "bad hostfile",
            Mpi::hostfile(&hostfile),
            "line 2: `slots=lots`",
        ),
        (
            "no hostfile",
            Mpi::hostfile(dir.join("none")),
            "No such file",
        ),
        (
            "no launcher",
            Mpi::local().launcher(dir.join("rustmp-mpi")),
            "rustmp-mpi was not found",
        ),
        (
            "no mpirun",
            Mpi::local().mpirun(dir.join("mpirun")),
            "mpirun not found",
        ),
    ];
    for (what, mpi, says) in cases {
        let started = Instant::now();
        let built = Pool::builder()
            .processes(1)
            .mpi(mpi.start_timeout(Duration::from_secs(10)))
            .build();
        let took = started.elapsed();
        let message = match built {
            Err(Error::Cluster(m)) => m,
            other => return Err(format!("{what}: expected Error::Cluster, got {other:?}")),
        };
        let line = message.lines().find(|l| l.contains(says)).unwrap_or("");
        println!("RESULT {what} after={:.2}s: {line}", took.as_secs_f64());
        check(message.contains(says), || {
            format!("{what}: `{message}` does not say `{says}`")
        })?;
        check(took < Duration::from_secs(10), || {
            format!("{what} took {took:?}")
        })?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// SIGINT during a blocked map: `Interrupted` within 1 s (the job is ended with the other
/// children), and a new pool works.
fn interrupt(hosts: &[String]) -> Result<(), String> {
    multiprocessing::interrupt::enable().map_err(|e| e.to_string())?;
    let pool = pool(hosts, 4)?;
    let me = std::process::id().to_string();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(None));
    let at = sent.clone();
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        *at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let _ = std::process::Command::new("kill")
            .args(["-INT", &me])
            .status();
    });
    let got = pool.map_chunked(slow, 0..400u64, 1);
    let returned = Instant::now();
    let _ = signaller.join();
    let since = sent
        .lock()
        .map_err(|e| e.to_string())?
        .map(|t| returned.duration_since(t));
    println!("RESULT interrupted after={since:?}");
    check(matches!(got, Err(Error::Interrupted)), || {
        format!("{got:?}")
    })?;
    check(since.is_some_and(|d| d < Duration::from_secs(1)), || {
        format!("{since:?}")
    })?;
    drop(pool);
    let again = self::pool(hosts, 4)?;
    map_on(&again).map(|_| ())
}

/// `hosts[0]` cannot call back: `build` fails at the start timeout, not later.
fn unreachable(hosts: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let built = Pool::builder()
        .processes(1)
        .mpi(Mpi::hosts([format!("{}:1", hosts[0])]).start_timeout(Duration::from_secs(4)))
        .build();
    let took = started.elapsed();
    println!(
        "RESULT unreachable after={:.2}s: {built:?}",
        took.as_secs_f64()
    );
    check(
        matches!(&built, Err(Error::Cluster(m)) if m.contains("start timeout")),
        || format!("{built:?}"),
    )?;
    check(took < Duration::from_secs(8), || format!("took {took:?}"))
}

/// `Mpi::allocation()` outside a batch job: mpirun places the worker on this host's cores by
/// itself (no `--host`), and the pool maps there.
fn allocation() -> Result<(), String> {
    let pool = Pool::builder()
        .processes(1)
        .mpi(Mpi::allocation().start_timeout(Duration::from_secs(30)))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let hosts = map_on(&pool)?;
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    println!("RESULT allocation hosts={}", hosts.join(","));
    check(hosts == [here.trim()], || format!("ran on {hosts:?}"))
}
