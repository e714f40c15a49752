//! [`Barrier`]: `parties` processes wait for each other (Python's `threading.Barrier` semantics).
//!
//! The whole state is one atomic word in shared memory (a generation, the phase and the number of
//! parties inside `wait`), changed only by compare-and-swap, so a process killed at any instant
//! cannot leave it half-updated. `reset` starts a new generation at once: parties of the old one
//! (even dead ones, which never leave) no longer count.

use super::spin::spin_until;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::shm::{Shm, Signal};
use crate::sys::Deadline;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// Phases (Python's `_state` 0, 1 and -2; its "resetting" is a new generation here).
const FILLING: u64 = 0;
const DRAINING: u64 = 1;
const BROKEN: u64 = 2;
/// The most parties (the count has 30 bits).
const MAX_PARTIES: usize = (1 << 30) - 1;

fn generation(word: u64) -> u64 {
    word >> 32
}
fn phase(word: u64) -> u64 {
    (word >> 30) & 3
}
fn count(word: u64) -> u64 {
    word & MAX_PARTIES as u64
}
fn pack(generation: u64, phase: u64, count: u64) -> u64 {
    (generation & 0xffff_ffff) << 32 | phase << 30 | count
}

#[repr(C)]
struct State {
    /// `generation << 32 | phase << 30 | parties inside wait`.
    word: AtomicU64,
    parties: AtomicU32,
    signal: Signal,
}

type Action = Arc<dyn Fn() + Send + Sync>;

/// A barrier for a fixed number of parties: Python's `multiprocessing.Barrier`.
///
/// [`wait`](Self::wait) blocks until `parties` processes (or threads) are waiting, then releases
/// them all; each gets a distinct index `0..parties` (its arrival order). The optional action runs
/// once per round, in the last party to arrive, before the others are released. The barrier is
/// *broken* ([`Error::BrokenBarrier`] for every waiter and every later `wait`) when a party's
/// timeout expires, when [`abort`](Self::abort) is called, or when the action panics;
/// [`reset`](Self::reset) makes it usable again. A party interrupted by SIGINT withdraws (as
/// Python's `KeyboardInterrupt` does) without breaking it. A party that dies inside `wait`
/// still counts (as in Python), until [`reset`](Self::reset), which (unlike Python's) does not
/// wait for the parties of the old round to leave.
///
/// ```
/// use multiprocessing::{Barrier, Process, Queue};
/// let barrier = Barrier::new(3).unwrap();
/// let indexes: Queue<usize> = Queue::new().unwrap();
/// let mut children = Vec::new();
/// for _ in 0..2 {
///     let (b, q) = (barrier.clone(), indexes.clone());
///     let mut p = Process::new(move || q.put(b.wait().unwrap()).unwrap());
///     p.start().unwrap();
///     children.push(p);
/// }
/// let mine = barrier.wait().unwrap();
/// let mut all = vec![mine, indexes.get().unwrap(), indexes.get().unwrap()];
/// all.sort();
/// assert_eq!(all, [0, 1, 2]);
/// for mut p in children {
///     p.join().unwrap();
/// }
/// ```
#[derive(Clone)]
pub struct Barrier {
    state: Shm<State>,
    action: Option<Action>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Barrier(parties={}, n_waiting={}, broken={})>",
            self.parties(),
            self.n_waiting(),
            self.broken()
        )
    }
}

impl Barrier {
    /// A barrier for `parties` parties (at least 1).
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0); // one party: released at once
    /// ```
    pub fn new(parties: usize) -> Result<Barrier> {
        if parties == 0 || parties > MAX_PARTIES {
            return Err(Error::InvalidArgument(format!(
                "a barrier needs between 1 and {MAX_PARTIES} parties, not {parties}"
            )));
        }
        // SAFETY: an all-zero State is valid (atomics).
        let state = unsafe { Shm::<State>::zeroed(0)? };
        state.parties.store(parties as u32, SeqCst);
        Ok(Barrier {
            state,
            action: None,
            timeout: None,
        })
    }

    /// A barrier whose `action` runs once per round, in the last party to arrive, before the
    /// parties are released (a panic in it breaks the barrier and goes on in that party).
    ///
    /// ```
    /// let b = multiprocessing::Barrier::with_action(1, || println!("all here")).unwrap();
    /// b.wait().unwrap();
    /// ```
    pub fn with_action(
        parties: usize,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Result<Barrier> {
        let mut b = Barrier::new(parties)?;
        b.action = Some(Arc::new(action));
        Ok(b)
    }

    /// Sets the default timeout of [`wait`](Self::wait) for this handle and the clones made from
    /// it afterwards (Python's `Barrier(parties, timeout=...)`).
    ///
    /// ```
    /// use multiprocessing::{Barrier, Error};
    /// let b = Barrier::new(2).unwrap().with_timeout(std::time::Duration::from_millis(20));
    /// assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    /// assert!(b.broken());
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    /// The number of parties.
    ///
    /// ```
    /// assert_eq!(multiprocessing::Barrier::new(4).unwrap().parties(), 4);
    /// ```
    pub fn parties(&self) -> usize {
        self.state.parties.load(SeqCst) as usize
    }

    /// The number of parties waiting now (0 while the barrier drains or is broken).
    ///
    /// ```
    /// assert_eq!(multiprocessing::Barrier::new(2).unwrap().n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        let w = self.state.word.load(SeqCst);
        if phase(w) == FILLING {
            count(w) as usize
        } else {
            0
        }
    }

    /// True if the barrier is broken.
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(2).unwrap();
    /// b.abort();
    /// assert!(b.broken());
    /// ```
    pub fn broken(&self) -> bool {
        phase(self.state.word.load(SeqCst)) == BROKEN
    }

    /// Changes the word with `f(generation, phase, count)` atomically (`None`: no change) and
    /// wakes the waiters; returns the old word.
    fn update(&self, mut f: impl FnMut(u64, u64, u64) -> Option<(u64, u64, u64)>) -> u64 {
        let old = self
            .state
            .word
            .fetch_update(SeqCst, SeqCst, |w| {
                f(generation(w), phase(w), count(w)).map(|(g, p, c)| pack(g, p, c))
            })
            .unwrap_or_else(|w| w);
        self.state.signal.notify_all();
        old
    }

    /// Breaks the barrier: every waiting party and every later [`wait`](Self::wait) gets
    /// [`Error::BrokenBarrier`] until [`reset`](Self::reset).
    ///
    /// ```
    /// use multiprocessing::{Barrier, Error};
    /// let b = Barrier::new(2).unwrap();
    /// b.abort();
    /// assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    /// ```
    pub fn abort(&self) {
        self.update(|g, _, c| Some((g, BROKEN, c)));
    }

    /// Returns the barrier to its initial state; parties waiting now get [`Error::BrokenBarrier`].
    /// The next round starts at once (Python's waits until the waiting parties have left, so a
    /// party that died waiting would block it forever).
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(2).unwrap();
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// ```
    pub fn reset(&self) {
        self.update(|g, _, _| Some((g + 1, FILLING, 0)));
    }

    /// Waits until every party is waiting; returns this party's index (`0..parties`, the order of
    /// arrival). Uses the default timeout if one was set ([`with_timeout`](Self::with_timeout)).
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// ```
    pub fn wait(&self) -> Result<usize> {
        self.wait_deadline(Deadline::from_timeout(self.timeout))
    }

    /// Like [`wait`](Self::wait), at most `timeout`: when it expires the barrier breaks and this
    /// party (like every other) gets [`Error::BrokenBarrier`].
    ///
    /// ```
    /// use multiprocessing::{Barrier, Error};
    /// let b = Barrier::new(2).unwrap();
    /// let r = b.wait_timeout(std::time::Duration::from_millis(10));
    /// assert!(matches!(r, Err(Error::BrokenBarrier)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<usize> {
        let watch = Watch::new();
        let (generation, index) = self.enter(&watch)?;
        let result = if index + 1 == self.parties() as u64 {
            self.release(generation)
        } else {
            self.await_release(generation, deadline, &watch)
        };
        self.leave(generation);
        match result {
            Ok(()) => Ok(index as usize),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Error::BrokenBarrier),
        }
    }

    /// Waits while the previous round drains, then takes an index: `(generation, index)`.
    fn enter(&self, watch: &Watch) -> Result<(u64, u64)> {
        let parties = self.parties() as u64;
        let word = &self.state.word;
        loop {
            let w = word.load(SeqCst);
            let (p, c) = (phase(w), count(w));
            if p == BROKEN {
                return Err(Error::BrokenBarrier);
            }
            if p == FILLING && c < parties {
                if word.compare_exchange(w, w + 1, SeqCst, SeqCst).is_ok() {
                    return Ok((generation(w), c));
                }
                continue;
            }
            // Draining, or a full round whose action is running.
            let changed = || word.load(SeqCst) != w;
            if !spin_until(changed) {
                self.state
                    .signal
                    .wait_until(changed, Deadline::never(), watch, Duration::ZERO)?;
            }
        }
    }

    /// Leaves `wait`: the last party out of a drained round opens the next one. Nothing to do
    /// if the barrier was reset since (the count is the new generation's).
    fn leave(&self, generation_in: u64) {
        self.update(|g, p, c| {
            if g != generation_in {
                return None;
            }
            let c = c.saturating_sub(1);
            Some(if c == 0 && p == DRAINING {
                (g, FILLING, 0)
            } else {
                (g, p, c)
            })
        });
    }

    /// Breaks the barrier if it is still in generation `generation_in` and filling; returns the
    /// old word.
    fn break_if_filling(&self, generation_in: u64) -> u64 {
        self.update(|g, p, c| (g == generation_in && p == FILLING).then_some((g, BROKEN, c)))
    }

    /// The last party: runs the action and releases the others. `Err(None)` means broken.
    fn release(&self, generation_in: u64) -> std::result::Result<(), Option<Error>> {
        if let Some(action) = &self.action
            && let Err(panic) = catch_unwind(AssertUnwindSafe(|| action()))
        {
            self.break_if_filling(generation_in);
            self.leave(generation_in);
            resume_unwind(panic);
        }
        let old =
            self.update(|g, p, c| (g == generation_in && p == FILLING).then_some((g, DRAINING, c)));
        if generation(old) == generation_in && phase(old) == FILLING {
            Ok(())
        } else {
            Err(None) // aborted or reset while the action ran
        }
    }

    /// A party that is not the last: waits for the release, the deadline or an interrupt.
    fn await_release(
        &self,
        generation_in: u64,
        deadline: Deadline,
        watch: &Watch,
    ) -> std::result::Result<(), Option<Error>> {
        let word = &self.state.word;
        let released = || {
            let w = word.load(SeqCst);
            generation(w) != generation_in || phase(w) != FILLING
        };
        let released = if spin_until(released) {
            Ok(true)
        } else {
            self.state
                .signal
                .wait_until(released, deadline, watch, Duration::ZERO)
        };
        if let Err(e) = released {
            return Err(Some(e));
        }
        // On timeout, break the barrier unless the release came in the meantime.
        let w = self.break_if_filling(generation_in);
        if generation(w) == generation_in && phase(w) == DRAINING {
            Ok(())
        } else {
            Err(None)
        }
    }
}
