//! The `mpirun` process seen from the front: what the manager's side and the relay share
//! about the job (whether it is over, and why), the tail of mpirun's stderr kept for error
//! messages, and ending it.

use crate::runtime;
use crate::sys::{self, Io, Signal};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

/// The most of mpirun's stderr kept for error messages.
const TAIL: usize = 4096;

/// What the manager's side and the relay share: whether the job is over, and why.
#[derive(Default)]
pub(crate) struct JobState {
    pub(super) dead: Mutex<Option<String>>,
}

impl JobState {
    pub(crate) fn dead(&self) -> Option<String> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads what mpirun wrote to its stderr, keeping the last [`TAIL`] bytes; closes it at its end.
pub(super) fn read_tail(stderr: &mut Option<OwnedFd>, tail: &mut Vec<u8>) {
    let Some(fd) = stderr else {
        return;
    };
    let mut buf = [0u8; 4096];
    loop {
        match sys::read_nb(fd.as_fd(), &mut buf) {
            Ok(Io::Done(n)) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > TAIL {
                    tail.drain(..tail.len() - TAIL);
                }
            }
            Ok(Io::WouldBlock) => return,
            _ => {
                *stderr = None;
                return;
            }
        }
    }
}

/// Ends mpirun: SIGTERM (it stops its job), SIGKILL a second later.
pub(super) fn end_job(pid: u32) {
    let _ = runtime::signal(pid, Signal::SIGTERM);
    let soon = sys::Deadline::after(Duration::from_secs(1));
    if !matches!(runtime::wait_exit(pid, None, soon, None), Ok(Some(_))) {
        let _ = runtime::signal(pid, Signal::SIGKILL);
        let _ = runtime::wait_exit(
            pid,
            None,
            sys::Deadline::after(Duration::from_secs(2)),
            None,
        );
    }
}

/// mpirun's exit status and the end of its stderr, for a message.
pub(super) fn describe_exit(pid: u32, tail: &[u8]) -> String {
    let status = match runtime::poll_exit(pid) {
        Ok(Some(code)) if code < 0 => format!(" (mpirun was killed by signal {})", -code),
        Ok(Some(code)) => format!(" (mpirun exited with code {code})"),
        _ => String::new(),
    };
    let text = String::from_utf8_lossy(tail);
    let text = text.trim();
    if text.is_empty() {
        status
    } else {
        format!("{status}; mpirun's stderr ends:\n{text}")
    }
}

/// Why the job of `mpirun` `pid` ended, for every later call of its pool: mpirun's status
/// and the `tail` of its stderr, and whether an interrupt came since `epoch` (the interrupt
/// count when it started: Ctrl-C in a terminal reaches mpirun too, which then ends the job).
pub(super) fn why_ended(pid: u32, tail: &[u8], epoch: u64) -> String {
    let after = if crate::interrupt::raised_since(epoch) {
        " after an interrupt"
    } else {
        ""
    };
    format!(
        "the MPI job ended{after}{}; make a new pool",
        describe_exit(pid, tail)
    )
}
