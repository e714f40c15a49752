//! `rustmp-mpi`: the program that `mpirun` starts on every rank of a cluster pool.
//!
//! Subcommands:
//! - `probe [--check-path PATH]`: initialises MPI and reports, for every rank, its rank, the
//!   size of the job, the processor name (the host it runs on), its pid, its network namespace,
//!   whether `PATH` exists there and whether `RUSTMP_PROBE_MARKER` reached it. Rank 0 also
//!   receives every other rank's report over MPI and prints it, so a probe proves that the ranks
//!   can talk to each other, not only that they started. `--hold SECONDS` keeps every rank in
//!   the job that long afterwards (for tests that act on a running job).
//!
//! - `bridge --socket PATH --secret-file PATH`: rank 0, the front's link to the ranks
//!   (`bridge.rs`; the protocol is described in the `rustmp_mpi` library).
//! - `worker`: ranks 1..N, each running one worker process (`rank.rs`).
//!
//! - Started by a rank with a spawn worker's socket (`MULTIPROCESSING_SPAWN_WORKER`), it is a
//!   spawn host instead: the multiprocessing library linked in becomes the worker before `main`,
//!   loads the copy of the library and the cells' objects that the pool sends it, and runs the
//!   tasks there. That is how a cluster pool made by a library loaded at run time (a notebook's)
//!   runs its workers: the ranks need no copy of the kernel.
//!
//! Built without the `mpi` feature (the default, so the workspace needs no Open MPI), the MPI
//! subcommands say so and exit with [`EXIT_NO_MPI`].

#![deny(clippy::undocumented_unsafe_blocks)]

// Linked for its load-time constructor (the spawn host, above); nothing here calls it.
use multiprocessing as _;

#[cfg(feature = "mpi")]
mod bridge;
mod cli;
#[cfg(feature = "mpi")]
mod link;
#[cfg(feature = "mpi")]
mod probe;
#[cfg(feature = "mpi")]
mod rank;
mod report;

use std::process::ExitCode;

/// Exit code of an MPI subcommand in a binary built without the `mpi` feature.
pub const EXIT_NO_MPI: u8 = 3;
/// Exit code for a command line that cannot be understood.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a subcommand ran and failed.
pub const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("rustmp-mpi: {error}\n{}", cli::USAGE);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        cli::Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        cli::Command::Version => {
            let with = if cfg!(feature = "mpi") {
                "with MPI"
            } else {
                "without MPI"
            };
            println!("rustmp-mpi {} ({with})", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        cli::Command::Probe(options) => run_probe(&options),
        cli::Command::Bridge(options) => run_bridge(&options),
        cli::Command::Worker => run_worker(),
    }
}

#[cfg(feature = "mpi")]
fn run_bridge(options: &cli::BridgeOptions) -> ExitCode {
    match bridge::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rustmp-mpi bridge: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

#[cfg(feature = "mpi")]
fn run_worker() -> ExitCode {
    match rank::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rustmp-mpi worker: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

#[cfg(not(feature = "mpi"))]
fn run_bridge(_options: &cli::BridgeOptions) -> ExitCode {
    no_mpi()
}

#[cfg(not(feature = "mpi"))]
fn run_worker() -> ExitCode {
    no_mpi()
}

#[cfg(feature = "mpi")]
fn run_probe(options: &cli::ProbeOptions) -> ExitCode {
    match probe::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rustmp-mpi probe: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

#[cfg(not(feature = "mpi"))]
fn run_probe(_options: &cli::ProbeOptions) -> ExitCode {
    no_mpi()
}

#[cfg(not(feature = "mpi"))]
fn no_mpi() -> ExitCode {
    eprintln!(
        "rustmp-mpi: built without MPI (the `mpi` feature is off); rebuild with \
         `--features rustmp-mpi/mpi`, which needs Open MPI's development files (mpicc) and \
         libclang, e.g. `apt-get install openmpi-bin libopenmpi-dev libclang-dev`"
    );
    ExitCode::from(EXIT_NO_MPI)
}
