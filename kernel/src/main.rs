//! `rustmp`: a Jupyter kernel for Rust with Python's multiprocessing built in.
//!
//! - `rustmp kernel --connection-file F`: what kernel.json starts.
//! - `rustmp install [--user | --sys-prefix | --prefix P] [--name N]`: registers the kernelspec.

mod capture;
mod connection;
mod embedded;
mod engine;
mod install;
mod is_complete;
mod kernel;
mod relay;
mod wire;
mod wrapper;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    // In evcxr's runtime subprocess: set up output capture, then never return from the hook.
    relay::install();
    wrapper::fix_and_reexec();
    evcxr::runtime_hook();
    let cli = Cli::parse();
    let result: Result<(), String> = match cli.command {
        Command::Kernel { connection_file } => {
            kernel::run(&connection_file).map_err(|e| e.to_string())
        }
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
