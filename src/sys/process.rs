//! Process-level system calls: fork, ids, the parent-death signal, waiting, exit, each with
//! the reason it is sound.

#![deny(clippy::undocumented_unsafe_blocks)]

use super::errno::{Errno, check};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor this process inherited under a number it was told (an
/// environment variable), if that number is an open descriptor. The caller keeps it for the
/// rest of the process's life (a static): nothing else in the process claims it.
pub(crate) fn adopt_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table (a closed number gives EBADF); an open
    // descriptor named to us by our host is ours to own, and nothing else in this process
    // wraps it.
    unsafe { (fd >= 0 && libc::fcntl(fd, libc::F_GETFD) >= 0).then(|| OwnedFd::from_raw_fd(fd)) }
}

/// Registers `handler` to run when the process exits normally (`atexit`).
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: registers a plain function of this code, which takes nothing and stays loaded
    // until exit (the library is never unloaded while its processes run).
    unsafe { libc::atexit(handler) };
}

/// The number of processors online (`sysconf(_SC_NPROCESSORS_ONLN)`). `None` if the system cannot tell.
pub(crate) fn processors_online() -> Option<usize> {
    // SAFETY: sysconf takes a constant and has no other preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n >= 1)
}

/// Ends this process at once with `code` (`_exit`): no atexit handler, no
/// destructor, no flush of std's buffers. What a forked child must do, since those belong to
/// the parent it was copied from.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes an integer and never returns; skipping destructors is sound (it is
    // a process exit, not an unwind).
    unsafe { libc::_exit(code) }
}

/// Which side of a [`fork`] this is.
pub(crate) enum Forked {
    /// The parent, with the child's pid.
    Parent(u32),
    /// The new child.
    Child,
}

/// `fork(2)`.
///
/// # Safety
/// In a multithreaded process the child may only run code that is safe after a fork: no lock
/// another thread may have held, no allocation unless the allocator's lock is known free (the
/// caller's documented lock order), until it execs or `_exit`s.
pub(crate) unsafe fn fork() -> Result<Forked, Errno> {
    // SAFETY: the caller upholds the contract above.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid as u32)
    })
}

/// This process's pid.
pub(crate) fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// The parent's pid.
pub(crate) fn getppid() -> u32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// The calling thread's kernel thread id.
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Asks for SIGKILL when the thread that forked this process ends (`PR_SET_PDEATHSIG`).
pub(crate) fn kill_me_with_parent() -> Result<(), Errno> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and changes only this process.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) }).map(drop)
}

/// The pid of a child of this process that has exited, if any, leaving it waitable
/// (`waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`). `Ok(None)`: none has exited.
pub(crate) fn exited_child() -> Result<Option<u32>, Errno> {
    // SAFETY: an all-zero siginfo is a valid out buffer (si_pid reads 0 when nothing was found).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waitid fills the siginfo it is given; WNOWAIT leaves the child waitable.
    check(unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) })?;
    // SAFETY: after a successful waitid the pid field of the siginfo is the child's (or 0).
    let pid = unsafe { info.si_pid() };
    Ok((pid > 0).then_some(pid as u32))
}
