//! The process-level system calls `nix` does not offer (or offers only for descriptors it can
//! borrow safely), each with the reason it is sound. Everything above this module reaches the
//! system through `nix` or through these functions.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor this process inherited under a number it was told (an
/// environment variable), if that number is an open descriptor. The caller keeps it for the
/// rest of the process's life (a static): nothing else in the process claims it.
pub(crate) fn adopt_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table (a closed number gives EBADF); an open
    // descriptor named to us by our host is ours to own, and nothing else in this process
    // wraps it.
    unsafe { (fd >= 0 && libc::fcntl(fd, libc::F_GETFD) >= 0).then(|| OwnedFd::from_raw_fd(fd)) }
}
