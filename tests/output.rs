//! What children print, and what happens when a process exits or is signalled, seen from outside:
//! each scenario runs in a fresh copy of this program with its stdout and stderr captured.
//!
//! `cargo test --test output` runs every check; `output --scenario NAME` runs one scenario.

mod common;

use multiprocessing::{Pool, Process};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Scenario = fn();

/// Each scenario, and the check of its output: `(stdout, stderr, exit status) -> Result<(), why>`.
type Check = fn(&str, &str, std::process::ExitStatus) -> Result<(), String>;

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn once(out: &str, needle: &str) -> Result<(), String> {
    match count(out, needle) {
        1 => Ok(()),
        n => Err(format!("{needle:?} appears {n} times in:\n{out}")),
    }
}

// --- scenarios -------------------------------------------------------------------------------

fn partial_line() {
    let mut p = Process::new(|| print!("PARTIAL-7f3a"));
    p.start().unwrap();
    p.join().unwrap();
    println!();
    println!("exitcode={:?}", p.exitcode());
}

fn buffered_before_fork() {
    print!("BUFFERED-91c2 ");
    let mut p = Process::new(|| println!("child-line"));
    p.start().unwrap();
    p.join().unwrap();
    println!();
}

fn child_panics() {
    let mut p = Process::new(|| {
        let v = 5;
        panic!("bad value {v}");
    });
    p.start().unwrap();
    p.join().unwrap();
    println!("exitcode={:?} name={}", p.exitcode(), p.name());
}

fn sigint_without_opt_in() {
    // SIGINT's default action, whatever this process inherited (a shell's background job starts
    // with SIGINT ignored): the library must not change it without the opt-in.
    // SAFETY: setting a signal's disposition to the default.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let mut p = Process::new(|| ());
    p.start().unwrap();
    p.join().unwrap();
    println!("before");
    std::io::stdout().flush().unwrap();
    // SAFETY: signalling ourselves.
    unsafe { libc::raise(libc::SIGINT) };
    std::thread::sleep(Duration::from_secs(5));
    println!("SURVIVED");
}

fn exit_joins_non_daemons_and_terminates_daemons() {
    let mut d = Process::new(|| {
        std::thread::sleep(Duration::from_millis(500));
        println!("DAEMON-DONE");
    })
    .with_daemon(true);
    let mut n = Process::new(|| {
        std::thread::sleep(Duration::from_millis(500));
        println!("NONDAEMON-DONE");
    });
    d.start().unwrap();
    n.start().unwrap();
    println!("main returns");
    // No join: leaving main runs the exit handler.
}

fn killed_parent_leaves_no_orphans() {
    let mut a = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    let mut b = Process::new(|| {
        let mut gc = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
        gc.start().unwrap();
        println!("grandchild={}", gc.pid().unwrap());
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    a.start().unwrap();
    b.start().unwrap();
    println!("child={}", a.pid().unwrap());
    println!("child={}", b.pid().unwrap());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: killing ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

fn send_to_a_closed_pipe_with_default_sigpipe() {
    // SAFETY: restoring SIGPIPE's default action, as a C host program would have it.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let (a, b) = multiprocessing::Pipe::new::<u32>().unwrap();
    drop(b);
    let r = a.send(&1);
    println!("send -> {r:?}");
    println!("SURVIVED-EPIPE");
}

fn output_registration() {
    let mut pair = [0; 2];
    // SAFETY: creating a socket pair; the env var is set while this process has one thread.
    unsafe {
        assert_eq!(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, pair.as_mut_ptr()),
            0
        );
        std::env::set_var(
            multiprocessing::host::OUTPUT_SOCKET_ENV,
            pair[1].to_string(),
        );
    }
    let mut a = Process::new(|| {
        print!("partial-from-a");
        eprintln!("err-from-a");
    })
    .with_name("child-a");
    let mut b = Process::new(|| println!("{}", "b".repeat(100_000))).with_name("child-b");
    a.start().unwrap();
    b.start().unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let (pid, name, out, err) = common::receive_registration(pair[0]);
        got.push((pid, name, out, err));
    }
    got.sort_by(|x, y| x.1.cmp(&y.1));
    let mut texts = Vec::new();
    for (pid, name, out, err) in got {
        // Read before joining: a child blocks while its pipe is full.
        texts.push((pid, name, common::read_all(out), common::read_all(err)));
    }
    a.join().unwrap();
    b.join().unwrap();
    for (pid, name, o, e) in texts {
        let expected_pid = if name == "child-a" { a.pid() } else { b.pid() };
        println!(
            "{name}: pid-ok={} stdout-len={} stdout-start={:?} stderr={:?}",
            Some(pid) == expected_pid,
            o.len(),
            &o[..o.len().min(14)],
            e
        );
    }
}

fn sigint_env_opt_in() {
    assert!(
        multiprocessing::interrupt::is_enabled(),
        "enabled at load time"
    );
    let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    p.start().unwrap();
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: signalling ourselves.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    });
    println!("join -> {:?}", p.join());
    println!("alive={}", p.is_alive());
}

fn shout(i: u32) -> u32 {
    // stdout is line-buffered: each line leaves in one write, whole, even with two workers.
    println!("TASK-OUT-{i}");
    i
}

fn pool_tasks_print() {
    let pool = Pool::new(2).unwrap();
    let r = pool.map_chunked(shout, 0..20, 1).unwrap();
    println!("sum={}", r.iter().sum::<u32>());
}

fn scenarios() -> Vec<(&'static str, Scenario, Check)> {
    vec![
        ("partial_line", partial_line, |out, _, st| {
            once(out, "PARTIAL-7f3a")?;
            once(out, "exitcode=Some(0)")?;
            st.success().then_some(()).ok_or("failed".into())
        }),
        ("buffered_before_fork", buffered_before_fork, |out, _, _| {
            once(out, "BUFFERED-91c2")?;
            once(out, "child-line")
        }),
        ("child_panics", child_panics, |out, err, _| {
            once(out, "exitcode=Some(1) name=Process-1")?;
            once(err, "Process Process-1:")?;
            once(err, "bad value 5")?;
            once(err, "stack backtrace:")
        }),
        (
            "sigint_without_opt_in",
            sigint_without_opt_in,
            |out, _, st| {
                use std::os::unix::process::ExitStatusExt;
                once(out, "before")?;
                if count(out, "SURVIVED") > 0 || st.signal() != Some(libc::SIGINT) {
                    return Err(format!("expected death by SIGINT, got {st:?}"));
                }
                Ok(())
            },
        ),
        (
            "exit_joins_non_daemons_and_terminates_daemons",
            exit_joins_non_daemons_and_terminates_daemons,
            |out, _, st| {
                once(out, "main returns")?;
                once(out, "NONDAEMON-DONE")?;
                if count(out, "DAEMON-DONE") != 1 {
                    return Err(format!("the daemon was not terminated:\n{out}"));
                }
                st.success().then_some(()).ok_or("failed".into())
            },
        ),
        (
            "killed_parent_leaves_no_orphans",
            killed_parent_leaves_no_orphans,
            |out, _, _| {
                let pids: Vec<u32> = out
                    .lines()
                    .filter_map(|l| l.split_once('=').and_then(|(_, p)| p.trim().parse().ok()))
                    .collect();
                if pids.len() != 3 {
                    return Err(format!("expected 3 pids in:\n{out}"));
                }
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    if pids.iter().all(|p| dead(*p)) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(format!(
                    "still alive 5 s after the parent was killed: {pids:?}"
                ))
            },
        ),
        (
            "send_to_a_closed_pipe_with_default_sigpipe",
            send_to_a_closed_pipe_with_default_sigpipe,
            |out, _, st| {
                once(out, "send -> Err(Eof)")?;
                once(out, "SURVIVED-EPIPE")?;
                st.success().then_some(()).ok_or(format!("{st:?}"))
            },
        ),
        ("output_registration", output_registration, |out, _, st| {
            once(
                out,
                "child-a: pid-ok=true stdout-len=14 stdout-start=\"partial-from-a\" stderr=\"err-from-a\\n\"",
            )?;
            once(
                out,
                "child-b: pid-ok=true stdout-len=100001 stdout-start=\"bbbbbbbbbbbbbb\" stderr=\"\"",
            )?;
            st.success().then_some(()).ok_or(format!("{st:?}"))
        }),
        ("sigint_env_opt_in", sigint_env_opt_in, |out, _, st| {
            once(out, "join -> Err(Interrupted)")?;
            once(out, "alive=false")?;
            st.success().then_some(()).ok_or(format!("{st:?}"))
        }),
        ("pool_tasks_print", pool_tasks_print, |out, _, _| {
            for i in 0..20 {
                once(out, &format!("TASK-OUT-{i}\n"))?;
            }
            once(out, "sum=190")
        }),
    ]
}

fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

/// Runs one scenario in a child copy of this program, with a time limit.
fn run_scenario(name: &str) -> Result<(String, String, std::process::ExitStatus), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    if name == "sigint_env_opt_in" {
        cmd.env(multiprocessing::host::SIGINT_ENV, "interrupt");
    }
    let mut child = cmd
        .args(["--scenario", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err("timed out after 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Grandchildren may hold the pipes open a little longer; they are bounded by their own sleeps.
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    Ok((
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        status,
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let all = scenarios();
    if let Some(i) = args.iter().position(|a| a == "--scenario") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        match all.iter().find(|(n, _, _)| *n == name) {
            Some((_, run, _)) => {
                run();
                return;
            }
            None => {
                eprintln!("unknown scenario {name:?}");
                std::process::exit(2);
            }
        }
    }
    // Filters, as libtest takes them: run only the scenarios whose name contains one of them.
    let filters: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<_> = all
        .iter()
        .filter(|(n, _, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed) = (0, 0);
    for (name, _, check) in selected {
        let verdict = run_scenario(name).and_then(|(out, err, st)| check(&out, &err, st));
        match verdict {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n{why}");
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
