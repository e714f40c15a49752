//! Pool: results, errors from workers, dead workers, lifecycle, code loaded after the fork.

mod common;

use common::{is_dead, wait_for};
use multiprocessing::{Callbacks, Error, Pool, Queue, current_process};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn square(x: i64) -> i64 {
    x * x
}

fn fail_on_3(x: i32) -> i32 {
    if x == 3 {
        panic!("no key {x}");
    }
    x
}

fn slow_inverse(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(150 * (4 - x)));
    x
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn sleep_forever(_: u32) -> u32 {
    std::thread::sleep(Duration::from_secs(3600));
    0
}

#[test]
fn map_returns_results_in_input_order() {
    let pool = Pool::new(4).unwrap();
    assert_eq!(
        pool.map(square, 0..10).unwrap(),
        vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
    );
    assert_eq!(
        pool.map(square, Vec::<i64>::new()).unwrap(),
        Vec::<i64>::new()
    );
    let big: Vec<i64> = (0..10_000).collect();
    let want: Vec<i64> = big.iter().map(|x| x * x).collect();
    assert_eq!(pool.map(square, big).unwrap(), want);
}

#[test]
fn explicit_chunksize_keeps_a_chunk_in_one_worker() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.map_chunked(pid_of, 0..10, 5).unwrap();
    assert!(pids[..5].iter().all(|p| *p == pids[0]));
    assert!(pids[5..].iter().all(|p| *p == pids[5]));
    assert!(pids.iter().all(|p| *p != std::process::id()));
    assert!(matches!(
        pool.map_chunked(pid_of, 0..10, 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_panicking_task_gives_an_error_and_the_pool_keeps_working() {
    let pool = Pool::new(2).unwrap();
    match pool.map(fail_on_3, 0..10) {
        Err(Error::Task(e)) => {
            assert_eq!(e.message, "no key 3");
            assert!(
                e.location.as_deref().unwrap_or("").contains("pool.rs"),
                "{:?}",
                e.location
            );
            assert!(
                e.backtrace.contains("fail_on_3"),
                "backtrace names the function:\n{}",
                e.backtrace
            );
            assert!(e.worker.starts_with("ForkPoolWorker-"));
            assert!(e.to_string().contains("no key 3"));
        }
        other => panic!("expected a task error, got {other:?}"),
    }
    assert_eq!(pool.map(square, 0..5).unwrap(), vec![0, 1, 4, 9, 16]);
    // imap yields the good results before the failing item, then the error, then the rest.
    let got: Vec<Result<i32, Error>> = pool.imap(fail_on_3, 0..5).unwrap().collect();
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[..3]
            .iter()
            .map(|r| *r.as_ref().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(matches!(&got[3], Err(Error::Task(e)) if e.message == "no key 3"));
    assert_eq!(*got[4].as_ref().unwrap(), 4);
}

static BUSY_PIDS: OnceLock<Queue<u32>> = OnceLock::new();

fn report_then_sleep(x: u64) -> u64 {
    if let Some(q) = BUSY_PIDS.get() {
        q.put(std::process::id()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(800));
    x
}

#[test]
fn a_worker_killed_during_map_gives_an_error_within_seconds() {
    BUSY_PIDS.set(Queue::new().unwrap()).unwrap();
    let pool = Pool::new(2).unwrap();
    let r = pool
        .map_async_with(report_then_sleep, 0..4, Some(1), Callbacks::new())
        .unwrap();
    let victim = BUSY_PIDS
        .get()
        .unwrap()
        .get_timeout(Duration::from_secs(10))
        .unwrap();
    let start = Instant::now();
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    match r.get_timeout(Duration::from_secs(5)) {
        Err(Error::WorkerDied { pid, exitcode, .. }) => {
            assert_eq!(pid, victim);
            assert_eq!(exitcode, -9);
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(wait_for(Duration::from_secs(5), || is_dead(victim)));
    // The pool replaced the worker and works.
    assert_eq!(pool.map(square, 0..6).unwrap(), vec![0, 1, 4, 9, 16, 25]);
}

#[test]
fn imap_keeps_order_and_imap_unordered_does_not_wait_for_slow_early_tasks() {
    let pool = Pool::new(4).unwrap();
    let ordered: Vec<u64> = pool
        .imap(slow_inverse, 0..4)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, vec![0, 1, 2, 3]);
    let start = Instant::now();
    let mut it = pool.imap_unordered(slow_inverse, 0..4).unwrap();
    let first = it.next().unwrap().unwrap();
    let first_at = start.elapsed();
    let rest: Vec<u64> = it.map(Result::unwrap).collect();
    assert_eq!(first, 3, "the fastest task comes first");
    assert!(
        first_at < Duration::from_millis(400),
        "first result after {first_at:?}"
    );
    assert_eq!(rest, vec![2, 1, 0]);
}

#[test]
fn imap_next_timeout() {
    let pool = Pool::new(1).unwrap();
    let mut it = pool.imap(slow_inverse, vec![1]).unwrap();
    assert!(matches!(
        it.next_timeout(Duration::from_millis(50)),
        Some(Err(Error::Timeout))
    ));
    assert_eq!(it.next_timeout(Duration::from_secs(5)).unwrap().unwrap(), 1);
    assert!(it.next().is_none());
}

fn add(a: i32, b: i32) -> i32 {
    a + b
}

fn pow(b: u64, e: u32) -> u64 {
    b.pow(e)
}

fn answer() -> u32 {
    42
}

fn negative_panics(x: i32) -> i32 {
    if x < 0 {
        panic!("negative");
    }
    x * 10
}

#[test]
fn apply_apply_async_starmap_and_results() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.apply(add, (2, 3)).unwrap(), 5);
    assert_eq!(pool.apply(answer, ()).unwrap(), 42);
    assert_eq!(
        pool.starmap(pow, vec![(2, 3), (3, 2), (10, 0)]).unwrap(),
        vec![8, 9, 1]
    );
    assert_eq!(
        pool.starmap_async(add, vec![(1, 1), (2, 2)])
            .unwrap()
            .get()
            .unwrap(),
        vec![2, 4]
    );

    let slow = pool.apply_async(slow_inverse, (0,)).unwrap();
    assert!(matches!(slow.successful(), Err(Error::NotReady)));
    assert!(!slow.ready());
    assert!(matches!(
        slow.get_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(!slow.wait_timeout(Duration::from_millis(10)));
    slow.wait();
    assert!(slow.ready());
    assert!(slow.successful().unwrap());
    assert_eq!(slow.get().unwrap(), 0);
    assert!(matches!(slow.get(), Err(Error::AlreadyTaken)));

    let bad = pool.apply_async(negative_panics, (-1,)).unwrap();
    assert!(matches!(bad.get(), Err(Error::Task(e)) if e.message == "negative"));
    assert!(!bad.successful().unwrap());
    assert!(
        matches!(bad.get(), Err(Error::Task(_))),
        "an error can be read again"
    );
}

#[test]
fn callbacks_run_once_in_the_pool_thread() {
    let pool = Pool::new(2).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let r = pool
        .map_async_with(
            negative_panics,
            vec![1, 2, 3],
            None,
            Callbacks::new().on_success(move |v: &Vec<i32>| {
                c.lock()
                    .unwrap()
                    .push((v.clone(), std::thread::current().name().map(String::from)))
            }),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), vec![10, 20, 30]);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, vec![10, 20, 30]);
    assert_eq!(calls[0].1.as_deref(), Some("multiprocessing-pool"));

    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    let r = pool
        .apply_async_with(
            negative_panics,
            (-1,),
            Callbacks::new().on_error(move |e| e2.lock().unwrap().push(e.to_string())),
        )
        .unwrap();
    assert!(r.get().is_err());
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("negative"));
}

#[test]
fn lifecycle_close_join_terminate() {
    let pool = Pool::new(2).unwrap();
    let pending = pool.map_async(slow_inverse, vec![3, 3, 3]).unwrap();
    assert!(matches!(pool.join(), Err(Error::PoolStillRunning)));
    pool.close().unwrap();
    assert!(matches!(
        pool.map(square, vec![1]),
        Err(Error::PoolNotRunning)
    ));
    assert!(matches!(
        pool.apply(add, (1, 2)),
        Err(Error::PoolNotRunning)
    ));
    assert!(matches!(
        pool.imap(square, vec![1]),
        Err(Error::PoolNotRunning)
    ));
    pool.join().unwrap();
    assert_eq!(
        pending.get().unwrap(),
        vec![3, 3, 3],
        "close + join waits for queued work"
    );
    assert!(format!("{pool:?}").contains("state=CLOSE"));

    let pool = Pool::new(2).unwrap();
    let r = pool.apply_async(sleep_forever, (0,)).unwrap();
    let start = Instant::now();
    pool.terminate().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(matches!(r.get(), Err(Error::PoolTerminated)));
    assert!(matches!(
        pool.map(square, vec![1]),
        Err(Error::PoolNotRunning)
    ));
    assert!(format!("{pool:?}").contains("state=TERMINATE"));
}

#[test]
fn dropping_a_running_pool_terminates_its_workers() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.map_chunked(pid_of, 0..40, 1).unwrap();
    let r = pool.apply_async(sleep_forever, (0,)).unwrap();
    drop(pool);
    for pid in pids {
        assert!(
            wait_for(Duration::from_secs(5), || is_dead(pid)),
            "worker {pid} survived"
        );
    }
    assert!(matches!(r.get(), Err(Error::PoolTerminated)));
}

static INIT_CALLS: AtomicUsize = AtomicUsize::new(0);

fn init_count(_: u8) -> usize {
    INIT_CALLS.load(Ordering::SeqCst)
}

#[test]
fn initializer_runs_in_each_worker_and_maxtasksperchild_replaces_them() {
    let pool = Pool::builder()
        .processes(1)
        .initializer(|| {
            INIT_CALLS.fetch_add(1, Ordering::SeqCst);
        })
        .maxtasksperchild(2)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..6).map(|_| pool.apply(pid_of, (0,)).unwrap()).collect();
    let distinct: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    // Each worker ran the initializer once (its own copy of the counter).
    assert_eq!(pool.apply(init_count, (0,)).unwrap(), 1);
    assert_eq!(INIT_CALLS.load(Ordering::SeqCst), 0, "not in the parent");
}

fn worker_name(_: u8) -> String {
    current_process().name().to_string()
}

#[test]
fn workers_are_named_like_python() {
    let pool = Pool::new(1).unwrap();
    assert!(
        pool.apply(worker_name, (0,))
            .unwrap()
            .starts_with("ForkPoolWorker-")
    );
    assert!(
        matches!(Pool::new(0), Err(Error::InvalidArgument(m)) if m == "Number of processes must be at least 1")
    );
    assert_eq!(
        Pool::builder().build().unwrap().processes(),
        multiprocessing::cpu_count()
    );
}

fn boom_init() {
    panic!("initializer failed");
}

#[test]
fn a_failing_initializer_fails_the_work_instead_of_forking_forever() {
    let pool = Pool::builder()
        .processes(1)
        .initializer(boom_init)
        .build()
        .unwrap();
    match pool.map(square, 0..3) {
        Err(Error::Task(e)) => assert_eq!(e.message, "initializer failed"),
        other => panic!("expected the initializer's panic, got {other:?}"),
    }
}

/// The address of a function in a shared library loaded after the pool started.
static LOADED: AtomicUsize = AtomicUsize::new(0);

fn call_loaded(x: u64) -> u64 {
    let addr = LOADED.load(Ordering::SeqCst);
    assert!(addr != 0, "the library is not loaded in this worker");
    // SAFETY: the address of `triple` in the cdylib built below, `extern "C" fn(u64) -> u64`.
    let f: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(addr) };
    f(x)
}

#[test]
fn code_loaded_after_the_workers_were_forked_runs_in_the_pool() {
    let pool = Pool::new(2).unwrap();
    // Workers exist now, forked before the library below exists.
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);

    let dir = std::env::temp_dir().join(format!("mp-cdylib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("late.rs");
    std::fs::write(
        &src,
        "#[unsafe(no_mangle)]\npub extern \"C\" fn triple(x: u64) -> u64 { 3 * x }\n",
    )
    .unwrap();
    let lib = dir.join("liblate.so");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args(["--edition", "2024", "--crate-type", "cdylib", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    let path = std::ffi::CString::new(lib.to_str().unwrap()).unwrap();
    // SAFETY: loading a library we just built; it has no initializers.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    assert!(!handle.is_null());
    let sym = unsafe { libc::dlsym(handle, c"triple".as_ptr()) };
    assert!(!sym.is_null());
    LOADED.store(sym as usize, Ordering::SeqCst);

    assert_eq!(
        pool.map(call_loaded, 0..8).unwrap(),
        vec![0, 3, 6, 9, 12, 15, 18, 21]
    );
    assert_eq!(
        pool.imap_unordered(call_loaded, 0..4)
            .unwrap()
            .map(Result::unwrap)
            .sum::<u64>(),
        18
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panicking_callback_does_not_break_the_pool() {
    let pool = Pool::new(1).unwrap();
    let r = pool
        .apply_async_with(
            add,
            (1, 2),
            Callbacks::new().on_success(|_: &i32| panic!("callback bug")),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), 3, "the result is still delivered");
    assert_eq!(pool.map(square, 0..3).unwrap(), vec![0, 1, 4]);
}
