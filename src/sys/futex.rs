//! Futex waits and wake-ups on words in memory shared between processes.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Waits on a futex word in shared memory while it equals `expected`, at most `timeout`. It may
/// also return early (a wake-up, a signal, the word already changed): callers check their
/// condition again.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the word is a valid, aligned u32 for the duration of the call (it is borrowed) and
    // `ts` a valid relative timeout; FUTEX_WAIT (not PRIVATE) because the word lives in memory
    // shared between processes. The outcome is ignored on purpose (see above).
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
    // SAFETY: as for `futex_wait`: a valid borrowed word; FUTEX_WAKE reads nothing else.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}
