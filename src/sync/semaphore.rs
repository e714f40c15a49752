//! [`Semaphore`] and [`BoundedSemaphore`]: counters in shared memory, on a futex word.
//!
//! The count is one atomic word: `acquire` decrements it when it is positive, `release` increments
//! it, so a process killed at any instant cannot leave it inconsistent (a permit it held is simply
//! never given back, as in Python).

use super::SPIN;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::mapping::Shm;
use crate::sys::{self, Deadline};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

/// Python's `SEM_VALUE_MAX` on Linux.
const VALUE_MAX: u32 = i32::MAX as u32;

#[repr(C)]
struct State {
    value: AtomicU32,
    /// Sleepers (a sleeper killed in its sleep stays counted: only costs useless wake-ups).
    waiters: AtomicU32,
    /// The highest value `release` may reach.
    max: AtomicU32,
}

/// A counting semaphore shared by processes: Python's `multiprocessing.Semaphore`.
///
/// [`acquire`](Self::acquire) waits until the value is positive and decrements it;
/// [`release`](Self::release) increments it (from any thread or process, as in Python, and beyond
/// the initial value). [`permit`](Self::permit) returns a guard that releases when dropped
/// (Python's `with sem:`).
///
/// ```
/// use multiprocessing::{Process, Semaphore};
/// use std::time::Duration;
/// let sem = Semaphore::new(2).unwrap();
/// assert!(sem.try_acquire().unwrap());
/// assert!(sem.try_acquire().unwrap());
/// assert!(!sem.acquire_timeout(Duration::from_millis(10)).unwrap());
/// assert_eq!(sem.get_value(), 0);
/// let other = sem.clone();
/// let mut p = Process::new(move || other.release().unwrap());
/// p.start().unwrap();
/// sem.acquire().unwrap(); // the child's release lets us through
/// p.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Semaphore {
    state: Shm<State>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Semaphore(value={})>", self.get_value())
    }
}

impl Semaphore {
    /// A semaphore with initial value `value` (at most `i32::MAX`, Python's `SEM_VALUE_MAX`).
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(3).unwrap();
    /// assert_eq!(sem.get_value(), 3);
    /// ```
    pub fn new(value: u32) -> Result<Semaphore> {
        Self::create(value, VALUE_MAX)
    }

    fn create(value: u32, max: u32) -> Result<Semaphore> {
        if value > VALUE_MAX {
            return Err(Error::InvalidArgument(format!(
                "semaphore value {value} is larger than {VALUE_MAX}"
            )));
        }
        // SAFETY: an all-zero State is valid (atomics).
        let state = unsafe { Shm::<State>::zeroed(0)? };
        state.value.store(value, SeqCst);
        state.max.store(max, SeqCst);
        Ok(Semaphore { state })
    }

    /// Takes one unit if the value is positive.
    fn try_take(&self) -> bool {
        self.state
            .value
            .fetch_update(SeqCst, Relaxed, |v| v.checked_sub(1))
            .is_ok()
    }

    fn acquire_deadline(&self, deadline: Deadline) -> Result<bool> {
        if self.try_take() {
            return Ok(true);
        }
        if deadline.slice().is_none() {
            return Ok(false);
        }
        if SPIN.until(|| self.state.value.load(Relaxed) > 0 && self.try_take()) {
            return Ok(true);
        }
        let watch = Watch::new();
        let taken = deadline.wait(
            || watch.check(),
            |slice| {
                self.state.waiters.fetch_add(1, SeqCst);
                // Sleeps only while the value is still 0 (checked by the kernel).
                if self.try_take() {
                    self.state.waiters.fetch_sub(1, SeqCst);
                    return Ok(Some(()));
                }
                sys::futex_wait(&self.state.value, 0, slice);
                self.state.waiters.fetch_sub(1, SeqCst);
                Ok(self.try_take().then_some(()))
            },
        )?;
        Ok(taken.is_some())
    }

    /// Waits until the value is positive, then decrements it (or [`Error::Interrupted`]).
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(1).unwrap();
    /// sem.acquire().unwrap();
    /// assert_eq!(sem.get_value(), 0);
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.acquire_deadline(Deadline::never()).map(drop)
    }

    /// Like [`acquire`](Self::acquire), waiting at most `timeout`; `Ok(false)` if it could not.
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(0).unwrap();
    /// assert!(!sem.acquire_timeout(std::time::Duration::from_millis(10)).unwrap());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.acquire_deadline(Deadline::after(timeout))
    }

    /// Decrements the value if it is positive, without waiting (Python's `acquire(False)`).
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(1).unwrap();
    /// assert!(sem.try_acquire().unwrap());
    /// assert!(!sem.try_acquire().unwrap());
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        Ok(self.try_take())
    }

    /// Increments the value and wakes one waiter. For a [`BoundedSemaphore`], going above the
    /// initial value is [`Error::ReleasedTooManyTimes`]; for a `Semaphore`, above `i32::MAX`.
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(0).unwrap();
    /// sem.release().unwrap();
    /// sem.release().unwrap(); // beyond the initial value: allowed, as in Python
    /// assert_eq!(sem.get_value(), 2);
    /// ```
    pub fn release(&self) -> Result<()> {
        let max = self.state.max.load(Relaxed);
        self.state
            .value
            .fetch_update(
                SeqCst,
                Relaxed,
                |v| if v < max { Some(v + 1) } else { None },
            )
            .map_err(|_| Error::ReleasedTooManyTimes)?;
        // Pairs with the sleeper's increment of `waiters` before its futex wait (both SeqCst):
        // either it sees the new value, or we see it waiting.
        if self.state.waiters.load(SeqCst) > 0 {
            sys::futex_wake(&self.state.value, 1);
        }
        Ok(())
    }

    /// The current value.
    ///
    /// ```
    /// assert_eq!(multiprocessing::Semaphore::new(5).unwrap().get_value(), 5);
    /// ```
    pub fn get_value(&self) -> u32 {
        self.state.value.load(SeqCst)
    }

    /// Acquires and returns a guard that releases when dropped (Python's `with sem:`).
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(1).unwrap();
    /// {
    ///     let _permit = sem.permit().unwrap();
    ///     assert_eq!(sem.get_value(), 0);
    /// }
    /// assert_eq!(sem.get_value(), 1);
    /// ```
    pub fn permit(&self) -> Result<SemaphoreGuard<'_>> {
        self.acquire()?;
        Ok(SemaphoreGuard {
            sem: self,
            _not_send: PhantomData,
        })
    }

    /// Like [`permit`](Self::permit), waiting at most `timeout` (`Ok(None)` if it could not).
    ///
    /// ```
    /// let sem = multiprocessing::Semaphore::new(0).unwrap();
    /// assert!(sem.permit_timeout(std::time::Duration::from_millis(5)).unwrap().is_none());
    /// ```
    pub fn permit_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreGuard<'_>>> {
        Ok(if self.acquire_timeout(timeout)? {
            Some(SemaphoreGuard {
                sem: self,
                _not_send: PhantomData,
            })
        } else {
            None
        })
    }
}

/// A unit of a [`Semaphore`] (or [`BoundedSemaphore`]), released when dropped.
///
/// ```
/// let sem = multiprocessing::BoundedSemaphore::new(1).unwrap();
/// let permit = sem.permit().unwrap();
/// drop(permit);
/// assert_eq!(sem.get_value(), 1);
/// ```
#[must_use = "the unit is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
    _not_send: PhantomData<*const ()>,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let _ = self.sem.release();
    }
}

impl std::fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SemaphoreGuard({:?})", self.sem)
    }
}

/// A semaphore that may not be released above its initial value: Python's
/// `multiprocessing.BoundedSemaphore`. It has every method of [`Semaphore`] (through `Deref`).
///
/// ```
/// use multiprocessing::{BoundedSemaphore, Error};
/// let sem = BoundedSemaphore::new(1).unwrap();
/// sem.acquire().unwrap();
/// sem.release().unwrap();
/// assert!(matches!(sem.release(), Err(Error::ReleasedTooManyTimes)));
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore(Semaphore);

impl BoundedSemaphore {
    /// A bounded semaphore whose value starts, and stays at most, at `value`.
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(2).unwrap();
    /// assert_eq!(sem.get_value(), 2);
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore(Semaphore::create(value, value)?))
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.0
    }
}

impl std::fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<BoundedSemaphore(value={}, maxvalue={})>",
            self.get_value(),
            self.0.state.max.load(Relaxed)
        )
    }
}
