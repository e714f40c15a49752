//! What ran where and when: a pool's chunks, one row per worker ([`Timeline`], from
//! `Pool::timeline()`), and the processes this one started ([`ProcessSpan`]). Exported as Chrome
//! trace-event JSON ([`Timeline::to_chrome_trace`]), which Perfetto and `chrome://tracing` open,
//! as Ray's `ray timeline` writes; in a rustmp notebook, a `Timeline` shows as an SVG Gantt chart
//! (the kernel draws it from that JSON).
//!
//! Times are durations since one instant of this process ([`origin`]), so spans of different
//! pools and processes line up.

mod chrome;
mod json;
pub(crate) mod processes;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The instant all times of this process's timelines count from (its first use).
///
/// ```
/// let t0 = multiprocessing::timeline::origin();
/// assert!(t0.elapsed() < std::time::Duration::from_secs(3600));
/// ```
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The most spans a notebook's chart is sent ([`Timeline::evcxr_display`]).
const SHOWN: usize = 20_000;

/// Time since [`origin`].
pub(crate) fn now() -> Duration {
    origin().elapsed()
}

/// One worker of a pool: a row of its timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Its name (`ForkPoolWorker-3`, `MpiPoolWorker-2@node1`).
    pub name: String,
    /// Its pid (on its host).
    pub pid: u32,
    /// Its host, for a cluster pool's worker.
    pub host: Option<String>,
}

/// One chunk a worker ran: the tasks `first..first + tasks` of call `call`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The worker (an index into [`Timeline::rows`]).
    pub row: usize,
    /// The call it belongs to (numbered per pool from 1, in the order they were made).
    pub call: u64,
    /// The function the call runs (its Rust path, e.g. `my_crate::work`).
    pub function: &'static str,
    /// The index of its first task in the call's input.
    pub first: usize,
    /// How many tasks it holds (the chunk size, or fewer for the last chunk).
    pub tasks: usize,
    /// When the worker was given it, since [`origin`].
    pub start: Duration,
    /// When its result came back (or the worker died), since [`origin`].
    pub end: Duration,
    /// Whether it ran without an error.
    pub ok: bool,
}

/// A process this one started ([`crate::Process`]), from its start to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpan {
    /// Its name.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// When it started, since [`origin`].
    pub start: Duration,
    /// When it was seen to end (joined or reaped), since [`origin`]; `None` while it runs.
    pub end: Option<Duration>,
    /// Its exit code, Python's way (`-9`: killed by SIGKILL), once it ended.
    pub exitcode: Option<i32>,
}

/// What a pool's workers ran, chunk by chunk: a row per worker, a span per chunk, and the
/// processes this one started. A snapshot: `Pool::timeline()` returns a new one each time.
///
/// ```
/// use multiprocessing::timeline::{Row, Span, Timeline};
/// use std::time::Duration;
/// let t = Timeline {
///     rows: vec![Row { name: "ForkPoolWorker-1".into(), pid: 42, host: None }],
///     spans: vec![Span {
///         row: 0, call: 1, function: "work", first: 0, tasks: 4,
///         start: Duration::from_millis(1), end: Duration::from_millis(3), ok: true,
///     }],
///     processes: vec![],
///     dropped: 0,
/// };
/// assert_eq!(t.busy(0), Duration::from_millis(2));
/// assert!(t.to_chrome_trace().contains("\"ph\":\"X\""));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The workers, in the order they started.
    pub rows: Vec<Row>,
    /// The chunks, in the order they ended.
    pub spans: Vec<Span>,
    /// The processes started with [`crate::Process`] while this timeline was kept.
    pub processes: Vec<ProcessSpan>,
    /// How many of the oldest spans were dropped to bound the memory kept.
    pub dropped: u64,
}

/// The processes started with [`crate::Process`] so far (the last 10 000), as a timeline
/// without pool rows: each from its start to when it was reaped (joined, or seen to exit), with
/// its exit code.
///
/// ```
/// use multiprocessing::Process;
/// let mut p = Process::new(|| std::process::exit(3));
/// p.start().unwrap();
/// p.join().unwrap();
/// let t = multiprocessing::timeline::processes();
/// let span = t.processes.iter().find(|s| Some(s.pid) == p.pid()).unwrap();
/// assert_eq!(span.exitcode, Some(3));
/// assert!(span.end.unwrap() >= span.start);
/// ```
pub fn processes() -> Timeline {
    Timeline {
        processes: processes::since(std::time::Duration::ZERO),
        ..Timeline::default()
    }
}

impl Timeline {
    /// The time row `row` spent running chunks.
    ///
    /// ```
    /// assert_eq!(multiprocessing::timeline::Timeline::default().busy(0), std::time::Duration::ZERO);
    /// ```
    pub fn busy(&self, row: usize) -> Duration {
        self.spans
            .iter()
            .filter(|s| s.row == row)
            .map(|s| s.end.saturating_sub(s.start))
            .sum()
    }

    /// The first start and the last end of its spans and processes (`None` if it has none).
    ///
    /// ```
    /// assert_eq!(multiprocessing::timeline::Timeline::default().range(), None);
    /// ```
    pub fn range(&self) -> Option<(Duration, Duration)> {
        let starts = self
            .spans
            .iter()
            .map(|s| s.start)
            .chain(self.processes.iter().map(|p| p.start));
        let ends = self
            .spans
            .iter()
            .map(|s| s.end)
            .chain(self.processes.iter().filter_map(|p| p.end));
        Some((starts.min()?, ends.max()?))
    }

    /// The timeline as Chrome trace-event JSON (the "JSON Object Format"): one complete event
    /// (`"ph":"X"`) per chunk, on a thread per worker (named by metadata events), and one per
    /// process started, under a second process "Processes"; times in microseconds. Perfetto
    /// (ui.perfetto.dev) and `chrome://tracing` open it.
    ///
    /// ```
    /// let json = multiprocessing::timeline::Timeline::default().to_chrome_trace();
    /// assert!(json.starts_with("{\"traceEvents\":["));
    /// ```
    pub fn to_chrome_trace(&self) -> String {
        chrome::write(self)
    }

    /// Shows the timeline in a rustmp notebook, where evcxr calls this for a cell's value: the
    /// kernel draws it as an SVG Gantt chart (a row per worker, a bar per chunk coloured by
    /// call, a hover title per bar) of its last 20 000 chunks. It writes a record to stdout, which a terminal does not
    /// show (an OSC escape sequence).
    ///
    /// ```
    /// multiprocessing::timeline::Timeline::default().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        show("timeline", &self.for_display().to_chrome_trace());
    }

    /// What a notebook is sent: a record must stay under the kernel's 8 MiB for one output
    /// line, so the last [`SHOWN`] spans (the older ones counted as dropped), about 4.5 MB of
    /// trace at most.
    fn for_display(&self) -> std::borrow::Cow<'_, Timeline> {
        if self.spans.len() <= SHOWN {
            return std::borrow::Cow::Borrowed(self);
        }
        let cut = self.spans.len() - SHOWN;
        std::borrow::Cow::Owned(Timeline {
            rows: self.rows.clone(),
            spans: self.spans[cut..].to_vec(),
            processes: self.processes.clone(),
            dropped: self.dropped + cut as u64,
        })
    }
}

/// Measured speedups, `(workers, speedup)`: in a rustmp notebook a chart against the ideal
/// line (evcxr shows a cell's value with [`Speedup::evcxr_display`]).
///
/// ```
/// use multiprocessing::timeline::Speedup;
/// use std::time::Duration;
/// let s = Speedup::from_times(&[(1, Duration::from_secs(4)), (2, Duration::from_secs(2)), (4, Duration::from_millis(1250))]);
/// assert_eq!(s.points, vec![(1, 1.0), (2, 2.0), (4, 3.2)]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Speedup {
    /// Each measure: the number of workers, and the speedup.
    pub points: Vec<(usize, f64)>,
}

impl Speedup {
    /// The speedups of the same work timed with several numbers of workers: against the time
    /// with the fewest, `b` workers (1, usually), `speedup(n) = b × t(b) / t(n)`. Sorted by
    /// workers; an entry with 0 workers or a zero time is left out.
    ///
    /// ```
    /// use multiprocessing::timeline::Speedup;
    /// assert!(Speedup::from_times(&[]).points.is_empty());
    /// ```
    pub fn from_times(times: &[(usize, Duration)]) -> Speedup {
        let mut times: Vec<(usize, Duration)> = times
            .iter()
            .copied()
            .filter(|(n, t)| *n > 0 && !t.is_zero())
            .collect();
        times.sort_by_key(|(n, _)| *n);
        let Some(&(base, base_time)) = times.first() else {
            return Speedup { points: Vec::new() };
        };
        let points = times
            .iter()
            .map(|&(n, t)| (n, base as f64 * base_time.as_secs_f64() / t.as_secs_f64()))
            .collect();
        Speedup { points }
    }

    /// Shows the chart in a rustmp notebook (a record on stdout, as [`Timeline::evcxr_display`]).
    ///
    /// ```
    /// multiprocessing::timeline::Speedup { points: vec![(1, 1.0), (2, 1.9)] }.evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let points: Vec<String> = self
            .points
            .iter()
            .map(|(n, s)| format!("[{n},{}]", if s.is_finite() { *s } else { 0.0 }))
            .collect();
        show("speedup", &format!("{{\"points\":[{}]}}", points.join(",")));
    }
}

/// Writes a record for the kernel to stdout, after what the cell printed before.
fn show(kind: &str, json: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.flush();
    let _ = out.write_all(&crate::host::record::encode(kind, json.as_bytes()));
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::{SHOWN, Span, Timeline};
    use std::time::Duration;

    #[test]
    fn a_notebook_is_sent_the_last_spans_only() {
        let span = |first| Span {
            row: 0,
            call: 1,
            function: "f",
            first,
            tasks: 1,
            start: Duration::ZERO,
            end: Duration::ZERO,
            ok: true,
        };
        let t = Timeline {
            spans: (0..SHOWN + 7).map(span).collect(),
            dropped: 2,
            ..Timeline::default()
        };
        let shown = t.for_display();
        assert_eq!((shown.spans.len(), shown.dropped), (SHOWN, 9));
        assert_eq!(shown.spans[0].first, 7);
        let small = Timeline::default();
        assert!(matches!(small.for_display(), std::borrow::Cow::Borrowed(_)));
    }
}
