//! Waking a relay loop when an MPI message arrives, without busy polling: MPI has no descriptor
//! to wait on, but Open MPI's TCP BTL does its transfers on TCP sockets of this process. A loop
//! adds those sockets (every TCP socket of the process that is not its own) to its `ppoll`, so
//! it sleeps until bytes arrive (then `MPI_Improbe` makes progress and finds the message) and
//! needs only a long safety timeout. Shared-memory transports (vader) have no socket: the front
//! starts jobs with `--mca btl tcp,self`, since the ranks only ever talk to the bridge.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// How often the set is rescanned anyway (connections are made lazily, at the first message).
const RESCAN: Duration = Duration::from_millis(200);
/// The shortest time between two rescans.
const RESCAN_MIN: Duration = Duration::from_millis(10);
/// Wake-ups with nothing to do before a rescan (a socket Open MPI closed and whose number was
/// reused, or one it no longer reads).
const SPURIOUS: u32 = 3;

/// The TCP sockets of this process other than the relay's own.
#[derive(Debug, Default)]
pub struct MpiSockets {
    fds: Vec<RawFd>,
    scanned: Option<Instant>,
    spurious: u32,
}

fn scan(own: &[RawFd]) -> Vec<RawFd> {
    let mut fds = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return fds;
    };
    for entry in entries.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        if !own.contains(&fd) && crate::sys::is_tcp_socket(fd) {
            fds.push(fd);
        }
    }
    fds
}

impl MpiSockets {
    /// The sockets to watch, rescanned when due; `own` are the loop's descriptors.
    pub fn fds(&mut self, own: &[RawFd]) -> &[RawFd] {
        let due = match self.scanned {
            None => true,
            Some(at) => {
                at.elapsed() > RESCAN || (self.spurious >= SPURIOUS && at.elapsed() > RESCAN_MIN)
            }
        };
        if due {
            self.fds = scan(own);
            self.scanned = Some(Instant::now());
            self.spurious = 0;
        }
        &self.fds
    }

    /// After a turn of the loop (`woke`: a socket woke it; `busy`: it found work). Returns
    /// whether to probe again at once: bytes that woke the loop are often read by the progress
    /// of the very `MPI_Improbe` that then finds no message yet, so the next probe must not
    /// wait; unless the sockets woke it for nothing 3 times in a row.
    pub fn note(&mut self, woke: bool, busy: bool) -> bool {
        if busy {
            self.spurious = 0;
        } else if woke {
            self.spurious += 1;
        }
        woke && self.spurious < SPURIOUS
    }

    /// Forgets the scan (a message came or went: a connection may be new).
    pub fn stale(&mut self) {
        if self.scanned.is_some_and(|at| at.elapsed() > RESCAN_MIN) {
            self.scanned = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn finds_tcp_sockets_that_are_not_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (unix, _peer) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut sockets = MpiSockets::default();
        let fds = sockets.fds(&[other.as_raw_fd()]).to_vec();
        assert!(fds.contains(&listener.as_raw_fd()), "{fds:?}");
        assert!(!fds.contains(&other.as_raw_fd()) && !fds.contains(&unix.as_raw_fd()));
    }
}
