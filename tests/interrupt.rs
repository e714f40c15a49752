//! The interrupt opt-in: SIGINT ends blocking calls with `Interrupted` and terminates children.
//! SIGINT is process-wide, so this file holds one test that runs its cases in sequence.

mod common;

use common::{expect_interrupted, is_dead, wait_for};
use multiprocessing::{
    Error, JoinableQueue, Pipe, Pool, Process, Queue, active_children, interrupt,
};
use std::time::Duration;

fn forever(_: u32) -> u32 {
    std::thread::sleep(Duration::from_secs(3600));
    0
}

fn square(x: u32) -> u32 {
    x * x
}

#[test]
fn sigint_interrupts_every_blocking_call_and_terminates_children() {
    interrupt::enable().unwrap();

    // join on a never-ending child
    let mut p = Process::new(|| {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    p.start().unwrap();
    let pid = p.pid().unwrap();
    expect_interrupted("Process::join", || p.join());
    assert!(is_dead(pid), "the child was terminated");
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(-15));
    assert!(
        active_children().is_empty(),
        "no child left: {:?}",
        active_children()
    );

    // The interrupt was reported: new calls run normally.
    assert!(!interrupt::pending());
    let q: Queue<u32> = Queue::new().unwrap();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(50)),
        Err(Error::Empty)
    ));

    expect_interrupted("Queue::get", || q.get());
    let (a, _b) = Pipe::new::<u32>().unwrap();
    expect_interrupted("Connection::recv", || a.recv());
    expect_interrupted("Connection::poll", || a.poll(None));
    let jq: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    jq.put(1).unwrap();
    expect_interrupted("JoinableQueue::join", || jq.join());

    // A pool blocked in map: the call ends, the workers are terminated, the pool recovers.
    let pool = Pool::new(2).unwrap();
    let warm: Vec<u32> = pool.map(square, 0..4).unwrap();
    assert_eq!(warm, vec![0, 1, 4, 9]);
    let workers: Vec<u32> = active_children().iter().map(|c| c.pid()).collect();
    assert_eq!(workers.len(), 2);
    expect_interrupted("Pool::map", || pool.map(forever, 0..2));
    for w in &workers {
        assert!(
            wait_for(Duration::from_secs(5), || is_dead(*w)),
            "worker {w} survived"
        );
    }
    let r = pool.apply_async(forever, (0,)).unwrap();
    expect_interrupted("AsyncResult::get", || r.get());
    assert_eq!(
        pool.map(square, 0..5).unwrap(),
        vec![0, 1, 4, 9, 16],
        "the pool works again"
    );
    let mut it = pool.imap(forever, 0..1).unwrap();
    expect_interrupted("IMapIterator::next", || it.next().unwrap());
    drop(pool);

    // An interrupt while nothing blocks is reported by the next blocking call, once.
    interrupt::trigger();
    assert!(interrupt::pending());
    assert!(matches!(
        q.get_timeout(Duration::from_secs(5)),
        Err(Error::Interrupted)
    ));
    assert!(matches!(
        q.get_timeout(Duration::from_millis(10)),
        Err(Error::Empty)
    ));
    // clear() forgets a pending interrupt (what a kernel does when a new cell starts).
    interrupt::trigger();
    interrupt::clear();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(10)),
        Err(Error::Empty)
    ));

    interrupt::disable().unwrap();
}
