//! The kernel's end of output capture: the registration socket and the reader thread started,
//! the cell that outputs belong to set, a barrier that publishes everything written so far.

use super::event::EventSink;
use super::reader::{Command, Reader};
use serde_json::Value;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::time::Duration;

/// The kernel's end of output capture.
pub struct Capture {
    commands: mpsc::Sender<Command>,
    wake: OwnedFd,
    child_socket: OwnedFd,
}

impl Capture {
    /// Starts the capture thread; `sink` receives every output.
    pub fn start(sink: EventSink) -> std::io::Result<Capture> {
        let mut pair = [0; 2];
        // SAFETY: creating a socket pair; its two descriptors are ours, owned at once (so that
        // a failure below closes them).
        let (mine, theirs) = unsafe {
            if libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1]))
        };
        // SAFETY: creating an eventfd, ours once it is valid.
        let wake = unsafe {
            let wake = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if wake < 0 {
                return Err(std::io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(wake)
        };
        let flags = unsafe { libc::fcntl(mine.as_raw_fd(), libc::F_GETFL) };
        unsafe { libc::fcntl(mine.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
        let (tx, rx) = mpsc::channel();
        let wake_fd = wake.as_raw_fd();
        std::thread::Builder::new()
            .name("rustmp-capture".into())
            .spawn(move || Reader::new(mine, wake_fd, sink).run(rx))?;
        Ok(Capture {
            commands: tx,
            wake,
            child_socket: theirs,
        })
    }

    /// The socket end the runtime inherits (as fd [`crate::engine::relay::OUTPUT_SOCKET_FD`]).
    pub fn child_socket(&self) -> RawFd {
        self.child_socket.as_raw_fd()
    }

    fn send(&self, c: Command) {
        let _ = self.commands.send(c);
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
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
