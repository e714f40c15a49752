//! Signals: numbers and names, `kill`, the SIGINT action, and SIGPIPE held off around a write.

use super::errno::{Errno, check};

/// A signal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Signal(pub(crate) libc::c_int);

impl Signal {
    pub(crate) const SIGKILL: Signal = Signal(libc::SIGKILL);
    pub(crate) const SIGTERM: Signal = Signal(libc::SIGTERM);

    /// The name of a signal a process commonly dies of (`SIGTERM`), as Python's `Process` repr
    /// shows it; `None` for the others.
    pub(crate) fn name(number: i32) -> Option<&'static str> {
        Some(match number {
            libc::SIGTERM => "SIGTERM",
            libc::SIGKILL => "SIGKILL",
            libc::SIGINT => "SIGINT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            _ => return None,
        })
    }
}

/// Sends `signal` to `pid`; with `None`, only checks that the process exists (signal 0).
pub(crate) fn kill(pid: u32, signal: Option<Signal>) -> Result<(), Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::ESRCH)?;
    // SAFETY: kill takes two integers; a pid that is not ours only gives an error.
    check(unsafe { libc::kill(pid, signal.map_or(0, |s| s.0)) }).map(drop)
}

/// What a signal does.
pub(crate) enum Action {
    /// The default action.
    Default,
    /// Call this handler, which must be async-signal-safe.
    Handler(extern "C" fn(libc::c_int)),
}

/// Sets the action of SIGINT (the only signal whose action the library sets).
pub(crate) fn set_sigint_action(action: Action) -> Result<(), Errno> {
    let handler = match action {
        Action::Default => libc::SIG_DFL,
        Action::Handler(f) => f as libc::sighandler_t,
    };
    // SAFETY: an all-zero `sigaction` is valid (no flags, empty mask); only the handler is set.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    // SAFETY: installs a valid action: the default one, or a plain function of this code that
    // the caller vouches is async-signal-safe (the library's only handler, `interrupt`'s, does
    // one atomic increment); the old action is not asked for.
    check(unsafe { libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut()) }).map(drop)
}

/// True if SIGPIPE is ignored in this process (then a write to a closed pipe just fails with EPIPE).
pub(crate) fn sigpipe_ignored() -> bool {
    // SAFETY: querying the current action only (a null new action); a zeroed `sigaction` is a
    // valid out buffer.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// A signal set holding only SIGPIPE.
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset adds a valid signal.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// Runs `write` with SIGPIPE blocked on this thread. If `closed(result)` says the peer was gone
/// and SIGPIPE was not blocked before, the SIGPIPE the write raised is taken off the thread, so
/// the process never dies of it.
pub(crate) fn with_sigpipe_blocked<T>(write: impl FnOnce() -> T, closed: impl Fn(&T) -> bool) -> T {
    let set = sigpipe_set();
    // SAFETY: an all-zero sigset is a valid out buffer for the old mask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid set pointers; only this thread's mask changes.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    let r = write();
    // SAFETY: `old` was filled by pthread_sigmask above.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
    if closed(&r) && !was_blocked {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid signal set and timeout, a null info pointer (allowed); it only takes a
        // pending SIGPIPE off this thread.
        unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
    }
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}
