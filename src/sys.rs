//! The system layer: every system call of the library's lower modules goes through here, through
//! `nix` where it has the call (descriptors as `OwnedFd`, errors as `Errno`), and through the few
//! hand-written calls nix lacks, each `unsafe` block with its `// SAFETY:` reason: the futex
//! ([`futex`]), the robust process-shared mutex ([`robust_mutex`]), the pointer code of shared
//! mappings ([`mapping`]), pidfd, the loader queries and the signal mask around a pipe write.
//! Also here: the one [`Deadline`] and the one [`Spin`] of every blocking wait.
//!
//! Submodules: [`deadline`], [`spin`], [`futex`], [`robust_mutex`], [`mapping`], and `process`
//! (the process calls of the runtime).

#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod process;

mod deadline;
mod futex;
pub(crate) mod mapping;
mod robust_mutex;
mod spin;

pub(crate) use deadline::{Deadline, SLICE};
pub(crate) use futex::{futex_wait, futex_wake};
pub(crate) use robust_mutex::{Acquired, RobustMutex};
pub(crate) use spin::Spin;

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::socket::MsgFlags;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The library's error for a failed nix call.
pub(crate) fn nix_error(call: &'static str, e: Errno) -> Error {
    Error::os(call, e as i32)
}

/// This process's pid.
pub(crate) fn getpid() -> u32 {
    nix::unistd::getpid().as_raw() as u32
}

/// The calling thread's kernel thread id.
pub(crate) fn gettid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// Registers `handler` to run in the child after every `fork` (`pthread_atfork`, which nix
/// lacks). The handler runs in a child that has one thread: it should only touch atomics.
pub(crate) fn at_fork_in_child(handler: extern "C" fn()) {
    // SAFETY: registers a plain function of this code (no data pointer); it stays valid for the
    // life of the code (glibc unregisters the handlers of a library when it is unloaded).
    unsafe { libc::pthread_atfork(None, None, Some(handler)) };
}

/// True on the process's main thread (the only thread whose exit does not fire `PR_SET_PDEATHSIG`
/// in children before the process itself exits).
pub(crate) fn on_main_thread() -> bool {
    gettid() == getpid()
}

/// Polls one fd for `events`, at most `timeout`. Returns the revents (empty on timeout or EINTR).
pub(crate) fn poll_fd(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Duration,
) -> Result<PollFlags> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, events)];
    match nix::poll::poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => Ok(PollFlags::empty()),
        Ok(_) => Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
        Err(e) => Err(nix_error("poll", e)),
    }
}

/// [`poll_fd`] for the blocking transfers below, which are given a raw descriptor. Returns the
/// revents (0 on timeout).
fn poll_one(fd: RawFd, events: libc::c_short, timeout: Duration) -> Result<libc::c_short> {
    // SAFETY: every caller passes a descriptor it holds open (owned by it, or by a struct it
    // borrows) for the whole call; the borrow ends with it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(poll_fd(fd, PollFlags::from_bits_truncate(events), timeout)?.bits())
}

/// Opens a pidfd for a child (readable once it has exited), if the kernel has them.
pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1 (nix has no
    // wrapper).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: a fresh fd from the kernel, which nothing else owns.
        Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// Reaps `pid` if it has exited (never blocks). `Ok(None)` while it runs. The raw status is
/// decoded here, not by nix, whose `WaitStatus` cannot express a death by a real-time signal (it
/// would reap the child and return `EINVAL`, losing its code).
pub(crate) fn try_waitpid(pid: u32) -> Result<Option<i32>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into the local integer it is given.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        return match r {
            0 => Ok(None),
            r if r > 0 && libc::WIFEXITED(status) => Ok(Some(libc::WEXITSTATUS(status))),
            r if r > 0 && libc::WIFSIGNALED(status) => Ok(Some(-libc::WTERMSIG(status))),
            r if r > 0 => Ok(None),
            _ => match Errno::last() {
                Errno::EINTR => continue,
                e => Err(nix_error("waitpid", e)),
            },
        };
    }
}

/// Sends a signal; `ESRCH` (already gone) is not an error.
pub(crate) fn send_signal(pid: u32, sig: libc::c_int) -> Result<()> {
    let sig = Signal::try_from(sig).map_err(|e| nix_error("kill", e))?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as libc::pid_t), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(nix_error("kill", e)),
    }
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| nix_error("socketpair", e))
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: &OwnedFd, on: bool) -> Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| nix_error("fcntl", e))?;
    let mut flags = OFlag::from_bits_retain(flags);
    flags.set(OFlag::O_NONBLOCK, on);
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| nix_error("fcntl", e))?;
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

/// What a transfer's outcome means: `Some(outcome)`, or `None` to retry (EINTR). `empty`: the
/// buffer was empty (then 0 bytes is not the end of the stream).
fn classify(r: nix::Result<usize>, empty: bool, call: &'static str) -> Result<Option<Io>> {
    match r {
        Ok(0) if !empty => Ok(Some(Io::Closed)),
        Ok(n) => Ok(Some(Io::Done(n))),
        Err(Errno::EINTR) => Ok(None),
        Err(Errno::EAGAIN) => Ok(Some(Io::WouldBlock)),
        Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => Ok(Some(Io::Closed)),
        Err(e) => Err(nix_error(call, e)),
    }
}

/// `send` without SIGPIPE; `dontwait` makes it non-blocking for this call.
pub(crate) fn send(fd: RawFd, buf: &[u8], dontwait: bool) -> Result<Io> {
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    flags.set(MsgFlags::MSG_DONTWAIT, dontwait);
    loop {
        // A write of 0 bytes is not a close: `empty` is true for sends.
        if let Some(io) = classify(nix::sys::socket::send(fd, buf, flags), true, "send")? {
            return Ok(io);
        }
    }
}

/// `recv`; `dontwait` makes it non-blocking for this call.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], dontwait: bool) -> Result<Io> {
    let flags = if dontwait {
        MsgFlags::MSG_DONTWAIT
    } else {
        MsgFlags::empty()
    };
    let empty = buf.is_empty();
    loop {
        if let Some(io) = classify(nix::sys::socket::recv(fd, buf, flags), empty, "recv")? {
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
    // SAFETY: the callback only writes through the pointer we pass, to a u64 that outlives the
    // call (nix has no dl_iterate_phdr).
    unsafe {
        libc::dl_iterate_phdr(Some(cb), (&mut adds as *mut u64).cast());
    }
    adds
}

/// True if `addr` lies inside a shared object (or the executable) loaded in this process.
pub(crate) fn address_is_loaded(addr: usize) -> bool {
    // SAFETY: `Dl_info` is plain pointers and integers, for which all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address value and fills info (nix has no dladdr).
    unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) != 0 }
}

/// A pipe `(read end, write end)`, non-blocking and close-on-exec.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| nix_error("pipe2", e))
}

/// True if SIGPIPE is ignored in this process (then a write to a closed pipe just fails with EPIPE).
pub(crate) fn sigpipe_ignored() -> bool {
    // SAFETY: querying the current action only (a null new action): nix's `sigaction` always
    // sets one. A zeroed `sigaction` is a valid out buffer.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Fills `buf` with random bytes from the kernel (`getrandom`, which nix lacks).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        return Err(Error::last_os("getrandom"));
    }
    Ok(())
}

/// A non-blocking `read`.
pub(crate) fn read_nb(fd: impl AsFd, buf: &mut [u8]) -> Result<Io> {
    let empty = buf.is_empty();
    loop {
        if let Some(io) = classify(nix::unistd::read(&fd, buf), empty, "read")? {
            return Ok(io);
        }
    }
}

/// A non-blocking `write`. If SIGPIPE is not ignored, it is blocked around the write (and a
/// SIGPIPE it raised is consumed), so a closed peer gives `Io::Closed`, never a dead process.
pub(crate) fn write_nb(fd: impl AsFd, buf: &[u8], sigpipe_ignored: bool) -> Result<Io> {
    if sigpipe_ignored {
        return write_raw(fd, buf);
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old));
    let r = write_raw(fd, buf);
    if matches!(r, Ok(Io::Closed)) && !old.contains(Signal::SIGPIPE) {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid signal set and timeout, a null info pointer (allowed); it only takes a
        // pending SIGPIPE off this thread (nix has no sigtimedwait).
        unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) };
    }
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    r
}

fn write_raw(fd: impl AsFd, buf: &[u8]) -> Result<Io> {
    loop {
        if let Some(io) = classify(nix::unistd::write(&fd, buf), true, "write")? {
            return Ok(io);
        }
    }
}
