//! [`Lock`]: a non-recursive lock shared by processes.

use super::mutex::MutexCore;
use crate::error::Result;
use crate::sys::mapping::Shm;

/// A lock shared by processes: Python's `multiprocessing.Lock`.
///
/// Create it before forking and clone it into the children. [`lock`](Self::lock) returns a guard
/// (Python's `with lock:`); [`acquire`](Self::acquire)/[`release`](Self::release) are there too,
/// with timeouts and [`Error::Interrupted`](crate::Error::Interrupted) on an interrupt.
///
/// **If the holder dies** (killed, or it exits without releasing), the lock is not stuck: the
/// next acquirer gets it at once and is told, through
/// [`LockGuard::owner_died`](crate::LockGuard::owner_died) (or [`owner_died`](Self::owner_died)
/// while it holds the lock), that the data the lock guards may be half-updated. Python's lock
/// stays held forever in that case.
///
/// Deviations from Python: only the thread that acquired the lock may release it
/// ([`Error::NotOwner`](crate::Error::NotOwner); Python's lock is a semaphore that any process may
/// release: use a [`Semaphore`](crate::Semaphore) or an [`Event`](crate::Event) for that), and a
/// blocking [`acquire`](Self::acquire) by the thread that holds the lock returns
/// [`Error::Deadlock`](crate::Error::Deadlock) instead of waiting forever. Releasing a free lock is
/// [`Error::ReleasedTooManyTimes`](crate::Error::ReleasedTooManyTimes) (Python's `ValueError`).
///
/// ```
/// use multiprocessing::{Lock, Process, Value};
/// let lock = Lock::new().unwrap();
/// let counter = Value::new(0u64).unwrap();
/// let mut children = Vec::new();
/// for _ in 0..2 {
///     let (lock, counter) = (lock.clone(), counter.clone());
///     let mut p = Process::new(move || {
///         for _ in 0..100 {
///             let _guard = lock.lock().unwrap();
///             counter.set(counter.get().unwrap() + 1).unwrap();
///         }
///     });
///     p.start().unwrap();
///     children.push(p);
/// }
/// for mut p in children {
///     p.join().unwrap();
/// }
/// assert_eq!(counter.get().unwrap(), 200);
/// ```
#[derive(Clone)]
pub struct Lock {
    core: Shm<MutexCore>,
}

impl Lock {
    /// A new, free lock.
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new().unwrap();
    /// assert!(lock.try_acquire().unwrap());
    /// assert!(!lock.try_acquire().unwrap()); // not recursive
    /// lock.release().unwrap();
    /// ```
    pub fn new() -> Result<Lock> {
        // SAFETY: a zeroed MutexCore is valid once `init` has run, which happens before sharing.
        let core = unsafe { Shm::<MutexCore>::zeroed(0)? };
        // SAFETY: fresh zeroed memory that nobody else sees yet.
        unsafe { MutexCore::init(core.byte_ptr(0).cast(), false)? };
        Ok(Lock { core })
    }
}

lock_methods!(
    Lock,
    "A thread that already holds the lock gets [`Error::Deadlock`](crate::Error::Deadlock)."
);

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.core.holder() {
            None => write!(f, "<Lock(owner=None)>"),
            Some(h) => write!(f, "<Lock(owner={})>", super::owner_name(h)),
        }
    }
}
