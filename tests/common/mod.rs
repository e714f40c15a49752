//! Helpers shared by the integration tests.
#![allow(dead_code)]

use multiprocessing::{ByteBuf, Error, Process};
use std::time::{Duration, Instant};

/// Starts a child running `f`.
pub fn spawn(f: impl FnOnce() + Send + 'static) -> Process {
    let mut p = Process::new(f);
    p.start().unwrap();
    p
}

/// Joins a child and checks that it returned normally (its assertions held).
pub fn join_ok(mut p: Process) {
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0), "{p:?}");
}

/// True if `pid` no longer runs: gone from /proc, or a zombie (reaped by nobody yet).
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let after = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
            after.starts_with('Z') || after.starts_with('X')
        }
    }
}

/// True if `pid` is gone from /proc entirely (no zombie left).
pub fn is_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `limit` for `cond`; true if it became true.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The `/proc` directory of the calling thread (`/proc/PID/task/TID`).
pub fn this_thread() -> String {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    format!("/proc/{}", link.display())
}

/// True while the thread or process whose `/proc` directory is `proc` waits in a futex (where a
/// lock, a queue or an event waits): a readiness check for tests that kill one party while
/// another waits.
pub fn in_futex_wait(proc: &str) -> bool {
    std::fs::read_to_string(format!("{proc}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .is_some_and(|n| n == libc::SYS_futex.to_string())
}

/// Sends SIGINT to this process after `delay`, from another thread.
pub fn sigint_after(delay: Duration) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let at = Instant::now();
        // SAFETY: signalling our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        at
    })
}

/// Runs `blocking` while SIGINT arrives; checks it returns `Interrupted` promptly.
pub fn expect_interrupted<T: std::fmt::Debug>(
    what: &str,
    blocking: impl FnOnce() -> Result<T, Error>,
) {
    let sender = sigint_after(Duration::from_millis(300));
    let result = blocking();
    let returned = Instant::now();
    let sent = sender.join().unwrap();
    assert!(
        matches!(result, Err(Error::Interrupted)),
        "{what}: {result:?}"
    );
    let delay = returned.saturating_duration_since(sent);
    assert!(
        delay < Duration::from_secs(1),
        "{what}: returned {delay:?} after SIGINT"
    );
    println!("{what}: returned {delay:?} after SIGINT");
}

/// Bytes that differ from message to message (a swapped or stale block would show): each 8-byte
/// word holds the seed and its index.
pub fn blob(seed: u32, len: usize) -> ByteBuf {
    let mut v = Vec::with_capacity(len);
    let mut word = 0u64;
    while v.len() + 8 <= len {
        v.extend_from_slice(&((u64::from(seed) << 32) | word).to_le_bytes());
        word += 1;
    }
    v.resize(len, seed as u8);
    ByteBuf::from(v)
}

/// Receives one output registration with the library's own `recv_fds`: (pid, name, stdout read
/// end, stderr read end).
pub fn receive_registration(
    sock: i32,
) -> (u32, String, std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    // SAFETY: the test's socket, open for the whole call.
    let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(sock) };
    let mut payload = [0u8; 256];
    let (n, fds) = multiprocessing::host::recv_fds(sock, &mut payload).unwrap();
    assert!(n >= 4, "a registration of {n} bytes");
    let [out, err]: [std::os::fd::OwnedFd; 2] = fds.try_into().expect("two descriptors");
    let pid = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let name = String::from_utf8_lossy(&payload[4..n]).into_owned();
    (pid, name, out, err)
}

pub fn read_all(fd: std::os::fd::OwnedFd) -> String {
    let mut s = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s);
    s
}

/// A pool of `n` spawn workers (`StartMethod::Spawn`).
pub fn spawn_pool(n: usize) -> multiprocessing::Pool {
    multiprocessing::Pool::builder()
        .processes(n)
        .start_method(multiprocessing::StartMethod::Spawn)
        .build()
        .unwrap()
}
