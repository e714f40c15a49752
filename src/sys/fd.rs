//! Calls on file descriptors: pipes, reads and writes, flags, sizes, the standard descriptors
//! of a new child, and named POSIX shared-memory segments. Descriptors are `OwnedFd` (closed
//! when dropped) or borrowed; errors are [`Errno`].

use super::errno::{Errno, check, check_size};
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Wraps a descriptor a call has just created.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor the kernel has just returned to this thread, which
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A close-on-exec pipe `(read end, write end)`, non-blocking if asked.
pub(crate) fn pipe2(nonblocking: bool) -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [-1 as libc::c_int; 2];
    let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: `buf` is valid for writes of its length; the borrow keeps `fd` open.
    check_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)` of `buf`.
pub(crate) fn write(fd: impl AsFd, buf: &[u8]) -> Result<usize, Errno> {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: `buf` is valid for reads of its length; the borrow keeps `fd` open.
    check_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: impl AsFd, on: bool) -> Result<(), Errno> {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: F_GETFL reads the flags of a descriptor the borrow keeps open.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL sets file status flags only.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

/// Sets the size of a file.
pub(crate) fn ftruncate(fd: impl AsFd, len: libc::off_t) -> Result<(), Errno> {
    // SAFETY: ftruncate takes a descriptor the borrow keeps open and a length.
    check(unsafe { libc::ftruncate(fd.as_fd().as_raw_fd(), len) }).map(drop)
}

/// The size of an open file.
pub(crate) fn file_size(fd: impl AsFd) -> Result<u64, Errno> {
    // SAFETY: an all-zero `stat` is a valid out buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills the buffer it is given, for a descriptor the borrow keeps open.
    check(unsafe { libc::fstat(fd.as_fd().as_raw_fd(), &mut st) })?;
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

/// Frees the pages of a file wholly inside `[offset, offset+len)` (they read back as zeros),
/// keeping its size (`fallocate` with `FALLOC_FL_PUNCH_HOLE`).
pub(crate) fn punch_hole(fd: impl AsFd, offset: u64, len: u64) -> Result<(), Errno> {
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    let (offset, len) = (offset as libc::off_t, len as libc::off_t);
    // SAFETY: fallocate takes a descriptor the borrow keeps open and three integers.
    check(unsafe { libc::fallocate(fd.as_fd().as_raw_fd(), mode, offset, len) }).map(drop)
}

/// A sparse memory file (`memfd_create`), close-on-exec.
pub(crate) fn memfd(name: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: a NUL-terminated name and a flag; returns a new descriptor or -1.
    check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) }).map(owned)
}

/// Opens the named POSIX shared-memory segment `name` (`/…`) read-write and close-on-exec;
/// `create` makes it, failing with `EEXIST` if it exists (`O_CREAT | O_EXCL`), mode 0600.
pub(crate) fn shm_open(name: &CStr, create: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if create {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    // SAFETY: a NUL-terminated name, flags and a mode; returns a new descriptor or -1.
    check(unsafe { libc::shm_open(name.as_ptr(), flags, 0o600 as libc::mode_t) }).map(owned)
}

/// Removes the named segment `name` (mappings of it stay valid).
pub(crate) fn shm_unlink(name: &CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated name.
    check(unsafe { libc::shm_unlink(name.as_ptr()) }).map(drop)
}

/// The standard descriptors a new child can point elsewhere.
#[derive(Clone, Copy)]
pub(crate) enum Std {
    In = 0,
    Out = 1,
    Err = 2,
}

/// Makes the standard descriptor `which` a copy of `fd` (`dup2`).
pub(crate) fn redirect(which: Std, fd: impl AsFd) -> Result<(), Errno> {
    // SAFETY: dup2 onto 0, 1 or 2, which the process owns as a whole (std's handles name them by
    // number and never close them); the source is kept open by its borrow.
    check(unsafe { libc::dup2(fd.as_fd().as_raw_fd(), which as RawFd) }).map(drop)
}

/// Points stdin at `/dev/null` (what a new child's stdin is, as in Python).
pub(crate) fn stdin_from_dev_null() -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path and flags; returns a new descriptor or -1.
    let null =
        check(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })
            .map(owned)?;
    redirect(Std::In, &null)
}

/// Closes the descriptor `fd` inherited from the parent, which nothing in this (child) process
/// owns or uses: a just-forked child's copy of one of the parent's descriptors.
pub(crate) fn close_inherited(fd: RawFd) {
    // SAFETY: the caller names a number that is a copy of a parent's descriptor in a freshly
    // forked child, where no object owns it; closing it cannot close anything else's.
    unsafe { libc::close(fd) };
}
