//! Thin wrappers over the system calls the library needs (fork, pidfd, futex, poll, sockets).

pub(crate) mod process;

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// The longest single sleep of any blocking call: interrupts and deadlines are checked at least this often.
pub(crate) const SLICE: Duration = Duration::from_millis(20);

/// This process's pid.
pub(crate) fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// True on the process's main thread (the only thread whose exit does not fire `PR_SET_PDEATHSIG`
/// in children before the process itself exits).
pub(crate) fn on_main_thread() -> bool {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 == getpid() }
}

/// An optional deadline, cut into slices no longer than [`SLICE`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn never() -> Self {
        Deadline(None)
    }
    pub(crate) fn after(d: Duration) -> Self {
        Deadline(Instant::now().checked_add(d))
    }
    pub(crate) fn from_timeout(t: Option<Duration>) -> Self {
        match t {
            Some(d) => Deadline::after(d),
            None => Deadline::never(),
        }
    }
    /// True for a deadline that never passes.
    pub(crate) fn is_never(&self) -> bool {
        self.0.is_none()
    }
    /// The next sleep: `None` once the deadline has passed.
    pub(crate) fn slice(&self) -> Option<Duration> {
        match self.0 {
            None => Some(SLICE),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    None
                } else {
                    Some(left.min(SLICE))
                }
            }
        }
    }
}

/// Converts a `-1` return into the last OS error.
pub(crate) fn cvt(ret: libc::c_int, call: &'static str) -> Result<libc::c_int> {
    if ret == -1 {
        Err(Error::last_os(call))
    } else {
        Ok(ret)
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// Waits on a futex word in shared memory while it equals `expected`, at most `timeout`.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = timespec(timeout);
    // SAFETY: the word is a valid, aligned u32 for the duration of the call; FUTEX_WAIT (not
    // PRIVATE) because the word lives in memory shared between processes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes up to `n` waiters of a shared futex word.
pub(crate) fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: as for futex_wait.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

/// Polls one fd for `events`, at most `timeout`. Returns the revents (0 on timeout).
pub(crate) fn poll_one(
    fd: RawFd,
    events: libc::c_short,
    timeout: Duration,
) -> Result<libc::c_short> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(Error::Os {
            call: "poll",
            source: e,
        });
    }
    Ok(if r == 0 { 0 } else { p.revents })
}

/// Opens a pidfd for a child (readable once it has exited), if the kernel has them.
pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: a fresh fd from the kernel.
        Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// Converts a wait status into Python's exit code convention (`-N` for signal `N`).
pub(crate) fn exitcode_from_status(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Reaps `pid` if it has exited (never blocks). `Ok(None)` while it runs.
pub(crate) fn try_waitpid(pid: u32) -> Result<Option<i32>> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r == 0 {
            return Ok(None);
        }
        if r > 0 {
            return Ok(Some(exitcode_from_status(status)));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return Err(Error::Os {
            call: "waitpid",
            source: e,
        });
    }
}

/// Sends a signal; `ESRCH` (already gone) is not an error.
pub(crate) fn send_signal(pid: u32, sig: libc::c_int) -> Result<()> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if r == -1 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::Os {
                call: "kill",
                source: e,
            });
        }
    }
    Ok(())
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        "socketpair",
    )?;
    // SAFETY: both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: &OwnedFd, on: bool) -> Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on an fd we own.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "fcntl")?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }, "fcntl")?;
    Ok(())
}

/// Outcome of one non-blocking transfer.
pub(crate) enum Io {
    /// This many bytes moved.
    Done(usize),
    /// Nothing could move now.
    WouldBlock,
    /// The peer closed (read of 0 bytes, or EPIPE/ECONNRESET on write).
    Closed,
}

/// What a transfer's return value means: `Some(outcome)`, or `None` to retry (EINTR).
fn classify(r: isize, empty: bool, call: &'static str) -> Result<Option<Io>> {
    if r > 0 || (r == 0 && empty) {
        return Ok(Some(Io::Done(r as usize)));
    }
    if r == 0 {
        return Ok(Some(Io::Closed));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINTR) => Ok(None),
        Some(libc::EAGAIN) => Ok(Some(Io::WouldBlock)),
        Some(libc::EPIPE) | Some(libc::ECONNRESET) => Ok(Some(Io::Closed)),
        _ => Err(Error::Os { call, source: e }),
    }
}

/// `send` without SIGPIPE; `dontwait` makes it non-blocking for this call.
pub(crate) fn send(fd: RawFd, buf: &[u8], dontwait: bool) -> Result<Io> {
    let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        if let Some(io) = classify(r, true, "send")? {
            return Ok(io);
        }
    }
}

/// `recv`; `dontwait` makes it non-blocking for this call.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], dontwait: bool) -> Result<Io> {
    let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
        if let Some(io) = classify(r, buf.is_empty(), "recv")? {
            return Ok(io);
        }
    }
}

/// Writes all of `buf` with blocking sends (used by pool workers). `Ok(false)` if the peer closed.
pub(crate) fn send_all_blocking(fd: RawFd, mut buf: &[u8]) -> Result<bool> {
    while !buf.is_empty() {
        match send(fd, buf, false)? {
            Io::Done(n) => buf = &buf[n..],
            Io::WouldBlock => {
                poll_one(fd, libc::POLLOUT, SLICE)?;
            }
            Io::Closed => return Ok(false),
        }
    }
    Ok(true)
}

/// Reads exactly `buf.len()` bytes with blocking reads. `Ok(false)` on end of file.
pub(crate) fn recv_exact_blocking(fd: RawFd, mut buf: &mut [u8]) -> Result<bool> {
    while !buf.is_empty() {
        match recv(fd, buf, false)? {
            Io::Done(n) => buf = &mut buf[n..],
            Io::WouldBlock => {
                poll_one(fd, libc::POLLIN, SLICE)?;
            }
            Io::Closed => return Ok(false),
        }
    }
    Ok(true)
}

/// Flushes Rust's stdout and stderr (errors ignored: there is nowhere to report them).
pub(crate) fn flush_std() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// The number of shared objects loaded so far (glibc's `dlpi_adds`): it grows with every dlopen.
pub(crate) fn loaded_objects_generation() -> u64 {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: glibc passes a valid info and our data pointer.
        unsafe {
            *(data as *mut u64) = (*info).dlpi_adds;
        }
        1
    }
    let mut adds: u64 = 0;
    // SAFETY: the callback only writes through the pointer we pass.
    unsafe {
        libc::dl_iterate_phdr(Some(cb), (&mut adds as *mut u64).cast());
    }
    adds
}

/// True if `addr` lies inside a shared object (or the executable) loaded in this process.
pub(crate) fn address_is_loaded(addr: usize) -> bool {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address value and fills info.
    unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) != 0 }
}

/// A pipe `(read end, write end)`, non-blocking and close-on-exec.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
        "pipe2",
    )?;
    // SAFETY: both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// True if SIGPIPE is ignored in this process (then a write to a closed pipe just fails with EPIPE).
pub(crate) fn sigpipe_ignored() -> bool {
    // SAFETY: querying the current action only.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// A non-blocking `read`.
pub(crate) fn read_nb(fd: RawFd, buf: &mut [u8]) -> Result<Io> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if let Some(io) = classify(r, buf.is_empty(), "read")? {
            return Ok(io);
        }
    }
}

/// A non-blocking `write`. If SIGPIPE is not ignored, it is blocked around the write (and a
/// SIGPIPE it raised is consumed), so a closed peer gives `Io::Closed`, never a dead process.
pub(crate) fn write_nb(fd: RawFd, buf: &[u8], sigpipe_ignored: bool) -> Result<Io> {
    if sigpipe_ignored {
        return write_raw(fd, buf);
    }
    // SAFETY: signal-mask manipulation of the calling thread with valid sets.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let r = write_raw(fd, buf);
        if matches!(r, Ok(Io::Closed)) && libc::sigismember(&old, libc::SIGPIPE) == 0 {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

fn write_raw(fd: RawFd, buf: &[u8]) -> Result<Io> {
    loop {
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if let Some(io) = classify(r, true, "write")? {
            return Ok(io);
        }
    }
}
