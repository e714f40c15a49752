//! Passing file descriptors over an `AF_UNIX` socket (`SCM_RIGHTS`), the way a child hands its
//! output pipes to the host (see [`crate::host`]); the kernel uses the same two functions. The
//! control-message code is written once, in `sys::socket`.

use crate::sys::socket;
use std::os::fd::{BorrowedFd, OwnedFd};

/// The most descriptors [`recv_fds`] returns from one message; it closes the rest of a message
/// that carries more.
///
/// ```
/// assert_eq!(multiprocessing::host::MAX_FDS, 16);
/// ```
pub const MAX_FDS: usize = 16;

/// Sends `payload` with `fds` attached (`SCM_RIGHTS`) as one message on the connected `socket`,
/// retrying when a signal interrupts the call. The receiver gets its own copies of the
/// descriptors; the caller's stay open. `MSG_NOSIGNAL`: a closed peer is an `EPIPE` error, not a
/// `SIGPIPE`.
///
/// ```
/// use multiprocessing::host::{recv_fds, send_fds};
/// use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
/// use std::io::{Read, Write};
/// use std::os::fd::AsFd;
///
/// let (a, b) = socketpair(AddressFamily::Unix, SockType::Datagram, None, SockFlag::SOCK_CLOEXEC)?;
/// let (read, write) = nix::unistd::pipe()?;
/// send_fds(a.as_fd(), b"hello", &[read.as_fd()])?;
/// drop(read);
///
/// let mut buf = [0u8; 16];
/// let (n, fds) = recv_fds(b.as_fd(), &mut buf)?;
/// assert_eq!(&buf[..n], b"hello");
/// std::fs::File::from(write).write_all(b"through the pipe")?;
/// let mut text = String::new();
/// std::fs::File::from(fds.into_iter().next().unwrap()).read_to_string(&mut text)?;
/// assert_eq!(text, "through the pipe");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn send_fds(
    socket: BorrowedFd<'_>,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    socket::send_with_fds(socket, payload, fds)?;
    Ok(())
}

/// Receives one message from `socket` into `buf` with the descriptors attached to it (at most
/// [`MAX_FDS`]), owned and close-on-exec (`MSG_CMSG_CLOEXEC`), retrying when a signal
/// interrupts the call. Returns the payload's length (a longer datagram is cut to `buf`) and the
/// descriptors in the order they were sent. It blocks unless the socket is non-blocking; then
/// "nothing pending" is an error of kind [`std::io::ErrorKind::WouldBlock`].
///
/// See [`send_fds`] for an example.
pub fn recv_fds(socket: BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let (n, mut fds) = socket::recv_with_fds(socket, buf)?;
    fds.truncate(MAX_FDS); // the rest are closed here
    Ok((n, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    use std::os::fd::AsFd;

    fn pair(kind: SockType, flags: SockFlag) -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            kind,
            None,
            flags | SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    #[test]
    fn nothing_pending_on_a_non_blocking_socket_would_block() {
        let (a, _b) = pair(SockType::Datagram, SockFlag::SOCK_NONBLOCK);
        let err = recv_fds(a.as_fd(), &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }

    #[test]
    fn descriptors_arrive_in_order_close_on_exec() {
        let (a, b) = pair(SockType::Datagram, SockFlag::empty());
        let (r1, _w1) = nix::unistd::pipe().unwrap();
        let (r2, _w2) = nix::unistd::pipe().unwrap();
        send_fds(a.as_fd(), b"pid", &[r1.as_fd(), r2.as_fd()]).unwrap();
        let mut buf = [0u8; 2];
        let (n, fds) = recv_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!(
            (n, &buf),
            (2, b"pi"),
            "a longer datagram is cut to the buffer"
        );
        assert_eq!(fds.len(), 2);
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        use nix::sys::stat::fstat;
        for (got, sent) in fds.iter().zip([&r1, &r2]) {
            let flags = FdFlag::from_bits_truncate(fcntl(got, FcntlArg::F_GETFD).unwrap());
            assert!(flags.contains(FdFlag::FD_CLOEXEC));
            assert_eq!(fstat(got).unwrap().st_ino, fstat(sent).unwrap().st_ino);
        }
    }
}
