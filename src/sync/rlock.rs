//! [`RLock`]: a recursive lock shared by processes.

use super::mutex::MutexCore;
use crate::error::Result;
use crate::sys::mapping::Shm;

/// A recursive lock shared by processes: Python's `multiprocessing.RLock`.
///
/// The holder (a thread of a process) may acquire it again; it is free once released as many
/// times. Releasing it from a thread that does not hold it is
/// [`Error::NotOwner`](crate::Error::NotOwner) (Python's `AssertionError`). Like
/// [`Lock`](crate::Lock), it is taken over by the next acquirer if its holder dies
/// ([`LockGuard::owner_died`](crate::LockGuard::owner_died) tells).
///
/// ```
/// use multiprocessing::{Error, Process, RLock};
/// let rlock = RLock::new().unwrap();
/// rlock.acquire().unwrap();
/// rlock.acquire().unwrap(); // again: recursive
/// assert_eq!(format!("{rlock:?}"), "<RLock(MainProcess, 2)>");
/// let other = rlock.clone();
/// let mut p = Process::new(move || {
///     assert!(matches!(other.release(), Err(Error::NotOwner)));
///     assert!(!other.try_acquire().unwrap());
/// });
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(0));
/// rlock.release().unwrap();
/// rlock.release().unwrap();
/// assert!(matches!(rlock.release(), Err(Error::NotOwner)));
/// ```
#[derive(Clone)]
pub struct RLock {
    pub(crate) core: Shm<MutexCore>,
}

impl RLock {
    /// A new, free recursive lock.
    ///
    /// ```
    /// let rlock = multiprocessing::RLock::new().unwrap();
    /// assert_eq!(format!("{rlock:?}"), "<RLock(None, 0)>");
    /// ```
    pub fn new() -> Result<RLock> {
        Self::with_room(0)
    }

    /// A recursive lock at the start of a region of `len` bytes (for [`crate::Value`] and
    /// [`crate::Array`], whose data follows it).
    pub(crate) fn with_room(len: usize) -> Result<RLock> {
        // SAFETY: a zeroed MutexCore is valid once `init` has run, which happens before sharing.
        let core = unsafe { Shm::<MutexCore>::zeroed(len)? };
        // SAFETY: fresh zeroed memory that nobody else sees yet.
        unsafe { MutexCore::init(core.byte_ptr(0).cast(), true)? };
        Ok(RLock { core })
    }
}

lock_methods!(
    RLock,
    "The holder may acquire again: one more level to release."
);

impl std::fmt::Debug for RLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.core.holder() {
            None => write!(f, "<RLock(None, 0)>"),
            Some(h) => write!(
                f,
                "<RLock({}, {})>",
                super::owner_name(h),
                self.core.depth()
            ),
        }
    }
}
