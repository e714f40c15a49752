//! Helpers of the cluster test: running commands with a deadline, the fake cluster, the probe's
//! output, and the scan for leftover processes.

pub mod fake;
pub mod front;
pub mod ports;
pub mod probe;
pub mod procs;
pub mod run;
pub mod tally;

/// What a scenario returns: `Err` carries the reason it failed.
pub type Outcome = Result<(), String>;

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition { Ok(()) } else { Err(message()) }
}
