//! Test support: running a function in a forked child under a file-descriptor limit, to make
//! a system call fail at a chosen point (a limit is process-wide, so never in the test process).

#![deny(clippy::undocumented_unsafe_blocks)]

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::os::fd::RawFd;

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    crate::engine::sys::is_open(fd)
}

/// The `n` lowest descriptor numbers that are free (the next ones the kernel hands out).
pub fn lowest_free(n: usize) -> Vec<RawFd> {
    (0..).filter(|&fd| !is_open(fd)).take(n).collect()
}

/// Makes every descriptor number from `limit` on unusable (RLIMIT_NOFILE's soft limit).
pub fn limit_to(limit: RawFd) {
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, limit as u64, hard);
    }
}

/// Runs `f` in a forked child and returns its result (the child's exit code, 0..=255; 255 if
/// it panicked or died).
pub fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` (system calls and allocation: glibc's malloc is fork-safe) and
    // leaves with `_exit`, never returning into the test harness.
    match unsafe { fork() }.expect("fork failed") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(255);
            crate::engine::sys::exit_now(code);
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => code,
            _ => 255,
        },
    }
}
