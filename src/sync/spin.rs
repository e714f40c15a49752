//! The short spin every blocking wait of this module does before it sleeps in the kernel.

use std::time::{Duration, Instant};

/// Long enough to catch a hand-over from a process running on another core (a round trip costs
/// well under a microsecond then, against several for a futex sleep and wake-up), short enough to
/// cost little when the wait is long.
const SPIN: Duration = Duration::from_micros(20);

/// Spins until `ready()` is true (then `true`) or the spin time has passed (`false`). It yields
/// the CPU now and then: the process it waits for may be waiting for this very CPU (more runnable
/// processes than cores), and then spinning alone would only delay it.
#[inline]
pub(crate) fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut i = 0u32;
    loop {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
        i += 1;
        if i.is_multiple_of(64) {
            if start.elapsed() >= SPIN {
                return ready();
            }
            std::thread::yield_now();
        }
    }
}
