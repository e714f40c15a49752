//! Process-wide state: who this process is, the children it created (reaping, waiting and
//! signalling them), and, in [`fork`], how they are forked (with the fork lock order).
//!
//! This module never names the modules above it: what a new child must reset is registered with
//! [`on_child_start`], and a wait that an interrupt may end takes the check as a closure.

#![deny(unsafe_code)]

mod fork;
mod spawned;

pub(crate) use fork::{Spawn, exit_child, spawn};
pub(crate) use spawned::become_spawned_worker;

use crate::error::Result;
use crate::sys;
use crate::sys::Signal;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// What created a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A [`crate::Process`].
    Process,
    /// A pool worker.
    PoolWorker,
    /// A program that runs a cluster pool's workers (`mpirun`).
    Launcher,
}

/// A child of this process.
pub(crate) struct Child {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) kind: Kind,
    /// Set once reaped.
    pub(crate) exitcode: Option<i32>,
    /// False once the owning object is gone: the entry is dropped when reaped.
    pub(crate) owned: bool,
}

/// Who this process is.
pub(crate) struct Context {
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) counter: u32,
    pub(crate) daemon: bool,
    pub(crate) parent: Option<(String, u32)>,
}

pub(crate) struct State {
    pub(crate) ctx: Context,
    pub(crate) children: BTreeMap<u32, Child>,
    /// The thread that forks for callers on short-lived threads, with the pid it belongs to.
    forker: Option<(u32, mpsc::Sender<fork::ForkJob>)>,
    /// The panic hook and the atexit handler are installed (before the first fork).
    hooks_installed: bool,
    /// Run first thing in every new child (see [`on_child_start`]).
    child_start: Vec<fn()>,
}

static STATE: Mutex<State> = Mutex::new(State {
    ctx: Context {
        name: String::new(),
        identity: Vec::new(),
        counter: 0,
        daemon: false,
        parent: None,
    },
    children: BTreeMap::new(),
    forker: None,
    hooks_installed: false,
    child_start: Vec::new(),
});

/// Locks the process-wide state (a panic elsewhere never makes it unusable).
pub(crate) fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    pub(crate) fn name(&self) -> String {
        if self.name.is_empty() {
            "MainProcess".to_string()
        } else {
            self.name.clone()
        }
    }
}

/// Registers `hook` to run first thing in every child forked from now on (once, however often it
/// is registered), while the child still holds the fork's locks: it may only reset
/// process-local state (atomics, signal actions).
pub(crate) fn on_child_start(hook: fn()) {
    let mut st = state();
    if !st.child_start.contains(&hook) {
        st.child_start.push(hook);
    }
}

/// Allocates the next default name, `{prefix}-N` (`Process-3:1` in a grandchild), and its identity.
pub(crate) fn next_name(prefix: &str) -> (String, Vec<u32>) {
    let mut st = state();
    st.ctx.counter += 1;
    let mut identity = st.ctx.identity.clone();
    identity.push(st.ctx.counter);
    let id: Vec<String> = identity.iter().map(|n| n.to_string()).collect();
    (format!("{prefix}-{}", id.join(":")), identity)
}

/// Reaps `pid` if it has exited and returns its exit code (kept until the owner forgets it).
pub(crate) fn poll_exit(pid: u32) -> Result<Option<i32>> {
    let mut st = state();
    poll_locked(&mut st, pid)
}

fn poll_locked(st: &mut State, pid: u32) -> Result<Option<i32>> {
    if let Some(c) = st.children.get(&pid)
        && let Some(code) = c.exitcode
    {
        return Ok(Some(code));
    }
    let code = sys::try_waitpid(pid)?;
    if let Some(code) = code {
        if st
            .children
            .get(&pid)
            .is_some_and(|c| c.kind == Kind::Process)
        {
            crate::timeline::processes::ended(pid, code);
        }
        match st.children.get_mut(&pid) {
            Some(c) if c.owned => c.exitcode = Some(code),
            Some(_) => {
                st.children.remove(&pid);
            }
            None => {}
        }
    }
    Ok(code)
}

/// Reaps every child of ours that has exited, into its record (where `exitcode` and `join`
/// find its code; an entry whose owner is gone is dropped). Only our children, by pid: the
/// status of a child the program spawned by other means (`std::process::Command`) stays for
/// its own `wait`. Costs one system call when no child has exited; while a child that is not
/// ours is waitable, one per running child of ours.
fn reap_finished(st: &mut State) {
    loop {
        // Which child, if any, could be reaped now, without reaping it (WNOWAIT leaves it
        // waitable).
        let pid = match sys::process::exited_child() {
            Ok(Some(pid)) => pid,
            // No child (ECHILD), none has exited, or interrupted.
            _ => return,
        };
        match st.children.get(&pid) {
            Some(c) if c.exitcode.is_none() => {
                if !matches!(poll_locked(st, pid), Ok(Some(_))) {
                    break; // cannot reap it (it is not ours to wait for after all): look at each
                }
            }
            // Not ours (or, impossibly, already reaped): it hides the others, look at each.
            _ => break,
        }
    }
    let pending: Vec<u32> = st
        .children
        .iter()
        .filter(|(_, c)| c.exitcode.is_none())
        .map(|(&pid, _)| pid)
        .collect();
    for pid in pending {
        let _ = poll_locked(st, pid);
    }
}

/// The pids of this process's live pool workers (every pool's).
pub(crate) fn pool_worker_pids() -> Vec<u32> {
    state()
        .children
        .iter()
        .filter(|(_, c)| matches!(c.kind, Kind::PoolWorker) && c.exitcode.is_none())
        .map(|(&pid, _)| pid)
        .collect()
}

/// Waits until `pid` exits (`Ok(Some(code))`), the deadline passes (`Ok(None)`) or
/// `interrupted` (checked at least every [`sys::SLICE`]) returns an error.
pub(crate) fn wait_exit(
    pid: u32,
    pidfd: Option<&OwnedFd>,
    deadline: sys::Deadline,
    interrupted: Option<&dyn Fn() -> Result<()>>,
) -> Result<Option<i32>> {
    // A child that is about to exit usually does so within a few dozen microseconds: catch that
    // without a sleep and a wake-up.
    let mut spun = Ok(None);
    if deadline.slice().is_some() {
        sys::Spin::new(Duration::from_micros(100))
            .pause(0)
            .yield_every(1)
            .until(|| {
                spun = poll_exit(pid);
                !matches!(spun, Ok(None))
            });
    }
    if let Some(code) = spun? {
        return Ok(Some(code));
    }
    if let Some(code) = poll_exit(pid)? {
        return Ok(Some(code));
    }
    let mut backoff = Duration::from_micros(50);
    deadline.wait(
        || interrupted.map_or(Ok(()), |check| check()),
        |slice| {
            match pidfd {
                Some(fd) => {
                    sys::poll_fd(fd.as_fd(), sys::Events::IN, slice)?;
                }
                None => {
                    std::thread::sleep(backoff.min(slice));
                    backoff = (backoff * 2).min(Duration::from_millis(5));
                }
            }
            poll_exit(pid)
        },
    )
}

/// Sends `sig` to a child that has not been reaped (never to a recycled pid).
pub(crate) fn signal(pid: u32, sig: Signal) -> Result<()> {
    let mut st = state();
    if poll_locked(&mut st, pid)?.is_none() {
        sys::send_signal(pid, sig)?;
    }
    Ok(())
}

/// The owner of `pid` is gone: drop its entry once it is reaped.
pub(crate) fn disown(pid: u32) {
    let mut st = state();
    // A child that has exited is reaped now (the others at the next `start`).
    let _ = poll_locked(&mut st, pid);
    if let Some(c) = st.children.get_mut(&pid) {
        if c.exitcode.is_some() {
            st.children.remove(&pid);
        } else {
            c.owned = false;
        }
    }
}

/// Live children `(pid, name, daemon)`, after reaping the finished ones.
pub(crate) fn live_children() -> Vec<(u32, String, bool)> {
    let mut st = state();
    let pids: Vec<u32> = st.children.keys().copied().collect();
    let mut live = Vec::new();
    for pid in pids {
        if let Ok(None) = poll_locked(&mut st, pid)
            && let Some(c) = st.children.get(&pid)
        {
            live.push((pid, c.name.clone(), c.daemon));
        }
    }
    live
}

/// Terminates every live child: SIGTERM, then SIGKILL for those alive 100 ms later; reaps them all.
pub(crate) fn terminate_all_children() {
    let pids: Vec<u32> = live_children().into_iter().map(|(p, _, _)| p).collect();
    for &pid in &pids {
        let _ = signal(pid, Signal::SIGTERM);
    }
    let grace = sys::Deadline::after(Duration::from_millis(100));
    for &pid in &pids {
        let _ = wait_exit(pid, None, grace, None);
    }
    for &pid in &pids {
        let _ = signal(pid, Signal::SIGKILL);
    }
    let hard = sys::Deadline::after(Duration::from_secs(2));
    for &pid in &pids {
        let _ = wait_exit(pid, None, hard, None);
    }
}
