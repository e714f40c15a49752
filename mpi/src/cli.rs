//! The command line of `rustmp-mpi`, parsed by hand (no argument-parsing dependency).

use std::path::PathBuf;
use std::time::Duration;

/// What `rustmp-mpi --help` prints.
pub const USAGE: &str = "usage: rustmp-mpi probe [--check-path PATH] [--hold SECONDS]
       rustmp-mpi bridge --socket PATH --secret-file PATH   (rank 0, under mpirun)
       rustmp-mpi worker                                    (ranks 1.., under mpirun)
       rustmp-mpi --version                                 (says whether it has MPI)
       rustmp-mpi --help";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `--help`.
    Help,
    /// `--version`: the version, and whether this build has MPI.
    Version,
    /// `probe`: report every rank's placement.
    Probe(ProbeOptions),
    /// `bridge`: rank 0, the front's link to the ranks.
    Bridge(BridgeOptions),
    /// `worker`: a rank that runs one worker process.
    Worker,
}

/// Options of `bridge`.
#[derive(Debug, PartialEq, Eq)]
pub struct BridgeOptions {
    /// The front's Unix socket.
    pub socket: PathBuf,
    /// The file with the pool's secret (0600; the bridge unlinks it after reading).
    pub secret_file: PathBuf,
}

/// Options of `probe`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProbeOptions {
    /// A path whose existence each rank reports (to show which files a host shares).
    pub check_path: Option<PathBuf>,
    /// After reporting, how long each rank stays in the job (then all meet in a barrier), so
    /// that a test can act on a running job.
    pub hold: Option<Duration>,
}

/// A command line that cannot be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    /// No subcommand.
    #[error("no subcommand given")]
    Missing,
    /// A subcommand this program does not have.
    #[error("unknown subcommand `{0}`")]
    UnknownCommand(String),
    /// An option the subcommand does not have.
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    /// A required option is missing.
    #[error("option `{0}` is required")]
    MissingOption(&'static str),
    /// An option given without its value.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
    /// An option whose value is not what it takes.
    #[error("option `{option}` takes {takes}, not `{value}`")]
    BadValue {
        /// The option.
        option: String,
        /// What it takes.
        takes: &'static str,
        /// What it was given.
        value: String,
    },
}

/// Parses the arguments that follow the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let (first, rest) = args.split_first().ok_or(UsageError::Missing)?;
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" | "version" => Ok(Command::Version),
        "probe" => parse_probe(rest).map(Command::Probe),
        "bridge" => parse_bridge(rest).map(Command::Bridge),
        "worker" => match rest.first() {
            None => Ok(Command::Worker),
            Some(other) => Err(UsageError::UnknownOption(other.clone())),
        },
        other => Err(UsageError::UnknownCommand(other.to_string())),
    }
}

fn parse_bridge(args: &[String]) -> Result<BridgeOptions, UsageError> {
    let (mut socket, mut secret_file) = (None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--socket" => &mut socket,
            "--secret-file" => &mut secret_file,
            other => return Err(UsageError::UnknownOption(other.to_string())),
        };
        let value = args
            .next()
            .ok_or_else(|| UsageError::MissingValue(arg.clone()))?;
        *slot = Some(PathBuf::from(value));
    }
    Ok(BridgeOptions {
        socket: socket.ok_or(UsageError::MissingOption("--socket"))?,
        secret_file: secret_file.ok_or(UsageError::MissingOption("--secret-file"))?,
    })
}

fn parse_probe(args: &[String]) -> Result<ProbeOptions, UsageError> {
    let mut options = ProbeOptions::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check-path" => {
                let value = args
                    .next()
                    .ok_or_else(|| UsageError::MissingValue(arg.clone()))?;
                options.check_path = Some(PathBuf::from(value));
            }
            "--hold" => {
                let value = args
                    .next()
                    .ok_or_else(|| UsageError::MissingValue(arg.clone()))?;
                let seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| UsageError::BadValue {
                        option: arg.clone(),
                        takes: "a number of seconds from 0 to 86400",
                        value: value.clone(),
                    })?;
                options.hold = Some(Duration::from_secs_f64(seconds));
            }
            other => return Err(UsageError::UnknownOption(other.to_string())),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn probe_with_and_without_a_path() {
        assert_eq!(
            parse(&words("probe")),
            Ok(Command::Probe(ProbeOptions::default()))
        );
        assert_eq!(
            parse(&words("probe --check-path /tmp/x")),
            Ok(Command::Probe(ProbeOptions {
                check_path: Some(PathBuf::from("/tmp/x")),
                hold: None,
            }))
        );
        assert_eq!(
            parse(&words("probe --hold 1.5")),
            Ok(Command::Probe(ProbeOptions {
                check_path: None,
                hold: Some(Duration::from_millis(1500)),
            }))
        );
    }

    #[test]
    fn bad_command_lines_are_named() {
        assert_eq!(parse(&[]), Err(UsageError::Missing));
        assert_eq!(
            parse(&words("bridged")),
            Err(UsageError::UnknownCommand("bridged".into()))
        );
        assert_eq!(
            parse(&words("bridge --socket /s")),
            Err(UsageError::MissingOption("--secret-file"))
        );
        assert_eq!(
            parse(&words("bridge --socket /s --secret-file /f")),
            Ok(Command::Bridge(BridgeOptions {
                socket: PathBuf::from("/s"),
                secret_file: PathBuf::from("/f"),
            }))
        );
        assert_eq!(parse(&words("worker")), Ok(Command::Worker));
        assert_eq!(parse(&words("--version")), Ok(Command::Version));
        assert_eq!(
            parse(&words("worker --x")),
            Err(UsageError::UnknownOption("--x".into()))
        );
        assert_eq!(
            parse(&words("probe --what")),
            Err(UsageError::UnknownOption("--what".into()))
        );
        assert_eq!(
            parse(&words("probe --check-path")),
            Err(UsageError::MissingValue("--check-path".into()))
        );
        for bad in ["-1", "soon", "NaN", "1e9"] {
            assert!(
                matches!(
                    parse(&words(&format!("probe --hold {bad}"))),
                    Err(UsageError::BadValue { .. })
                ),
                "{bad}"
            );
        }
    }
}
