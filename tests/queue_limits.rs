//! Under an address-space limit (`ulimit -v`, as HPC clusters and batch schedulers set it), queues
//! and every other object work: each scenario runs in a fresh copy of this test program started
//! by `sh -c 'ulimit -v …; exec …'`, the way a user's job runs under such a limit.

mod common;

use common::{blob, join_ok, spawn};
use multiprocessing::{
    Array, ByteBuf, Event, JoinableQueue, Lock, Pipe, Pool, Process, Queue, SharedMemory,
    SimpleQueue, Value,
};
use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GIB_KIB: u64 = 1 << 20;

/// Runs the ignored test `scenario` of this program in a child limited to `kib` KiB of address
/// space; panics with its output unless it passed within two minutes.
fn run_limited(scenario: &str, kib: u64) {
    let exe = std::env::current_exe().unwrap();
    // Output to files, not pipes: a grandchild left behind by a failure cannot hold them open.
    let path = |what: &str| {
        std::env::temp_dir().join(format!(
            "queue_limits-{}-{scenario}.{what}",
            std::process::id()
        ))
    };
    let (out_path, err_path) = (path("out"), path("err"));
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            scenario,
            "--test-threads=1",
            "--nocapture",
        ])
        .env("LIMITED_AS_KIB", kib.to_string())
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    println!("{scenario} under ulimit -v {kib}:\n{stdout}");
    assert!(
        status.is_some_and(|st| st.success()) && stdout.contains("1 passed"),
        "{scenario} under ulimit -v {kib}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        status.map_or("timed out after 120 s".to_string(), |st| st.to_string())
    );
}

/// Checks that this process runs under the address-space limit its parent test set.
fn assert_limited() {
    let want: u64 = std::env::var("LIMITED_AS_KIB")
        .expect("run by the non-ignored test of the same name, under a limit")
        .parse()
        .unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) }, 0);
    assert_eq!(
        lim.rlim_cur,
        want * 1024,
        "the address-space limit is in force"
    );
}

fn square(x: u64) -> u64 {
    x * x
}

fn size_of_blob(b: ByteBuf) -> usize {
    b.len()
}

#[test]
fn every_object_works_under_a_1_gib_address_space_limit() {
    run_limited("scenario_1_gib", GIB_KIB);
}

#[test]
#[ignore = "run by every_object_works_under_a_1_gib_address_space_limit, under the limit"]
fn scenario_1_gib() {
    assert_limited();
    let q: Queue<(u32, ByteBuf)> = Queue::new().unwrap();
    let sq: SimpleQueue<String> = SimpleQueue::new().unwrap();
    let jq: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    let (a, b) = Pipe::new::<ByteBuf>().unwrap();
    let lock = Lock::new().unwrap();
    let event = Event::new().unwrap();
    let counter = Value::new(0u64).unwrap();
    let cells: Array<u32> = Array::new(1024).unwrap();
    let shm = SharedMemory::create(1 << 20).unwrap();
    let pool = Pool::new(2).unwrap();

    let (tx, stx, jrx) = (q.clone(), sq.clone(), jq.clone());
    let (lock2, event2, counter2, cells2) =
        (lock.clone(), event.clone(), counter.clone(), cells.clone());
    let child = spawn(move || {
        // A large message, then small ones.
        tx.put((0, blob(0, 64 << 20))).unwrap();
        for i in 1..=100 {
            tx.put((i, blob(i, i as usize * 100))).unwrap();
        }
        stx.put("from the child".to_string()).unwrap();
        let x = jrx.get_timeout(Duration::from_secs(30)).unwrap();
        jrx.task_done().unwrap();
        cells2.set(7, x).unwrap();
        {
            let _g = lock2.lock().unwrap();
            counter2.set(counter2.get().unwrap() + 1).unwrap();
        }
        let big = b.recv().unwrap();
        b.send(&ByteBuf::from(vec![1u8; big.len() / 2])).unwrap();
        event2.set();
    });
    jq.put(41).unwrap();
    a.send(&blob(9, 16 << 20)).unwrap();
    let (i, data) = q.get_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(i, 0);
    assert!(data == blob(0, 64 << 20), "the 64 MiB message is intact");
    drop(data);
    for i in 1..=100 {
        let (j, data) = q.get_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(j, i);
        assert!(data == blob(i, i as usize * 100));
    }
    assert_eq!(sq.get().unwrap(), "from the child");
    jq.join().unwrap();
    assert_eq!(a.recv().unwrap().len(), 8 << 20);
    assert!(event.wait_timeout(Duration::from_secs(30)).unwrap());
    join_ok(child);
    assert_eq!(counter.get().unwrap(), 1);
    assert_eq!(cells.get(7).unwrap(), 41);
    shm.write(0, b"shared").unwrap();
    let mut p = Process::new({
        let name = shm.name().to_string();
        move || {
            let s = SharedMemory::attach(&name).unwrap();
            s.write(6, b"!").unwrap();
        }
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    let mut seen = [0u8; 7];
    shm.read(0, &mut seen).unwrap();
    assert_eq!(&seen, b"shared!");
    shm.unlink().unwrap();
    // A message that does not fit in the address space left is refused by `put`, and nothing else
    // is lost.
    q.put((1, blob(1, 10))).unwrap();
    assert!(matches!(
        q.put((2, ByteBuf::from(vec![0u8; 600 << 20]))),
        Err(multiprocessing::Error::Os { call: "mmap", .. })
    ));
    q.put((3, blob(3, 10))).unwrap();
    assert_eq!(q.get().unwrap().0, 1);
    assert_eq!(q.get().unwrap().0, 3);
    assert!(q.empty());
    assert_eq!(pool.map(square, 0..1000u64).unwrap()[999], 999 * 999);
    assert_eq!(
        pool.apply(size_of_blob, (blob(3, 16 << 20),)).unwrap(),
        16 << 20
    );
}

#[test]
fn a_hundred_live_queues_work_under_an_8_gib_address_space_limit() {
    run_limited("scenario_100_queues_8_gib", 8 * GIB_KIB);
}

#[test]
#[ignore = "run by a_hundred_live_queues_work_under_an_8_gib_address_space_limit, under the limit"]
fn scenario_100_queues_8_gib() {
    assert_limited();
    let queues: Vec<Queue<(u32, ByteBuf)>> = (0..100).map(|_| Queue::new().unwrap()).collect();
    let senders = queues.clone();
    // Every queue gets a backlog (the ring goes past its first window), one a large message.
    let child = spawn(move || {
        for (i, q) in senders.iter().enumerate() {
            let i = i as u32;
            for k in 0..12 {
                q.put((k, blob(i * 100 + k, 1 << 20))).unwrap();
            }
            if i == 50 {
                q.put((99, blob(i, 256 << 20))).unwrap();
            }
        }
    });
    join_ok(child);
    for (i, q) in queues.iter().enumerate() {
        let i = i as u32;
        assert_eq!(q.qsize(), if i == 50 { 13 } else { 12 });
        for k in 0..12 {
            let (j, data) = q.get_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(j, k);
            assert!(data == blob(i * 100 + k, 1 << 20), "queue {i} message {k}");
        }
    }
    let (j, data) = queues[50].get_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(j, 99);
    assert!(data == blob(50, 256 << 20), "the 256 MiB message is intact");
    assert!(queues.iter().all(|q| q.empty()));
}

/// This process's address space (VmSize), in bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn queues_map_a_window_of_their_ring_not_all_of_it() {
    // Alone in a child (no other test's threads), with a generous limit that is not the point.
    run_limited("scenario_address_space", 16 * GIB_KIB);
}

#[test]
#[ignore = "run by queues_map_a_window_of_their_ring_not_all_of_it, in a child of its own"]
fn scenario_address_space() {
    assert_limited();
    const MIB: u64 = 1 << 20;
    let before = vm_size();
    let queues: Vec<Queue<ByteBuf>> = (0..20).map(|_| Queue::new().unwrap()).collect();
    for q in &queues {
        q.put(blob(1, 1000)).unwrap();
        assert!(q.get().unwrap() == blob(1, 1000));
    }
    let idle = vm_size() - before;
    println!("20 idle queues: {} MiB of address space", idle / MIB);
    assert!(idle <= 20 * 9 * MIB, "{} MiB for 20 queues", idle / MIB);
    // Backlogs past the first window, and messages larger than a window, several times over:
    // the extra windows are reused and each large message's own mapping goes away after its get.
    for q in &queues[..4] {
        for k in 0..40 {
            q.put(blob(k, (1 << 20) + k as usize)).unwrap();
        }
        q.put(blob(99, 48 << 20)).unwrap();
        for k in 0..40 {
            assert!(q.get().unwrap() == blob(k, (1 << 20) + k as usize));
        }
        assert!(q.get().unwrap() == blob(99, 48 << 20));
    }
    let used = vm_size() - before;
    println!("after the backlogs: {} MiB of address space", used / MIB);
    assert!(
        used <= idle + 4 * 16 * MIB + 64 * MIB,
        "{} MiB after the backlogs, {} MiB before them",
        used / MIB,
        idle / MIB
    );
}
