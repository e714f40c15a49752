//! The few system calls the kernel makes that `nix` does not offer safely: duplicating onto a
//! chosen descriptor number in a child about to `exec` (nix's `dup2_raw` does not check its
//! result), a descriptor above a floor owned at once, an inherited descriptor borrowed, leaving a process without running
//! `atexit` handlers, a SIGINT handler that does nothing, and whether a descriptor number is
//! open. Every other module reaches the system through `nix` or `std`.

#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(unsafe_code, reason = "the system calls nix does not offer safely")]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Makes descriptor number `target` a copy of `fd` (async-signal-safe: for a child between
/// `fork` and `exec`); a closed `fd` is an error (EBADF).
pub(crate) fn dup_onto(fd: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only reads its arguments; `target` is closed first if open, which the caller
    // asks for (the descriptor number is the contract with the process it starts).
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A close-on-exec copy of `fd` numbered `floor` or above, owned.
pub(crate) fn dup_above(fd: BorrowedFd<'_>, floor: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads its arguments and returns a new descriptor or -1.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a descriptor that was just created and that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Ends this process at once with `code`, running no `atexit` handler and flushing nothing
/// (async-signal-safe: for a forked child, or a process whose parent is gone).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

extern "C" fn ignore_sigint(_: i32) {}

/// Makes SIGINT do nothing until someone installs a handler of their own (the library's
/// interrupt opt-in). A handler, not `SIG_IGN`: `exec` resets it, so the processes this one
/// starts get SIGINT's default action.
pub(crate) fn ignore_sigint_until_handled() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: the handler does nothing, so it is async-signal-safe whatever it interrupts.
    let _ = unsafe { signal(Signal::SIGINT, SigHandler::Handler(ignore_sigint)) };
}

/// Descriptor number `fd`, which this process inherited open and keeps open for its whole life
/// (the kernel's registration socket in the runtime), borrowed; `None` if it is not open.
pub(crate) fn inherited(fd: RawFd) -> Option<BorrowedFd<'static>> {
    // SAFETY: the descriptor is open (checked) and, by the contract with the process that
    // passed it, never closed by this process, so the borrow cannot outlive it.
    is_open(fd).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Whether descriptor number `fd` is open in this process.
pub(crate) fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed number is EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}
