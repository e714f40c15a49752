//! [`Barrier`]: `parties` processes wait for each other (Python's `threading.Barrier` semantics).
//!
//! The whole state is one atomic word in shared memory (a generation, the phase and the number of
//! parties inside `wait`), changed only by compare-and-swap, so a process killed at any instant
//! cannot leave it half-updated. `reset` starts a new generation at once: parties of the old one
//! (even dead ones, which never leave) no longer count.
//!
//! Every party inside `wait` holds a slot with a [`Presence`] (a robust mutex the kernel marks
//! when its holder dies) and the generation it waits in: the last party to arrive probes the
//! others before it releases them, sleeping parties probe too (at most one probe starts every
//! 20 ms), and a party found dead breaks its generation.

use super::SPIN;
use super::Signal;
use super::liveness::{self, Presence};
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::mapping::Shm;
use crate::sys::{self, Deadline};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// Phases (Python's `_state` 0, 1 and -2; its "resetting" is a new generation here).
const FILLING: u64 = 0;
const DRAINING: u64 = 1;
const BROKEN: u64 = 2;
/// The most parties: each party inside `wait` takes a slot, and parties of a generation that was
/// just reset may still hold theirs for a moment.
const MAX_PARTIES: usize = 4096;
const SLOTS: usize = 2 * MAX_PARTIES;
/// The count's bits.
const COUNT_MASK: u64 = (1 << 30) - 1;
/// How often sleeping parties look for dead ones (one of them at a time).
const PROBE_EVERY_MS: u64 = 20;

fn generation(word: u64) -> u64 {
    word >> 32
}
fn phase(word: u64) -> u64 {
    (word >> 30) & 3
}
fn count(word: u64) -> u64 {
    word & COUNT_MASK
}
fn pack(generation: u64, phase: u64, count: u64) -> u64 {
    (generation & 0xffff_ffff) << 32 | phase << 30 | count
}

/// The slot of a party inside `wait`.
#[repr(C, align(64))]
struct Party {
    /// `IN_WAIT` from the moment a party takes the slot until it has let `presence` go.
    state: AtomicU32,
    /// 1 once `presence` is initialized (a slot is set up the first time it is taken).
    ready: AtomicU32,
    /// The generation the party waits in (set before it counts itself in).
    generation: AtomicU32,
    /// The party's process.
    pid: AtomicU32,
    /// Held by the party while `state` is `IN_WAIT` (once it has taken it).
    presence: Presence,
}

const FREE: u32 = 0;
const IN_WAIT: u32 = 1;
/// The generation of a party that has not entered one yet.
const NO_GENERATION: u32 = u32::MAX;

#[repr(C)]
struct State {
    /// `generation << 32 | phase << 30 | parties inside wait`.
    word: AtomicU64,
    parties: AtomicU32,
    /// Slots ever taken: `slots[..high]`.
    high: AtomicU32,
    /// `generation << 32 | pid` of the last party found dead in its wait.
    dead: AtomicU64,
    /// When a sleeping party last probed the others (milliseconds, monotonic clock).
    probed_ms: AtomicU64,
    signal: Signal,
    slots: [Party; SLOTS],
}

type Action = Arc<dyn Fn() + Send + Sync>;

/// A barrier for a fixed number of parties: Python's `multiprocessing.Barrier`.
///
/// [`wait`](Self::wait) blocks until `parties` processes (or threads) are waiting, then releases
/// them all; each gets a distinct index `0..parties` (its arrival order). The optional action runs
/// once per round, in the last party to arrive, before the others are released. The barrier is
/// *broken* ([`Error::BrokenBarrier`] for every waiter and every later `wait`) when a party's
/// timeout expires, when [`abort`](Self::abort) is called, when the action panics, or when a
/// party dies inside `wait`; [`reset`](Self::reset) makes it usable again. A party interrupted
/// by SIGINT withdraws (as Python's `KeyboardInterrupt` does) without breaking it.
///
/// A party that dies inside `wait` (killed, or its process exits) breaks the barrier, as a
/// timeout does: the round it was in is not completed, the parties waiting with it get
/// [`Error::BrokenBarrier`] within about 40 ms (with or without a timeout), and so do every later
/// `wait` and [`broken`](Self::broken) at once; [`dead_party`](Self::dead_party) names it. (The
/// kernel tells: each party holds a robust mutex while it waits.) Python's barrier instead counts
/// the dead party as waiting: its round completes without it, and then never drains, so the next
/// `wait` blocks forever, even with a timeout. Here every `wait_timeout` returns by its deadline.
/// At most 4096 parties (each party inside `wait` takes a slot in the barrier's shared memory).
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
///
/// A party killed in its wait breaks the barrier until `reset`:
///
/// ```
/// use multiprocessing::{Barrier, Error, Process};
/// use std::time::Duration;
/// let barrier = Barrier::new(2).unwrap();
/// let b = barrier.clone();
/// let mut party = Process::new(move || drop(b.wait()));
/// party.start().unwrap();
/// while barrier.n_waiting() == 0 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// party.kill().unwrap();
/// party.join().unwrap();
/// assert!(barrier.broken());
/// assert_eq!(barrier.dead_party(), party.pid());
/// let r = barrier.wait_timeout(Duration::from_secs(1));
/// assert!(matches!(r, Err(Error::BrokenBarrier))); // at once, not after the timeout
/// barrier.reset();
/// assert!(!barrier.broken());
/// assert_eq!(barrier.dead_party(), None);
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

/// A party's hold on its slot; lets it go when dropped (also when the action panics).
struct SlotHold<'a>(&'a Party);

impl Drop for SlotHold<'_> {
    fn drop(&mut self) {
        self.0.presence.release();
        self.0.state.store(FREE, SeqCst);
    }
}

impl Barrier {
    /// A barrier for `parties` parties (at least 1, at most 4096).
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0); // one party: released at once
    /// assert!(multiprocessing::Barrier::new(0).is_err());
    /// ```
    pub fn new(parties: usize) -> Result<Barrier> {
        if parties == 0 || parties > MAX_PARTIES {
            return Err(Error::InvalidArgument(format!(
                "a barrier needs between 1 and {MAX_PARTIES} parties, not {parties}"
            )));
        }
        // SAFETY: an all-zero State is valid (atomics; the slots' mutexes are initialized when
        // first taken).
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

    /// The number of parties waiting now (0 while the barrier drains or is broken). A party
    /// that died in its wait is not one: it breaks the barrier.
    ///
    /// ```
    /// assert_eq!(multiprocessing::Barrier::new(2).unwrap().n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.probe_parties(None);
        let w = self.state.word.load(SeqCst);
        if phase(w) == FILLING {
            count(w) as usize
        } else {
            0
        }
    }

    /// True if the barrier is broken (it checks first whether a party died in its wait).
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(2).unwrap();
    /// b.abort();
    /// assert!(b.broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.probe_parties(None);
        phase(self.state.word.load(SeqCst)) == BROKEN
    }

    /// The pid of a party that died inside `wait` since the last [`reset`](Self::reset) (which
    /// broke the barrier), if any. Not in Python, whose barrier cannot tell.
    ///
    /// ```
    /// let b = multiprocessing::Barrier::new(2).unwrap();
    /// b.abort();
    /// assert_eq!(b.dead_party(), None); // broken, but nobody died
    /// ```
    pub fn dead_party(&self) -> Option<u32> {
        self.probe_parties(None);
        let dead = self.state.dead.load(SeqCst);
        let pid = (dead & 0xffff_ffff) as u32;
        let current = generation(self.state.word.load(SeqCst));
        (pid != 0 && dead >> 32 == current).then_some(pid)
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
    /// party (like every other) gets [`Error::BrokenBarrier`]. It returns by its deadline, also
    /// while an earlier round drains.
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
        let hold = self.take_slot()?;
        let me = hold.0;
        let (generation, index) = self.enter(me, deadline, &watch)?;
        let result = if index + 1 == self.parties() as u64 {
            self.release(generation, me)
        } else {
            self.await_release(generation, me, deadline, &watch)
        };
        // Counted out before the slot is let go: no instant where a party is counted, unseen.
        self.leave(generation);
        drop(hold);
        match result {
            Ok(()) => Ok(index as usize),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Error::BrokenBarrier),
        }
    }

    /// Takes a free slot and holds its presence.
    fn take_slot(&self) -> Result<SlotHold<'_>> {
        let st = &*self.state;
        for attempt in 0..2 {
            for (i, slot) in st.slots.iter().enumerate() {
                if slot.state.load(SeqCst) != FREE
                    || slot
                        .state
                        .compare_exchange(FREE, IN_WAIT, SeqCst, SeqCst)
                        .is_err()
                {
                    continue;
                }
                st.high.fetch_max(i as u32 + 1, SeqCst);
                if slot.ready.load(SeqCst) == 0 {
                    // SAFETY: the slot is ours alone (taken by the swap above) and was never set
                    // up: its mutex is zeroed memory that nobody probes before `ready` is 1.
                    if let Err(e) = unsafe { slot.presence.init() } {
                        slot.state.store(FREE, SeqCst);
                        return Err(e);
                    }
                    slot.ready.store(1, SeqCst);
                }
                // Before the hold: a probe that finds this party dead names it, and breaks no
                // round until the party has a generation (it counts itself in after `enter`
                // stored one).
                slot.pid.store(sys::getpid(), SeqCst);
                slot.generation.store(NO_GENERATION, SeqCst);
                if let Err(e) = slot.presence.hold() {
                    slot.state.store(FREE, SeqCst);
                    return Err(e);
                }
                return Ok(SlotHold(slot));
            }
            if attempt == 0 {
                self.probe_parties(None); // frees the slots of dead parties
            }
        }
        Err(Error::InvalidArgument(format!(
            "more than {SLOTS} threads inside wait on one Barrier"
        )))
    }

    /// Probes the other parties inside `wait`; one found dead breaks the barrier if it waited
    /// in the current generation, and its slot is freed either way.
    fn probe_parties(&self, me: Option<&Party>) {
        let st = &*self.state;
        let high = st.high.load(SeqCst) as usize;
        for slot in &st.slots[..high] {
            if me.is_some_and(|m| std::ptr::eq(m, slot))
                || slot.state.load(SeqCst) != IN_WAIT
                || slot.ready.load(SeqCst) == 0
                || !slot.presence.died()
            {
                continue;
            }
            let g = u64::from(slot.generation.load(SeqCst));
            if g != u64::from(NO_GENERATION) && generation(st.word.load(SeqCst)) == g {
                // Recorded first: a party woken by the break finds it.
                st.dead
                    .store(g << 32 | u64::from(slot.pid.load(SeqCst)), SeqCst);
                self.update(|cg, p, c| (cg == g && p != BROKEN).then_some((cg, BROKEN, c)));
            }
            let _ = slot.state.compare_exchange(IN_WAIT, FREE, SeqCst, SeqCst);
        }
    }

    /// Sleeps until `ready()` is true (`Ok(true)`), the deadline passes (`Ok(false)`) or an
    /// interrupt arrives; every 20 ms, one sleeping party probes the others.
    fn sleep_until(
        &self,
        me: &Party,
        mut ready: impl FnMut() -> bool,
        deadline: Deadline,
        watch: &Watch,
    ) -> Result<bool> {
        if SPIN.until(&mut ready) {
            return Ok(true);
        }
        loop {
            let Some(slice) = deadline.slice() else {
                return Ok(ready());
            };
            if self.state.signal.wait_until(
                &mut ready,
                Deadline::after(slice),
                watch,
                Duration::ZERO,
            )? {
                return Ok(true);
            }
            let now = liveness::now_ms();
            let last = self.state.probed_ms.load(SeqCst);
            if now.saturating_sub(last) >= PROBE_EVERY_MS
                && self
                    .state
                    .probed_ms
                    .compare_exchange(last, now, SeqCst, SeqCst)
                    .is_ok()
            {
                self.probe_parties(Some(me));
            }
        }
    }

    /// Waits while the previous round drains, then takes an index: `(generation, index)`. On
    /// timeout the barrier breaks, as it does for a party that waits for the others.
    fn enter(&self, me: &Party, deadline: Deadline, watch: &Watch) -> Result<(u64, u64)> {
        let parties = self.parties() as u64;
        let word = &self.state.word;
        loop {
            let w = word.load(SeqCst);
            let (g, p, c) = (generation(w), phase(w), count(w));
            if p == BROKEN {
                return Err(Error::BrokenBarrier);
            }
            // Before counting in: a probe that finds this party dead knows which round it broke.
            me.generation.store(g as u32, SeqCst);
            if p == FILLING && c < parties {
                if word.compare_exchange(w, w + 1, SeqCst, SeqCst).is_ok() {
                    return Ok((g, c));
                }
                continue;
            }
            // Draining, or a full round whose action is running.
            if !self.sleep_until(me, || word.load(SeqCst) != w, deadline, watch)? {
                self.update(|cg, p, c| (cg == g && p != BROKEN).then_some((cg, BROKEN, c)));
                return Err(Error::BrokenBarrier);
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

    /// True while generation `generation_in` is filling (not released, broken or reset).
    fn filling(&self, generation_in: u64) -> bool {
        let w = self.state.word.load(SeqCst);
        generation(w) == generation_in && phase(w) == FILLING
    }

    /// The last party: checks that the others live, runs the action and releases them.
    /// `Err(None)` means broken.
    fn release(&self, generation_in: u64, me: &Party) -> std::result::Result<(), Option<Error>> {
        self.probe_parties(Some(me));
        if let Some(action) = &self.action {
            if !self.filling(generation_in) {
                return Err(None); // a party died (or abort, reset): no action for this round
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| action())) {
                self.break_if_filling(generation_in);
                self.leave(generation_in);
                resume_unwind(panic);
            }
            self.probe_parties(Some(me));
        }
        let old =
            self.update(|g, p, c| (g == generation_in && p == FILLING).then_some((g, DRAINING, c)));
        if generation(old) == generation_in && phase(old) == FILLING {
            Ok(())
        } else {
            Err(None) // broken (a party died, abort) or reset meanwhile
        }
    }

    /// A party that is not the last: waits for the release, the deadline or an interrupt.
    fn await_release(
        &self,
        generation_in: u64,
        me: &Party,
        deadline: Deadline,
        watch: &Watch,
    ) -> std::result::Result<(), Option<Error>> {
        let released = || !self.filling(generation_in);
        if let Err(e) = self.sleep_until(me, released, deadline, watch) {
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
