//! `usage_request` (on control, as ipykernel answers it for jupyter-resource-usage): the CPU and
//! memory of the kernel's whole process tree — the runtime and every child the cells started —
//! and of the host, read from `/proc`.

#![deny(unsafe_code)]

use nix::unistd::{SysconfVar, sysconf};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::Instant;

/// The previous sample, for CPU percentages (the first request reports 0, as psutil does).
#[derive(Default)]
pub struct Usage {
    tree: Option<(Instant, u64)>,
    host: Option<(u64, u64)>,
}

impl Usage {
    /// The `usage_reply` content.
    pub fn reply(&mut self) -> Value {
        let me = std::process::id();
        let tree = process_tree(me);
        let now = Instant::now();
        let ticks: u64 = tree.iter().filter_map(|&p| cpu_ticks(p)).sum();
        let hz = clock_ticks();
        let kernel_cpu = match self.tree.replace((now, ticks)) {
            Some((then, before)) if now > then => {
                let secs = now.duration_since(then).as_secs_f64();
                ticks.saturating_sub(before) as f64 / hz / secs * 100.0
            }
            _ => 0.0,
        };
        let kernel_memory: u64 = tree.iter().filter_map(|&p| memory(p)).sum();
        let mut content = Map::new();
        content.insert("hostname".into(), json!(hostname()));
        content.insert("pid".into(), json!(me));
        content.insert("kernel_cpu".into(), json!(round1(kernel_cpu)));
        content.insert("kernel_memory".into(), json!(kernel_memory));
        if let Some((busy, total)) = host_cpu()
            && let Some((b0, t0)) = self.host.replace((busy, total))
            && total > t0
        {
            let pct = (busy.saturating_sub(b0)) as f64 / (total - t0) as f64 * 100.0;
            if pct > 0.0 {
                content.insert("host_cpu_percent".into(), json!(round1(pct)));
            }
        }
        content.insert(
            "cpu_count".into(),
            json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
        );
        content.insert("host_virtual_memory".into(), host_memory());
        Value::Object(content)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn clock_ticks() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as f64,
        _ => 100.0,
    }
}

/// `/proc/<pid>/stat` fields after the command name (which may hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// `root` and every process descending from it.
fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // Field 4 of stat (the parent pid) is the second after the name.
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// User plus system time, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Proportional set size in bytes (what psutil's `memory_full_info().pss` reads), else RSS.
fn memory(pid: u32) -> Option<u64> {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        && let Some(kb) = meminfo_field(&text, "Pss:")
    {
        return Some(kb * 1024);
    }
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(size)) => size.max(4096) as u64,
        _ => 4096,
    };
    Some(pages * page)
}

fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (busy, total) jiffies of all CPUs from `/proc/stat`.
fn host_cpu() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// psutil's `virtual_memory()` fields, in bytes (Linux's definitions).
fn host_memory() -> Value {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |k: &str| meminfo_field(&text, k).unwrap_or(0) * 1024;
    let total = kb("MemTotal:");
    let free = kb("MemFree:");
    let buffers = kb("Buffers:");
    let cached = kb("Cached:") + kb("SReclaimable:");
    let available = kb("MemAvailable:");
    let used = total.saturating_sub(free + buffers + cached);
    let percent = if total > 0 {
        round1(total.saturating_sub(available) as f64 / total as f64 * 100.0)
    } else {
        0.0
    };
    json!({
        "total": total, "available": available, "percent": percent, "used": used, "free": free,
        "active": kb("Active:"), "inactive": kb("Inactive:"), "buffers": buffers, "cached": cached,
        "shared": kb("Shmem:"), "slab": kb("Slab:"),
    })
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_includes_a_child_and_memory_is_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = process_tree(std::process::id());
        assert!(tree.contains(&child.id()));
        assert!(memory(std::process::id()).unwrap() > 0);
        let mut u = Usage::default();
        let first = u.reply();
        assert_eq!(first["kernel_cpu"], 0.0);
        assert!(first["kernel_memory"].as_u64().unwrap() > 0);
        assert!(first["host_virtual_memory"]["total"].as_u64().unwrap() > 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
