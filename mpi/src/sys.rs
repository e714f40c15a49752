//! The few raw system calls the relay needs (libc), each in a small safe function.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// What [`poll`] watches on one descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// The descriptor.
    pub fd: RawFd,
    /// Wake when it can be read (or is closed).
    pub read: bool,
    /// Wake when it can be written.
    pub write: bool,
}

impl Watch {
    /// Watches `fd` for reading, and for writing when `write`.
    pub fn new(fd: &impl AsRawFd, write: bool) -> Watch {
        Watch {
            fd: fd.as_raw_fd(),
            read: true,
            write,
        }
    }
}

/// Waits until one of `watches` is ready or `timeout` passes (`ppoll`, so sub-millisecond
/// timeouts work); returns whether each one is ready. `EINTR` counts as a timeout.
pub fn poll(watches: &[Watch], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut fds: Vec<libc::pollfd> = watches
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd,
            events: (if w.read { libc::POLLIN } else { 0 })
                | (if w.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let spec = libc::timespec {
        tv_sec: timeout.as_secs().min(3600) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that lives across the call;
    // `spec` is a valid timespec; a null sigmask means "keep the current one".
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &spec,
            std::ptr::null(),
        )
    };
    if n < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; watches.len()]);
        }
        return Err(error);
    }
    Ok(fds.iter().map(|f| f.revents != 0).collect())
}

/// Asks the kernel to SIGKILL this process when its parent (thread) dies.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to `pid`.
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill takes plain integers and touches no memory.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `fd` is a TCP socket (IPv4 or IPv6): two `getsockopt`s, no /proc/net/tcp (whose
/// read walks the kernel's whole connection table, milliseconds on a busy host).
pub fn is_tcp_socket(fd: RawFd) -> bool {
    let option = |name: libc::c_int| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are valid for writes of a c_int and a socklen_t; a
        // descriptor that is not a socket gives ENOTSOCK.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(value)
    };
    matches!(
        option(libc::SO_DOMAIN),
        Some(libc::AF_INET | libc::AF_INET6)
    ) && option(libc::SO_PROTOCOL) == Some(libc::IPPROTO_TCP)
}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The current parent pid.
pub fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// The pieces of work that run in a child between fork and exec: only async-signal-safe calls.
pub mod child {
    use super::*;

    /// In the child: die with the parent (whose pid was `parent`), put `fd` at
    /// [`crate::WORKER_FD`] without close-on-exec, and every higher fd close-on-exec.
    pub fn prepare(fd: RawFd, parent: u32) -> io::Result<()> {
        // SAFETY: prctl, getppid, dup2, fcntl, getrlimit and the close_range syscall are
        // async-signal-safe; they take integers or a pointer to a local rlimit.
        unsafe {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other("the rank died while its worker started"));
            }
            let target = crate::WORKER_FD;
            let rc = if fd == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            // Nothing else of the rank (Open MPI's TCP listeners and sockets, which are not
            // close-on-exec) reaches the worker: every fd above WORKER_FD closes at exec.
            // close_range(CLOSE_RANGE_CLOEXEC) needs Linux 5.11; older kernels get the loop.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            let first = (target + 1) as libc::c_uint;
            if libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                    limit.rlim_cur.min(1 << 16) as libc::c_int
                } else {
                    1024
                };
                for fd in (target + 1)..top {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
        }
        Ok(())
    }
}
