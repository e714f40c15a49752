//! The command line of `rustmp-mpi`, parsed by hand (no argument-parsing dependency).

use std::path::PathBuf;

/// What `rustmp-mpi --help` prints.
pub const USAGE: &str = "usage: rustmp-mpi probe [--check-path PATH]\n       rustmp-mpi --help";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `--help`.
    Help,
    /// `probe`: report every rank's placement.
    Probe(ProbeOptions),
}

/// Options of `probe`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProbeOptions {
    /// A path whose existence each rank reports (to show which files a host shares).
    pub check_path: Option<PathBuf>,
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
    /// An option given without its value.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
}

/// Parses the arguments that follow the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let (first, rest) = args.split_first().ok_or(UsageError::Missing)?;
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "probe" => parse_probe(rest).map(Command::Probe),
        other => Err(UsageError::UnknownCommand(other.to_string())),
    }
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
                check_path: Some(PathBuf::from("/tmp/x"))
            }))
        );
    }

    #[test]
    fn bad_command_lines_are_named() {
        assert_eq!(parse(&[]), Err(UsageError::Missing));
        assert_eq!(
            parse(&words("bridge")),
            Err(UsageError::UnknownCommand("bridge".into()))
        );
        assert_eq!(
            parse(&words("probe --what")),
            Err(UsageError::UnknownOption("--what".into()))
        );
        assert_eq!(
            parse(&words("probe --check-path")),
            Err(UsageError::MissingValue("--check-path".into()))
        );
    }
}
