//! Locks, semaphores, events, conditions and barriers between real processes.

mod common;

use common::{join_ok, spawn, wait_for};
use multiprocessing::{
    Barrier, BoundedSemaphore, Condition, Error, Event, Lock, Process, Queue, RLock, Semaphore,
    Value,
};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn lock_timeouts_and_python_errors() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let release = Event::new().unwrap();
    let (l, h, r) = (lock.clone(), held.clone(), release.clone());
    let child = spawn(move || {
        let _guard = l.lock().unwrap();
        h.set();
        r.wait_timeout(LONG).unwrap();
    });
    held.wait_timeout(LONG).unwrap();
    // Held elsewhere: the timed and the non-blocking acquire give up.
    assert!(!lock.acquire_timeout(Duration::from_millis(100)).unwrap());
    assert!(!lock.try_acquire().unwrap());
    assert!(lock.try_lock().unwrap().is_none());
    assert!(format!("{lock:?}").contains("SomeOtherProcess"), "{lock:?}");
    // Not ours to release (Python would allow it; see the README's deviations).
    assert!(matches!(lock.release(), Err(Error::NotOwner)));
    release.set();
    lock.acquire().unwrap(); // the child's guard is dropped when it returns
    join_ok(child);
    assert_eq!(format!("{lock:?}"), "<Lock(owner=MainProcess)>");
    // Not recursive: a non-blocking or timed re-acquire fails, a blocking one is an error.
    assert!(!lock.try_acquire().unwrap());
    assert!(!lock.acquire_timeout(Duration::from_millis(20)).unwrap());
    assert!(matches!(lock.acquire(), Err(Error::Deadlock)));
    // Another process (or thread) cannot release it.
    let l = lock.clone();
    join_ok(spawn(move || {
        assert!(matches!(l.release(), Err(Error::NotOwner)))
    }));
    let l = lock.clone();
    std::thread::spawn(move || assert!(matches!(l.release(), Err(Error::NotOwner))))
        .join()
        .unwrap();
    lock.release().unwrap();
    // Releasing an unlocked lock: Python's ValueError.
    assert!(matches!(lock.release(), Err(Error::ReleasedTooManyTimes)));
    assert_eq!(format!("{lock:?}"), "<Lock(owner=None)>");
}

#[test]
fn lock_serializes_critical_sections_of_four_processes() {
    let lock = Lock::new().unwrap();
    let inside = Value::new(0u32).unwrap();
    let overlaps = Value::new(0u32).unwrap();
    let children: Vec<Process> = (0..4)
        .map(|_| {
            let (lock, inside, overlaps) = (lock.clone(), inside.clone(), overlaps.clone());
            spawn(move || {
                for _ in 0..2000 {
                    let _g = lock.lock().unwrap();
                    if inside.get().unwrap() != 0 {
                        *overlaps.lock().unwrap() += 1;
                    }
                    inside.set(1).unwrap();
                    std::hint::spin_loop();
                    inside.set(0).unwrap();
                }
            })
        })
        .collect();
    children.into_iter().for_each(join_ok);
    assert_eq!(overlaps.get().unwrap(), 0);
}

#[test]
fn rlock_is_reentrant_and_owned() {
    let rlock = RLock::new().unwrap();
    for _ in 0..3 {
        rlock.acquire().unwrap();
    }
    assert_eq!(format!("{rlock:?}"), "<RLock(MainProcess, 3)>");
    let r = rlock.clone();
    join_ok(spawn(move || {
        assert!(!r.try_acquire().unwrap(), "held by the parent");
        assert!(matches!(r.release(), Err(Error::NotOwner)));
        assert!(format!("{r:?}").starts_with("<RLock(SomeOtherProcess, "));
    }));
    let r = rlock.clone();
    std::thread::spawn(move || {
        assert!(matches!(r.release(), Err(Error::NotOwner)));
        assert!(!r.acquire_timeout(Duration::from_millis(20)).unwrap());
    })
    .join()
    .unwrap();
    for _ in 0..3 {
        rlock.release().unwrap();
    }
    assert_eq!(format!("{rlock:?}"), "<RLock(None, 0)>");
    // An extra release: Python's AssertionError.
    assert!(matches!(rlock.release(), Err(Error::NotOwner)));
    // Guards nest.
    {
        let _a = rlock.lock().unwrap();
        let _b = rlock.lock().unwrap();
        assert_eq!(format!("{rlock:?}"), "<RLock(MainProcess, 2)>");
    }
    // Free again: another process takes it at once.
    let r = rlock.clone();
    join_ok(spawn(move || assert!(r.try_acquire().unwrap())));
}

#[test]
fn semaphore_counts_times_out_and_bounds() {
    let sem = Semaphore::new(2).unwrap();
    assert!(sem.try_acquire().unwrap());
    sem.acquire().unwrap();
    assert!(!sem.try_acquire().unwrap());
    assert!(!sem.acquire_timeout(Duration::from_millis(50)).unwrap());
    assert_eq!(sem.get_value(), 0);
    assert_eq!(format!("{sem:?}"), "<Semaphore(value=0)>");
    // Releases from another process let acquires through; over-release is allowed.
    let s = sem.clone();
    join_ok(spawn(move || {
        for _ in 0..3 {
            s.release().unwrap();
        }
    }));
    assert_eq!(sem.get_value(), 3);
    for _ in 0..3 {
        assert!(sem.acquire_timeout(LONG).unwrap());
    }
    // A waiter in the parent is woken by a release in a child.
    let s = sem.clone();
    let releaser = spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        s.release().unwrap();
    });
    assert!(sem.acquire_timeout(LONG).unwrap());
    join_ok(releaser);

    let bounded = BoundedSemaphore::new(1).unwrap();
    bounded.acquire().unwrap();
    bounded.release().unwrap();
    assert!(matches!(
        bounded.release(),
        Err(Error::ReleasedTooManyTimes)
    ));
    assert_eq!(
        format!("{bounded:?}"),
        "<BoundedSemaphore(value=1, maxvalue=1)>"
    );
    assert!(Semaphore::new(u32::MAX).is_err());
}

#[test]
fn semaphore_admits_at_most_its_value_of_four_processes() {
    let sem = Semaphore::new(2).unwrap();
    let inside = Value::new(0u32).unwrap();
    let most = Value::new(0u32).unwrap();
    let children: Vec<Process> = (0..4)
        .map(|_| {
            let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
            spawn(move || {
                for _ in 0..500 {
                    let _permit = sem.permit().unwrap();
                    let now = {
                        let mut g = inside.lock().unwrap();
                        *g += 1;
                        *g
                    };
                    {
                        let mut m = most.lock().unwrap();
                        *m = (*m).max(now);
                    }
                    std::thread::yield_now();
                    *inside.lock().unwrap() -= 1;
                }
            })
        })
        .collect();
    children.into_iter().for_each(join_ok);
    assert!(
        most.get().unwrap() <= 2,
        "{} inside at once",
        most.get().unwrap()
    );
    assert_eq!(sem.get_value(), 2);
}

#[test]
fn event_set_in_one_process_wakes_three_others() {
    let event = Event::new().unwrap();
    let waiting = Semaphore::new(0).unwrap();
    let woke: Queue<u32> = Queue::new().unwrap();
    let waiters: Vec<Process> = (0..3)
        .map(|i| {
            let (e, w, q) = (event.clone(), waiting.clone(), woke.clone());
            spawn(move || {
                w.release().unwrap();
                assert!(e.wait_timeout(LONG).unwrap());
                q.put(i).unwrap();
            })
        })
        .collect();
    for _ in 0..3 {
        waiting.acquire().unwrap();
    }
    std::thread::sleep(Duration::from_millis(100)); // let them reach the wait
    assert!(woke.empty(), "nobody passes before the event is set");
    let e = event.clone();
    join_ok(spawn(move || e.set()));
    let mut ids: Vec<u32> = (0..3).map(|_| woke.get_timeout(LONG).unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2]);
    waiters.into_iter().for_each(join_ok);
    assert!(event.is_set());
    assert!(event.wait_timeout(Duration::ZERO).unwrap());
    event.clear();
    assert!(!event.wait_timeout(Duration::from_millis(20)).unwrap());
}

#[test]
fn event_pulse_set_then_cleared_still_wakes_a_waiter() {
    let event = Event::new().unwrap();
    let waiting = Semaphore::new(0).unwrap();
    let (e, w) = (event.clone(), waiting.clone());
    let waiter = spawn(move || {
        w.release().unwrap();
        assert!(e.wait_timeout(LONG).unwrap());
    });
    waiting.acquire().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    event.set();
    event.clear();
    join_ok(waiter);
}

/// Starts a child that waits on `cond` (counting itself in `waiting` under the condition's lock,
/// which `wait` releases) and reports `id` on `woke` when notified.
fn condition_waiter(id: u32, cond: &Condition, waiting: &Value<u32>, woke: &Queue<u32>) -> Process {
    let (c, w, q) = (cond.clone(), waiting.clone(), woke.clone());
    spawn(move || {
        let _g = c.lock().unwrap();
        *w.lock().unwrap() += 1;
        assert!(c.wait_timeout(LONG).unwrap(), "notified before the timeout");
        q.put(id).unwrap();
    })
}

/// Waits until `n` waiters are inside `cond.wait()`: they counted themselves under the lock, and
/// only `wait` releases it.
fn until_waiting(cond: &Condition, waiting: &Value<u32>, n: u32) {
    assert!(wait_for(LONG, || {
        let _g = cond.lock().unwrap();
        waiting.get().unwrap() == n
    }));
}

#[test]
fn condition_notify_wakes_exactly_one_and_notify_all_the_rest() {
    let cond = Condition::new().unwrap();
    let waiting = Value::new(0u32).unwrap();
    let woke: Queue<u32> = Queue::new().unwrap();
    let children: Vec<Process> = (0..3)
        .map(|i| condition_waiter(i, &cond, &waiting, &woke))
        .collect();
    until_waiting(&cond, &waiting, 3);
    {
        let _g = cond.lock().unwrap();
        cond.notify().unwrap();
    }
    let first = woke.get_timeout(LONG).unwrap();
    assert!(
        matches!(
            woke.get_timeout(Duration::from_millis(300)),
            Err(Error::Empty)
        ),
        "notify woke more than one waiter"
    );
    {
        let _g = cond.lock().unwrap();
        cond.notify_all().unwrap();
    }
    let mut all = vec![
        first,
        woke.get_timeout(LONG).unwrap(),
        woke.get_timeout(LONG).unwrap(),
    ];
    all.sort();
    assert_eq!(all, [0, 1, 2]);
    children.into_iter().for_each(join_ok);
}

#[test]
fn condition_notify_n_wakes_the_oldest_waiters() {
    let cond = Condition::new().unwrap();
    let waiting = Value::new(0u32).unwrap();
    let woke: Queue<u32> = Queue::new().unwrap();
    // One at a time, so that the arrival order is 0, 1, 2, 3.
    let mut children = Vec::new();
    for i in 0..4 {
        children.push(condition_waiter(i, &cond, &waiting, &woke));
        until_waiting(&cond, &waiting, i + 1);
    }
    {
        let _g = cond.lock().unwrap();
        cond.notify_n(2).unwrap();
    }
    let mut first = [
        woke.get_timeout(LONG).unwrap(),
        woke.get_timeout(LONG).unwrap(),
    ];
    first.sort();
    assert_eq!(first, [0, 1]);
    assert!(matches!(
        woke.get_timeout(Duration::from_millis(300)),
        Err(Error::Empty)
    ));
    {
        let _g = cond.lock().unwrap();
        cond.notify_n(10).unwrap(); // more than wait: wakes the two left
    }
    let mut rest = [
        woke.get_timeout(LONG).unwrap(),
        woke.get_timeout(LONG).unwrap(),
    ];
    rest.sort();
    assert_eq!(rest, [2, 3]);
    children.into_iter().for_each(join_ok);
}

#[test]
fn a_condition_waiter_killed_in_its_wait_does_not_take_a_notification() {
    let cond = Condition::new().unwrap();
    let waiting = Value::new(0u32).unwrap();
    let woke: Queue<u32> = Queue::new().unwrap();
    let mut doomed = condition_waiter(0, &cond, &waiting, &woke);
    until_waiting(&cond, &waiting, 1);
    doomed.kill().unwrap();
    doomed.join().unwrap();
    // Older than the dead waiter's last heartbeat by more than the staleness bound (100 ms).
    std::thread::sleep(Duration::from_millis(300));
    let alive = condition_waiter(1, &cond, &waiting, &woke);
    until_waiting(&cond, &waiting, 2);
    {
        let _g = cond.lock().unwrap();
        cond.notify().unwrap(); // the oldest waiter is dead: the live one gets it
    }
    assert_eq!(woke.get_timeout(LONG).unwrap(), 1);
    join_ok(alive);
    assert_eq!(format!("{cond:?}"), "<Condition(<RLock(None, 0)>, 0)>");
}

#[test]
fn condition_over_a_lock_with_wait_for_and_ownership_errors() {
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(lock.clone()).unwrap();
    let flag = Value::new(0i32).unwrap();
    // Waiting or notifying without holding the lock: Python's AssertionError.
    assert!(matches!(cond.wait(), Err(Error::NotOwner)));
    assert!(matches!(cond.notify(), Err(Error::NotOwner)));
    assert!(matches!(cond.notify_all(), Err(Error::NotOwner)));
    {
        let _g = cond.lock().unwrap();
        assert!(!cond.wait_timeout(Duration::from_millis(50)).unwrap());
        assert_eq!(
            format!("{lock:?}"),
            "<Lock(owner=MainProcess)>",
            "held again after wait"
        );
    }
    let results: Queue<bool> = Queue::new().unwrap();
    let waiters: Vec<Process> = (0..2)
        .map(|_| {
            let (c, f, q) = (cond.clone(), flag.clone(), results.clone());
            spawn(move || {
                let _g = c.lock().unwrap();
                let ok = c.wait_for_timeout(|| f.get().unwrap() == 1, LONG).unwrap();
                q.put(ok).unwrap();
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    {
        let _g = lock.lock().unwrap();
        flag.set(1).unwrap();
        cond.notify_all().unwrap();
    }
    assert_eq!(
        [
            results.get_timeout(LONG).unwrap(),
            results.get_timeout(LONG).unwrap()
        ],
        [true, true]
    );
    waiters.into_iter().for_each(join_ok);
    // An RLock held twice is released entirely by wait and restored after.
    let cond = Condition::new().unwrap();
    cond.acquire().unwrap();
    cond.acquire().unwrap();
    let c = cond.clone();
    let notifier = spawn(move || {
        let _g = c.lock().unwrap(); // possible only while the parent waits
        c.notify().unwrap();
    });
    assert!(cond.wait_timeout(LONG).unwrap());
    assert_eq!(
        format!("{cond:?}"),
        "<Condition(<RLock(MainProcess, 2)>, 0)>"
    );
    cond.release().unwrap();
    cond.release().unwrap();
    join_ok(notifier);
}

#[test]
fn barrier_of_four_gives_indexes_zero_to_three_and_runs_the_action_once() {
    let runs = Value::new(0u32).unwrap();
    let r = runs.clone();
    let barrier = Barrier::with_action(4, move || *r.lock().unwrap() += 1).unwrap();
    let indexes: Queue<usize> = Queue::new().unwrap();
    for round in 1..=2u32 {
        let children: Vec<Process> = (0..4)
            .map(|_| {
                let (b, q) = (barrier.clone(), indexes.clone());
                spawn(move || q.put(b.wait().unwrap()).unwrap())
            })
            .collect();
        let mut got: Vec<usize> = (0..4).map(|_| indexes.get_timeout(LONG).unwrap()).collect();
        got.sort();
        assert_eq!(got, [0, 1, 2, 3]);
        children.into_iter().for_each(join_ok);
        assert_eq!(runs.get().unwrap(), round);
    }
    assert_eq!(barrier.parties(), 4);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

/// Starts `n` children that wait on `barrier` and report the outcome.
fn barrier_waiters(n: usize, barrier: &Barrier, out: &Queue<String>) -> Vec<Process> {
    (0..n)
        .map(|_| {
            let (b, q) = (barrier.clone(), out.clone());
            spawn(move || {
                let r = match b.wait() {
                    Ok(i) => format!("index {i}"),
                    Err(e) => format!("{e:?}"),
                };
                q.put(r).unwrap();
            })
        })
        .collect()
}

/// Two children and this process meet at a 3-party barrier: indexes 0, 1 and 2 handed out once each.
fn full_round_of_three(barrier: &Barrier, out: &Queue<String>) {
    let children = barrier_waiters(2, barrier, out);
    let mine = barrier.wait_timeout(LONG).unwrap();
    let mut all = vec![
        format!("index {mine}"),
        out.get().unwrap(),
        out.get().unwrap(),
    ];
    all.sort();
    assert_eq!(all, ["index 0", "index 1", "index 2"]);
    children.into_iter().for_each(join_ok);
}

#[test]
fn barrier_timeout_breaks_it_for_every_waiter_until_reset() {
    let barrier = Barrier::new(3).unwrap();
    let out: Queue<String> = Queue::new().unwrap();
    let children = barrier_waiters(1, &barrier, &out);
    assert!(wait_for(LONG, || barrier.n_waiting() == 1));
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(100)),
        Err(Error::BrokenBarrier)
    ));
    assert_eq!(out.get_timeout(LONG).unwrap(), "BrokenBarrier");
    children.into_iter().for_each(join_ok);
    assert!(barrier.broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
    barrier.reset();
    assert!(!barrier.broken());
    // Usable again.
    full_round_of_three(&barrier, &out);
    // A default timeout given at creation.
    let lonely = Barrier::new(2)
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    assert!(matches!(lonely.wait(), Err(Error::BrokenBarrier)));
}

#[test]
fn barrier_abort_breaks_it_for_every_waiter() {
    let barrier = Barrier::new(4).unwrap();
    let out: Queue<String> = Queue::new().unwrap();
    let children = barrier_waiters(3, &barrier, &out);
    assert!(wait_for(LONG, || barrier.n_waiting() == 3));
    let b = barrier.clone();
    join_ok(spawn(move || b.abort()));
    for _ in 0..3 {
        assert_eq!(out.get_timeout(LONG).unwrap(), "BrokenBarrier");
    }
    children.into_iter().for_each(join_ok);
    assert!(barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    barrier.reset();
    let children = barrier_waiters(3, &barrier, &out);
    barrier.wait_timeout(LONG).unwrap();
    for _ in 0..3 {
        assert!(out.get_timeout(LONG).unwrap().starts_with("index "));
    }
    children.into_iter().for_each(join_ok);
}

#[test]
fn barrier_reset_recovers_from_a_party_killed_in_its_wait() {
    let barrier = Barrier::new(3).unwrap();
    let out: Queue<String> = Queue::new().unwrap();
    let mut doomed = barrier_waiters(1, &barrier, &out).pop().unwrap();
    assert!(wait_for(LONG, || barrier.n_waiting() == 1));
    doomed.kill().unwrap();
    doomed.join().unwrap();
    // It broke the barrier (Python's would count it as waiting).
    assert!(barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    assert_eq!(barrier.dead_party(), doomed.pid());
    barrier.reset();
    assert!(!barrier.broken());
    assert_eq!(barrier.dead_party(), None);
    full_round_of_three(&barrier, &out);
}

/// Runs `f` on a thread of its own: its result and how long it took, or `None` if it is still
/// running after `limit` (a hang fails the test instead of stopping it).
fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<(T, Duration)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let r = f();
        let _ = tx.send((r, start.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn barrier_wait_timeout_returns_by_its_deadline_in_every_round_after_a_party_died() {
    let barrier = Barrier::new(2).unwrap();
    let out: Queue<String> = Queue::new().unwrap();
    let timeout = Duration::from_secs(1);
    for round in 0..5 {
        let mut doomed = barrier_waiters(1, &barrier, &out).pop().unwrap();
        assert!(wait_for(LONG, || barrier.n_waiting() == 1), "round {round}");
        doomed.kill().unwrap();
        doomed.join().unwrap();
        let mut results = Vec::new();
        for call in 0..3 {
            let b = barrier.clone();
            let Some((r, took)) = within(timeout * 6, move || b.wait_timeout(timeout)) else {
                panic!(
                    "round {round}: call {call} of wait_timeout(1 s) still waits after 6 s \
                     (the calls before it: {results:?})"
                );
            };
            assert!(
                took < timeout * 3,
                "round {round}: call {call} took {took:?}"
            );
            results.push(r);
        }
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(Error::BrokenBarrier))),
            "round {round}: {results:?}: a party died in its wait, the barrier is broken"
        );
        assert!(barrier.broken());
        assert_eq!(barrier.dead_party(), doomed.pid(), "round {round}");
        barrier.reset();
        assert!(!barrier.broken());
    }
    // Reset, it works again.
    let children = barrier_waiters(1, &barrier, &out);
    let mine = barrier.wait_timeout(LONG).unwrap();
    let theirs = out.get_timeout(LONG).unwrap();
    assert_eq!(theirs, format!("index {}", 1 - mine));
    children.into_iter().for_each(join_ok);
}

#[test]
fn barrier_party_killed_releases_the_parties_waiting_with_it() {
    let barrier = Barrier::new(3).unwrap();
    let out: Queue<String> = Queue::new().unwrap();
    // A daemon: if it waited forever, the test would fail instead of hanging at exit.
    let (b, q) = (barrier.clone(), out.clone());
    let mut survivor = Process::new(move || {
        let r = b
            .wait()
            .map_or_else(|e| format!("{e:?}"), |i| format!("index {i}"));
        q.put(r).unwrap();
    })
    .with_daemon(true);
    survivor.start().unwrap();
    assert!(wait_for(LONG, || barrier.n_waiting() == 1));
    let mut doomed = barrier_waiters(1, &barrier, &out).pop().unwrap();
    assert!(wait_for(LONG, || barrier.n_waiting() == 2));
    doomed.kill().unwrap();
    // The survivor waits without a timeout: it learns of the death, it does not wait forever.
    assert_eq!(
        out.get_timeout(Duration::from_secs(10)).ok().as_deref(),
        Some("BrokenBarrier")
    );
    join_ok(survivor);
    doomed.join().unwrap();
    assert_eq!(barrier.dead_party(), doomed.pid());
    // So does a later wait without a timeout.
    let b = barrier.clone();
    let r = within(Duration::from_secs(10), move || b.wait()).map(|(r, _)| r);
    assert!(matches!(r, Some(Err(Error::BrokenBarrier))), "{r:?}");
}

#[test]
fn barrier_party_killed_in_the_action_breaks_it() {
    let in_action = Event::new().unwrap();
    let e = in_action.clone();
    let barrier = Barrier::with_action(2, move || {
        e.set();
        std::thread::sleep(Duration::from_secs(3600));
    })
    .unwrap();
    let b = barrier.clone();
    let first = std::thread::spawn(move || b.wait());
    assert!(wait_for(LONG, || barrier.n_waiting() == 1));
    // The last to arrive runs the action: this child. It dies in it.
    let b = barrier.clone();
    let mut last = spawn(move || drop(b.wait()));
    assert!(in_action.wait_timeout(LONG).unwrap());
    last.kill().unwrap();
    last.join().unwrap();
    let r = within(Duration::from_secs(10), move || first.join().unwrap()).map(|(r, _)| r);
    assert!(matches!(r, Some(Err(Error::BrokenBarrier))), "{r:?}");
    assert!(barrier.broken());
}

#[test]
fn a_lock_holder_killed_does_not_block_the_next_acquirer() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let (l, h) = (lock.clone(), held.clone());
    let mut holder = spawn(move || {
        let _g = l.lock().unwrap();
        h.set();
        std::thread::sleep(Duration::from_secs(3600));
    });
    held.wait_timeout(LONG).unwrap();
    let waiter_lock = lock.clone();
    // A waiter already blocked when the holder dies is woken by the kernel.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tx.send(common::this_thread()).unwrap();
        let g = waiter_lock.lock_timeout(LONG).unwrap().expect("acquired");
        g.owner_died()
    });
    let waiting = rx.recv().unwrap();
    assert!(
        wait_for(LONG, || common::in_futex_wait(&waiting)),
        "the waiter blocks on the lock"
    );
    holder.kill().unwrap(); // not reaped yet: the lock is recovered at the holder's death
    assert!(
        waiter.join().unwrap(),
        "the next acquirer is told the owner died"
    );
    holder.join().unwrap();
    assert_eq!(holder.exitcode(), Some(-9));
    // The holding after that is a normal one.
    let g = lock.lock_timeout(LONG).unwrap().expect("acquired");
    assert!(!g.owner_died());
    drop(g);

    // The same for an RLock and for a Value's lock, acquired after the death.
    let rlock = RLock::new().unwrap();
    let value = Value::new(5u64).unwrap();
    let (r, v, h) = (rlock.clone(), value.clone(), Event::new().unwrap());
    let h2 = h.clone();
    let mut holder = spawn(move || {
        let _a = r.lock().unwrap();
        let _b = r.lock().unwrap();
        let mut g = v.lock().unwrap();
        *g = 6;
        h2.set();
        std::thread::sleep(Duration::from_secs(3600));
    });
    h.wait_timeout(LONG).unwrap();
    holder.kill().unwrap();
    holder.join().unwrap();
    let g = rlock.lock_timeout(LONG).unwrap().expect("acquired");
    assert!(g.owner_died());
    assert_eq!(format!("{rlock:?}"), "<RLock(MainProcess, 1)>");
    drop(g);
    let g = value.lock().unwrap();
    assert!(g.owner_died());
    assert_eq!(*g, 6);
    drop(g);
    assert_eq!(value.get().unwrap(), 6);
    assert!(!value.lock().unwrap().owner_died());
}

#[test]
fn a_thread_that_exits_holding_a_lock_hands_it_over_too() {
    let lock = Lock::new().unwrap();
    let l = lock.clone();
    std::thread::spawn(move || l.acquire().unwrap())
        .join()
        .unwrap();
    let g = lock.lock_timeout(LONG).unwrap().expect("acquired");
    assert!(g.owner_died());
    drop(g);
    assert!(!lock.lock().unwrap().owner_died());
}

#[test]
fn processes_killed_inside_semaphores_and_events_leave_them_working() {
    let sem = Semaphore::new(0).unwrap();
    let event = Event::new().unwrap();
    let (s, e) = (sem.clone(), event.clone());
    let mut sleepers = vec![
        spawn(move || {
            let _ = s.acquire();
        }),
        spawn(move || {
            let _ = e.wait();
        }),
    ];
    std::thread::sleep(Duration::from_millis(100));
    for p in &mut sleepers {
        p.kill().unwrap();
        p.join().unwrap();
    }
    sem.release().unwrap();
    assert!(sem.acquire_timeout(LONG).unwrap());
    let e = event.clone();
    let waiter = spawn(move || assert!(e.wait_timeout(LONG).unwrap()));
    event.set();
    join_ok(waiter);
}
