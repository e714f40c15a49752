//! [`Signal`]: a condition in shared memory, on which waiters sleep (a futex) until a notifier
//! bumps it. Queues, events and barriers wait on one.

#![deny(unsafe_code)]

use crate::error::Result;
use crate::interrupt::Watch;
use crate::sys::{self, Deadline, Spin};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed, Ordering::SeqCst, fence};
use std::time::Duration;

/// A condition in shared memory: waiters sleep on a sequence number that notifiers bump.
#[repr(C)]
pub(crate) struct Signal {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl Signal {
    /// Waits until `ready()` is true, the deadline passes (`Ok(false)`) or an interrupt arrives.
    /// Spins for `spin` first: cheap when the other side is running on another core.
    pub(crate) fn wait_until(
        &self,
        mut ready: impl FnMut() -> bool,
        deadline: Deadline,
        watch: &Watch,
        spin: Duration,
    ) -> Result<bool> {
        // The condition may touch lines the other side writes: probe it every 64 hints only.
        if Spin::new(spin).pause(64).yield_every(16).until(&mut ready) {
            return Ok(true);
        }
        let woken = deadline.wait(
            || watch.check(),
            |slice| {
                let seq = self.seq.load(SeqCst);
                self.waiters.fetch_add(1, SeqCst);
                fence(SeqCst);
                if ready() {
                    self.waiters.fetch_sub(1, SeqCst);
                    return Ok(Some(()));
                }
                sys::futex_wait(&self.seq, seq, slice);
                self.waiters.fetch_sub(1, SeqCst);
                Ok(ready().then_some(()))
            },
        )?;
        Ok(woken.is_some() || ready())
    }

    /// Wakes the waiters after a change their condition depends on.
    pub(crate) fn notify_all(&self) {
        // Pairs with the waiter's increment-fence-check: either it sees the change, or we see it.
        fence(SeqCst);
        if self.waiters.load(Relaxed) > 0 {
            self.seq.fetch_add(1, SeqCst);
            sys::futex_wake(&self.seq, i32::MAX);
        }
    }
}
