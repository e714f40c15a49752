//! The robust process-shared mutex under [`Lock`](crate::Lock), [`RLock`](crate::RLock),
//! [`Condition`](crate::Condition), [`Value`](crate::Value) and [`Array`](crate::Array), and the
//! guard they all return.
//!
//! It is the system layer's [`RobustMutex`], error-checking: when its holder dies (the thread
//! exits, or the process is killed), the kernel marks it and wakes one waiter, which takes it
//! over. Next to it live the holder's thread id and the recursion depth, which the holder alone
//! writes. Here too: [`lock_until`], the one way the library waits for a robust mutex, and the
//! plain [`RobustGuard`] of the queues' locks.

use super::SPIN;
use super::tid::tid;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::{Acquired, Deadline, Errno, RobustMutex};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Locks `m`, waiting in slices until `deadline` ([`Acquired::Busy`] once it passed) or an
/// interrupt.
pub(crate) fn lock_until(m: &RobustMutex, deadline: Deadline, watch: &Watch) -> Result<Acquired> {
    let got = deadline.wait(
        || watch.check(),
        |slice| {
            Ok(match m.lock_for(slice)? {
                Acquired::Busy => None,
                got => Some(got),
            })
        },
    )?;
    Ok(got.unwrap_or(Acquired::Busy))
}

/// Locks a plain (not error-checking) robust mutex of the library's own shared structures (the
/// queues' locks), waiting until `deadline` (`Ok(None)` once it passed) or an interrupt. A holder
/// that died is taken over silently: the data such a lock guards stays consistent at every
/// instant. The guard unlocks when dropped (also on panic).
pub(crate) fn guard<'a>(
    m: &'a RobustMutex,
    deadline: Deadline,
    watch: &Watch,
) -> Result<Option<RobustGuard<'a>>> {
    let got = match m.try_lock()? {
        Acquired::Busy => lock_until(m, deadline, watch)?,
        got => got,
    };
    match got {
        Acquired::Got { .. } => Ok(Some(RobustGuard(m))),
        Acquired::Busy => Ok(None),
        // Only a thread that locks a lock it holds; the queues never do.
        Acquired::Mine => Err(Errno::EDEADLK.error("pthread_mutex_lock")),
    }
}

/// Holds a robust mutex locked by [`guard`] until dropped.
pub(crate) struct RobustGuard<'a>(&'a RobustMutex);

impl Drop for RobustGuard<'_> {
    fn drop(&mut self) {
        // Cannot fail: the guard's thread holds the (non-error-checking) mutex.
        let _ = self.0.unlock();
    }
}

#[repr(C)]
/// The shared state of a lock (public only so that the sealed [`Lockable`] can name it).
pub struct MutexCore {
    mutex: RobustMutex,
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

#[cold]
fn unlock_error(e: i32) -> Error {
    if e == Errno::EPERM.0 {
        Error::NotOwner
    } else {
        Error::os("pthread_mutex_unlock", e)
    }
}

impl MutexCore {
    /// Initializes the mutex in place.
    ///
    /// # Safety
    /// `this` must point to zeroed shared memory that no other process uses yet.
    pub(crate) unsafe fn init(this: *mut MutexCore, recursive: bool) -> Result<()> {
        // SAFETY: `this` is valid and unused by anyone else (the caller's promise); the other
        // fields are atomics, valid when zeroed, and written through raw pointers.
        unsafe {
            RobustMutex::init(&raw mut (*this).mutex, true)?;
            (*this).recursive = AtomicBool::new(recursive);
        }
        Ok(())
    }

    #[inline]
    fn recursive(&self) -> bool {
        self.recursive.load(Relaxed)
    }

    /// Locks the pthread mutex: spins briefly, then sleeps in slices until `deadline`.
    fn lock_raw(&self, deadline: Deadline, watch: &Watch) -> Result<Acquired> {
        match self.mutex.try_lock()? {
            Acquired::Busy => {}
            got => return Ok(got),
        }
        if deadline.slice().is_none() {
            return Ok(Acquired::Busy);
        }
        let mut spun = None;
        SPIN.until(|| {
            if holder_of(self.own.load(Relaxed)) != 0 {
                return false;
            }
            spun = match self.mutex.try_lock() {
                Ok(Acquired::Busy) => None,
                got => Some(got),
            };
            spun.is_some()
        });
        if let Some(got) = spun {
            return got;
        }
        lock_until(&self.mutex, deadline, watch)
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
            match self.mutex.try_lock()? {
                Acquired::Mine => {
                    let depth = depth_of(own).checked_add(1).filter(|&d| d < 1 << 31);
                    let depth = depth.ok_or_else(|| {
                        Error::InvalidArgument("RLock acquired too many times".into())
                    })?;
                    self.own.store(pack(me, depth, own & DIED != 0), Relaxed);
                    return Ok(true);
                }
                Acquired::Busy => {}
                got => return self.finish(me, got, deadline, &Watch::new()),
            }
        }
        match self.mutex.try_lock()? {
            Acquired::Got { died: false } => {
                self.took(me, 1, false);
                Ok(true)
            }
            first => self.acquire_slow(me, first, deadline),
        }
    }

    /// The rest of an acquire whose first `trylock` gave `first`.
    #[cold]
    fn acquire_slow(&self, me: u32, first: Acquired, deadline: Deadline) -> Result<bool> {
        let watch = Watch::new();
        let got = match first {
            Acquired::Busy => self.lock_raw(deadline, &watch)?,
            got => got,
        };
        self.finish(me, got, deadline, &watch)
    }

    /// Completes an acquire after the pthread call's outcome `got`.
    fn finish(&self, me: u32, got: Acquired, deadline: Deadline, watch: &Watch) -> Result<bool> {
        match got {
            Acquired::Got { died } => {
                self.took(me, 1, died);
                Ok(true)
            }
            Acquired::Busy => Ok(false),
            Acquired::Mine if self.recursive() => {
                // Held by this thread but not recorded: cannot happen; count it as a new level.
                let own = self.own.load(Relaxed);
                self.own
                    .store(pack(me, depth_of(own) + 1, own & DIED != 0), Relaxed);
                Ok(true)
            }
            Acquired::Mine => {
                // A Lock this thread holds: nobody else can release it.
                if deadline.is_never() {
                    return Err(Error::Deadlock);
                }
                deadline.wait(
                    || watch.check(),
                    |slice| {
                        std::thread::sleep(slice);
                        Ok(None::<()>)
                    },
                )?;
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
        // The error-checking mutex itself checks that we hold it.
        self.mutex.unlock().map_err(unlock_error)
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
            Acquired::Got { died } => {
                self.took(tid(), depth, died);
                Ok(true)
            }
            Acquired::Busy => Ok(false),
            Acquired::Mine => Err(Error::Deadlock),
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
