//! Telling a waiter that died from one that is merely slow. Two ways: waiters refresh a heartbeat
//! in shared memory while they sleep, and only a waiter whose heartbeat is stale is looked up in
//! `/proc` ([`beat`], [`dead`]); or a waiter holds a [`Presence`] (a robust mutex) while it waits,
//! which the kernel marks the moment its holder dies.

use crate::error::{Error, Result};
use crate::shm::RawLock;
use std::cell::UnsafeCell;
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

/// A robust, process-shared mutex that a thread holds while it waits, so that the others can tell
/// whether it died in its wait: when a thread dies holding a robust mutex (killed, or its process
/// exits), the kernel marks the mutex at once, before the process becomes a zombie, and a
/// `trylock` sees the mark. A probe costs one compare-and-swap; no `/proc`, no heartbeat, no
/// mistaking a recycled thread id for the dead thread.
#[repr(C)]
pub(crate) struct Presence(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: the mutex is process-shared and thread-safe; it is only reached through pthread calls.
unsafe impl Sync for Presence {}

impl Presence {
    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }

    /// Initializes it in place.
    ///
    /// # Safety
    /// It must lie in zeroed memory that no other thread uses until this returns.
    pub(crate) unsafe fn init(&self) -> Result<()> {
        // SAFETY: `RawLock` is a `#[repr(C)]` wrapper of a bare `pthread_mutex_t`, so this is the
        // same memory; the caller guarantees it is zeroed and unused. Same attributes as a lock.
        unsafe { RawLock::init(self.raw().cast()) }
    }

    /// Holds it (waits only for a probe's brief hold). The calling thread must not hold it yet.
    pub(crate) fn hold(&self) -> Result<()> {
        // SAFETY: the mutex was initialized by `init`.
        match unsafe { libc::pthread_mutex_lock(self.raw()) } {
            0 => Ok(()),
            libc::EOWNERDEAD => {
                // SAFETY: we hold it; it guards no data, so it is consistent as it is.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                Ok(())
            }
            e => Err(Error::os("pthread_mutex_lock", e)),
        }
    }

    /// Lets it go (the calling thread holds it).
    pub(crate) fn release(&self) {
        // SAFETY: called by the holder.
        unsafe { libc::pthread_mutex_unlock(self.raw()) };
    }

    /// Whether its holder died holding it (it is then freed). Not for the holder itself.
    pub(crate) fn died(&self) -> bool {
        // SAFETY: the mutex was initialized by `init`.
        match unsafe { libc::pthread_mutex_trylock(self.raw()) } {
            0 => {
                self.release();
                false
            }
            libc::EOWNERDEAD => {
                // SAFETY: we hold it now; it guards no data.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                self.release();
                true
            }
            _ => false,
        }
    }
}
