//! Process: lifecycle, exit codes, names, introspection, fork safety.

mod common;

use common::{is_dead, is_gone, wait_for};
use multiprocessing::{Error, Process, Queue, active_children, current_process, parent_process};
use std::time::{Duration, Instant};

fn sleeper(secs: u64) -> Process {
    Process::new(move || std::thread::sleep(Duration::from_secs(secs)))
}

#[test]
fn exit_codes_follow_python() {
    let mut ok = Process::new(|| ());
    let mut panics = Process::new(|| panic!("bad value 5"));
    let mut exits = Process::new(|| std::process::exit(3));
    let mut wraps = Process::new(|| std::process::exit(261));
    for p in [&mut ok, &mut panics, &mut exits, &mut wraps] {
        p.start().unwrap();
    }
    for p in [&mut ok, &mut panics, &mut exits, &mut wraps] {
        p.join().unwrap();
    }
    assert_eq!(ok.exitcode(), Some(0));
    assert_eq!(panics.exitcode(), Some(1));
    assert_eq!(exits.exitcode(), Some(3));
    assert_eq!(
        wraps.exitcode(),
        Some(5),
        "exit(261) is 5, mod 256 as in Python"
    );
}

#[test]
fn terminate_gives_minus_15_and_kill_minus_9() {
    let mut t = sleeper(30);
    let mut k = sleeper(30);
    t.start().unwrap();
    k.start().unwrap();
    t.terminate().unwrap();
    k.kill().unwrap();
    t.join().unwrap();
    k.join().unwrap();
    assert_eq!(t.exitcode(), Some(-15));
    assert_eq!(k.exitcode(), Some(-9));
    assert!(format!("{t:?}").contains("exitcode=-SIGTERM"));
    // After exit, terminate and kill do nothing.
    t.terminate().unwrap();
    k.kill().unwrap();
    assert_eq!(t.exitcode(), Some(-15));
}

#[test]
fn join_timeout_returns_with_the_child_alive() {
    let mut p = sleeper(30);
    p.start().unwrap();
    let start = Instant::now();
    p.join_timeout(Duration::from_millis(300)).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(290),
        "returned after {waited:?}"
    );
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    p.join().unwrap();
    assert!(!p.is_alive());
}

#[test]
fn state_before_start_and_lifecycle_errors() {
    let mut p = Process::new(|| ());
    assert!(!p.is_alive());
    assert_eq!(p.pid(), None);
    assert_eq!(p.exitcode(), None);
    assert!(matches!(p.join(), Err(Error::NotStarted)));
    assert!(matches!(
        p.join_timeout(Duration::from_millis(1)),
        Err(Error::NotStarted)
    ));
    p.start().unwrap();
    assert!(matches!(p.start(), Err(Error::AlreadyStarted)));
    assert!(matches!(p.set_daemon(true), Err(Error::StartedAlready)));
    p.join().unwrap();
    // join on a finished process returns at once
    p.join().unwrap();
}

#[test]
fn no_zombie_remains_after_join() {
    let mut p = Process::new(|| ());
    p.start().unwrap();
    let pid = p.pid().unwrap();
    p.join().unwrap();
    assert!(is_gone(pid), "pid {pid} still in /proc after join");
}

#[test]
fn default_names_count_even_named_processes() {
    // Names are allocated from one per-process counter; other tests run in parallel, so check
    // the relation between consecutive names made under one lock-step here.
    let a = Process::new(|| ());
    let named = Process::new(|| ()).with_name("worker-x");
    let b = Process::new(|| ());
    let num = |p: &Process| {
        p.name()
            .trim_start_matches("Process-")
            .parse::<u32>()
            .unwrap()
    };
    assert!(a.name().starts_with("Process-"));
    assert_eq!(named.name(), "worker-x");
    assert!(
        num(&b) >= num(&a) + 2,
        "{} then {}: the named one used a number",
        a.name(),
        b.name()
    );
}

/// What a child reports: its name and pid, its parent's name and pid, its own child's name.
type Report = (String, u32, Option<(String, u32)>, String);

#[test]
fn child_sees_its_name_parent_and_grandchild_names() {
    let q: Queue<Report> = Queue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || {
        let me = current_process();
        let parent = parent_process().map(|pp| (pp.name().to_string(), pp.pid()));
        let tx2 = tx.clone();
        let mut grandchild = Process::new(move || {
            let _ = tx2;
        });
        let gname = grandchild.name().to_string();
        grandchild.start().unwrap();
        grandchild.join().unwrap();
        tx.put((me.name().to_string(), me.pid(), parent, gname))
            .unwrap();
    })
    .with_name("Parent-Of-One");
    p.start().unwrap();
    let (name, pid, parent, grandchild) = q.get_timeout(Duration::from_secs(10)).unwrap();
    p.join().unwrap();
    assert_eq!(name, "Parent-Of-One");
    assert_eq!(Some(pid), p.pid());
    assert_eq!(
        parent,
        Some(("MainProcess".to_string(), std::process::id()))
    );
    // The counter restarts in each child, below the child's own identity.
    assert!(
        grandchild.starts_with("Process-") && grandchild.ends_with(":1"),
        "{grandchild}"
    );
    assert!(parent_process().is_none());
    assert_eq!(current_process().name(), "MainProcess");
}

#[test]
fn active_children_lists_live_ones_and_reaps_finished_ones() {
    let mut ps: Vec<Process> = (0..3).map(|_| sleeper(30)).collect();
    for p in &mut ps {
        p.start().unwrap();
    }
    let pids: Vec<u32> = ps.iter().map(|p| p.pid().unwrap()).collect();
    let live: Vec<u32> = active_children().iter().map(|c| c.pid()).collect();
    assert!(pids.iter().all(|p| live.contains(p)));
    for p in &mut ps {
        p.kill().unwrap();
        p.join().unwrap();
    }
    let live: Vec<u32> = active_children().iter().map(|c| c.pid()).collect();
    assert!(pids.iter().all(|p| !live.contains(p)));
    // A dropped, finished child is reaped by active_children.
    let mut d = Process::new(|| ());
    d.start().unwrap();
    let pid = d.pid().unwrap();
    drop(d);
    assert!(wait_for(Duration::from_secs(5), || {
        active_children();
        is_gone(pid)
    }));
}

#[test]
fn child_state_is_a_copy() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let q = Queue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || {
        COUNTER.fetch_add(1, Ordering::SeqCst);
        tx.put(COUNTER.load(Ordering::SeqCst)).unwrap();
    });
    p.start().unwrap();
    assert_eq!(q.get().unwrap(), 1);
    p.join().unwrap();
    assert_eq!(COUNTER.load(Ordering::SeqCst), 0);
}

#[test]
fn child_stdin_is_dev_null() {
    let q = Queue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || {
        let mut line = String::new();
        let n = std::io::stdin().read_line(&mut line).unwrap();
        tx.put(n).unwrap();
    });
    p.start().unwrap();
    assert_eq!(
        q.get_timeout(Duration::from_secs(10)).unwrap(),
        0,
        "EOF at once"
    );
    p.join().unwrap();
}

#[test]
fn daemon_processes_cannot_have_children() {
    let q = Queue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || {
        let mut c = Process::new(|| ());
        let r = c.start();
        tx.put(matches!(r, Err(Error::DaemonicChildren))).unwrap();
    })
    .with_daemon(true);
    p.start().unwrap();
    assert!(q.get_timeout(Duration::from_secs(10)).unwrap());
    p.join().unwrap();
}

#[test]
fn children_do_not_outlive_a_killed_parent() {
    let q = Queue::new().unwrap();
    let tx = q.clone();
    let mut parent = Process::new(move || {
        let mut gc = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
        gc.start().unwrap();
        tx.put(gc.pid().unwrap()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    parent.start().unwrap();
    let grandchild: u32 = q.get_timeout(Duration::from_secs(10)).unwrap();
    assert!(!is_dead(grandchild));
    parent.kill().unwrap();
    parent.join().unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || is_dead(grandchild)),
        "grandchild {grandchild} survived its parent"
    );
}

#[test]
fn start_from_a_short_lived_thread_keeps_the_child_alive() {
    // PR_SET_PDEATHSIG follows the forking thread; the library forks on a long-lived thread then.
    let mut p = std::thread::spawn(|| {
        let mut p = sleeper(30);
        p.start().unwrap();
        p
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        p.is_alive(),
        "the child died with the thread that started it"
    );
    p.terminate().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-15));
}

/// True if `pid` is a zombie child of this process: it exited and nobody reaped it yet.
fn is_zombie_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // After the command name in parentheses: the state, then the parent's pid.
    let mut fields = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace();
    let state = fields.next().unwrap_or("");
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    state == "Z" && ppid == std::process::id()
}

#[test]
fn start_reaps_finished_children_and_keeps_their_exit_codes() {
    // 100 children that exit at once with codes 1..=100, never joined.
    let mut finished: Vec<Process> = (1..=100)
        .map(|code| {
            let mut p = Process::new(move || std::process::exit(code));
            p.start().unwrap();
            p
        })
        .collect();
    // 20 more whose handles are dropped unjoined.
    let mut dropped = Vec::new();
    for _ in 0..20 {
        let mut p = Process::new(|| ());
        p.start().unwrap();
        dropped.push(p.pid().unwrap());
    }
    let pids: Vec<u32> = finished.iter().map(|p| p.pid().unwrap()).collect();
    let all: Vec<u32> = pids.iter().chain(&dropped).copied().collect();
    assert!(
        wait_for(Duration::from_secs(20), || all.iter().all(|&p| is_dead(p))),
        "the children did not exit"
    );
    let mut one_more = Process::new(|| ());
    one_more.start().unwrap();
    let zombies: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&p| is_zombie_child(p))
        .collect();
    assert!(
        zombies.is_empty(),
        "{} of {} finished children are zombies after the next start: {zombies:?}",
        zombies.len(),
        all.len()
    );
    // Reaped into the record: every handle still reports its own code.
    for (p, code) in finished.iter_mut().zip(1..=100) {
        assert!(!p.is_alive());
        assert_eq!(p.exitcode(), Some(code), "{p:?}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(code), "{p:?}");
    }
    one_more.join().unwrap();
    assert_eq!(one_more.exitcode(), Some(0));
}

#[test]
fn start_leaves_the_children_of_std_process_command_alone() {
    // Reaping is by pid, never waitpid(-1): the status of a child the program spawned itself
    // stays for its own wait().
    let mut own = std::process::Command::new("sh")
        .args(["-c", "exit 7"])
        .spawn()
        .unwrap();
    let pid = own.id();
    assert!(wait_for(Duration::from_secs(20), || is_zombie_child(pid)));
    let mut p = Process::new(|| ());
    p.start().unwrap();
    p.join().unwrap();
    drop(active_children());
    assert!(is_zombie_child(pid), "someone else reaped pid {pid}");
    assert_eq!(own.wait().unwrap().code(), Some(7));
}

#[test]
fn a_child_killed_by_a_real_time_signal_has_minus_its_number() {
    // Python gives -34 for SIGRTMIN; the status must not be lost in the reaping.
    let rt = libc::SIGRTMIN() + 2;
    let mut p = sleeper(60);
    p.start().unwrap();
    let pid = p.pid().unwrap();
    // SAFETY: kill takes two integers.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, rt) }, 0);
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-rt));
    assert!(!p.is_alive());
}
