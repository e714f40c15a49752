//! `rustmp`: a Jupyter kernel for Rust with Python's multiprocessing built in.
//!
//! - `rustmp kernel --connection-file F`: what kernel.json starts.
//! - `rustmp install [--user | --sys-prefix | --prefix P] [--name N]`: registers the kernelspec.
//! - `rustmp run NOTEBOOK [--output PATH | --inplace] [--timeout S] [--allow-errors]`: executes a
//!   notebook headless.
//!
//! The code, by folder:
//! - `jupyter/`: the kernel's side of the Jupyter protocol (sockets, channels, messages).
//! - `engine/`: running cells (evcxr, output capture, interrupts, locations in cells).
//! - `run/`: `rustmp run`, the headless notebook runner.
//! - `render/`: charts drawn for cells (a pool's timeline, a speedup chart) with plotters.
//! - `install.rs`: the kernelspec; `usage.rs`: the figures of a `usage_request`.

mod engine;
#[cfg(test)]
mod fd_test;
mod install;
mod jupyter;
mod render;
mod run;
mod usage;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "rustmp",
    version,
    about = "Jupyter kernel for Rust with Python's multiprocessing built in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the kernel (Jupyter starts this through kernel.json).
    Kernel {
        /// The connection file Jupyter wrote.
        #[arg(long = "connection-file", short = 'f')]
        connection_file: PathBuf,
    },
    /// Install the kernelspec (default: for the current user).
    Install {
        /// Into the user's Jupyter data directory (the default).
        #[arg(long, conflicts_with_all = ["sys_prefix", "prefix"])]
        user: bool,
        /// Into the active Python environment (VIRTUAL_ENV, CONDA_PREFIX or python3's sys.prefix).
        #[arg(long = "sys-prefix", conflicts_with = "prefix")]
        sys_prefix: bool,
        /// Into PREFIX/share/jupyter.
        #[arg(long)]
        prefix: Option<PathBuf>,
        /// The kernelspec's name.
        #[arg(long, default_value = install::DEFAULT_NAME)]
        name: String,
    },
    /// Execute a notebook's code cells and write the executed notebook (no Jupyter needed).
    ///
    /// Exit status: 0 when every cell ran, 1 when a cell failed or timed out, 2 when the file is
    /// not a Rust notebook or the engine cannot start, 130 after Ctrl-C (the first one interrupts
    /// the running cell and stops after it; a second one quits at once).
    Run {
        /// The notebook (.ipynb, nbformat 4).
        notebook: PathBuf,
        /// Where to write the executed notebook [default: NAME.nbconvert.ipynb beside it].
        #[arg(long, short = 'o', conflicts_with = "inplace")]
        output: Option<PathBuf>,
        /// Overwrite the notebook itself (left untouched if a cell fails).
        #[arg(long)]
        inplace: bool,
        /// Interrupt a cell that runs longer than this many seconds (0: no limit).
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
        /// Record cell errors and go on instead of stopping at the first.
        #[arg(long = "allow-errors")]
        allow_errors: bool,
    },
}

fn run_notebook(opts: run::Options) -> ExitCode {
    match run::run(&opts) {
        Ok(summary) => {
            let written = summary
                .written
                .map(|p| format!("; wrote {}", p.display()))
                .unwrap_or_else(|| "; the notebook was left unchanged".into());
            let took = format!(
                "{} code cells in {:.1} s{written}",
                summary.executed,
                summary.elapsed.as_secs_f64()
            );
            match summary.verdict {
                run::Verdict::Ok => {
                    eprintln!("\nrustmp run: executed {took}");
                    ExitCode::SUCCESS
                }
                run::Verdict::CellFailed { cell, error } => {
                    eprintln!("\nrustmp run: code cell {cell} failed ({error}); executed {took}");
                    ExitCode::from(1)
                }
                run::Verdict::Interrupted { cell } => {
                    eprintln!("\nrustmp run: interrupted at code cell {cell}; executed {took}");
                    ExitCode::from(130)
                }
                run::Verdict::TimedOut { cell, seconds } => {
                    eprintln!(
                        "\nrustmp run: code cell {cell} timed out after {seconds} s; executed {took}"
                    );
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("rustmp run: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    // In evcxr's runtime subprocess: set up output capture, then never return from the hook.
    engine::relay::install();
    engine::wrapper::fix_and_reexec();
    evcxr::runtime_hook();
    let cli = Cli::parse();
    if let Command::Run {
        notebook,
        output,
        inplace,
        timeout,
        allow_errors,
    } = cli.command
    {
        let timeout =
            (timeout.is_finite() && timeout > 0.0).then(|| Duration::from_secs_f64(timeout));
        return run_notebook(run::Options {
            notebook,
            output,
            inplace,
            timeout,
            allow_errors,
        });
    }
    let result: Result<(), String> = match cli.command {
        Command::Kernel { connection_file } => {
            jupyter::run(&connection_file).map_err(|e| e.to_string())
        }
        Command::Run { .. } => Ok(()),
        Command::Install {
            user: _,
            sys_prefix,
            prefix,
            name,
        } => {
            let location = match (sys_prefix, prefix) {
                (true, _) => install::Location::SysPrefix,
                (_, Some(p)) => install::Location::Prefix(p),
                _ => install::Location::User,
            };
            std::env::current_exe()
                .map_err(|e| format!("cannot find this executable: {e}"))
                .and_then(|exe| install::install(&location, &name, &exe).map_err(|e| e.to_string()))
                .map(|dir| println!("Installed kernelspec {name} in {}", dir.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustmp: {e}");
            ExitCode::FAILURE
        }
    }
}
