//! What `rustmp run` was asked to do and how the run ended.

use std::path::PathBuf;
use std::time::Duration;

/// What `rustmp run` was asked to do.
pub struct Options {
    /// The notebook to execute.
    pub notebook: PathBuf,
    /// Where to write the executed notebook (default: `NAME.nbconvert.ipynb` beside it).
    pub output: Option<PathBuf>,
    /// Overwrite the notebook itself (only when every cell succeeded).
    pub inplace: bool,
    /// Per-cell limit: a cell still running after it is interrupted.
    pub timeout: Option<Duration>,
    /// Record cell errors and go on instead of stopping at the first.
    pub allow_errors: bool,
}

/// How the run ended.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Every cell ran (errors allowed by `--allow-errors` or a `raises-exception` tag included).
    Ok,
    /// A cell failed (1-based cell number).
    CellFailed {
        /// Which cell.
        cell: usize,
        /// The error's class and message.
        error: String,
    },
    /// Ctrl-C (SIGINT): the running cell was interrupted and the run stopped.
    Interrupted {
        /// The cell that ran (or was about to run).
        cell: usize,
    },
    /// A cell ran past the timeout and was interrupted.
    TimedOut {
        /// Which cell.
        cell: usize,
        /// The limit.
        seconds: f64,
    },
}

/// The result of a run.
pub struct Summary {
    /// How it ended.
    pub verdict: Verdict,
    /// Where the executed notebook went, if it was written.
    pub written: Option<PathBuf>,
    /// Code cells executed.
    pub executed: usize,
    /// Wall time.
    pub elapsed: Duration,
}
