//! A pool's timeline as it runs: the manager adds a row per worker it starts and a span per chunk
//! answered (or lost with its worker); `Pool::timeline()` takes a snapshot. Bounded: past
//! [`KEPT`] spans the oldest go (counted in [`crate::timeline::Timeline::dropped`]).

use crate::timeline::{self, Row, Span, Timeline};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The most spans a pool keeps (about 11.5 MB: a span is 88 bytes). The rows are not bounded
/// yet: one per worker started, replacements included.
pub(crate) const KEPT: usize = 100_000;

#[derive(Default)]
struct Record {
    rows: Vec<Row>,
    spans: VecDeque<Span>,
    dropped: u64,
}

/// What a pool's manager records and its callers read.
pub(crate) struct Recorder {
    record: Mutex<Record>,
    /// When the pool was made (its timeline shows the processes started since).
    created: Duration,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            record: Mutex::new(Record::default()),
            created: timeline::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker's row: its index.
    pub(crate) fn row(&self, name: &str, pid: u32, host: Option<&str>) -> usize {
        let mut r = self.lock();
        r.rows.push(Row {
            name: name.to_string(),
            pid,
            host: host.map(String::from),
        });
        r.rows.len() - 1
    }

    /// Row `row`'s worker has pid `pid` (a cluster worker's is known once it is ready).
    pub(crate) fn set_pid(&self, row: usize, pid: u32) {
        if let Some(r) = self.lock().rows.get_mut(row) {
            r.pid = pid;
        }
    }

    /// Keeps `span` (a chunk answered, or lost with its worker), dropping the oldest past
    /// [`KEPT`].
    pub(crate) fn push(&self, span: Span) {
        let mut r = self.lock();
        if r.spans.len() == KEPT {
            r.spans.pop_front();
            r.dropped += 1;
        }
        r.spans.push_back(span);
    }

    /// A snapshot, with the processes started since the pool was made.
    pub(crate) fn snapshot(&self) -> Timeline {
        let r = self.lock();
        Timeline {
            rows: r.rows.clone(),
            spans: r.spans.iter().cloned().collect(),
            processes: timeline::processes::since(self.created),
            dropped: r.dropped,
        }
    }

    /// Forgets the spans (the rows stay: the workers do).
    pub(crate) fn clear(&self) {
        let mut r = self.lock();
        r.spans.clear();
        r.dropped = 0;
    }
}

impl super::Pool {
    /// What this pool's workers ran so far, chunk by chunk: a row per worker (in the order they
    /// started, replacements included), a span per chunk (its call, function, task indexes,
    /// start and end, whether it failed), and the processes started with [`crate::Process`]
    /// since the pool was made. Recorded by the pool's manager thread as it hands out chunks
    /// and reads their results (a few clock readings per chunk), for the last 100 000 chunks. In
    /// a rustmp notebook the value shows as a Gantt chart; [`Timeline::to_chrome_trace`] exports
    /// it for Perfetto.
    ///
    /// ```
    /// use multiprocessing::Pool;
    /// fn square(x: u64) -> u64 { x * x }
    /// let pool = Pool::new(2).unwrap();
    /// pool.map_chunked(square, 0..12, 3).unwrap();
    /// let t = pool.timeline();
    /// assert_eq!(t.spans.len(), 4);
    /// let mut firsts: Vec<usize> = t.spans.iter().map(|s| s.first).collect();
    /// firsts.sort();
    /// assert_eq!(firsts, [0, 3, 6, 9]);
    /// assert!(t.spans.iter().all(|s| s.tasks == 3 && s.ok && s.function.ends_with("square")));
    /// ```
    pub fn timeline(&self) -> Timeline {
        self.shared.recorder.snapshot()
    }

    /// Forgets the chunks recorded so far (before timing one call, say).
    ///
    /// ```
    /// use multiprocessing::Pool;
    /// fn id(x: u8) -> u8 { x }
    /// let pool = Pool::new(1).unwrap();
    /// pool.map(id, 0..4).unwrap();
    /// pool.clear_timeline();
    /// assert!(pool.timeline().spans.is_empty());
    /// ```
    pub fn clear_timeline(&self) {
        self.shared.recorder.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::{KEPT, Recorder};
    use crate::timeline::Span;
    use std::time::Duration;

    #[test]
    fn the_oldest_spans_go_past_the_bound_and_are_counted() {
        let r = Recorder::new();
        let row = r.row("ForkPoolWorker-1", 7, None);
        for i in 0..KEPT + 5 {
            r.push(Span {
                row,
                call: 1,
                function: "f",
                first: i,
                tasks: 1,
                start: Duration::ZERO,
                end: Duration::ZERO,
                ok: true,
            });
        }
        let t = r.snapshot();
        assert_eq!((t.spans.len(), t.dropped), (KEPT, 5));
        assert_eq!(t.spans[0].first, 5);
        r.clear();
        let t = r.snapshot();
        assert_eq!((t.spans.len(), t.dropped, t.rows.len()), (0, 0, 1));
    }
}
