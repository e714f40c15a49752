//! The CPU profile of a CPU-bound map (which processes used the machine's CPUs meanwhile), for
//! the speedup figure of `cluster_vs_mpi4py`: a missed speedup is then explained by what ran.

use std::collections::HashMap;

/// CPU ticks (utime + stime) of every process on the machine, by pid, with its name and first
/// argument (`bridge`, `worker`).
pub fn cpu_ticks() -> HashMap<u32, (String, u64)> {
    let mut ticks = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let used = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
        let program = args.next().unwrap_or_default();
        let name = program.rsplit('/').next().unwrap_or_default().to_string();
        let arg = args.next().unwrap_or_default();
        ticks.insert(pid, (format!("{name} {arg}").trim().to_string(), used));
    }
    ticks
}

/// For the profile of the speedup: the CPU time each process used during a CPU-bound map
/// (`n` workers, `took` s), the busiest first.
pub fn cpu_profile(
    n: usize,
    took: f64,
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
) {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut used: Vec<(f64, &str)> = after
        .iter()
        .map(|(pid, (name, t))| {
            let was = before.get(pid).map_or(0, |b| b.1);
            (t.saturating_sub(was) as f64 / hz, name.as_str())
        })
        .filter(|(s, _)| *s >= 0.02)
        .collect();
    used.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = used.iter().map(|u| u.0).sum();
    let top: Vec<String> = used
        .iter()
        .take(6)
        .map(|(s, name)| format!("{name} {s:.2}"))
        .collect();
    let line = format!(
        "  (ours, {n} worker(s): {took:.2} s wall, {total:.2} CPU-s on the machine; busiest: {})",
        top.join(", ")
    );
    PROFILE.with(|p| *p.borrow_mut() = Some(line));
}

thread_local! {
    /// The CPU profile of the fastest run of the last CPU-bound map, printed after the table.
    pub static PROFILE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}
