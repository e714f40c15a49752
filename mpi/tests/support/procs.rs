//! A scan of every process in /proc for what a test run may leave behind.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The inode of the network namespace of `pid` (`self` for this process).
pub fn netns_of(pid: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Every process other than this one that is in one of `namespaces`, runs `exe`, or mentions
/// `agent` (the fake cluster's rsh agent, when given) in its command line or environment; one line each.
pub fn leftovers(namespaces: &BTreeSet<u64>, exe: &Path, agent: Option<&Path>) -> Vec<String> {
    let me = std::process::id().to_string();
    let agent = agent.map(|a| a.to_string_lossy().into_owned());
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec!["cannot read /proc".to_string()];
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let read = |name: &str| {
            std::fs::read(format!("/proc/{pid}/{name}"))
                .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
                .unwrap_or_default()
        };
        let cmdline = read("cmdline");
        if cmdline.is_empty() {
            continue; // a kernel thread or a zombie: nothing runs there
        }
        let in_namespace = netns_of(&pid).is_some_and(|ns| namespaces.contains(&ns));
        let runs_exe = std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe);
        let mentions_agent = agent
            .as_ref()
            .is_some_and(|a| cmdline.contains(a.as_str()) || read("environ").contains(a.as_str()));
        if in_namespace || runs_exe || mentions_agent {
            found.push(format!("pid {pid}: {}", cmdline.trim_end()));
        }
    }
    found
}
