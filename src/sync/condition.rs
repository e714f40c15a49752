//! [`Condition`]: a condition variable shared by processes, over a [`Lock`](crate::Lock) or an [`RLock`].
//!
//! Each waiter takes a slot in shared memory (under the condition's lock), numbered by arrival,
//! and sleeps on the slot's futex word; `notify(n)` marks the `n` oldest waiting slots and wakes
//! exactly those. A waiter that times out withdraws its slot unless a notifier marked it first,
//! in which case it counts as woken: no notification is lost and none wakes two waiters.

use super::RLock;
use super::SPIN;
use super::liveness;
use super::mutex::{LockGuard, Lockable, MutexCore};
use super::tid::tid;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::mapping::Shm;
use crate::sys::{self, Deadline};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

/// Waiters one condition can hold at once (its shared memory is sparse: unused slots cost nothing).
const SLOTS: usize = 4096;
const FREE: u32 = 0;
/// Waiting, spinning: a notifier need not call the kernel to wake it.
const WAITING: u32 = 1;
const NOTIFIED: u32 = 2;
/// Waiting, asleep in the kernel (or about to be).
const SLEEPING: u32 = 3;

#[repr(C)]
struct Slot {
    state: AtomicU32,
    /// The waiting thread.
    tid: AtomicU32,
    ticket: AtomicU64,
    /// Refreshed by a sleeping waiter at every slice (see [`liveness`]).
    heartbeat: AtomicU64,
}

#[repr(C)]
struct State {
    /// The next arrival number (written under the lock).
    tickets: AtomicU64,
    /// Slots whose waiter waits (`WAITING` or `SLEEPING`).
    waiting: AtomicU32,
    /// Slots ever used (`slots[..high]`), written under the lock.
    high: AtomicU32,
    slots: [Slot; SLOTS],
}

/// A condition variable shared by processes: Python's `multiprocessing.Condition`.
///
/// It uses its own [`RLock`] ([`Condition::new`]) or a given [`Lock`](crate::Lock) or [`RLock`]
/// ([`Condition::with_lock`]). [`wait`](Self::wait), [`notify`](Self::notify) and
/// [`notify_all`](Self::notify_all) need the calling thread to hold that lock
/// ([`Error::NotOwner`] otherwise, Python's `AssertionError`). `wait` releases the lock while it
/// sleeps (every level of an `RLock`) and holds it again when it returns `Ok`; after an error
/// (an interrupt) the lock is not held.
///
/// `notify_n(n)` wakes exactly the `n` longest-waiting processes (or threads), never more.
///
/// ```
/// use multiprocessing::{Condition, Process, Value};
/// let cond = Condition::new().unwrap();
/// let ready = Value::new(false).unwrap();
/// let (c, r) = (cond.clone(), ready.clone());
/// let mut p = Process::new(move || {
///     let _guard = c.lock().unwrap();
///     r.set(true).unwrap();
///     c.notify_all().unwrap();
/// });
/// let guard = cond.lock().unwrap();
/// p.start().unwrap();
/// cond.wait_for(|| ready.get().unwrap()).unwrap();
/// drop(guard);
/// p.join().unwrap();
/// ```
pub struct Condition<L = RLock> {
    lock: L,
    state: Shm<State>,
}

impl<L: Lockable> Clone for Condition<L> {
    fn clone(&self) -> Self {
        Condition {
            lock: self.lock.clone(),
            state: self.state.clone(),
        }
    }
}

impl<L: Lockable + std::fmt::Debug> std::fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Condition({:?}, {})>",
            self.lock,
            self.state.waiting.load(SeqCst)
        )
    }
}

impl Condition<RLock> {
    /// A condition with a new [`RLock`] of its own (Python's default).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// assert_eq!(format!("{cond:?}"), "<Condition(<RLock(None, 0)>, 0)>");
    /// ```
    pub fn new() -> Result<Condition<RLock>> {
        Condition::with_lock(RLock::new()?)
    }
}

impl<L: Lockable> Condition<L> {
    /// A condition over `lock` (a clone of a [`Lock`](crate::Lock) or an [`RLock`]): holding the lock is
    /// holding the condition.
    ///
    /// ```
    /// use multiprocessing::{Condition, Lock};
    /// let lock = Lock::new().unwrap();
    /// let cond = Condition::with_lock(lock.clone()).unwrap();
    /// let _guard = lock.lock().unwrap();
    /// cond.notify().unwrap(); // the lock is held, so notify is allowed
    /// ```
    pub fn with_lock(lock: L) -> Result<Condition<L>> {
        // SAFETY: an all-zero State is valid (atomics).
        let state = unsafe { Shm::<State>::zeroed(0)? };
        Ok(Condition { lock, state })
    }

    fn core(&self) -> &MutexCore {
        self.lock.core()
    }

    /// Acquires the condition's lock (see [`Lock::acquire`](crate::Lock::acquire)).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// cond.acquire().unwrap();
    /// cond.release().unwrap();
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.core().acquire(Deadline::never()).map(drop)
    }

    /// Acquires the lock, waiting at most `timeout`; `Ok(false)` if it could not.
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// assert!(cond.acquire_timeout(std::time::Duration::from_millis(5)).unwrap());
    /// cond.release().unwrap();
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.core().acquire(Deadline::after(timeout))
    }

    /// Releases the lock (one level of an `RLock`).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// assert!(cond.release().is_err()); // not held
    /// ```
    pub fn release(&self) -> Result<()> {
        self.core().release()
    }

    /// Acquires the lock and returns a guard that releases it (Python's `with cond:`).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// let _guard = cond.lock().unwrap();
    /// cond.notify_all().unwrap();
    /// ```
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire()?;
        Ok(LockGuard::new(self.core()))
    }

    /// Takes a free slot and files this thread as its waiter (under the lock).
    fn enqueue(&self) -> Result<&Slot> {
        let st = &*self.state;
        let high = st.high.load(Relaxed) as usize;
        let index = match (0..high).find(|&i| st.slots[i].state.load(SeqCst) == FREE) {
            Some(i) => i,
            None if high < SLOTS => {
                st.high.store(high as u32 + 1, Relaxed);
                high
            }
            None => {
                return Err(Error::InvalidArgument(format!(
                    "more than {SLOTS} waiters on one Condition"
                )));
            }
        };
        let slot = &st.slots[index];
        slot.ticket.store(st.tickets.fetch_add(1, Relaxed), Relaxed);
        slot.tid.store(tid(), Relaxed);
        liveness::beat(&slot.heartbeat);
        slot.state.store(WAITING, SeqCst);
        st.waiting.fetch_add(1, SeqCst);
        Ok(slot)
    }

    /// Withdraws a slot: `true` if a notifier had marked it (the waiter was woken).
    fn dequeue(&self, slot: &Slot) -> bool {
        let withdrawn = [WAITING, SLEEPING].into_iter().any(|from| {
            slot.state
                .compare_exchange(from, FREE, SeqCst, SeqCst)
                .is_ok()
        });
        if withdrawn {
            self.state.waiting.fetch_sub(1, SeqCst);
            false
        } else {
            slot.state.store(FREE, SeqCst);
            true
        }
    }

    /// Sleeps until the slot is marked, the deadline passes or an interrupt arrives.
    fn sleep(slot: &Slot, deadline: Deadline, watch: &Watch) -> Result<()> {
        SPIN.until(|| slot.state.load(Relaxed) != WAITING);
        // From now on a notifier must wake us through the kernel.
        if slot
            .state
            .compare_exchange(WAITING, SLEEPING, SeqCst, SeqCst)
            .is_err()
        {
            return Ok(()); // notified while spinning
        }
        if slot.state.load(SeqCst) != SLEEPING {
            return Ok(());
        }
        deadline.wait(
            || {
                liveness::beat(&slot.heartbeat);
                watch.check()
            },
            |slice| {
                sys::futex_wait(&slot.state, SLEEPING, slice);
                Ok((slot.state.load(SeqCst) != SLEEPING).then_some(()))
            },
        )?;
        Ok(())
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<bool> {
        let core = self.core();
        if !core.is_owned() {
            return Err(Error::NotOwner);
        }
        let slot = self.enqueue()?;
        let depth = match core.release_all() {
            Ok(depth) => depth,
            Err(e) => {
                self.dequeue(slot);
                return Err(e);
            }
        };
        let watch = Watch::new();
        let slept = Self::sleep(slot, deadline, &watch);
        let notified = self.dequeue(slot);
        slept?;
        core.restore(depth, Deadline::never(), &watch)?;
        Ok(notified)
    }

    /// Releases the lock, waits for a notification, and acquires the lock again. Spurious
    /// wake-ups do not happen, but another process may have changed the state before this one
    /// got the lock back: prefer [`wait_for`](Self::wait_for).
    ///
    /// ```
    /// use multiprocessing::{Condition, Process};
    /// let cond = Condition::new().unwrap();
    /// let c = cond.clone();
    /// let guard = cond.lock().unwrap();
    /// let mut p = Process::new(move || {
    ///     let _g = c.lock().unwrap(); // waits until the parent's wait releases the lock
    ///     c.notify().unwrap();
    /// });
    /// p.start().unwrap();
    /// cond.wait().unwrap();
    /// drop(guard);
    /// p.join().unwrap();
    /// ```
    pub fn wait(&self) -> Result<()> {
        self.wait_deadline(Deadline::never()).map(drop)
    }

    /// Like [`wait`](Self::wait), at most `timeout`: `Ok(false)` if no notification came (the
    /// lock is held again either way).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// let _guard = cond.lock().unwrap();
    /// assert!(!cond.wait_timeout(std::time::Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_for_deadline(
        &self,
        mut predicate: impl FnMut() -> bool,
        deadline: Deadline,
    ) -> Result<bool> {
        loop {
            if predicate() {
                return Ok(true);
            }
            if deadline.slice().is_none() {
                return Ok(false);
            }
            self.wait_deadline(deadline)?;
        }
    }

    /// Waits until `predicate()` is true (checked with the lock held, first before any wait).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// let _guard = cond.lock().unwrap();
    /// cond.wait_for(|| true).unwrap();
    /// ```
    pub fn wait_for(&self, predicate: impl FnMut() -> bool) -> Result<()> {
        self.wait_for_deadline(predicate, Deadline::never())
            .map(drop)
    }

    /// Like [`wait_for`](Self::wait_for), at most `timeout`: the predicate's last value.
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// let _guard = cond.lock().unwrap();
    /// assert!(!cond.wait_for_timeout(|| false, std::time::Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_for_timeout(
        &self,
        predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool> {
        self.wait_for_deadline(predicate, Deadline::after(timeout))
    }

    /// Wakes the longest-waiting waiter, if any (Python's `notify()`).
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// let _guard = cond.lock().unwrap();
    /// cond.notify().unwrap(); // nobody waits: nothing happens
    /// ```
    pub fn notify(&self) -> Result<()> {
        self.notify_n(1)
    }

    /// Wakes the `n` longest-waiting waiters (fewer if fewer wait). Python's `notify(n)`.
    ///
    /// ```
    /// use multiprocessing::{Condition, Error};
    /// let cond = Condition::new().unwrap();
    /// assert!(matches!(cond.notify_n(2), Err(Error::NotOwner))); // the lock is not held
    /// ```
    pub fn notify_n(&self, n: usize) -> Result<()> {
        if !self.core().is_owned() {
            return Err(Error::NotOwner);
        }
        let st = &*self.state;
        let mut left = n;
        while left > 0 && st.waiting.load(SeqCst) > 0 {
            let high = st.high.load(Relaxed) as usize;
            let oldest = st.slots[..high]
                .iter()
                .filter(|s| matches!(s.state.load(SeqCst), WAITING | SLEEPING))
                .min_by_key(|s| s.ticket.load(Relaxed));
            let Some(slot) = oldest else { break };
            if self.mark(slot) {
                left -= 1;
            }
        }
        Ok(())
    }

    /// Marks a waiting slot notified and wakes its waiter; false if it withdrew meanwhile, or if
    /// its waiter died in its wait (killed): then the slot is freed, and the notification goes to
    /// a live waiter.
    fn mark(&self, slot: &Slot) -> bool {
        let dead = liveness::dead(&slot.heartbeat, slot.tid.load(Relaxed));
        for from in [WAITING, SLEEPING] {
            if dead {
                if slot
                    .state
                    .compare_exchange(from, FREE, SeqCst, SeqCst)
                    .is_ok()
                {
                    self.state.waiting.fetch_sub(1, SeqCst);
                    return false;
                }
                continue;
            }
            if slot
                .state
                .compare_exchange(from, NOTIFIED, SeqCst, SeqCst)
                .is_ok()
            {
                self.state.waiting.fetch_sub(1, SeqCst);
                if from == SLEEPING {
                    sys::futex_wake(&slot.state, 1);
                }
                return true;
            }
        }
        false
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new().unwrap();
    /// let _guard = cond.lock().unwrap();
    /// cond.notify_all().unwrap();
    /// ```
    pub fn notify_all(&self) -> Result<()> {
        if !self.core().is_owned() {
            return Err(Error::NotOwner);
        }
        let st = &*self.state;
        if st.waiting.load(SeqCst) == 0 {
            return Ok(());
        }
        let high = st.high.load(Relaxed) as usize;
        for slot in &st.slots[..high] {
            if matches!(slot.state.load(SeqCst), WAITING | SLEEPING) {
                self.mark(slot);
            }
        }
        Ok(())
    }
}
