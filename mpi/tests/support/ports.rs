//! The TCP ports a job's processes listen on, found in /proc (each process's socket inodes,
//! matched against the LISTEN rows of its network namespace's /proc/<pid>/net/tcp{,6}).

use std::collections::BTreeSet;

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// The inode of the network namespace it is in.
    pub netns: u64,
    /// Its address as `connect` takes it (`::1` style for IPv6).
    pub addr: String,
    /// Its port.
    pub port: u16,
    /// A process that holds it.
    pub pid: u32,
}

/// `pid` and every process below it.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent is the second field after the command's closing parenthesis.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        at += 1;
    }
    found
}

fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let target = target.to_string_lossy().into_owned();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                {
                    inodes.extend(inode.parse::<u64>().ok());
                }
            }
        }
    }
    inodes
}

/// A /proc/net/tcp address (`0100007F:1F90`, words in host order) as text and port.
fn parse_addr(field: &str) -> Option<(String, u16)> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).map(u32::swap_bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    let addr = match words.as_slice() {
        [w] => std::net::Ipv4Addr::from(*w).to_string(),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            std::net::Ipv6Addr::from(bytes).to_string()
        }
        _ => return None,
    };
    Some((addr, port))
}

/// Every TCP socket in LISTEN state that one of `pids` holds.
pub fn listeners(pids: &[u32]) -> Vec<Listener> {
    let mut found = BTreeSet::new();
    for &pid in pids {
        let inodes = socket_inodes(pid);
        let Some(netns) = super::procs::netns_of(&pid.to_string()) else {
            continue;
        };
        for table in ["tcp", "tcp6"] {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            for row in text.lines().skip(1) {
                let fields: Vec<&str> = row.split_whitespace().collect();
                if fields.len() < 10 || fields[3] != "0A" {
                    continue;
                }
                let Ok(inode) = fields[9].parse::<u64>() else {
                    continue;
                };
                if let (true, Some((addr, port))) = (inodes.contains(&inode), parse_addr(fields[1]))
                {
                    found.insert(Listener {
                        netns,
                        addr,
                        port,
                        pid,
                    });
                }
            }
        }
    }
    found.into_iter().collect()
}
