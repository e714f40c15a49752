//! Synchronization primitives shared by processes: [`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Event`], [`Condition`] and [`Barrier`].
//!
//! Each lives in shared memory (a memfd mapping of its own) and is usable by every process forked
//! after it was created: create it in the parent, clone it into the `Process` closures. Every
//! blocking call has a timeout form and returns [`Error::Interrupted`](crate::Error::Interrupted)
//! on an interrupt (see [`crate::interrupt`]).

use crate::current_process;

/// The generated methods shared by [`Lock`] and [`RLock`] (both wrap a `MutexCore`).
macro_rules! lock_methods {
    ($t:ident, $acquire_note:literal) => {
        impl $t {
            /// Acquires, waiting as long as it takes (or until an interrupt).
            #[doc = $acquire_note]
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// lock.acquire().unwrap();
            /// lock.release().unwrap();
            /// ```
            #[inline]
            pub fn acquire(&self) -> crate::Result<()> {
                self.core.acquire(crate::sys::Deadline::never()).map(drop)
            }

            /// Acquires, waiting at most `timeout`; `Ok(false)` if it could not.
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// assert!(lock.acquire_timeout(std::time::Duration::from_millis(10)).unwrap());
            /// lock.release().unwrap();
            /// ```
            pub fn acquire_timeout(&self, timeout: std::time::Duration) -> crate::Result<bool> {
                self.core.acquire(crate::sys::Deadline::after(timeout))
            }

            /// Acquires only if that needs no wait (Python's `acquire(False)`).
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// assert!(lock.try_acquire().unwrap());
            /// lock.release().unwrap();
            /// ```
            pub fn try_acquire(&self) -> crate::Result<bool> {
                self.acquire_timeout(std::time::Duration::ZERO)
            }

            /// Releases (one level). Only the thread that acquired may release:
            /// [`Error::NotOwner`](crate::Error::NotOwner) otherwise.
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// lock.acquire().unwrap();
            /// lock.release().unwrap();
            /// assert!(lock.release().is_err());
            /// ```
            #[inline]
            pub fn release(&self) -> crate::Result<()> {
                self.core.release()
            }

            /// Acquires and returns a guard that releases when dropped (Python's `with lock:`).
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// {
            ///     let _guard = lock.lock().unwrap();
            ///     // … the critical section …
            /// }
            /// ```
            #[inline]
            pub fn lock(&self) -> crate::Result<crate::LockGuard<'_>> {
                self.acquire()?;
                Ok(crate::LockGuard::new(&self.core))
            }

            /// Like [`lock`](Self::lock), waiting at most `timeout` (`Ok(None)` if it could not).
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// let guard = lock.lock_timeout(std::time::Duration::from_millis(10)).unwrap();
            /// assert!(guard.is_some());
            /// ```
            pub fn lock_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> crate::Result<Option<crate::LockGuard<'_>>> {
                Ok(if self.acquire_timeout(timeout)? {
                    Some(crate::LockGuard::new(&self.core))
                } else {
                    None
                })
            }

            /// Like [`lock`](Self::lock) if that needs no wait, `Ok(None)` otherwise.
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// assert!(lock.try_lock().unwrap().is_some());
            /// ```
            pub fn try_lock(&self) -> crate::Result<Option<crate::LockGuard<'_>>> {
                self.lock_timeout(std::time::Duration::ZERO)
            }

            /// For the holder: true if this holding was taken over from a holder that died
            /// while it held the lock (the guarded data may be half-updated).
            ///
            /// ```
            #[doc = concat!("let lock = multiprocessing::", stringify!($t), "::new().unwrap();")]
            /// lock.acquire().unwrap();
            /// assert!(!lock.owner_died());
            /// lock.release().unwrap();
            /// ```
            pub fn owner_died(&self) -> bool {
                self.core.owner_died()
            }
        }

        impl crate::sync::mutex::Sealed for $t {
            fn core(&self) -> &crate::sync::mutex::MutexCore {
                &self.core
            }
        }

        impl crate::sync::mutex::Lockable for $t {}
    };
}

mod barrier;
mod condition;
mod event;
mod liveness;
mod lock;
pub(crate) mod mutex;
mod rlock;
mod semaphore;
mod signal;
mod tid;

pub(crate) use mutex::guard as lock_robust;
pub(crate) use signal::Signal;

/// The spin every blocking wait of this module does before it sleeps in the kernel: long enough
/// to catch a hand-over from a process running on another core (a round trip costs well under a
/// microsecond then, against several for a futex sleep and wake-up), short enough to cost little
/// when the wait is long. It yields the CPU every 64 probes: the process it waits for may be
/// waiting for this very CPU (more runnable processes than cores), and then spinning alone would
/// only delay it. Its probes are atomic loads, cheaper than a look at the clock: it reads the clock
/// every 64 probes only.
pub(crate) const SPIN: crate::sys::Spin =
    crate::sys::Spin::new(std::time::Duration::from_micros(20)).check_every(64);

pub use barrier::Barrier;
pub use condition::Condition;
pub use event::Event;
pub use lock::Lock;
pub use mutex::{LockGuard, Lockable};
pub use rlock::RLock;
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

/// Python's name for a lock's holder in `repr`: this process (and thread), another thread of
/// this process, or another process.
fn owner_name(holder: u32) -> String {
    if holder == tid::tid() {
        current_process().name().to_string()
    } else if std::path::Path::new(&format!("/proc/self/task/{holder}")).exists() {
        "SomeOtherThread".to_string()
    } else {
        "SomeOtherProcess".to_string()
    }
}
