//! Opt-in SIGINT handling: blocking calls return [`Error::Interrupted`] and children are terminated.
//!
//! Without [`enable`], SIGINT keeps its default action (the process dies). After [`enable`], SIGINT
//! only records an interrupt: every blocking call of the library that is waiting when it arrives
//! (or that starts while it is still pending) returns [`Error::Interrupted`] within 20 ms, and every
//! live child created through the library (processes and pool workers) is terminated: SIGTERM, then
//! SIGKILL for any still alive 100 ms later. The first blocking call that reports it acknowledges it, so
//! later calls run normally. This is what a notebook kernel needs: the cell's `join`, `get` or `map`
//! ends, the variables survive.
//!
//! Children never inherit the opt-in: they start with SIGINT at its default action.
//!
//! ```standalone_crate
//! use multiprocessing::{interrupt, Error, Process};
//! use std::time::Duration;
//! interrupt::enable().unwrap();
//! let mut p = Process::new(|| loop { std::thread::sleep(Duration::from_secs(1)) });
//! p.start().unwrap();
//! // What SIGINT does, without sending one to the doctest's process:
//! interrupt::trigger();
//! assert!(matches!(p.join(), Err(Error::Interrupted)));
//! assert!(!p.is_alive());
//! interrupt::disable().unwrap();
//! ```

#![deny(unsafe_code)]

use crate::error::{Error, Result};
use crate::sys::signal::{Action, set_sigint_action};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};

static RAISED: AtomicU64 = AtomicU64::new(0);
static ACKED: AtomicU64 = AtomicU64::new(0);
/// The last interrupt whose termination of the children has started, and has finished.
static TERMINATED: AtomicU64 = AtomicU64::new(0);
static TERMINATED_DONE: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_sig: std::ffi::c_int) {
    // Only an atomic increment: async-signal-safe.
    RAISED.fetch_add(1, SeqCst);
}

/// Sets SIGINT's action: no `SA_RESTART`, so the thread that receives SIGINT also leaves its
/// current system call at once.
fn set_action(action: Action) -> Result<()> {
    set_sigint_action(action).map_err(|e| e.error("sigaction"))
}

/// Makes every child forked from now on start with this module's state reset (see
/// [`reset_in_child`]). Called by everything that can make the state differ from a fresh
/// process's: [`enable`], [`trigger`] (the only ways to raise an interrupt) and [`hand_out`].
fn reset_children() {
    // Not a `Once`: a child forked while another thread runs a `Once`'s closure inherits it
    // running, with no thread to finish it, and its first call here would wait for ever.
    // `on_child_start` ignores a second registration.
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.load(SeqCst) {
        crate::runtime::on_child_start(reset_in_child);
        REGISTERED.store(true, SeqCst);
    }
}

/// Installs the SIGINT handler: from now on SIGINT interrupts blocking calls instead of killing the process.
///
/// ```standalone_crate
/// multiprocessing::interrupt::enable().unwrap();
/// assert!(multiprocessing::interrupt::is_enabled());
/// multiprocessing::interrupt::disable().unwrap();
/// ```
pub fn enable() -> Result<()> {
    reset_children();
    set_action(Action::Handler(on_sigint))?;
    ENABLED.store(true, SeqCst);
    Ok(())
}

/// Restores SIGINT's default action.
///
/// ```standalone_crate
/// multiprocessing::interrupt::disable().unwrap();
/// assert!(!multiprocessing::interrupt::is_enabled());
/// ```
pub fn disable() -> Result<()> {
    set_action(Action::Default)?;
    ENABLED.store(false, SeqCst);
    Ok(())
}

/// Whether [`enable`] is in force in this process.
///
/// ```
/// assert!(!multiprocessing::interrupt::is_enabled());
/// ```
pub fn is_enabled() -> bool {
    ENABLED.load(SeqCst)
}

/// Raises an interrupt as if SIGINT had arrived (works with or without [`enable`]).
///
/// ```standalone_crate
/// use multiprocessing::{interrupt, Queue, Error};
/// let q: Queue<u8> = Queue::new().unwrap();
/// interrupt::trigger();
/// assert!(matches!(q.get(), Err(Error::Interrupted)));
/// ```
pub fn trigger() {
    reset_children();
    RAISED.fetch_add(1, SeqCst);
}

/// True if an interrupt arrived that no blocking call has reported yet.
///
/// ```standalone_crate
/// use multiprocessing::interrupt;
/// interrupt::trigger();
/// assert!(interrupt::pending());
/// interrupt::clear();
/// assert!(!interrupt::pending());
/// ```
pub fn pending() -> bool {
    RAISED.load(SeqCst) != ACKED.load(SeqCst)
}

/// Forgets a pending interrupt (a kernel calls this when a new cell starts).
///
/// ```standalone_crate
/// multiprocessing::interrupt::clear();
/// assert!(!multiprocessing::interrupt::pending());
/// ```
pub fn clear() {
    ACKED.fetch_max(RAISED.load(SeqCst), SeqCst);
}

/// The interrupt count a call starts from: an interrupt raised after it (or pending now) cancels
/// the call. A pool records it with each job, so no chunk of a job is handed to a worker once an
/// interrupt has arrived, whichever thread reports it.
pub(crate) fn epoch() -> u64 {
    ACKED.load(SeqCst)
}

/// Interrupts raised so far (a count that only grows).
pub(crate) fn raised_count() -> u64 {
    RAISED.load(SeqCst)
}

/// True if an interrupt was raised after `epoch` (see [`epoch`]), reported or not.
pub(crate) fn raised_since(epoch: u64) -> bool {
    RAISED.load(SeqCst) > epoch
}

/// Hand-outs under way: a pool counts itself in while it checks chunks' epochs and sends them to
/// workers; the children are terminated only once the count has dropped to zero. So a chunk
/// handed out just before an interrupt went to a worker that the termination sees, and any later
/// hand-out sees the interrupt. (An atomic, not a lock: a forked child resets it.)
static HANDING_OUT: AtomicUsize = AtomicUsize::new(0);

/// A pool's hand-out in progress (see [`HANDING_OUT`]); ends when dropped.
pub(crate) struct HandOut(());

/// Counts a hand-out in (see [`HANDING_OUT`]).
pub(crate) fn hand_out() -> HandOut {
    reset_children();
    HANDING_OUT.fetch_add(1, SeqCst);
    HandOut(())
}

impl Drop for HandOut {
    fn drop(&mut self) {
        HANDING_OUT.fetch_sub(1, SeqCst);
    }
}

/// Waits (at most `limit`) until `done` holds, sleeping a millisecond at a time.
fn wait_until(limit: std::time::Duration, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() && start.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Watches for interrupts during one blocking call.
pub(crate) struct Watch(u64);

impl Watch {
    /// Starts watching: an interrupt pending now, or raised later, ends the call.
    pub(crate) fn new() -> Watch {
        Watch(ACKED.load(SeqCst))
    }

    /// True once an interrupt has arrived since the watch started (nothing is done about it yet).
    pub(crate) fn is_raised(&self) -> bool {
        RAISED.load(SeqCst) != self.0
    }

    /// Reports an interrupt that [`is_raised`](Self::is_raised) saw: [`Watch::check`]'s error.
    pub(crate) fn report(&self) -> Error {
        self.check().err().unwrap_or(Error::Interrupted)
    }

    /// `Err(Interrupted)` once an interrupt has arrived; the first such report terminates the children.
    pub(crate) fn check(&self) -> Result<()> {
        let raised = RAISED.load(SeqCst);
        if raised == self.0 {
            return Ok(());
        }
        // Every call that reports this interrupt returns only once the children are gone: the
        // first one terminates them, the others wait for it. The interrupt is acknowledged only
        // then, so a call that starts meanwhile is interrupted too (its work would die with the
        // children).
        if TERMINATED.fetch_max(raised, SeqCst) < raised {
            wait_until(std::time::Duration::from_secs(1), || {
                HANDING_OUT.load(SeqCst) == 0
            });
            crate::runtime::terminate_all_children();
            TERMINATED_DONE.fetch_max(raised, SeqCst);
        } else {
            wait_until(std::time::Duration::from_secs(5), || {
                TERMINATED_DONE.load(SeqCst) >= raised
            });
        }
        ACKED.fetch_max(raised, SeqCst);
        Err(Error::Interrupted)
    }
}

/// In a new child: SIGINT back to its default action, no interrupt pending (registered with
/// the runtime by [`reset_children`]).
fn reset_in_child() {
    RAISED.store(0, SeqCst);
    ACKED.store(0, SeqCst);
    TERMINATED.store(0, SeqCst);
    TERMINATED_DONE.store(0, SeqCst);
    HANDING_OUT.store(0, SeqCst);
    if ENABLED.swap(false, SeqCst) {
        let _ = set_action(Action::Default);
    }
}

/// Runs when the library is loaded: the [`crate::host::SIGINT_ENV`] opt-in, for hosts that
/// cannot call [`enable`].
extern "C" fn on_load() {
    if std::env::var(crate::host::SIGINT_ENV).is_ok_and(|v| v == "interrupt") {
        let _ = enable();
    }
}

// A shared library's constructor (the `.init_array` entry the loader calls).
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;
