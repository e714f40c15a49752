//! The kernel's end of output capture: the registration socket and the reader thread started,
//! the cell that outputs belong to set, a barrier that publishes everything written so far.

use super::event::EventSink;
use super::reader::{Command, Reader};
use nix::sys::eventfd::{EfdFlags, EventFd};
use serde_json::Value;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// The kernel's end of output capture.
pub struct Capture {
    commands: mpsc::Sender<Command>,
    wake: Arc<EventFd>,
    child_socket: OwnedFd,
}

impl Capture {
    /// Starts the capture thread; `sink` receives every output.
    pub fn start(sink: EventSink) -> std::io::Result<Capture> {
        // Close-on-exec, owned at once (so that a failure below closes them).
        let (mine, theirs) = UnixDatagram::pair()?;
        let wake = Arc::new(EventFd::from_value_and_flags(
            0,
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
        )?);
        // Only the kernel's end reads without waiting; the runtime's sends may wait.
        mine.set_nonblocking(true)?;
        let (tx, rx) = mpsc::channel();
        let reader_wake = wake.clone();
        std::thread::Builder::new()
            .name("rustmp-capture".into())
            .spawn(move || Reader::new(OwnedFd::from(mine), reader_wake, sink).run(rx))?;
        Ok(Capture {
            commands: tx,
            wake,
            child_socket: OwnedFd::from(theirs),
        })
    }

    /// The socket end the runtime inherits (as fd [`crate::engine::relay::OUTPUT_SOCKET_FD`]).
    pub fn child_socket(&self) -> RawFd {
        self.child_socket.as_raw_fd()
    }

    fn send(&self, c: Command) {
        let _ = self.commands.send(c);
        let _ = self.wake.write(1);
    }

    /// From now on, outputs belong to `target` (a cell's request header, say).
    pub fn set_target(&self, target: Value) {
        self.send(Command::Target(target));
    }

    /// Publishes everything written so far (new pipes, every pipe's data, partial lines).
    pub fn barrier(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Barrier(tx));
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_eventfd_leaves_no_socket_open() {
        use crate::fd_test::{in_child, is_open, limit_to, lowest_free};
        // Room for the socket pair only: the eventfd after it fails.
        let code = in_child(|| {
            let room = lowest_free(2);
            limit_to(room[1] + 1);
            match Capture::start(Box::new(|_, _| {})) {
                Ok(_) => 2,
                Err(_) if room.iter().any(|&fd| is_open(fd)) => 1,
                Err(_) => 0,
            }
        });
        assert_eq!(
            code, 0,
            "1: the socket pair leaked; 2: the eventfd did not fail"
        );
    }
}
