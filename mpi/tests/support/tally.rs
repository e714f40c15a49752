//! The scenarios' results: passed, failed, skipped (a skip is a failure under `CI=true`).

use super::Outcome;
use std::process::ExitCode;
use std::time::Instant;

/// What the scenarios gave so far.
#[derive(Default)]
pub struct Tally {
    passed: usize,
    /// The scenarios (or steps) that failed.
    pub failed: Vec<String>,
    skipped: Vec<String>,
}

impl Tally {
    /// Runs one scenario and records how it went.
    pub fn scenario(&mut self, name: &str, body: impl FnOnce() -> Outcome) {
        let start = Instant::now();
        match body() {
            Ok(()) => {
                println!(
                    "scenario {name} ... ok ({:.1} s)",
                    start.elapsed().as_secs_f64()
                );
                self.passed += 1;
            }
            Err(why) => {
                println!(
                    "scenario {name} ... FAILED ({:.1} s)\n{why}",
                    start.elapsed().as_secs_f64()
                );
                self.failed.push(name.to_string());
            }
        }
    }

    /// Records a scenario that cannot run here, and why.
    pub fn skip(&mut self, name: &str, why: &str) {
        println!("scenario {name} ... skipped: {why}");
        self.skipped.push(format!("{name}: {why}"));
    }

    /// Prints the summary; failure when a scenario failed, or was skipped under `CI=true`.
    pub fn finish(self) -> ExitCode {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        // The test binary's name (cargo adds a hash: `relay-0123abcd`).
        let name = std::env::args()
            .next()
            .and_then(|a| {
                let stem = std::path::Path::new(&a)
                    .file_stem()?
                    .to_string_lossy()
                    .into_owned();
                Some(stem.split('-').next().unwrap_or("").to_string())
            })
            .unwrap_or_default();
        println!(
            "{name}: {} passed, {} failed, {} skipped",
            self.passed,
            self.failed.len(),
            self.skipped.len()
        );
        if !self.failed.is_empty() {
            return ExitCode::FAILURE;
        }
        if ci && !self.skipped.is_empty() {
            println!(
                "FAILED: CI=true, and a skipped MPI test is a failure there: {:?}",
                self.skipped
            );
            return ExitCode::FAILURE;
        }
        ExitCode::SUCCESS
    }
}
