//! The one deadline of the library's blocking calls, and the loop that waits for one in slices.

use crate::error::Result;
use std::time::{Duration, Instant};

/// The longest single sleep of any blocking call: interrupts and deadlines are checked at least this often.
pub(crate) const SLICE: Duration = Duration::from_millis(20);

/// An optional deadline, cut into slices no longer than [`SLICE`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn never() -> Self {
        Deadline(None)
    }
    pub(crate) fn after(d: Duration) -> Self {
        Deadline(Instant::now().checked_add(d))
    }
    pub(crate) fn from_timeout(t: Option<Duration>) -> Self {
        match t {
            Some(d) => Deadline::after(d),
            None => Deadline::never(),
        }
    }
    /// True for a deadline that never passes.
    pub(crate) fn is_never(&self) -> bool {
        self.0.is_none()
    }
    /// The next sleep: `None` once the deadline has passed.
    pub(crate) fn slice(&self) -> Option<Duration> {
        match self.0 {
            None => Some(SLICE),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    None
                } else {
                    Some(left.min(SLICE))
                }
            }
        }
    }

    /// Waits in slices: calls `check` (an interrupt check: its error ends the wait), then, while
    /// the deadline has not passed, `step(slice)`, one sleep of at most `slice` that says whether
    /// the wait is over (`Some`). `Ok(None)` once the deadline has passed.
    #[inline]
    pub(crate) fn wait<T>(
        &self,
        mut check: impl FnMut() -> Result<()>,
        mut step: impl FnMut(Duration) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        loop {
            check()?;
            let Some(slice) = self.slice() else {
                return Ok(None);
            };
            if let Some(done) = step(slice)? {
                return Ok(Some(done));
            }
        }
    }
}
