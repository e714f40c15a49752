//! One rank's probe report and its one-line text form
//! (`rank=1 size=5 host=rmpnode1 pid=42 netns=net:[4026532] sees=no marker=absent`).

use std::path::Path;

/// The environment variable whose value a probe reports (`marker=`), to show whether a
/// variable set where `mpirun` runs reaches a rank.
pub const MARKER_VAR: &str = "RUSTMP_PROBE_MARKER";

/// What one rank reports about itself.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The rank in `MPI_COMM_WORLD`.
    pub rank: i32,
    /// The size of `MPI_COMM_WORLD`.
    pub size: i32,
    /// `MPI_Get_processor_name`: the host the rank runs on.
    pub host: String,
    /// The rank's process id.
    pub pid: u32,
    /// The target of `/proc/self/ns/net` (`net:[inode]`), or `?` when unreadable.
    pub netns: String,
    /// Whether the `--check-path` path exists here: `yes`, `no`, or `-` when none was given.
    pub sees: String,
    /// The value of [`MARKER_VAR`], or `absent`.
    pub marker: String,
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl Report {
    /// The parts a process knows without MPI; `rank`, `size` and `host` come from MPI.
    pub fn local(rank: i32, size: i32, host: String, check_path: Option<&Path>) -> Report {
        let netns = std::fs::read_link("/proc/self/ns/net")
            .map(|target| target.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".to_string());
        let sees = match check_path {
            None => "-",
            Some(path) if path.exists() => "yes",
            Some(_) => "no",
        };
        let marker = std::env::var(MARKER_VAR).unwrap_or_else(|_| "absent".to_string());
        Report {
            rank,
            size,
            host: sanitize(&host),
            pid: std::process::id(),
            netns,
            sees: sees.to_string(),
            marker: sanitize(&marker),
        }
    }

    /// The one-line text form: space-separated `key=value` pairs, values without spaces.
    pub fn line(&self) -> String {
        format!(
            "rank={} size={} host={} pid={} netns={} sees={} marker={}",
            self.rank, self.size, self.host, self.pid, self.netns, self.sees, self.marker
        )
    }
}

/// Values go on one line of space-separated pairs: whitespace and `=` become `_`.
fn sanitize(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '=' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "-".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_one_line_of_pairs() {
        let report = Report {
            rank: 1,
            size: 5,
            host: sanitize("rmp node=1"),
            pid: 42,
            netns: "net:[4026532]".into(),
            sees: "no".into(),
            marker: sanitize(""),
        };
        assert_eq!(
            report.line(),
            "rank=1 size=5 host=rmp_node_1 pid=42 netns=net:[4026532] sees=no marker=-"
        );
    }

    #[test]
    fn the_local_parts_are_this_process() {
        let report = Report::local(0, 1, "here".into(), Some(Path::new("/")));
        assert_eq!(report.pid, std::process::id());
        assert_eq!(report.sees, "yes");
        assert!(report.netns.starts_with("net:["), "{}", report.netns);
        let missing = Report::local(0, 1, "here".into(), Some(Path::new("/no/such/path")));
        assert_eq!(missing.sees, "no");
    }
}
