//! Queue, SimpleQueue, JoinableQueue across processes.

mod common;

use common::blob;
use multiprocessing::{ByteBuf, Error, JoinableQueue, Process, Queue, SimpleQueue};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn four_producers_four_consumers_every_message_exactly_once() {
    const PER_PRODUCER: u32 = 10_000;
    let work: Queue<Option<(u32, u32)>> = Queue::new().unwrap();
    let results: Queue<Vec<(u32, u32)>> = Queue::new().unwrap();
    let mut procs = Vec::new();
    for producer in 0..4u32 {
        let q = work.clone();
        procs.push(Process::new(move || {
            for i in 0..PER_PRODUCER {
                q.put(Some((producer, i))).unwrap();
            }
        }));
    }
    for _ in 0..4 {
        let q = work.clone();
        let out = results.clone();
        procs.push(Process::new(move || {
            let mut got = Vec::new();
            while let Some(item) = q.get().unwrap() {
                got.push(item);
            }
            out.put(got).unwrap();
        }));
    }
    for p in &mut procs {
        p.start().unwrap();
    }
    for p in &mut procs[..4] {
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
    for _ in 0..4 {
        work.put(None).unwrap();
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for _ in 0..4 {
        let got = results.get_timeout(Duration::from_secs(60)).unwrap();
        // Each producer's items arrive in its order, whoever consumes them.
        let mut last = [None::<u32>; 4];
        for (p, i) in &got {
            if let Some(prev) = last[*p as usize] {
                assert!(*i > prev, "producer {p}: {i} after {prev}");
            }
            last[*p as usize] = Some(*i);
        }
        total += got.len();
        seen.extend(got);
    }
    for p in &mut procs[4..] {
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
    assert_eq!(total, 4 * PER_PRODUCER as usize, "no duplicates");
    assert_eq!(seen.len(), 4 * PER_PRODUCER as usize, "no losses");
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn sixteen_mib_message_arrives_intact() {
    let q: Queue<Vec<u8>> = Queue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || tx.put(pattern(16 << 20)).unwrap());
    p.start().unwrap();
    let got = q.get_timeout(Duration::from_secs(60)).unwrap();
    p.join().unwrap();
    assert_eq!(got.len(), 16 << 20);
    assert!(got == pattern(16 << 20));
    // And as raw bytes, the fast way.
    let qb: Queue<ByteBuf> = Queue::new().unwrap();
    qb.put(ByteBuf::from(pattern(16 << 20))).unwrap();
    assert!(qb.get().unwrap().into_vec() == pattern(16 << 20));
}

#[test]
fn a_child_that_put_large_data_exits_before_it_is_read() {
    // Python's classic deadlock: join before get hangs when the child put more than a pipe holds.
    let q: Queue<ByteBuf> = Queue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || tx.put(ByteBuf::from(vec![7u8; 10_000_000])).unwrap());
    p.start().unwrap();
    p.join_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        p.exitcode(),
        Some(0),
        "the child exited without anyone reading"
    );
    assert_eq!(
        q.get_nowait().unwrap().len(),
        10_000_000,
        "and the data is still there"
    );
}

#[test]
fn fifo_timeouts_and_nowait() {
    let q: Queue<i32> = Queue::new().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(q.qsize(), 3);
    assert!(!q.empty());
    assert_eq!(
        (0..3).map(|_| q.get().unwrap()).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let start = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(300)),
        Err(Error::Empty)
    ));
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert!(matches!(q.get_nowait(), Err(Error::Empty)));
    assert!(q.empty());
}

#[test]
fn maxsize_full_and_a_blocked_put_resumes_after_a_get() {
    let q: Queue<u8> = Queue::with_maxsize(2).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(q.full());
    assert!(matches!(q.put_nowait(3), Err(Error::Full)));
    let start = Instant::now();
    assert!(matches!(
        q.put_timeout(3, Duration::from_millis(300)),
        Err(Error::Full)
    ));
    assert!(start.elapsed() >= Duration::from_millis(290));
    let tx = q.clone();
    let mut p = Process::new(move || tx.put(3).unwrap());
    p.start().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(p.is_alive(), "the child's put waits for room");
    assert_eq!(q.get().unwrap(), 1);
    p.join_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
}

#[test]
fn closed_queue_refuses_put_and_get() {
    let q: Queue<u8> = Queue::new().unwrap();
    q.put(1).unwrap();
    q.close();
    assert!(matches!(q.put(2), Err(Error::Closed(_))));
    assert!(matches!(q.get(), Err(Error::Closed(_))));
}

#[test]
fn simple_queue_between_processes() {
    let q: SimpleQueue<String> = SimpleQueue::new().unwrap();
    let tx = q.clone();
    let mut p = Process::new(move || tx.put("from child".to_string()).unwrap());
    p.start().unwrap();
    assert_eq!(q.get().unwrap(), "from child");
    p.join().unwrap();
    assert!(q.empty());
    q.close();
    assert!(q.get().is_err());
}

#[test]
fn joinable_queue_join_waits_for_task_done() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    let results: Queue<u32> = Queue::new().unwrap();
    let (worker_q, out) = (q.clone(), results.clone());
    let mut worker = Process::new(move || {
        loop {
            let x = worker_q.get().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            out.put(x * 2).unwrap();
            worker_q.task_done().unwrap();
        }
    })
    .with_daemon(true);
    worker.start().unwrap();
    let start = Instant::now();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    q.join().unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "join returned early: {:?}",
        start.elapsed()
    );
    assert_eq!(results.qsize(), 5);
    let got: Vec<u32> = (0..5).map(|_| results.get().unwrap()).collect();
    assert_eq!(got, vec![0, 2, 4, 6, 8]);
    worker.terminate().unwrap();
    worker.join().unwrap();
    assert!(matches!(q.task_done(), Err(Error::TaskDoneTooManyTimes)));
}

#[test]
fn a_consumer_killed_while_waiting_does_not_block_the_others() {
    // The killed consumer holds the consumers' lock while it waits: the robust lock passes it on.
    let q: Queue<u32> = Queue::new().unwrap();
    let rx = q.clone();
    let mut victim = Process::new(move || {
        let _ = rx.get();
    });
    victim.start().unwrap();
    let waiting = format!("/proc/{}", victim.pid().unwrap());
    assert!(
        common::wait_for(Duration::from_secs(10), || common::in_futex_wait(&waiting)),
        "the consumer blocks in get"
    );
    victim.kill().unwrap();
    victim.join().unwrap();
    q.put(42).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 42);
}

#[test]
fn values_of_many_types_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
    enum Msg {
        Text(String),
        Pair { a: f64, b: Option<Vec<i16>> },
    }
    let q: Queue<Msg> = Queue::new().unwrap();
    let items = vec![
        Msg::Text("héllo".into()),
        Msg::Pair {
            a: 1.5,
            b: Some(vec![-1, 2]),
        },
        Msg::Pair {
            a: f64::MAX,
            b: None,
        },
    ];
    let tx = q.clone();
    let sent = items.clone();
    let mut p = Process::new(move || {
        for m in sent {
            tx.put(m).unwrap();
        }
    });
    p.start().unwrap();
    let got: Vec<Msg> = (0..3).map(|_| q.get().unwrap()).collect();
    p.join().unwrap();
    assert_eq!(got, items);
}

#[test]
fn megabyte_stream_with_and_without_a_backlog_stays_intact() {
    // A consumer that keeps up (the ring recycles its warm start), then a backlog far larger
    // than the warm zone (the ring grows into fresh memory and gives it back once read).
    for backlog in [false, true] {
        let q: Queue<(u32, ByteBuf)> = Queue::new().unwrap();
        let tx = q.clone();
        let n = 60u32;
        let mut p = Process::new(move || {
            for i in 0..n {
                tx.put((i, blob(i, (1 << 20) + i as usize * 8 + 3)))
                    .unwrap();
            }
        });
        p.start().unwrap();
        if backlog {
            p.join().unwrap();
            assert_eq!(q.qsize(), n as usize);
        }
        for i in 0..n {
            let (j, data) = q.get_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(j, i);
            assert!(
                data == blob(i, (1 << 20) + i as usize * 8 + 3),
                "message {i} corrupted"
            );
        }
        p.join().unwrap();
        assert!(q.empty());
    }
}

#[test]
fn messages_around_a_window_in_size_stay_intact_with_and_without_a_backlog() {
    // The ring is mapped 8 MiB at a time: a message of up to a window (header included) goes in
    // one window, a larger one is mapped on its own. A ByteBuf of n bytes is a frame of
    // 8 + (5 + n) rounded up to 8 bytes, so these straddle that limit, and the small ones in
    // between land at every offset.
    const WINDOW: usize = 8 << 20;
    let sizes = [
        WINDOW - 13,
        3,
        WINDOW - 12,
        WINDOW - 13,
        1 << 20,
        WINDOW + 1,
        17 << 20,
        0,
        WINDOW - 13,
    ];
    for backlog in [false, true] {
        let q: Queue<(usize, ByteBuf)> = Queue::new().unwrap();
        let tx = q.clone();
        let mut p = Process::new(move || {
            for _ in 0..3 {
                for (i, n) in sizes.iter().enumerate() {
                    tx.put((i, blob(i as u32, *n))).unwrap();
                }
            }
        });
        p.start().unwrap();
        if backlog {
            p.join().unwrap();
            assert_eq!(q.qsize(), 3 * sizes.len());
        }
        for _ in 0..3 {
            for (i, n) in sizes.iter().enumerate() {
                let (j, data) = q.get_timeout(Duration::from_secs(30)).unwrap();
                assert_eq!(j, i);
                assert!(
                    data == blob(i as u32, *n),
                    "message {i} of {n} bytes corrupted"
                );
            }
        }
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
        assert!(q.empty());
    }
}

#[test]
fn a_large_put_right_after_the_ring_went_back_to_its_start_does_not_wait() {
    // With the consumer keeping up past the ring's warm start (4 MiB), the next put goes back to
    // the start; a message larger than what lies before the consumers' position then still fits
    // (the rest of the previous lap is free), before any get.
    let q: Queue<ByteBuf> = Queue::new().unwrap();
    for size in [1 << 20, 1 << 20, 1 << 20, 2 << 20] {
        q.put(ByteBuf::from(vec![1u8; size])).unwrap();
        assert_eq!(q.get().unwrap().len(), size);
    }
    // 5 MiB written and read: this one goes back to the start.
    q.put(ByteBuf::from(vec![2u8; 10])).unwrap();
    q.put_timeout(ByteBuf::from(vec![3u8; 64 << 20]), Duration::from_secs(10))
        .unwrap();
    q.put(ByteBuf::from(vec![4u8; 10])).unwrap();
    assert!(q.get().unwrap() == ByteBuf::from(vec![2u8; 10]));
    assert!(q.get().unwrap() == ByteBuf::from(vec![3u8; 64 << 20]));
    assert!(q.get().unwrap() == ByteBuf::from(vec![4u8; 10]));
    assert!(q.empty());
}
