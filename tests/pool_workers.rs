//! The pool keeps its size: a dead worker is replaced at once, a worker takes work only after its
//! initializer succeeded, and a blocking call from a callback cannot deadlock the pool.

mod common;

use common::wait_for;
use multiprocessing::{Callbacks, Error, Pool, Value, active_children};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

fn square(x: u64) -> u64 {
    x * x
}

fn exit_with(code: i32) -> u64 {
    std::process::exit(code)
}

/// The tests of this file count this process's pool workers: they run one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live pool workers among this process's children.
fn live_workers() -> usize {
    active_children()
        .iter()
        .filter(|c| c.name().starts_with("ForkPoolWorker"))
        .count()
}

#[test]
fn a_dead_worker_is_replaced_at_once() {
    let _serial = one_at_a_time();
    let pool = Pool::new(2).unwrap();
    assert!(wait_for(Duration::from_secs(5), || live_workers() == 2));
    match pool.apply(exit_with, (3,)) {
        Err(Error::WorkerDied { exitcode, .. }) => assert_eq!(exitcode, 3),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    // No more work is queued: the pool still has its two workers again.
    assert!(
        wait_for(Duration::from_secs(1), || live_workers() == 2),
        "{} live workers after a worker died",
        live_workers()
    );
    // One more single task keeps it at two.
    assert_eq!(pool.apply(square, (4,)).unwrap(), 16);
    assert!(wait_for(Duration::from_secs(1), || live_workers() == 2));
    // A worker killed while idle is replaced too.
    let victim = active_children()
        .into_iter()
        .find(|c| c.name().starts_with("ForkPoolWorker"))
        .unwrap()
        .pid();
    // SAFETY: killing our own child.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    assert!(
        wait_for(Duration::from_secs(1), || {
            live_workers() == 2 && active_children().iter().all(|c| c.pid() != victim)
        }),
        "the killed worker was not replaced"
    );
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);
}

/// A pool of 2 whose initializer counts its runs (across the workers) and then calls `then` with
/// the count; the count is returned with the pool.
fn pool_with_counted_initializer(then: fn(u32)) -> (Pool, Value<u32>) {
    let runs = Value::new(0u32).unwrap();
    let counter = runs.clone();
    let pool = Pool::builder()
        .processes(2)
        .initializer(move || {
            let n = {
                let mut n = counter.lock().unwrap();
                *n += 1;
                *n
            };
            then(n)
        })
        .build()
        .unwrap();
    (pool, runs)
}

#[test]
fn an_initializer_that_fails_once_does_not_fail_a_map() {
    let _serial = one_at_a_time();
    let (pool, _runs) = pool_with_counted_initializer(|n| {
        if n == 1 {
            panic!("the first initializer fails");
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let got = pool.map_chunked(square, 0..20, 1).unwrap();
    assert_eq!(got, (0..20).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(pool.map(square, 0..3).unwrap(), vec![0, 1, 4]);
}

#[test]
fn an_initializer_that_always_fails_fails_the_work_without_a_fork_storm() {
    let _serial = one_at_a_time();
    let (pool, runs) = pool_with_counted_initializer(|_| panic!("initializer failed"));
    match pool.map(square, 0..3) {
        Err(Error::Task(e)) => assert_eq!(e.message, "initializer failed"),
        other => panic!("expected the initializer's panic, got {other:?}"),
    }
    let after_map = runs.get().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let later = runs.get().unwrap();
    assert!(
        later <= after_map + 2,
        "the pool kept forking: {after_map} initializer runs at the error, {later} 500 ms later"
    );
}

#[test]
fn an_initializer_that_exits_does_not_make_the_pool_fork_forever() {
    let _serial = one_at_a_time();
    let (pool, runs) = pool_with_counted_initializer(|_| std::process::exit(1));
    std::thread::sleep(Duration::from_millis(1000));
    let idle = runs.get().unwrap();
    assert!(idle <= 8, "an idle pool forked {idle} workers in 1 s");
    match pool.map(square, 0..3) {
        Err(Error::Task(e)) => assert!(e.message.contains("exited with code 1"), "{e}"),
        other => panic!("expected the initializer's failure, got {other:?}"),
    }
}

#[test]
fn a_blocking_call_in_a_callback_is_an_error_and_the_pool_goes_on() {
    let _serial = one_at_a_time();
    let pool = Arc::new(Pool::new(2).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = pool.clone();
    let first = pool
        .apply_async_with(
            square,
            (3,),
            Callbacks::new().on_success(move |_: &u64| {
                let nested = inner.apply_async(square, (4,));
                // Polling without waiting is fine, and leaves the call alone.
                let polled = nested
                    .as_ref()
                    .map(|r| r.wait_timeout(Duration::ZERO))
                    .map_err(|e| e.to_string());
                let nested = nested.and_then(|r| r.get().map(|v| (v, r)));
                let mapped = inner.map(square, 0..3);
                let _ = tx.send((polled, nested, mapped));
            }),
        )
        .unwrap();
    let (polled, nested, mapped) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the callback's get() returned");
    assert!(polled.is_ok(), "{polled:?}");
    assert!(matches!(nested, Err(Error::CallbackDeadlock)), "{nested:?}");
    assert!(matches!(mapped, Err(Error::CallbackDeadlock)), "{mapped:?}");
    assert_eq!(first.get_timeout(Duration::from_secs(5)).unwrap(), 9);
    // Later results are delivered.
    let start = Instant::now();
    let later = pool.apply_async(square, (5,)).unwrap();
    assert_eq!(later.get_timeout(Duration::from_secs(5)).unwrap(), 25);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);
}

fn raise_real_time_signal(offset: i32) -> u64 {
    // SAFETY: raise takes an integer; a real-time signal's default action ends the process.
    unsafe { libc::raise(libc::SIGRTMIN() + offset) };
    0
}

#[test]
fn a_worker_killed_by_a_real_time_signal_fails_its_task_and_is_replaced() {
    let _serial = one_at_a_time();
    let pool = Pool::new(2).unwrap();
    let result = pool.apply_async(raise_real_time_signal, (2,)).unwrap();
    match result.get_timeout(Duration::from_secs(20)) {
        Err(Error::WorkerDied { exitcode, .. }) => assert_eq!(exitcode, -(libc::SIGRTMIN() + 2)),
        other => panic!("expected WorkerDied within 20 s, got {other:?}"),
    }
    assert_eq!(pool.apply(square, (5,)).unwrap(), 25);
}
