//! `multiprocessing::host`'s descriptor passing as a host's program uses it.

use multiprocessing::Process;
use multiprocessing::host::{MAX_FDS, recv_fds, send_fds};
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

#[test]
fn a_message_with_more_descriptors_than_taken_leaves_none_open() {
    // In a child (one thread, so the count of open descriptors is its own): 40 descriptors in
    // one message; recv_fds gives MAX_FDS of them and closes the rest.
    let mut p = Process::new(|| {
        let open = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        let before = open();
        let many: Vec<_> = (0..40).map(|_| r.as_fd()).collect();
        send_fds(a.as_fd(), b"many", &many).unwrap();
        let (n, fds) = recv_fds(b.as_fd(), &mut [0u8; 8]).unwrap();
        assert_eq!((n, fds.len()), (4, MAX_FDS));
        drop(fds);
        let after = open();
        if after != before {
            eprintln!("{} descriptors left open", after - before);
            std::process::exit(1);
        }
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}
