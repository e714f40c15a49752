//! The interrupt opt-in ends every blocking wait of the synchronization primitives with
//! `Interrupted`. SIGINT is process-wide, so this file holds one test that runs its cases in
//! sequence.

mod common;

use common::expect_interrupted;
use multiprocessing::{
    Barrier, Condition, Event, Lock, Process, RLock, Semaphore, Value, interrupt,
};
use std::time::Duration;

/// Starts a child that runs `hold` (which takes a lock, then sets the event it is given and
/// sleeps), and waits until the lock is held.
fn holder(hold: impl FnOnce(Event) + Send + 'static) -> Process {
    let held = Event::new().unwrap();
    let h = held.clone();
    let mut p = Process::new(move || hold(h));
    p.start().unwrap();
    assert!(held.wait_timeout(Duration::from_secs(20)).unwrap());
    p
}

fn sleep_forever() {
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn sigint_interrupts_every_blocking_wait() {
    interrupt::enable().unwrap();

    // A lock held by a child: the interrupt ends the wait and terminates the child, whose
    // death frees the lock for the next acquirer.
    let lock = Lock::new().unwrap();
    let l = lock.clone();
    let mut p = holder(move |held| {
        let _g = l.lock().unwrap();
        held.set();
        sleep_forever();
    });
    expect_interrupted("Lock::acquire", || lock.acquire());
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-15));
    let g = lock
        .lock_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("lock free again");
    assert!(g.owner_died());
    drop(g);

    let rlock = RLock::new().unwrap();
    let r = rlock.clone();
    let _p = holder(move |held| {
        let _g = r.lock().unwrap();
        held.set();
        sleep_forever();
    });
    expect_interrupted("RLock::lock", || rlock.lock().map(drop));

    let value = Value::new(0u8).unwrap();
    let v = value.clone();
    let _p = holder(move |held| {
        let _g = v.lock().unwrap();
        held.set();
        sleep_forever();
    });
    expect_interrupted("Value::get", || value.get());

    let event = Event::new().unwrap();
    expect_interrupted("Event::wait", || event.wait());

    let sem = Semaphore::new(0).unwrap();
    expect_interrupted("Semaphore::acquire", || sem.acquire());

    // A condition wait ends without the lock (the guard's release then does nothing).
    let cond = Condition::new().unwrap();
    let guard = cond.lock().unwrap();
    expect_interrupted("Condition::wait", || cond.wait());
    drop(guard);
    assert!(
        cond.acquire_timeout(Duration::ZERO).unwrap(),
        "the lock is free"
    );
    cond.release().unwrap();

    // An interrupted party withdraws: the barrier is not broken and fills again.
    let barrier = Barrier::new(2).unwrap();
    expect_interrupted("Barrier::wait", || barrier.wait());
    assert!(!barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    let b = barrier.clone();
    let mut p = Process::new(move || {
        b.wait().unwrap();
    });
    p.start().unwrap();
    barrier.wait_timeout(Duration::from_secs(20)).unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));

    interrupt::disable().unwrap();
}
