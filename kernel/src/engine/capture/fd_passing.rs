//! Receiving a process's pipes: one registration message on the datagram socket, its payload
//! (the writer's pid, then its name) and the descriptors it carries (SCM_RIGHTS).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Takes one pending registration without waiting: its payload and its descriptors, which the
/// caller must own. `None` when none is pending.
pub(super) fn receive(socket: &OwnedFd) -> Option<([u8; 512], Vec<RawFd>)> {
    let mut payload = [0u8; 512];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: recvmsg into our buffers; fds received are ours to own.
    let fds = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(
            socket.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        );
        if n < 0 {
            return None;
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    fds.push(*libc::CMSG_DATA(cmsg).cast::<RawFd>().add(i));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        fds
    };
    Some((payload, fds))
}
