//! The one spin-before-sleeping helper of the library: every blocking wait that can be satisfied
//! by a process running on another core spins briefly first ([`Spin::until`]), then sleeps in
//! the kernel in slices of a [`Deadline`](super::Deadline).
//!
//! Spins stay short on purpose: on a machine with more runnable processes than cores, the process
//! a spinner waits for may be waiting for the spinner's very CPU, and plain blocking wins. So the
//! spins yield the CPU now and then, and each caller's budget is a few dozen microseconds.

use std::time::{Duration, Instant};

/// How a wait spins: for how long, how many `spin_loop` hints between two probes of its
/// condition, every how many probes it reads the clock, and every how many it yields the CPU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spin {
    budget: Duration,
    pause: u32,
    check_every: u32,
    yield_every: u32,
}

impl Spin {
    /// A spin of at most `budget`: one `spin_loop` hint between probes, a look at the clock after
    /// every probe, and a yield every 64 probes.
    pub(crate) const fn new(budget: Duration) -> Spin {
        Spin {
            budget,
            pause: 1,
            check_every: 1,
            yield_every: 64,
        }
    }

    /// `n` `spin_loop` hints between two probes (for conditions that touch a contended line).
    pub(crate) const fn pause(self, n: u32) -> Spin {
        Spin { pause: n, ..self }
    }

    /// Reads the clock every `n` probes only (at least 1), for probes much cheaper than a look
    /// at the clock (an atomic load).
    pub(crate) const fn check_every(self, n: u32) -> Spin {
        Spin {
            check_every: if n == 0 { 1 } else { n },
            ..self
        }
    }

    /// Yields the CPU every `n` probes (0: never), once the clock says there is time left.
    pub(crate) const fn yield_every(self, n: u32) -> Spin {
        Spin {
            yield_every: n,
            ..self
        }
    }

    /// Probes `ready()` until it is true (then `true`) or the budget has passed (`false`). It
    /// probes at least once, also with a zero budget.
    #[inline]
    pub(crate) fn until(self, mut ready: impl FnMut() -> bool) -> bool {
        if ready() {
            return true;
        }
        if self.budget.is_zero() {
            return false;
        }
        let start = Instant::now();
        let mut probes = 0u32;
        loop {
            for _ in 0..self.pause {
                std::hint::spin_loop();
            }
            if ready() {
                return true;
            }
            probes = probes.wrapping_add(1);
            if probes.is_multiple_of(self.check_every) && start.elapsed() >= self.budget {
                return false;
            }
            if self.yield_every != 0 && probes.is_multiple_of(self.yield_every) {
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Spin;
    use std::time::{Duration, Instant};

    #[test]
    fn returns_true_once_ready_and_false_after_the_budget() {
        let mut n = 0;
        assert!(Spin::new(Duration::from_secs(5)).until(|| {
            n += 1;
            n == 100
        }));
        assert_eq!(n, 100);
        let start = Instant::now();
        assert!(!Spin::new(Duration::from_micros(50)).until(|| false));
        assert!(start.elapsed() >= Duration::from_micros(50));
        let mut probes = 0;
        assert!(
            !Spin::new(Duration::ZERO)
                .check_every(1)
                .yield_every(0)
                .until(|| {
                    probes += 1;
                    false
                })
        );
        assert_eq!(probes, 1);
    }
}
