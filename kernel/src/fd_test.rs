//! Test support: running a function in a forked child under a file-descriptor limit, to make
//! a system call fail at a chosen point (a limit is process-wide, so never in the test process).

use std::os::fd::RawFd;

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// The `n` lowest descriptor numbers that are free (the next ones the kernel hands out).
pub fn lowest_free(n: usize) -> Vec<RawFd> {
    (0..).filter(|&fd| !is_open(fd)).take(n).collect()
}

/// Makes every descriptor number from `limit` on unusable (RLIMIT_NOFILE's soft limit).
pub fn limit_to(limit: RawFd) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = limit as libc::rlim_t;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
    }
}

/// Runs `f` in a forked child and returns its result (the child's exit code, 0..=255; 255 if
/// it panicked or died).
pub fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` (system calls and allocation: glibc's malloc is fork-safe) and
    // leaves with `_exit`, never returning into the test harness.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(255);
            libc::_exit(code);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            255
        }
    }
}
