//! `multiprocessing::host`'s descriptor passing as a host's program uses it.

use multiprocessing::Process;
use multiprocessing::host::send_fds;
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use std::os::fd::AsFd;

#[test]
fn a_closed_peer_is_an_error_not_a_sigpipe() {
    // In a child with SIGPIPE's default action (a Rust program ignores it; a host's child may
    // not): the send must fail with EPIPE, not kill the process.
    let mut p = Process::new(|| {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: restoring a signal's default action installs no handler.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        drop(b);
        let (r, _w) = nix::unistd::pipe().unwrap();
        let err = send_fds(a.as_fd(), b"x", &[r.as_fd()]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(Errno::EPIPE as i32));
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0), "-13: killed by SIGPIPE");
}
