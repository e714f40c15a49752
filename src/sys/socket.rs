//! Unix sockets: a connected pair, plain sends and receives, and messages carrying file
//! descriptors (`SCM_RIGHTS`).

use super::errno::{Errno, check, check_size};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A connected pair of close-on-exec Unix sockets, stream or datagram.
pub(crate) fn socketpair(datagram: bool) -> Result<(OwnedFd, OwnedFd), Errno> {
    let kind = if datagram {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: socketpair writes two descriptors into the array it is given.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: two fresh descriptors from the kernel, which nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `send` with `flags` (`MSG_*`) on a descriptor the caller holds open.
pub(crate) fn send(fd: RawFd, buf: &[u8], flags: libc::c_int) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for reads of its length; the caller keeps `fd` open.
    check_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) })
}

/// `recv` with `flags` (`MSG_*`) on a descriptor the caller holds open.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length; the caller keeps `fd` open.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// Linux's limit of descriptors in one message (`SCM_MAX_FD` in `include/net/scm.h`).
const SCM_MAX_FD: usize = 253;

/// Room for one `SCM_RIGHTS` control message of [`SCM_MAX_FD`] descriptors, aligned for
/// `cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; CONTROL_LEN]);

/// One header and [`SCM_MAX_FD`] descriptors, with room for alignment padding.
const CONTROL_LEN: usize =
    std::mem::size_of::<libc::cmsghdr>() + SCM_MAX_FD * std::mem::size_of::<RawFd>() + 16;

/// Sends `payload` with `fds` attached as one message (`sendmsg` with `SCM_RIGHTS`,
/// `MSG_NOSIGNAL`), retrying when a signal interrupts the call.
pub(crate) fn send_with_fds(
    socket: BorrowedFd<'_>,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<usize, Errno> {
    if fds.len() > SCM_MAX_FD {
        return Err(Errno::EINVAL);
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let data_len = std::mem::size_of_val(raw.as_slice()) as libc::c_uint;
    let mut control = Control([0; CONTROL_LEN]);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no buffers); the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        msg.msg_control = control.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        // SAFETY: the control buffer is aligned and large enough for one header and
        // `raw.len()` descriptors (`CONTROL_LEN`), so CMSG_FIRSTHDR is non-null and the
        // header and its data lie inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as usize;
            std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(cmsg).cast(), raw.len());
        }
    }
    loop {
        // SAFETY: `msg` points at the iovec, the payload (only read) and the control buffer,
        // all alive for the call; the borrows keep the descriptors open.
        match check_size(unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) }) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Receives one message into `buf` with the descriptors attached to it, owned and close-on-exec
/// (`MSG_CMSG_CLOEXEC`), retrying when a signal interrupts the call. Returns the payload's
/// length (a longer datagram is cut to `buf`) and the descriptors in the order they were sent.
pub(crate) fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>), Errno> {
    // Room for the most descriptors Linux attaches to one message, so that the control data is
    // never cut: a cut message's descriptors would be installed but not listed.
    let mut control = Control([0; CONTROL_LEN]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    let n = loop {
        // SAFETY: `msg` points at the iovec over `buf` and at the control buffer, both valid
        // for writes of their lengths for the call.
        let r = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match check_size(r) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(n) => break n,
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `msg`'s control data with complete headers (the buffer is
    // large enough for any message, see above); the CMSG macros walk only inside it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len as usize).saturating_sub(header)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    // The kernel installed this descriptor in this process for this message;
                    // nothing else knows it, so it is ours to own (and close).
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, fds))
}
