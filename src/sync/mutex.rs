//! The robust process-shared mutex under [`Lock`](crate::Lock), [`RLock`](crate::RLock),
//! [`Condition`](crate::Condition), [`Value`](crate::Value) and [`Array`](crate::Array), and the
//! guard they all return.
//!
//! It is a glibc robust, error-checking, process-shared pthread mutex: when its holder dies (the
//! thread exits, or the process is killed), the kernel marks it and wakes one waiter, which takes
//! it over. Next to it live the holder's thread id and the recursion depth, which the holder alone
//! writes.

use super::spin::spin_until;
use super::tid::tid;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::Deadline;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[repr(C)]
/// The shared state of a lock (public only so that the sealed [`Lockable`] can name it).
pub struct MutexCore {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// Written by the holder only, in one store: its thread id (bits 0-31, 0 when free), the
    /// recursion depth (bits 32-62; always 1 for a non-recursive lock) and whether the holding
    /// was taken over from a holder that died (bit 63).
    own: AtomicU64,
    recursive: AtomicBool,
}

const DIED: u64 = 1 << 63;

fn pack(holder: u32, depth: u32, died: bool) -> u64 {
    holder as u64 | (depth as u64) << 32 | if died { DIED } else { 0 }
}
fn holder_of(own: u64) -> u32 {
    own as u32
}
fn depth_of(own: u64) -> u32 {
    ((own & !DIED) >> 32) as u32
}

// SAFETY: the pthread mutex is process-shared and thread-safe; the other fields are atomics.
unsafe impl Sync for MutexCore {}
// SAFETY: as above.
unsafe impl Send for MutexCore {}

/// The outcome of one pthread lock call.
enum Raw {
    /// Locked; `true` if taken over from a dead holder.
    Got(bool),
    /// The calling thread holds it already (error-checking mutex).
    Mine,
    TimedOut,
}

#[cold]
fn unlock_error(e: libc::c_int) -> Error {
    if e == libc::EPERM {
        Error::NotOwner
    } else {
        Error::os("pthread_mutex_unlock", e)
    }
}

/// An absolute `CLOCK_REALTIME` time `d` from now (what `pthread_mutex_timedlock` takes).
fn realtime_after(d: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let nsec = now.tv_nsec + d.subsec_nanos() as libc::c_long;
    libc::timespec {
        tv_sec: now.tv_sec + d.as_secs() as libc::time_t + nsec / 1_000_000_000,
        tv_nsec: nsec % 1_000_000_000,
    }
}

impl MutexCore {
    /// Initializes the mutex in place.
    ///
    /// # Safety
    /// `this` must point to zeroed shared memory that no other process uses yet.
    pub(crate) unsafe fn init(this: *mut MutexCore, recursive: bool) -> Result<()> {
        // SAFETY: attr is initialized before use and destroyed after; `this` is valid (caller).
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK);
            let r = libc::pthread_mutex_init(UnsafeCell::raw_get(&raw const (*this).mutex), &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            if r != 0 {
                return Err(Error::os("pthread_mutex_init", r));
            }
            (*this).recursive = AtomicBool::new(recursive);
        }
        Ok(())
    }

    #[inline]
    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.mutex.get()
    }

    #[inline]
    fn recursive(&self) -> bool {
        self.recursive.load(Relaxed)
    }

    fn classify(&self, r: libc::c_int, call: &'static str) -> Result<Option<Raw>> {
        match r {
            0 => Ok(Some(Raw::Got(false))),
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex now; make it usable again.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                Ok(Some(Raw::Got(true)))
            }
            libc::EDEADLK => Ok(Some(Raw::Mine)),
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            e => Err(Error::os(call, e)),
        }
    }

    fn trylock(&self) -> Result<Option<Raw>> {
        // SAFETY: the mutex was initialized by `init`.
        self.classify(
            unsafe { libc::pthread_mutex_trylock(self.raw()) },
            "pthread_mutex_trylock",
        )
    }

    /// Locks the pthread mutex: spins briefly, then sleeps in slices until `deadline`.
    fn lock_raw(&self, deadline: Deadline, watch: &Watch) -> Result<Raw> {
        if let Some(raw) = self.trylock()? {
            return Ok(raw);
        }
        if deadline.slice().is_none() {
            return Ok(Raw::TimedOut);
        }
        let mut spun = None;
        spin_until(|| {
            if holder_of(self.own.load(Relaxed)) != 0 {
                return false;
            }
            spun = self.trylock().transpose();
            spun.is_some()
        });
        if let Some(raw) = spun {
            return raw;
        }
        loop {
            watch.check()?;
            let Some(slice) = deadline.slice() else {
                return Ok(Raw::TimedOut);
            };
            let abs = realtime_after(slice);
            // SAFETY: initialized mutex, valid timespec.
            let r = unsafe { libc::pthread_mutex_timedlock(self.raw(), &abs) };
            if let Some(raw) = self.classify(r, "pthread_mutex_timedlock")? {
                return Ok(raw);
            }
        }
    }

    #[inline]
    fn took(&self, me: u32, depth: u32, died: bool) {
        self.own.store(pack(me, depth, died), Relaxed);
    }

    /// Acquires, waiting until `deadline` (`Ok(false)` once it passed) or an interrupt.
    #[inline]
    pub(crate) fn acquire(&self, deadline: Deadline) -> Result<bool> {
        let me = tid();
        let own = self.own.load(Relaxed);
        if holder_of(own) == me && self.recursive() {
            // Ours, says the record; the pthread mutex confirms (a thread id can be reused after
            // its owner died).
            match self.trylock()? {
                Some(Raw::Mine) => {
                    let depth = depth_of(own).checked_add(1).filter(|&d| d < 1 << 31);
                    let depth = depth.ok_or_else(|| {
                        Error::InvalidArgument("RLock acquired too many times".into())
                    })?;
                    self.own.store(pack(me, depth, own & DIED != 0), Relaxed);
                    return Ok(true);
                }
                Some(raw) => return self.finish(me, raw, deadline, &Watch::new()),
                None => {}
            }
        }
        // SAFETY: the mutex was initialized by `init`.
        let r = unsafe { libc::pthread_mutex_trylock(self.raw()) };
        if r == 0 {
            self.took(me, 1, false);
            return Ok(true);
        }
        self.acquire_slow(me, r, deadline)
    }

    /// The rest of an acquire whose first `pthread_mutex_trylock` returned `r`.
    #[cold]
    fn acquire_slow(&self, me: u32, r: libc::c_int, deadline: Deadline) -> Result<bool> {
        let watch = Watch::new();
        let raw = match self.classify(r, "pthread_mutex_trylock")? {
            Some(raw) => raw,
            None => self.lock_raw(deadline, &watch)?,
        };
        self.finish(me, raw, deadline, &watch)
    }

    /// Completes an acquire after the pthread call's outcome `raw`.
    fn finish(&self, me: u32, raw: Raw, deadline: Deadline, watch: &Watch) -> Result<bool> {
        match raw {
            Raw::Got(died) => {
                self.took(me, 1, died);
                Ok(true)
            }
            Raw::TimedOut => Ok(false),
            Raw::Mine if self.recursive() => {
                // Held by this thread but not recorded: cannot happen; count it as a new level.
                let own = self.own.load(Relaxed);
                self.own
                    .store(pack(me, depth_of(own) + 1, own & DIED != 0), Relaxed);
                Ok(true)
            }
            Raw::Mine => {
                // A Lock this thread holds: nobody else can release it.
                if deadline.is_never() {
                    return Err(Error::Deadlock);
                }
                while let Some(slice) = deadline.slice() {
                    watch.check()?;
                    std::thread::sleep(slice);
                }
                Ok(false)
            }
        }
    }

    /// Releases one level. Errors: [`Error::ReleasedTooManyTimes`] for a free non-recursive lock
    /// (Python's `ValueError`), [`Error::NotOwner`] otherwise when the caller does not hold it.
    #[inline]
    pub(crate) fn release(&self) -> Result<()> {
        let me = tid();
        let own = self.own.load(Relaxed);
        if holder_of(own) != me {
            return Err(if holder_of(own) == 0 && !self.recursive() {
                Error::ReleasedTooManyTimes
            } else {
                Error::NotOwner
            });
        }
        if depth_of(own) > 1 {
            self.own.store(own - (1 << 32), Relaxed);
            return Ok(());
        }
        self.unlock()
    }

    #[inline]
    fn unlock(&self) -> Result<()> {
        self.own.store(0, Relaxed);
        // SAFETY: initialized mutex; pthread checks that we own it.
        match unsafe { libc::pthread_mutex_unlock(self.raw()) } {
            0 => Ok(()),
            e => Err(unlock_error(e)),
        }
    }

    /// True if the calling thread holds the lock.
    pub(crate) fn is_owned(&self) -> bool {
        holder_of(self.own.load(Relaxed)) == tid()
    }

    /// True while the current holding was taken over from a holder that died.
    pub(crate) fn owner_died(&self) -> bool {
        self.own.load(Relaxed) & DIED != 0
    }

    /// The holder's thread id, if the lock is held.
    pub(crate) fn holder(&self) -> Option<u32> {
        match holder_of(self.own.load(Relaxed)) {
            0 => None,
            t => Some(t),
        }
    }

    /// The recursion depth (0 when free).
    pub(crate) fn depth(&self) -> u32 {
        let own = self.own.load(Relaxed);
        if holder_of(own) == 0 {
            0
        } else {
            depth_of(own)
        }
    }

    /// Releases every level the caller holds (for a condition wait); returns the depth to restore.
    pub(crate) fn release_all(&self) -> Result<u32> {
        let own = self.own.load(Relaxed);
        if holder_of(own) != tid() {
            return Err(Error::NotOwner);
        }
        self.unlock()?;
        Ok(depth_of(own))
    }

    /// Re-acquires after [`release_all`](Self::release_all), restoring `depth`.
    pub(crate) fn restore(&self, depth: u32, deadline: Deadline, watch: &Watch) -> Result<bool> {
        match self.lock_raw(deadline, watch)? {
            Raw::Got(died) => {
                self.took(tid(), depth, died);
                Ok(true)
            }
            Raw::TimedOut => Ok(false),
            Raw::Mine => Err(Error::Deadlock),
        }
    }
}

/// Holds a [`Lock`](crate::Lock), [`RLock`](crate::RLock) or [`Condition`](crate::Condition)'s
/// lock until dropped (one level of an `RLock`). Python's `with lock:`.
///
/// A guard is not `Send`: the thread that acquired the lock releases it.
///
/// ```
/// use multiprocessing::Lock;
/// let lock = Lock::new().unwrap();
/// {
///     let guard = lock.lock().unwrap();
///     assert!(!guard.owner_died());
///     assert!(lock.try_lock().unwrap().is_none()); // held
/// }
/// assert!(lock.try_lock().unwrap().is_some()); // released by the drop
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    core: &'a MutexCore,
    _not_send: PhantomData<*const ()>,
}

impl<'a> LockGuard<'a> {
    #[inline]
    pub(crate) fn new(core: &'a MutexCore) -> LockGuard<'a> {
        LockGuard {
            core,
            _not_send: PhantomData,
        }
    }

    /// True if this holding was taken over from a holder that died while it held the lock (the
    /// data the lock guards may be half-updated: check or repair it before releasing).
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new().unwrap();
    /// assert!(!lock.lock().unwrap().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.core.owner_died()
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if the lock is no longer ours (a condition wait that was interrupted).
        let _ = self.core.release();
    }
}

impl std::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("owner_died", &self.owner_died())
            .finish()
    }
}

mod sealed {
    pub trait Sealed {
        fn core(&self) -> &super::MutexCore;
    }
}
pub(crate) use sealed::Sealed;

/// A lock a [`Condition`](crate::Condition) can use: [`Lock`](crate::Lock) or
/// [`RLock`](crate::RLock) (the trait is sealed).
///
/// ```
/// use multiprocessing::{Condition, Lock, Lockable};
/// fn wants_a_lock<L: Lockable>(lock: L) -> Condition<L> {
///     Condition::with_lock(lock).unwrap()
/// }
/// let cond = wants_a_lock(Lock::new().unwrap());
/// cond.acquire().unwrap();
/// cond.release().unwrap();
/// ```
pub trait Lockable: Sealed + Clone + Send + Sync {}
