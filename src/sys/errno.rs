//! The error number of a failed system call, as the calls of this layer return it.

use crate::error::Error;

/// An `errno` value. The library's own small type instead of a dependency: every dependency of
/// the library is analysed by rust-analyzer at each notebook's first cell (`docs/performance.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) i32);

impl Errno {
    pub(crate) const EINTR: Errno = Errno(libc::EINTR);
    pub(crate) const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub(crate) const EPIPE: Errno = Errno(libc::EPIPE);
    pub(crate) const ECONNRESET: Errno = Errno(libc::ECONNRESET);
    pub(crate) const ESRCH: Errno = Errno(libc::ESRCH);
    pub(crate) const EINVAL: Errno = Errno(libc::EINVAL);
    pub(crate) const EEXIST: Errno = Errno(libc::EEXIST);
    pub(crate) const ENOENT: Errno = Errno(libc::ENOENT);
    pub(crate) const EDEADLK: Errno = Errno(libc::EDEADLK);
    pub(crate) const EPERM: Errno = Errno(libc::EPERM);

    /// The calling thread's `errno` now.
    pub(crate) fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The library's error for this errno from `call`.
    pub(crate) fn error(self, call: &'static str) -> Error {
        Error::os(call, self.0)
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// A system call's `int` result: `-1` means `errno`.
pub(crate) fn check(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r == -1 { Err(Errno::last()) } else { Ok(r) }
}

/// A system call's `ssize_t` result: negative means `errno`.
pub(crate) fn check_size(r: isize) -> Result<usize, Errno> {
    usize::try_from(r).map_err(|_| Errno::last())
}
