//! [`Event`]: a flag in shared memory that processes wait for.

use super::SPIN;
use super::Signal;
use crate::error::Result;
use crate::interrupt::Watch;
use crate::sys::Deadline;
use crate::sys::mapping::Shm;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

#[repr(C)]
struct State {
    /// Bit 0: the flag. The other bits count the times it was set (so that a waiter notices a
    /// `set` even if a `clear` follows at once).
    word: AtomicU32,
    signal: Signal,
}

/// An event flag shared by processes: Python's `multiprocessing.Event`.
///
/// [`set`](Self::set) wakes every process waiting in [`wait`](Self::wait). A waiter that was
/// waiting when the event was set returns `true` even if it is cleared again at once (Python's
/// `threading.Event` does this too; `multiprocessing.Event` may miss such a pulse).
///
/// ```
/// use multiprocessing::{Event, Process};
/// use std::time::Duration;
/// let event = Event::new().unwrap();
/// assert!(!event.wait_timeout(Duration::from_millis(10)).unwrap());
/// let setter = event.clone();
/// let mut p = Process::new(move || setter.set());
/// p.start().unwrap();
/// event.wait().unwrap();
/// assert!(event.is_set());
/// p.join().unwrap();
/// event.clear();
/// assert!(!event.is_set());
/// ```
#[derive(Clone)]
pub struct Event {
    state: Shm<State>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Event(is_set={})>", self.is_set())
    }
}

impl Event {
    /// A new event, not set.
    ///
    /// ```
    /// assert!(!multiprocessing::Event::new().unwrap().is_set());
    /// ```
    pub fn new() -> Result<Event> {
        // SAFETY: an all-zero State is valid (atomics).
        let state = unsafe { Shm::<State>::zeroed(0)? };
        Ok(Event { state })
    }

    /// True if the flag is set.
    ///
    /// ```
    /// let e = multiprocessing::Event::new().unwrap();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.word.load(SeqCst) & 1 == 1
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let e = multiprocessing::Event::new().unwrap();
    /// e.set();
    /// e.wait().unwrap(); // returns at once
    /// ```
    pub fn set(&self) {
        let word = &self.state.word;
        let mut w = word.load(SeqCst);
        while w & 1 == 0 {
            match word.compare_exchange_weak(w, w.wrapping_add(2) | 1, SeqCst, SeqCst) {
                Ok(_) => {
                    self.state.signal.notify_all();
                    return;
                }
                Err(now) => w = now,
            }
        }
    }

    /// Clears the flag.
    ///
    /// ```
    /// let e = multiprocessing::Event::new().unwrap();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.word.fetch_and(!1, SeqCst);
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<bool> {
        let word = &self.state.word;
        let start = word.load(SeqCst);
        if start & 1 == 1 {
            return Ok(true);
        }
        let ready = || {
            let w = word.load(SeqCst);
            w & 1 == 1 || w >> 1 != start >> 1
        };
        if SPIN.until(ready) {
            return Ok(true);
        }
        self.state
            .signal
            .wait_until(ready, deadline, &Watch::new(), Duration::ZERO)
    }

    /// Waits until the flag is set (or [`Error::Interrupted`](crate::Error::Interrupted)).
    ///
    /// ```
    /// let e = multiprocessing::Event::new().unwrap();
    /// e.set();
    /// e.wait().unwrap();
    /// ```
    pub fn wait(&self) -> Result<()> {
        self.wait_deadline(Deadline::never()).map(drop)
    }

    /// Waits at most `timeout`: `Ok(true)` if the flag was set, `Ok(false)` on timeout (Python's
    /// `wait(timeout)`).
    ///
    /// ```
    /// let e = multiprocessing::Event::new().unwrap();
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_deadline(Deadline::after(timeout))
    }
}
