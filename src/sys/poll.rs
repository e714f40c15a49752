//! `poll(2)` over borrowed descriptors.

use super::errno::{Errno, check};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// The events of one descriptor (the bits of `pollfd.events` and `revents`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Events(libc::c_short);

impl Events {
    pub(crate) const NONE: Events = Events(0);
    pub(crate) const IN: Events = Events(libc::POLLIN);
    pub(crate) const OUT: Events = Events(libc::POLLOUT);
    pub(crate) const ERR: Events = Events(libc::POLLERR);
    pub(crate) const HUP: Events = Events(libc::POLLHUP);

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True if every bit of `other` is set.
    pub(crate) fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    pub(crate) fn intersects(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Events {
    type Output = Events;
    fn bitor(self, other: Events) -> Events {
        Events(self.0 | other.0)
    }
}

impl std::ops::BitOrAssign for Events {
    fn bitor_assign(&mut self, other: Events) {
        self.0 |= other.0;
    }
}

/// One descriptor to poll, borrowed for as long as the entry lives (a `struct pollfd`).
#[repr(transparent)]
pub(crate) struct PollFd<'fd> {
    raw: libc::pollfd,
    _fd: PhantomData<BorrowedFd<'fd>>,
}

impl<'fd> PollFd<'fd> {
    pub(crate) fn new(fd: BorrowedFd<'fd>, events: Events) -> PollFd<'fd> {
        PollFd {
            raw: libc::pollfd {
                fd: fd.as_raw_fd(),
                events: events.0,
                revents: 0,
            },
            _fd: PhantomData,
        }
    }

    /// What happened to the descriptor in the last [`poll`].
    pub(crate) fn revents(&self) -> Events {
        Events(self.raw.revents)
    }
}

/// Waits at most `timeout` (rounded down to milliseconds) until one of `fds` is ready. Returns
/// how many are; 0 on timeout.
pub(crate) fn poll(fds: &mut [PollFd<'_>], timeout: Duration) -> Result<usize, Errno> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `PollFd` is a transparent `pollfd`, so the slice is an array of `fds.len()`
    // pollfds, each naming a descriptor that its borrow keeps open; poll writes only `revents`.
    let n = check(unsafe { libc::poll(fds.as_mut_ptr().cast(), fds.len() as libc::nfds_t, ms) })?;
    Ok(n as usize)
}
