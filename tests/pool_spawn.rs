//! The spawn start method (`StartMethod::Spawn`): workers are fresh processes, this test
//! program started again by exec, and every method of the pool works as with forked workers.
//! The tests take turns (an interrupt terminates every child of the process, other tests'
//! workers included).

mod common;

use common::{is_dead, wait_for};
use multiprocessing::code::Stage;
use multiprocessing::{
    Callbacks, Error, Pool, StartMethod, current_process, interrupt, parent_process,
};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn square(x: i64) -> i64 {
    x * x
}

fn add(a: i32, b: i32) -> i32 {
    a + b
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn whoami(_: u8) -> (String, Option<u32>, bool) {
    (
        current_process().name().to_string(),
        parent_process().map(|p| p.pid()),
        current_process().daemon(),
    )
}

#[test]
fn map_starmap_apply_and_callbacks_give_the_results_of_fork_mode() {
    let _turn = one_at_a_time();
    let pool = common::spawn_pool(3);
    assert_eq!(
        pool.map(square, 0..10).unwrap(),
        vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
    );
    let big: Vec<i64> = (0..20_000).collect();
    let want: Vec<i64> = big.iter().map(|x| x * x).collect();
    assert_eq!(pool.map(square, big).unwrap(), want);
    assert_eq!(
        pool.starmap(add, vec![(1, 2), (3, 4), (5, 6)]).unwrap(),
        vec![3, 7, 11]
    );
    assert_eq!(pool.apply(add, (20, 22)).unwrap(), 42);
    let r = pool.apply_async(add, (1, 1)).unwrap();
    assert_eq!(r.get().unwrap(), 2);

    // Callbacks run once each, on the pool's thread.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let r = pool
        .map_async_with(
            square,
            0..5,
            None,
            Callbacks::new().on_success(move |v: &Vec<i64>| s.lock().unwrap().push(v.clone())),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), vec![0, 1, 4, 9, 16]);
    assert!(wait_for(Duration::from_secs(5), || seen
        .lock()
        .unwrap()
        .len()
        == 1));
    assert_eq!(seen.lock().unwrap()[0], vec![0, 1, 4, 9, 16]);

    // An explicit chunksize keeps a chunk in one worker, and the order.
    let pids = pool.map_chunked(pid_of, 0..10, 5).unwrap();
    assert!(pids[..5].iter().all(|p| *p == pids[0]));
    assert!(pids[5..].iter().all(|p| *p == pids[5]));
    assert!(!pids.contains(&std::process::id()));

    // Python's names; a daemon child of this process.
    let (name, parent, daemon) = pool.apply(whoami, (0,)).unwrap();
    assert!(name.starts_with("SpawnPoolWorker-"), "{name}");
    assert_eq!(parent, Some(std::process::id()));
    assert!(daemon);
    pool.close().unwrap();
    pool.join().unwrap();
}

/// Set by the parent before it makes its pools: a forked worker has the parent's value, a
/// spawned one starts from the program's initial value.
static SET_BY_PARENT: AtomicU64 = AtomicU64::new(0);

/// What a worker reports about itself: the static, its pid, its executable, the address of one
/// of this program's functions in it.
fn about_me(_: u8) -> (u64, u32, String, usize) {
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let f: fn(i64) -> i64 = square;
    (
        SET_BY_PARENT.load(SeqCst),
        std::process::id(),
        exe.display().to_string(),
        f as usize,
    )
}

/// The start time of process `pid` (field 22 of /proc/PID/stat), in clock ticks since boot.
fn starttime(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn workers_are_this_program_started_again_by_exec_with_fresh_statics() {
    let _turn = one_at_a_time();
    SET_BY_PARENT.store(42, SeqCst);
    let f: fn(i64) -> i64 = square;
    let here = f as usize;
    let exe = std::fs::read_link("/proc/self/exe").unwrap();

    // The same probe in fork mode: the static and the code addresses are the parent's.
    let forked = Pool::new(1).unwrap();
    let (value, _, fork_exe, fork_addr) = forked.apply(about_me, (0,)).unwrap();
    assert_eq!((value, fork_addr), (42, here));
    assert_eq!(fork_exe, exe.display().to_string());

    let pool = common::spawn_pool(2);
    let (value, pid, worker_exe, worker_addr) = pool.apply(about_me, (0,)).unwrap();
    assert_eq!(value, 0, "a spawn worker starts with the program's statics");
    assert_eq!(worker_exe, exe.display().to_string());
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        exe,
        "the worker runs this executable"
    );
    // A fresh address space: with ASLR the program is mapped elsewhere than in the parent.
    let aslr = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space")
        .is_ok_and(|s| s.trim() != "0");
    if aslr {
        assert_ne!(
            worker_addr, here,
            "the worker's code is at its own load base"
        );
    }
    // Started after this process, and its child.
    assert!(starttime(pid) >= starttime(std::process::id()));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("PPid:\t{}\n", std::process::id())),
        "{status}"
    );
    SET_BY_PARENT.store(0, SeqCst);
}

fn fail_on_3(x: i32) -> i32 {
    if x == 3 {
        panic!("no key {x}");
    }
    x
}

#[test]
fn a_panicking_task_gives_the_error_of_fork_mode_and_the_pool_goes_on() {
    let _turn = one_at_a_time();
    let pool = common::spawn_pool(2);
    match pool.map(fail_on_3, 0..10) {
        Err(Error::Task(e)) => {
            assert_eq!(e.message, "no key 3");
            let location = e.location.as_deref().unwrap_or("");
            assert!(location.contains("pool_spawn.rs"), "{location}");
            assert!(
                e.backtrace.contains("fail_on_3"),
                "backtrace names the function:\n{}",
                e.backtrace
            );
            assert!(e.worker.starts_with("SpawnPoolWorker-"), "{}", e.worker);
            assert_ne!(e.pid, std::process::id());
        }
        other => panic!("expected a task error, got {other:?}"),
    }
    assert_eq!(pool.map(square, 0..5).unwrap(), vec![0, 1, 4, 9, 16]);
    // The error callback gets it too.
    let failed = Arc::new(Mutex::new(None));
    let f = failed.clone();
    let r = pool
        .apply_async_with(
            fail_on_3,
            (3,),
            Callbacks::new().on_error(move |e: &Error| *f.lock().unwrap() = Some(e.to_string())),
        )
        .unwrap();
    assert!(matches!(r.get(), Err(Error::Task(_))));
    assert!(wait_for(Duration::from_secs(5), || failed
        .lock()
        .unwrap()
        .is_some()));
    let text = failed.lock().unwrap().clone().unwrap();
    assert!(
        text.contains("SpawnPoolWorker-") && text.ends_with("no key 3"),
        "{text}"
    );
    assert_eq!(
        pool.starmap_async(add, vec![(1, 1), (2, 2)])
            .unwrap()
            .get()
            .unwrap(),
        vec![2, 4]
    );
    let got: Vec<Result<i32, Error>> = pool.imap(fail_on_3, 0..5).unwrap().collect();
    assert_eq!(got.len(), 5);
    assert!(matches!(&got[3], Err(Error::Task(e)) if e.message == "no key 3"));
    assert_eq!(*got[4].as_ref().unwrap(), 4);
}

fn slow_inverse(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(150 * (4 - x)));
    x
}

#[test]
fn imap_is_lazy_and_ordered_and_imap_unordered_yields_as_tasks_finish() {
    let _turn = one_at_a_time();
    let pool = Pool::builder()
        .processes(2)
        .readahead(4)
        .start_method(StartMethod::Spawn)
        .build()
        .unwrap();
    // An endless input: read only as far as the read-ahead allows.
    let read = Arc::new(AtomicUsize::new(0));
    let r = read.clone();
    let input = (0i64..).inspect(move |_| {
        r.fetch_add(1, SeqCst);
    });
    let first: Vec<i64> = pool
        .imap(square, input)
        .unwrap()
        .take(5)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, vec![0, 1, 4, 9, 16]);
    let taken = read.load(SeqCst);
    assert!(taken < 5 + 4 + 4, "read {taken} items of an endless input");

    let ordered: Vec<u64> = pool
        .imap_chunked(slow_inverse, 0..4u64, 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, vec![0, 1, 2, 3]);
    let unordered: Vec<u64> = pool
        .imap_unordered_chunked(slow_inverse, 0..4u64, 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut sorted = unordered.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2, 3]);
    assert_ne!(
        unordered[0], 0,
        "the slowest task came first: {unordered:?}"
    );
}

fn sleep_then(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(800));
    x
}

/// The pids of this process's live spawn workers.
fn spawn_workers() -> Vec<u32> {
    multiprocessing::active_children()
        .into_iter()
        .filter(|p| p.name().starts_with("SpawnPoolWorker-"))
        .map(|p| p.pid())
        .collect()
}

#[test]
fn a_killed_worker_gives_the_error_of_fork_mode_then_the_pool_recovers() {
    let _turn = one_at_a_time();
    let pool = common::spawn_pool(1);
    assert_eq!(pool.apply(sleep_then, (1,)).unwrap(), 1);
    let r = pool
        .map_async_with(sleep_then, 0..4, Some(1), Callbacks::new())
        .unwrap();
    let workers = spawn_workers();
    assert_eq!(workers.len(), 1, "{workers:?}");
    let victim = workers[0];
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    match r.get_timeout(Duration::from_secs(5)) {
        Err(Error::WorkerDied {
            worker,
            pid,
            exitcode,
        }) => {
            assert_eq!((pid, exitcode), (victim, -9));
            assert!(worker.starts_with("SpawnPoolWorker-"), "{worker}");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(wait_for(Duration::from_secs(5), || is_dead(victim)));
    // Replaced by a new spawn worker, which works.
    assert_eq!(pool.map(square, 0..6).unwrap(), vec![0, 1, 4, 9, 16, 25]);
    assert!(!spawn_workers().contains(&victim));
}

#[test]
fn an_interrupt_ends_a_blocked_map_as_in_fork_mode_and_the_pool_goes_on() {
    let _turn = one_at_a_time();
    interrupt::enable().unwrap();
    let pool = common::spawn_pool(2);
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);
    let before = spawn_workers();
    common::expect_interrupted("spawn pool map", || {
        pool.map_chunked(sleep_then, 0..8u64, 1)
    });
    // The workers were terminated, and replaced by new ones.
    assert!(wait_for(Duration::from_secs(5), || before
        .iter()
        .all(|&p| is_dead(p))));
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);
    interrupt::disable().unwrap();
}

static INITIALIZED: AtomicU64 = AtomicU64::new(0);

fn init() {
    INITIALIZED.fetch_add(1, SeqCst);
}

fn initialized(_: u8) -> u64 {
    INITIALIZED.load(SeqCst)
}

fn failing_init() {
    panic!("cannot initialize");
}

#[test]
fn a_non_capturing_initializer_runs_in_each_spawn_worker_and_a_capturing_one_is_refused() {
    let _turn = one_at_a_time();
    let pool = Pool::builder()
        .processes(2)
        .initializer(init)
        .maxtasksperchild(1)
        .start_method(StartMethod::Spawn)
        .build()
        .unwrap();
    // Each worker (a fresh process, replaced after each task) ran it once.
    assert_eq!(
        pool.map_chunked(initialized, 0..4u8, 1).unwrap(),
        vec![1; 4]
    );
    assert_eq!(INITIALIZED.load(SeqCst), 0, "not run in the parent");

    let offset = 1;
    let refused = Pool::builder()
        .start_method(StartMethod::Spawn)
        .initializer(move || {
            INITIALIZED.fetch_add(offset, SeqCst);
        })
        .build();
    match refused {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("capture nothing"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    let failing = Pool::builder()
        .processes(1)
        .initializer(failing_init)
        .start_method(StartMethod::Spawn)
        .build()
        .unwrap();
    match failing.map(square, 0..2) {
        Err(Error::Task(e)) => {
            assert_eq!(e.message, "cannot initialize");
            assert!(e.worker.starts_with("SpawnPoolWorker-"));
        }
        other => panic!("expected the initializer's error, got {other:?}"),
    }
}

#[test]
fn a_garbage_object_gives_a_typed_error_naming_it_with_the_loaders_message() {
    let stage = Stage::new().unwrap();
    let path = stage.path().join("libgarbage.so");
    std::fs::write(&path, vec![0x5au8; 4096]).unwrap();
    match stage.load(&path) {
        Err(Error::CodeLoad { object, message }) => {
            assert_eq!(object, path.display().to_string());
            // glibc's own words, with the path it was given.
            assert_eq!(message, format!("{}: invalid ELF header", path.display()));
        }
        other => panic!("expected CodeLoad, got {other:?}"),
    }
    let dir = stage.path().to_path_buf();
    drop(stage);
    assert!(!dir.exists(), "the stage is removed with its files");
}
