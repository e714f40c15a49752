//! The process-level system calls `nix` does not offer (or offers only for descriptors it can
//! borrow safely), each with the reason it is sound. Everything above this module reaches the
//! system through `nix` or through these functions.

#![deny(clippy::undocumented_unsafe_blocks)]

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

/// Registers `handler` to run when the process exits normally (`atexit`, which nix lacks).
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: registers a plain function of this code, which takes nothing and stays loaded
    // until exit (the library is never unloaded while its processes run).
    unsafe { libc::atexit(handler) };
}

/// Sets the action of `signal` (nix's `sigaction` is `unsafe` for any handler).
pub(crate) fn set_signal_action(
    signal: nix::sys::signal::Signal,
    action: &nix::sys::signal::SigAction,
) -> nix::Result<()> {
    // SAFETY: the library's handlers (`interrupt::on_sigint`) only do an atomic increment,
    // which is async-signal-safe; the default action needs no handler at all.
    unsafe { nix::sys::signal::sigaction(signal, action) }.map(drop)
}

/// The number of processors online (`sysconf(_SC_NPROCESSORS_ONLN)`; nix has it only behind its
/// `feature` feature, which the library does not enable). `None` if the system cannot tell.
pub(crate) fn processors_online() -> Option<usize> {
    // SAFETY: sysconf takes a constant and has no other preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n >= 1)
}

/// Ends this process at once with `code` (`_exit`, which nix lacks): no atexit handler, no
/// destructor, no flush of std's buffers. What a forked child must do, since those belong to
/// the parent it was copied from.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes an integer and never returns; skipping destructors is sound (it is
    // a process exit, not an unwind).
    unsafe { libc::_exit(code) }
}
