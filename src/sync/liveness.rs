//! Telling a waiter that died from one that is merely slow: waiters refresh a heartbeat in shared
//! memory while they sleep, and only a waiter whose heartbeat is stale is looked up in `/proc`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A heartbeat older than this (sleepers refresh theirs at least every 20 ms) makes a waiter a
/// suspect, to be looked up.
const STALE_MS: u64 = 100;

/// Milliseconds on the monotonic clock, which every process of the machine shares.
pub(crate) fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Records that the waiter is alive now.
pub(crate) fn beat(heartbeat: &AtomicU64) {
    heartbeat.store(now_ms(), Relaxed);
}

/// True if the waiter whose heartbeat this is, thread `tid`, has surely died: its heartbeat is
/// stale and the thread is gone or a zombie. A thread that is only slow (stopped, starved) counts
/// as alive; so does everything where `/proc` cannot tell.
pub(crate) fn dead(heartbeat: &AtomicU64, tid: u32) -> bool {
    if now_ms().saturating_sub(heartbeat.load(Relaxed)) < STALE_MS || tid == 0 {
        return false;
    }
    if std::fs::metadata("/proc/self/stat").is_err() {
        return false; // no /proc: cannot tell
    }
    match std::fs::read_to_string(format!("/proc/{tid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest.trim_start());
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}
