//! Telling a waiter that died from one that is merely slow. Two ways: waiters refresh a heartbeat
//! in shared memory while they sleep, and only a waiter whose heartbeat is stale is looked up in
//! `/proc` ([`beat`], [`dead`]); or a waiter holds a [`Presence`] (a robust mutex) while it waits,
//! which the kernel marks the moment its holder dies.

use crate::error::Result;
use crate::sys::{Acquired, RobustMutex};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A heartbeat older than this (sleepers refresh theirs at least every 20 ms) makes a waiter a
/// suspect, to be looked up.
const STALE_MS: u64 = 100;

/// Milliseconds on the monotonic clock, which every process of the machine shares.
pub(crate) fn now_ms() -> u64 {
    crate::sys::clock::monotonic_ms()
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
pub(crate) struct Presence(RobustMutex);

impl Presence {
    /// Initializes it in place.
    ///
    /// # Safety
    /// It must lie in zeroed memory that no other thread uses until this returns.
    pub(crate) unsafe fn init(&self) -> Result<()> {
        // SAFETY: the caller guarantees the memory is zeroed and unused; the same attributes as
        // a queue's lock. `init` writes only inside the mutex's `UnsafeCell`, which a pointer
        // derived from `&self` may do.
        unsafe { RobustMutex::init((&raw const self.0).cast_mut(), false) }
    }

    /// Holds it (waits only for a probe's brief hold). The calling thread must not hold it yet.
    /// A previous holder that died is fine: it guards no data.
    pub(crate) fn hold(&self) -> Result<()> {
        self.0.lock().map(drop)
    }

    /// Lets it go (the calling thread holds it).
    pub(crate) fn release(&self) {
        let _ = self.0.unlock();
    }

    /// Whether its holder died holding it (it is then freed). Not for the holder itself.
    pub(crate) fn died(&self) -> bool {
        match self.0.try_lock() {
            Ok(Acquired::Got { died }) => {
                self.release();
                died
            }
            _ => false,
        }
    }
}
