//! The one robust, process-shared mutex of the library: a glibc pthread mutex with
//! `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST`, optionally error-checking. When its holder
//! dies (its thread exits, or its process is killed), the kernel marks it and the next locker
//! takes it over: [`Acquired::Got`] then says `died: true` (the mutex is made consistent here, so
//! callers only decide what that means for the data it guards).
//!
//! Every lock of the library is one of these: the queues' locks, [`Lock`](crate::Lock) and
//! [`RLock`](crate::RLock) (with their owner record above it, in `sync::mutex`), and the barrier's
//! presence marks (`sync::liveness`). The waiting (deadlines, interrupts, spinning) is done by
//! the callers, in slices: here are only the single calls.

use crate::error::{Error, Result};
use std::cell::UnsafeCell;
use std::time::Duration;

/// A robust process-shared pthread mutex, to be placed in shared memory and initialized there
/// with [`init`](Self::init).
#[repr(C)]
pub(crate) struct RobustMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a process-shared pthread mutex is made to be used by many threads at once; it is only
// ever reached through the pthread calls below.
unsafe impl Sync for RobustMutex {}
// SAFETY: as above (it holds no pointer to the memory of the thread that made it).
unsafe impl Send for RobustMutex {}

/// The outcome of one lock call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Locked; `died` if it was taken over from a holder that died holding it.
    Got {
        /// The previous holder died holding it.
        died: bool,
    },
    /// The calling thread holds it already (only an error-checking mutex says so).
    Mine,
    /// Held by another thread (`trylock`), or the time ran out (`lock_for`).
    Busy,
}

impl RobustMutex {
    /// Initializes the mutex in place; `error_check` makes a relock by the holder return
    /// [`Acquired::Mine`] and an unlock by a non-holder fail with `EPERM`.
    ///
    /// # Safety
    /// `this` must point to writable memory (zeroed shared memory in practice) that no other
    /// thread or process uses until this returns.
    pub(crate) unsafe fn init(this: *mut RobustMutex, error_check: bool) -> Result<()> {
        // SAFETY: `attr` is initialized before use and destroyed after; `this` is valid and unused
        // by anyone else (the caller's promise), and `RobustMutex` is a `repr(C)` wrapper of an
        // `UnsafeCell<pthread_mutex_t>`, so `raw_get` gives the mutex's address.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            if error_check {
                libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK);
            }
            let r = libc::pthread_mutex_init(UnsafeCell::raw_get(&raw const (*this).0), &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            if r != 0 {
                return Err(Error::os("pthread_mutex_init", r));
            }
        }
        Ok(())
    }

    #[inline]
    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }

    /// What a lock call's return value means.
    #[inline]
    fn outcome(&self, r: libc::c_int, call: &'static str) -> Result<Acquired> {
        match r {
            0 => Ok(Acquired::Got { died: false }),
            libc::EOWNERDEAD => {
                // SAFETY: EOWNERDEAD means the calling thread now holds the (initialized) mutex;
                // marking it consistent makes it usable again after the next unlock.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                Ok(Acquired::Got { died: true })
            }
            libc::EDEADLK => Ok(Acquired::Mine),
            libc::EBUSY | libc::ETIMEDOUT => Ok(Acquired::Busy),
            e => Err(Error::os(call, e)),
        }
    }

    /// Locks if it is free, without waiting.
    #[inline]
    pub(crate) fn try_lock(&self) -> Result<Acquired> {
        // SAFETY: the mutex was initialized by `init` (every constructor of the memory it lives
        // in does so before sharing it).
        let r = unsafe { libc::pthread_mutex_trylock(self.raw()) };
        if r == 0 {
            return Ok(Acquired::Got { died: false });
        }
        self.outcome(r, "pthread_mutex_trylock")
    }

    /// Locks, waiting as long as it takes (only for mutexes held briefly).
    pub(crate) fn lock(&self) -> Result<Acquired> {
        // SAFETY: initialized mutex (see `try_lock`).
        let r = unsafe { libc::pthread_mutex_lock(self.raw()) };
        self.outcome(r, "pthread_mutex_lock")
    }

    /// Locks, waiting at most `timeout` ([`Acquired::Busy`] if it passed).
    pub(crate) fn lock_for(&self, timeout: Duration) -> Result<Acquired> {
        let abs = realtime_after(timeout);
        // SAFETY: initialized mutex (see `try_lock`), valid timespec.
        let r = unsafe { libc::pthread_mutex_timedlock(self.raw(), &abs) };
        self.outcome(r, "pthread_mutex_timedlock")
    }

    /// Unlocks; the error is pthread's errno (`EPERM`: not the holder, error-checking only).
    #[inline]
    pub(crate) fn unlock(&self) -> std::result::Result<(), i32> {
        // SAFETY: initialized mutex (see `try_lock`); pthread itself checks the holder of an
        // error-checking mutex, and the others are unlocked only by their holder.
        match unsafe { libc::pthread_mutex_unlock(self.raw()) } {
            0 => Ok(()),
            e => Err(e),
        }
    }
}

/// An absolute `CLOCK_REALTIME` time `d` from now (what `pthread_mutex_timedlock` takes).
fn realtime_after(d: Duration) -> libc::timespec {
    let now = super::clock::realtime();
    let nsec = now.tv_nsec + d.subsec_nanos() as libc::c_long;
    libc::timespec {
        tv_sec: now.tv_sec + d.as_secs() as libc::time_t + nsec / 1_000_000_000,
        tv_nsec: nsec % 1_000_000_000,
    }
}
