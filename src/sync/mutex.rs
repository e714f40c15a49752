//! The robust process-shared mutex under [`Lock`](crate::Lock), [`RLock`](crate::RLock),
//! [`Condition`](crate::Condition), [`Value`](crate::Value) and [`Array`](crate::Array), and the
//! guard they all return.
//!
//! It is a glibc robust, error-checking, process-shared pthread mutex: when its holder dies (the
//! thread exits, or the process is killed), the kernel marks it and wakes one waiter, which takes
//! it over. Next to it live the holder's thread id and the recursion depth, which the holder alone
//! writes.

use super::tid::tid;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::Deadline;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long a contended acquire spins (re-trying when the lock looks free) before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

#[repr(C)]
/// The shared state of a lock (public only so that the sealed [`Lockable`] can name it).
pub struct MutexCore {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// The holder's thread id, 0 when free.
    holder: AtomicU32,
    /// Recursion depth (always 1 while held, for a non-recursive lock).
    count: AtomicU32,
    /// True while the current holding was taken over from a holder that died.
    died: AtomicBool,
    recursive: AtomicBool,
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

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.mutex.get()
    }

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
        let start = Instant::now();
        let mut i = 0u32;
        loop {
            std::hint::spin_loop();
            if self.holder.load(Relaxed) == 0
                && let Some(raw) = self.trylock()?
            {
                return Ok(raw);
            }
            i += 1;
            if i.is_multiple_of(64) && start.elapsed() >= SPIN {
                break;
            }
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

    fn took(&self, me: u32, count: u32, died: bool) {
        self.holder.store(me, Relaxed);
        self.count.store(count, Relaxed);
        self.died.store(died, Relaxed);
    }

    /// Acquires, waiting until `deadline` (`Ok(false)` once it passed) or an interrupt.
    pub(crate) fn acquire(&self, deadline: Deadline, watch: &Watch) -> Result<bool> {
        let me = tid();
        if self.recursive() && self.holder.load(Relaxed) == me {
            // The pthread mutex confirms (a thread id can be reused after its owner died).
            match self.trylock()? {
                Some(Raw::Mine) => {
                    let c = self.count.load(Relaxed);
                    let c = c.checked_add(1).ok_or_else(|| {
                        Error::InvalidArgument("RLock acquired too many times".into())
                    })?;
                    self.count.store(c, Relaxed);
                    return Ok(true);
                }
                Some(Raw::Got(died)) => {
                    self.took(me, 1, died);
                    return Ok(true);
                }
                _ => {}
            }
        }
        match self.lock_raw(deadline, watch)? {
            Raw::Got(died) => {
                self.took(me, 1, died);
                Ok(true)
            }
            Raw::TimedOut => Ok(false),
            Raw::Mine if self.recursive() => {
                // Held by this thread but not recorded: cannot happen; count it as a new level.
                self.count.fetch_add(1, Relaxed);
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
    pub(crate) fn release(&self) -> Result<()> {
        let me = tid();
        let holder = self.holder.load(Relaxed);
        if holder != me {
            return Err(if holder == 0 && !self.recursive() {
                Error::ReleasedTooManyTimes
            } else {
                Error::NotOwner
            });
        }
        let c = self.count.load(Relaxed);
        if c > 1 {
            self.count.store(c - 1, Relaxed);
            return Ok(());
        }
        self.unlock()
    }

    fn unlock(&self) -> Result<()> {
        self.count.store(0, Relaxed);
        self.died.store(false, Relaxed);
        self.holder.store(0, Relaxed);
        // SAFETY: initialized mutex; pthread checks that we own it.
        match unsafe { libc::pthread_mutex_unlock(self.raw()) } {
            0 => Ok(()),
            libc::EPERM => Err(Error::NotOwner),
            e => Err(Error::os("pthread_mutex_unlock", e)),
        }
    }

    /// True if the calling thread holds the lock.
    pub(crate) fn is_owned(&self) -> bool {
        self.holder.load(Relaxed) == tid()
    }

    /// True while the current holding was taken over from a holder that died.
    pub(crate) fn owner_died(&self) -> bool {
        self.died.load(Relaxed)
    }

    /// The holder's thread id, if the lock is held.
    pub(crate) fn holder(&self) -> Option<u32> {
        match self.holder.load(Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// The recursion depth (0 when free).
    pub(crate) fn depth(&self) -> u32 {
        if self.holder.load(Relaxed) == 0 {
            0
        } else {
            self.count.load(Relaxed)
        }
    }

    /// Releases every level the caller holds (for a condition wait); returns the depth to restore.
    pub(crate) fn release_all(&self) -> Result<u32> {
        if !self.is_owned() {
            return Err(Error::NotOwner);
        }
        let depth = self.count.load(Relaxed);
        self.unlock()?;
        Ok(depth)
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
