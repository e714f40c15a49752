//! `rustmp-mpi probe`: every rank prints its [`Report`]; ranks 1.. also send it to rank 0,
//! which prints each one it received, then `probe-done size=N`. With `--hold`, every rank then
//! stays that long and all meet in a barrier before they finish.

use crate::cli::ProbeOptions;
use crate::report::Report;
use mpi::traits::*;
use std::io::Write;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// `MPI_Init` had already run in this process.
    #[error("MPI was already initialised in this process")]
    AlreadyInitialised,
    /// `MPI_Get_processor_name` returned bytes that are not UTF-8.
    #[error("the processor name is not UTF-8: {0}")]
    ProcessorName(#[from] std::string::FromUtf8Error),
    /// A rank sent rank 0 a report that is not UTF-8.
    #[error("rank {rank} sent a report that is not UTF-8")]
    Garbled {
        /// The sender.
        rank: i32,
    },
    /// Writing the output failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs the probe on this rank.
pub fn run(options: &ProbeOptions) -> Result<(), ProbeError> {
    let universe = mpi::initialize().ok_or(ProbeError::AlreadyInitialised)?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    let host = mpi::environment::processor_name()?;
    let report = Report::local(rank, size, host, options.check_path.as_deref());
    let line = report.line();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "probe {line}")?;
        out.flush()?;
    }
    if rank == 0 {
        for from in 1..size {
            let (bytes, _status) = world.process_at_rank(from).receive_vec::<u8>();
            let text = String::from_utf8(bytes).map_err(|_| ProbeError::Garbled { rank: from })?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "probe-from {text}")?;
            out.flush()?;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "probe-done size={size}")?;
        out.flush()?;
    } else {
        world.process_at_rank(0).send(line.as_bytes());
    }
    if let Some(hold) = options.hold {
        std::thread::sleep(hold);
        world.barrier();
    }
    Ok(())
}
