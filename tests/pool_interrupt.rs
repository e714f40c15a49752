//! After an interrupt, no task of the interrupted call runs again, whatever the interleaving, even
//! with other threads blocked in library calls that may see the interrupt first. (SIGINT is
//! process-wide: this file holds one test.)

use multiprocessing::{Error, Pool, Queue, Value, interrupt};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The last round whose `map` has returned `Interrupted` (shared with the workers).
static STOPPED: OnceLock<Value<u64>> = OnceLock::new();
/// Tasks that started after their call had returned `Interrupted`.
static LATE: OnceLock<Value<u64>> = OnceLock::new();

fn slow(round_and_index: (u64, u64)) -> u64 {
    let (round, index) = round_and_index;
    if STOPPED.get().unwrap().get().unwrap() >= round {
        *LATE.get().unwrap().lock().unwrap() += 1;
        eprintln!("task {index} of interrupted round {round} started after the interrupt");
    }
    std::thread::sleep(Duration::from_secs(3));
    index
}

fn quick(x: u64) -> u64 {
    x + 1
}

#[test]
fn no_task_of_an_interrupted_map_runs_after_interrupted_is_returned() {
    STOPPED.set(Value::new(0).unwrap()).unwrap();
    LATE.set(Value::new(0).unwrap()).unwrap();
    interrupt::enable().unwrap();
    let pool = Pool::new(2).unwrap();

    // Other threads blocked in library calls: they may be the first to see each interrupt.
    let q: Queue<bool> = Queue::new().unwrap();
    let blocked: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                loop {
                    match q.get() {
                        Ok(_) => return,
                        Err(Error::Interrupted) => continue,
                        Err(e) => panic!("Queue::get: {e}"),
                    }
                }
            })
        })
        .collect();

    let rounds = 50u64;
    for round in 1..=rounds {
        let delay = Duration::from_millis(5 + (round * 37) % 60);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(delay);
            if round % 2 == 0 {
                // SAFETY: signalling our own process.
                unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
            } else {
                interrupt::trigger();
            }
        });
        let items: Vec<(u64, u64)> = (0..6).map(|i| (round, i)).collect();
        let got = pool.map_chunked(slow, items, 1);
        STOPPED.get().unwrap().set(round).unwrap();
        sender.join().unwrap();
        assert!(
            matches!(got, Err(Error::Interrupted)),
            "round {round}: {got:?}"
        );
        // The pool is free at once: nothing of the cancelled map runs ahead of new work.
        let start = Instant::now();
        let next = pool.map_chunked(quick, 0..4u64, 1);
        let took = start.elapsed();
        assert_eq!(next.unwrap(), vec![1, 2, 3, 4], "round {round}");
        assert!(
            took < Duration::from_millis(2500),
            "round {round}: the next map waited {took:?} behind the interrupted one"
        );
        assert_eq!(
            LATE.get().unwrap().get().unwrap(),
            0,
            "round {round}: a task of an interrupted map ran after Interrupted was returned"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(LATE.get().unwrap().get().unwrap(), 0);

    // An imap under way when another call reports an interrupt ends with one `Interrupted`.
    let mut endless = pool.imap(quick, 0u64..).unwrap();
    assert_eq!(endless.next().unwrap().unwrap(), 1);
    interrupt::trigger();
    std::thread::sleep(Duration::from_millis(200));
    let rest: Vec<_> = endless.by_ref().take(1000).collect();
    assert_eq!(rest.len(), 1, "{:?}", &rest[..rest.len().min(3)]);
    assert!(matches!(rest[0], Err(Error::Interrupted)), "{:?}", rest[0]);
    assert!(!interrupt::pending());
    assert_eq!(pool.map(quick, 0..3u64).unwrap(), vec![1, 2, 3]);
    for _ in &blocked {
        q.put(true).unwrap();
    }
    for t in blocked {
        t.join().unwrap();
    }
}
