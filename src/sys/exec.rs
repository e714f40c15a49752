//! What starting a fresh process by `exec` needs: moving descriptors to known numbers, `execve`
//! with an argument and environment list prepared before the fork, and the few calls a process
//! started this way makes on itself before `main` (the user id, SIGPIPE, the environment).

#![deny(clippy::undocumented_unsafe_blocks)]

use crate::error::{Error, Result};
use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStringExt;

/// An `execve` prepared before a fork: the child then only calls [`Exec::exec`], which
/// allocates nothing.
pub(crate) struct Exec {
    path: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into the CStrings this struct owns (heap buffers that do not
// move when the struct does); nothing else refers to them.
unsafe impl Send for Exec {}

fn cstring(s: OsString) -> Result<CString> {
    CString::new(s.into_vec())
        .map_err(|_| Error::InvalidArgument("an argument or variable contains a NUL byte".into()))
}

impl Exec {
    /// Prepares `execve(path, args, env)`; `env` entries are `NAME=value`.
    pub(crate) fn new(path: &str, args: Vec<OsString>, env: Vec<OsString>) -> Result<Exec> {
        let path = cstring(path.into())?;
        let args = args.into_iter().map(cstring).collect::<Result<Vec<_>>>()?;
        let env = env.into_iter().map(cstring).collect::<Result<Vec<_>>>()?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        Ok(Exec {
            path,
            _args: args,
            _env: env,
            argv,
            envp,
        })
    }

    /// Replaces this process's program. Returns only on failure, with the errno.
    pub(crate) fn exec(&self) -> i32 {
        // SAFETY: path, argv and envp are NUL-terminated strings and null-terminated arrays
        // owned by `self`, alive during the call.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }
}

/// Duplicates `fd` to a number at least `min`, close-on-exec. In a forked child, before the
/// descriptors are moved to their final numbers (so none is overwritten before it is moved).
pub(crate) fn dup_above(fd: RawFd, min: RawFd) -> Result<RawFd> {
    // SAFETY: F_DUPFD_CLOEXEC only creates a new descriptor (the caller owns it from now on:
    // it is either moved by `move_to` or vanishes at exec).
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if r < 0 {
        return Err(Error::last_os("fcntl(F_DUPFD_CLOEXEC)"));
    }
    Ok(r)
}

/// Makes `fd` also descriptor `target`, kept across exec (`dup2`, which leaves the new number
/// without close-on-exec). What was at `target` is closed.
pub(crate) fn move_to(fd: RawFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 only changes the descriptor table; the caller (a child about to exec) owns
    // `target`'s number: whatever was there is not used by anything in the child.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(Error::last_os("dup2"));
    }
    Ok(())
}

/// Closes every descriptor numbered `first` or above (`close_range`), in a forked child about
/// to exec: what the parent had open without close-on-exec does not reach the new program.
pub(crate) fn close_from(first: RawFd) {
    // SAFETY: close_range only changes the descriptor table; the caller is a child between
    // fork and exec, whose descriptors from `first` up belong to no object it will use.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
}

/// Sets close-on-exec on a descriptor this process owns.
pub(crate) fn set_cloexec(fd: RawFd) -> Result<()> {
    // SAFETY: F_SETFD on a descriptor number only changes its flag.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(Error::last_os("fcntl(F_SETFD)"));
    }
    Ok(())
}

/// The real user id.
pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Ignores SIGPIPE, as Rust's `main` does before it runs (a process that runs before `main`
/// must do it itself): a write to a closed pipe fails with EPIPE instead of killing it.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: SIG_IGN is not a handler function; setting it has no other precondition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Removes a variable from the environment, before `main` (from a library constructor).
pub(crate) fn remove_env_before_main(name: &std::ffi::CStr) {
    // SAFETY: called only from the library's load-time constructor of a process started by
    // the library itself, before `main`: no other thread of the program runs yet, so nothing
    // reads the environment concurrently.
    unsafe { libc::unsetenv(name.as_ptr()) };
}
