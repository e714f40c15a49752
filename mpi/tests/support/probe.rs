//! Reads what `rustmp-mpi probe` printed: one `probe …` line per rank, one `probe-from …` line
//! per report rank 0 received over MPI, and `probe-done size=N`.

use std::collections::BTreeMap;

/// One rank's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rank {
    /// Its rank.
    pub rank: i32,
    /// The size of the job it saw.
    pub size: i32,
    /// Its processor name.
    pub host: String,
    /// Its pid.
    pub pid: u32,
    /// The inode of its network namespace.
    pub netns: u64,
    /// `yes`, `no` or `-`: whether the `--check-path` path existed there.
    pub sees: String,
    /// The value of `RUSTMP_PROBE_MARKER` there, or `absent`.
    pub marker: String,
}

/// A whole probe run whose printed and gathered reports agree.
#[derive(Debug)]
pub struct Probe {
    /// The reports, by rank (0..size).
    pub ranks: Vec<Rank>,
}

impl Probe {
    /// How many ranks ran on each host.
    pub fn per_host(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for rank in &self.ranks {
            *counts.entry(rank.host.clone()).or_insert(0) += 1;
        }
        counts
    }
}

/// Parses and checks a probe's stdout: every rank 0..N printed once, rank 0 received the report
/// of every other rank (over MPI) and it equals what that rank printed.
pub fn parse(stdout: &str) -> Result<Probe, String> {
    let mut printed = BTreeMap::new();
    let mut gathered = BTreeMap::new();
    let mut done = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("probe ") {
            let rank = parse_rank(rest)?;
            if printed.insert(rank.rank, rank).is_some() {
                return Err(format!("rank printed twice: {line}"));
            }
        } else if let Some(rest) = line.strip_prefix("probe-from ") {
            let rank = parse_rank(rest)?;
            if gathered.insert(rank.rank, rank).is_some() {
                return Err(format!("rank 0 received twice: {line}"));
            }
        } else if let Some(size) = line.strip_prefix("probe-done size=") {
            done = Some(
                size.parse::<i32>()
                    .map_err(|e| format!("bad `{line}`: {e}"))?,
            );
        }
    }
    let size = done.ok_or_else(|| format!("no `probe-done` line in:\n{stdout}"))?;
    let ranks: Vec<Rank> = printed.into_values().collect();
    let numbers: Vec<i32> = ranks.iter().map(|r| r.rank).collect();
    if numbers != (0..size).collect::<Vec<_>>() || ranks.iter().any(|r| r.size != size) {
        return Err(format!(
            "ranks {numbers:?} printed, size {size} expected:\n{stdout}"
        ));
    }
    let from: Vec<i32> = gathered.keys().copied().collect();
    if from != (1..size).collect::<Vec<_>>() {
        return Err(format!(
            "rank 0 received from {from:?}, expected 1..{size}:\n{stdout}"
        ));
    }
    for (rank, report) in &gathered {
        if ranks.get(*rank as usize) != Some(report) {
            return Err(format!(
                "rank 0 received {report:?}, but rank {rank} printed otherwise"
            ));
        }
    }
    Ok(Probe { ranks })
}

fn parse_rank(text: &str) -> Result<Rank, String> {
    let mut fields = BTreeMap::new();
    for pair in text.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("not key=value: `{pair}` in `{text}`"))?;
        fields.insert(key, value);
    }
    let get = |key: &str| {
        fields
            .get(key)
            .copied()
            .ok_or_else(|| format!("no `{key}` in `{text}`"))
    };
    let number = |key: &str| -> Result<i64, String> {
        get(key)?
            .parse()
            .map_err(|e| format!("bad `{key}` in `{text}`: {e}"))
    };
    let netns = get("netns")?
        .strip_prefix("net:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inode| inode.parse().ok())
        .ok_or_else(|| format!("bad netns in `{text}`"))?;
    Ok(Rank {
        rank: number("rank")? as i32,
        size: number("size")? as i32,
        host: get("host")?.to_string(),
        pid: number("pid")? as u32,
        netns,
        sees: get("sees")?.to_string(),
        marker: get("marker")?.to_string(),
    })
}
