//! Pipe and Connection across processes.

use multiprocessing::{Error, Pipe, Process};
use std::sync::Mutex;
use std::time::Duration;

/// Forks inherit every open fd, so a child forked by a test running in parallel would keep the
/// other tests' pipe ends open and delay their EOF: these tests run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn duplex_echo() {
    let _g = serial();
    let (parent, child) = Pipe::new::<Option<String>>().unwrap();
    let mut p = Process::new(move || {
        while let Some(msg) = child.recv().unwrap() {
            child.send(&Some(format!("echo: {msg}"))).unwrap();
        }
    });
    p.start().unwrap(); // moves the child's end out of this process
    for word in ["a", "bb", "ccc"] {
        parent.send(&Some(word.to_string())).unwrap();
        assert_eq!(parent.recv().unwrap(), Some(format!("echo: {word}")));
    }
    parent.send(&None).unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    // The child's end was dropped here at start and closed in the child at exit: EOF.
    assert!(matches!(parent.recv(), Err(Error::Eof)));
}

#[test]
fn recv_returns_eof_once_every_other_end_is_closed() {
    let _g = serial();
    let (a, b) = Pipe::new::<u32>().unwrap();
    let mut p = Process::new(move || {
        b.send(&1).unwrap();
        b.send(&2).unwrap();
    });
    p.start().unwrap();
    p.join().unwrap();
    // Data sent before the close is still delivered, then EOF; poll says ready at EOF.
    assert_eq!(a.recv().unwrap(), 1);
    assert_eq!(a.recv().unwrap(), 2);
    assert!(a.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(matches!(a.recv(), Err(Error::Eof)));
}

#[test]
fn oneway_pipe_directions() {
    let _g = serial();
    let (r, w) = Pipe::oneway::<i32>().unwrap();
    assert!(matches!(
        r.send(&1),
        Err(Error::WrongDirection("read-only"))
    ));
    assert!(matches!(w.recv(), Err(Error::WrongDirection("write-only"))));
    let mut p = Process::new(move || w.send(&99).unwrap());
    p.start().unwrap();
    assert_eq!(r.recv().unwrap(), 99);
    p.join().unwrap();
    assert!(matches!(r.recv(), Err(Error::Eof)));
}

#[test]
fn poll_times_out_without_data() {
    let _g = serial();
    let (a, _b) = Pipe::new::<u8>().unwrap();
    let start = std::time::Instant::now();
    assert!(!a.poll(Some(Duration::from_millis(200))).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(190));
    let mut a = a;
    a.close();
    assert!(matches!(a.recv(), Err(Error::Closed(_))));
}

#[test]
fn sixteen_mib_message_through_a_pipe() {
    let _g = serial();
    let data: Vec<u8> = (0..16usize << 20).map(|i| (i * 7 % 253) as u8).collect();
    let (a, b) = Pipe::new::<Vec<u8>>().unwrap();
    let sent = data.clone();
    let mut p = Process::new(move || b.send(&sent).unwrap());
    p.start().unwrap();
    let got = a.recv().unwrap();
    p.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    // Raw bytes too.
    let (x, y) = Pipe::new::<()>().unwrap();
    let raw = data.clone();
    let mut p = Process::new(move || y.send_bytes(&raw).unwrap());
    p.start().unwrap();
    assert!(x.recv_bytes().unwrap() == data);
    p.join().unwrap();
}

#[test]
fn many_messages_both_ways() {
    let _g = serial();
    let (a, b) = Pipe::new::<u64>().unwrap();
    let mut p = Process::new(move || {
        for _ in 0..10_000 {
            let x = b.recv().unwrap();
            b.send(&(x + 1)).unwrap();
        }
    });
    p.start().unwrap();
    let mut x = 0;
    for _ in 0..10_000 {
        a.send(&x).unwrap();
        x = a.recv().unwrap();
    }
    p.join().unwrap();
    assert_eq!(x, 10_000);
}

#[test]
fn send_to_a_closed_peer_is_eof() {
    let _g = serial();
    let (a, b) = Pipe::new::<u32>().unwrap();
    drop(b);
    assert!(matches!(a.send(&1), Err(Error::Eof)));
}
