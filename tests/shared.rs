//! Value, Array and named SharedMemory between real processes.

mod common;

use common::{join_ok, spawn};
use multiprocessing::{Array, Error, Event, Process, Shareable, SharedMemory, Value};
use std::time::Duration;

#[test]
fn four_processes_increment_a_value_under_its_lock_exactly() {
    const N: i64 = 20_000;
    let v = Value::new(0i64).unwrap();
    let children: Vec<Process> = (0..4)
        .map(|_| {
            let v = v.clone();
            spawn(move || {
                for _ in 0..N {
                    *v.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    children.into_iter().for_each(join_ok);
    assert_eq!(v.get().unwrap(), 4 * N);
}

#[test]
fn the_python_idiom_get_lock_around_get_and_set_is_exact_too() {
    const N: u32 = 5_000;
    let v = Value::new(0u32).unwrap();
    let children: Vec<Process> = (0..4)
        .map(|_| {
            let v = v.clone();
            spawn(move || {
                for _ in 0..N {
                    let _held = v.get_lock().lock().unwrap();
                    v.set(v.get().unwrap() + 1).unwrap();
                }
            })
        })
        .collect();
    children.into_iter().for_each(join_ok);
    assert_eq!(v.get().unwrap(), 4 * N);
}

#[test]
fn a_guard_borrows_the_value_for_its_thread() {
    let v = Value::new(1.5f64).unwrap();
    let mut g = v.lock().unwrap();
    *g *= 2.0;
    assert!(matches!(v.get(), Err(Error::Borrowed)));
    assert!(matches!(v.set(0.0), Err(Error::Borrowed)));
    assert!(matches!(v.lock(), Err(Error::Borrowed)));
    assert_eq!(format!("{v:?}"), "<Synchronized wrapper (borrowed)>");
    // Another process waits for the guard.
    let other = v.clone();
    let child = spawn(move || assert_eq!(other.get().unwrap(), 3.0));
    std::thread::sleep(Duration::from_millis(50));
    drop(g);
    join_ok(child);
    assert_eq!(format!("{v:?}"), "<Synchronized wrapper for 3.0>");
    // The same holds for arrays.
    let a = Array::from_slice(&[1u8, 2]).unwrap();
    let g = a.lock().unwrap();
    assert!(matches!(a.to_vec(), Err(Error::Borrowed)));
    drop(g);
    assert_eq!(a.to_vec().unwrap(), [1, 2]);
}

#[test]
fn array_written_by_children_is_seen_by_the_parent() {
    const LEN: usize = 1000;
    let a: Array<u64> = Array::new(LEN).unwrap();
    assert_eq!(a.len(), LEN);
    assert!(a.to_vec().unwrap().iter().all(|&x| x == 0));
    let children: Vec<Process> = (0..4)
        .map(|k| {
            let a = a.clone();
            spawn(move || {
                // Child k writes the indexes congruent to k, half one by one, half through a guard.
                for i in (k..LEN / 2).step_by(4) {
                    a.set(i, (i * i) as u64).unwrap();
                }
                let mut g = a.lock().unwrap();
                for i in (LEN / 2 + (k + 2) % 4..LEN).step_by(4) {
                    g[i] = (i * i) as u64;
                }
            })
        })
        .collect();
    children.into_iter().for_each(join_ok);
    let got = a.to_vec().unwrap();
    for (i, x) in got.iter().enumerate() {
        assert_eq!(*x, (i * i) as u64, "index {i}");
    }
    assert_eq!(a.get(LEN - 1).unwrap(), ((LEN - 1) * (LEN - 1)) as u64);
    assert!(matches!(
        a.get(LEN),
        Err(Error::IndexOutOfRange {
            index: LEN,
            len: LEN
        })
    ));
    assert!(matches!(a.set(LEN, 0), Err(Error::IndexOutOfRange { .. })));
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Particle {
    pos: [f32; 3],
    id: u32,
    alive: bool,
}

// SAFETY: plain numbers and a bool, no pointers.
unsafe impl Shareable for Particle {}

#[test]
fn values_and_arrays_of_compound_types() {
    let p = Particle {
        pos: [0.0; 3],
        id: 1,
        alive: true,
    };
    let v = Value::new(p).unwrap();
    let a = Array::from_slice(&[p; 3]).unwrap();
    let bytes = Array::from_slice(b"hello").unwrap();
    let (v2, a2, b2) = (v.clone(), a.clone(), bytes.clone());
    join_ok(spawn(move || {
        v2.lock().unwrap().pos[1] = 2.5;
        a2.lock().unwrap()[2].alive = false;
        b2.lock().unwrap()[..3].copy_from_slice(b"bye");
    }));
    assert_eq!(v.get().unwrap().pos, [0.0, 2.5, 0.0]);
    assert!(!a.get(2).unwrap().alive);
    assert!(a.get(1).unwrap().alive);
    assert_eq!(bytes.to_vec().unwrap(), b"byelo");
    let tuple = Value::new((1u8, 'x', -2i128)).unwrap();
    tuple.set((2, 'y', 3)).unwrap();
    assert_eq!(tuple.get().unwrap(), (2, 'y', 3));
}

fn unique_name(tag: &str) -> String {
    format!("mp-test-{tag}-{}", std::process::id())
}

#[test]
fn shared_memory_create_attach_in_a_forked_child_and_unlink() {
    let shm = SharedMemory::create(10).unwrap();
    assert!(shm.name().starts_with("psm_"), "{}", shm.name());
    assert_eq!(shm.size(), 10);
    assert_eq!(shm.to_vec(), [0; 10]);
    let name = shm.name().to_string();
    join_ok(spawn(move || {
        let mine = SharedMemory::attach(&name).unwrap();
        assert_eq!(mine.size(), 10);
        mine.write(0, b"HELLO").unwrap();
        mine.close();
    }));
    assert_eq!(&shm.to_vec()[..5], b"HELLO");
    // The name is taken.
    assert!(matches!(
        SharedMemory::create_named(shm.name(), 10),
        Err(Error::Exists { .. })
    ));
    shm.unlink().unwrap();
    assert!(matches!(
        SharedMemory::attach(shm.name()),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(shm.unlink(), Err(Error::NotFound { .. })));
    // The mapping outlives the name.
    shm.write(5, b"!").unwrap();
    assert_eq!(shm.to_vec()[5], b'!');
    assert!(matches!(
        SharedMemory::create(0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        SharedMemory::attach("a/b"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(shm.read(8, &mut [0; 3]).is_err());
    assert!(shm.write(usize::MAX, b"x").is_err());
}

#[test]
fn shared_memory_named_with_and_without_a_leading_slash() {
    let name = unique_name("slash");
    let shm = SharedMemory::create_named(&format!("/{name}"), 4096 * 3).unwrap();
    assert_eq!(shm.name(), name);
    assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    let again = SharedMemory::attach(&name).unwrap();
    assert_eq!(again.size(), 4096 * 3);
    again.write(4096 * 3 - 1, &[42]).unwrap();
    assert_eq!(shm.to_vec()[4096 * 3 - 1], 42);
    shm.unlink().unwrap();
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

/// The environment variable that turns [`shm_exec_helper`] into a real attach in an exec'd copy
/// of this test program.
const EXEC_ENV: &str = "MP_TEST_SHM_ATTACH";

/// Not a test of its own (so ignored in a normal run, not passed): run by
/// [`shared_memory_attach_from_an_exec_d_program`] in a new program (not a fork: nothing
/// inherited) with the name in the environment.
#[test]
#[ignore = "run by shared_memory_attach_from_an_exec_d_program in an exec'd copy"]
fn shm_exec_helper() {
    let name = std::env::var(EXEC_ENV).expect(
        "run by shared_memory_attach_from_an_exec_d_program, which sets MP_TEST_SHM_ATTACH",
    );
    let shm = SharedMemory::attach(&name).unwrap();
    let mut seen = vec![0; 5];
    shm.read(0, &mut seen).unwrap();
    assert_eq!(seen, b"first");
    shm.write(0, b"EXEC'D").unwrap();
}

#[test]
fn shared_memory_attach_from_an_exec_d_program() {
    let shm = SharedMemory::create(64).unwrap();
    shm.write(0, b"first").unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "shm_exec_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EXEC_ENV, shm.name())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    assert_eq!(&shm.to_vec()[..6], b"EXEC'D");
    shm.unlink().unwrap();
}

#[test]
fn shared_memory_buffers_with_coordination() {
    let mut shm = SharedMemory::create(8).unwrap();
    let written = Event::new().unwrap();
    let (name, w) = (shm.name().to_string(), written.clone());
    let child = spawn(move || {
        let mut mine = SharedMemory::attach(&name).unwrap();
        // SAFETY: the parent reads only after the event.
        unsafe { mine.buf_mut().copy_from_slice(b"12345678") };
        w.set();
    });
    written.wait_timeout(Duration::from_secs(20)).unwrap();
    // SAFETY: the child wrote before the event and writes no more.
    assert_eq!(unsafe { shm.buf() }, b"12345678");
    join_ok(child);
    // SAFETY: nobody else writes now.
    unsafe { shm.buf_mut()[0] = b'0' };
    assert_eq!(shm.to_vec(), b"02345678");
    shm.unlink().unwrap();
}
