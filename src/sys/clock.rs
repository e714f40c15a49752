//! The clocks the library reads: monotonic milliseconds (shared by every process of the
//! machine) and the wall-clock time that timed mutex waits take.

/// `clock_gettime(clock)`; zero if the clock cannot be read.
fn now(clock: libc::clockid_t) -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given (a valid clock id is passed).
    unsafe { libc::clock_gettime(clock, &mut t) };
    t
}

/// Milliseconds on the monotonic clock.
pub(crate) fn monotonic_ms() -> u64 {
    let t = now(libc::CLOCK_MONOTONIC);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

/// The current `CLOCK_REALTIME` time.
pub(crate) fn realtime() -> libc::timespec {
    now(libc::CLOCK_REALTIME)
}
