//! The system layer: every system call of the library goes through here, as small safe
//! functions over `libc` (descriptors as `OwnedFd`, errors as [`Errno`]), each `unsafe` block
//! with its `// SAFETY:` reason. The modules above it deny unsafe code where they can.
//!
//! Why not `nix`: the library is embedded in every notebook, and rust-analyzer analyses each of
//! its dependencies at a kernel's first cell; with nix that cell took 0.8-1.0 s longer
//! (`docs/performance.md`). The kernel, which has no such cost, uses nix. This layer has only
//! the calls the library makes.
//!
//! Submodules: [`errno`], [`fd`] (pipes, reads, writes, segments), [`socket`] (pairs, sends,
//! descriptors in messages), [`poll`], [`signal`], `process` (fork, ids, waiting, exit),
//! [`clock`], [`futex`], [`robust_mutex`] (the robust process-shared mutex), [`mapping`] (the
//! pointer code of shared mappings), `loader` (the dynamic loader's list of objects, `dlopen`),
//! `exec` (starting a fresh process: descriptors to known numbers, `execve`), and the one
//! [`Deadline`] and the one [`Spin`] of every blocking wait.

#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod clock;
pub(crate) mod errno;
pub(crate) mod exec;
pub(crate) mod fd;
pub(crate) mod loader;
pub(crate) mod peer;
pub(crate) mod poll;
pub(crate) mod process;
pub(crate) mod signal;
pub(crate) mod socket;

mod deadline;
mod futex;
pub(crate) mod mapping;
mod robust_mutex;
mod spin;

pub(crate) use deadline::{Deadline, SLICE};
pub(crate) use futex::{futex_wait, futex_wake};
pub(crate) use robust_mutex::{Acquired, RobustMutex};
pub(crate) use spin::Spin;

pub(crate) use errno::Errno;
pub(crate) use poll::Events;
pub(crate) use process::{getpid, gettid};
pub(crate) use signal::Signal;

use crate::error::{Error, Result};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Registers `handler` to run in the child after every `fork` (`pthread_atfork`). The handler runs in a child that has one thread: it should only touch atomics.
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
pub(crate) fn poll_fd(fd: BorrowedFd<'_>, events: Events, timeout: Duration) -> Result<Events> {
    let mut fds = [poll::PollFd::new(fd, events)];
    match poll::poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => Ok(Events::NONE),
        Ok(_) => Ok(fds[0].revents()),
        Err(e) => Err(e.error("poll")),
    }
}

/// [`poll_fd`] for the blocking transfers below, which are given a raw descriptor. Returns the
/// revents (none on timeout).
fn poll_one(fd: RawFd, events: Events, timeout: Duration) -> Result<Events> {
    // SAFETY: every caller passes a descriptor it holds open (owned by it, or by a struct it
    // borrows) for the whole call; the borrow ends with it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    poll_fd(fd, events, timeout)
}

/// Opens a pidfd for a child (readable once it has exited), if the kernel has them.
pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: a fresh fd from the kernel, which nothing else owns.
        Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// Reaps `pid` if it has exited (never blocks). `Ok(None)` while it runs; `-N` for a death by
/// signal `N` (real-time signals included).
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
                e => Err(e.error("waitpid")),
            },
        };
    }
}

/// Sends a signal; `ESRCH` (already gone) is not an error.
pub(crate) fn send_signal(pid: u32, sig: Signal) -> Result<()> {
    match signal::kill(pid, Some(sig)) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.error("kill")),
    }
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(false).map_err(|e| e.error("socketpair"))
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: &OwnedFd, on: bool) -> Result<()> {
    fd::set_nonblocking(fd, on).map_err(|e| e.error("fcntl"))
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
fn classify(
    r: std::result::Result<usize, Errno>,
    empty: bool,
    call: &'static str,
) -> Result<Option<Io>> {
    match r {
        Ok(0) if !empty => Ok(Some(Io::Closed)),
        Ok(n) => Ok(Some(Io::Done(n))),
        Err(Errno::EINTR) => Ok(None),
        Err(Errno::EAGAIN) => Ok(Some(Io::WouldBlock)),
        Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => Ok(Some(Io::Closed)),
        Err(e) => Err(e.error(call)),
    }
}

/// `send` without SIGPIPE; `dontwait` makes it non-blocking for this call.
pub(crate) fn send(fd: RawFd, buf: &[u8], dontwait: bool) -> Result<Io> {
    let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // A write of 0 bytes is not a close: `empty` is true for sends.
        if let Some(io) = classify(socket::send(fd, buf, flags), true, "send")? {
            return Ok(io);
        }
    }
}

/// `recv`; `dontwait` makes it non-blocking for this call.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], dontwait: bool) -> Result<Io> {
    let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
    let empty = buf.is_empty();
    loop {
        if let Some(io) = classify(socket::recv(fd, buf, flags), empty, "recv")? {
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
                poll_one(fd, Events::OUT, SLICE)?;
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
                poll_one(fd, Events::IN, SLICE)?;
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
    // call.
    unsafe {
        libc::dl_iterate_phdr(Some(cb), (&mut adds as *mut u64).cast());
    }
    adds
}

/// True if `addr` lies inside a shared object (or the executable) loaded in this process.
pub(crate) fn address_is_loaded(addr: usize) -> bool {
    // SAFETY: `Dl_info` is plain pointers and integers, for which all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address value and fills info.
    unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) != 0 }
}

/// A pipe `(read end, write end)`, non-blocking and close-on-exec.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    fd::pipe2(true).map_err(|e| e.error("pipe2"))
}

pub(crate) use signal::sigpipe_ignored;

/// Fills `buf` with random bytes from the kernel (`getrandom`).
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
        if let Some(io) = classify(fd::read(&fd, buf), empty, "read")? {
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
    signal::with_sigpipe_blocked(|| write_raw(fd, buf), |r| matches!(r, Ok(Io::Closed)))
}

fn write_raw(fd: impl AsFd, buf: &[u8]) -> Result<Io> {
    loop {
        if let Some(io) = classify(fd::write(&fd, buf), true, "write")? {
            return Ok(io);
        }
    }
}
