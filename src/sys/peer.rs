//! The credentials of a Unix socket's peer (`SO_PEERCRED`): who connected to a listener.

#![deny(clippy::undocumented_unsafe_blocks)]

use crate::error::{Error, Result};
use std::os::fd::{AsFd, AsRawFd};

/// The `(pid, uid)` of the process at the other end of a connected Unix socket, as the kernel
/// recorded them when it connected.
pub(crate) fn peer_credentials(socket: impl AsFd) -> Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a plain struct of that size
    // that lives across the call; the borrow keeps the descriptor open.
    let r = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(Error::last_os("getsockopt(SO_PEERCRED)"));
    }
    Ok((cred.pid as u32, cred.uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_of_a_socketpair_is_this_process() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (pid, uid) = peer_credentials(&a).unwrap();
        assert_eq!(pid, std::process::id());
        assert_eq!(uid, crate::sys::exec::getuid());
    }
}
