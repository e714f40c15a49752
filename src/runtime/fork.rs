//! Forking: [`spawn`] starts a child running a closure, on the calling thread or on the
//! long-lived forker thread; [`fork_here`] is the library's one `fork`.
//!
//! # The fork lock order
//!
//! Every lock a child might need is held across `fork`, so that a child never inherits a lock
//! taken by a thread that does not exist in it. They are taken in this order, and nothing takes
//! them in another:
//!
//! 1. the panic hooks' gate ([`crate::panic::block_hooks`]): no panic hook runs during a fork
//!    (a hook in a child takes the gate, then the state, for the child's name);
//! 2. the runtime state ([`state`]);
//! 3. std's stdout lock, then its stderr lock (flushed, so a child does not write the parent's
//!    buffered output again, and a `fork` record follows what the parent wrote before it).
//!
//! The locks of the shared-memory primitives are not process-local and are not involved.

use super::{Child, Context, Kind, reap_finished, signal, state, wait_exit};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::Signal;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::mpsc;

/// A fork to run on the forker thread, and where its pid goes.
pub(super) type ForkJob = (
    Box<dyn FnOnce() -> Result<u32> + Send>,
    mpsc::Sender<Result<u32>>,
);

/// What to start.
pub(crate) struct Spawn {
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) daemon: bool,
    pub(crate) kind: Kind,
    /// Fork on this thread even if it is not the main thread (the children die with it).
    pub(crate) bind_to_thread: bool,
}

/// Forks a child that runs `body` and exits with the code it returns. Registers it as our child.
pub(crate) fn spawn(
    req: Spawn,
    body: Box<dyn FnOnce() -> i32 + Send>,
) -> Result<(u32, Option<OwnedFd>)> {
    {
        let mut st = state();
        if st.ctx.daemon {
            return Err(Error::DaemonicChildren);
        }
        // As Python's `start` does (`_cleanup`): no finished child is left a zombie.
        reap_finished(&mut st);
    }
    let pid = if req.bind_to_thread || sys::on_main_thread() {
        fork_here(req, body)?
    } else {
        fork_on_forker(Box::new(move || fork_here(req, body)))?
    };
    Ok((pid, sys::pidfd_open(pid)))
}

/// Runs a fork job on the long-lived forker thread, so that `PR_SET_PDEATHSIG` follows the process,
/// not a short-lived caller thread.
fn fork_on_forker(job: Box<dyn FnOnce() -> Result<u32> + Send>) -> Result<u32> {
    let me = sys::getpid();
    let sender = {
        let mut st = state();
        match &st.forker {
            Some((pid, tx)) if *pid == me => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel::<ForkJob>();
                std::thread::Builder::new()
                    .name("multiprocessing-forker".into())
                    .spawn(move || {
                        for (job, reply) in rx {
                            let _ = reply.send(job());
                        }
                    })
                    .map_err(|e| Error::Os {
                        call: "spawn forker thread",
                        source: e,
                    })?;
                st.forker = Some((me, tx.clone()));
                tx
            }
        }
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .send((job, reply_tx))
        .map_err(|_| Error::Broken("the forker thread is gone".into()))?;
    reply_rx
        .recv()
        .map_err(|_| Error::Broken("the forker thread is gone".into()))?
}

/// Forks on the calling thread, holding the fork's locks in their order (see the module docs).
fn fork_here(req: Spawn, body: Box<dyn FnOnce() -> i32 + Send>) -> Result<u32> {
    let gate = crate::panic::block_hooks();
    let mut st = state();
    if !st.hooks_installed {
        sys::process::at_exit(run_atexit);
        crate::panic::install_reporter(|| state().ctx.name());
        st.hooks_installed = true;
    }
    let output_socket = crate::host::output_socket();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let _ = out.flush();
    let _ = err.flush();
    let parent_pid = sys::getpid();
    // SAFETY: the library's one fork. The child only runs code that is safe after a fork: it
    // holds every process-local lock it uses (taken above, in the documented order), and the
    // panic hook it may run was installed before (it never calls `set_hook`).
    #[allow(unsafe_code)]
    let forked = unsafe { sys::process::fork() };
    let pid = match forked {
        Err(e) => return Err(e.error("fork")),
        Ok(sys::process::Forked::Parent(child)) => child,
        Ok(sys::process::Forked::Child) => {
            drop(err);
            drop(out);
            drop(gate);
            // Write as little as possible: every page written now is copied (copy-on-write).
            let parent_name = st.ctx.name();
            if !st.children.is_empty() {
                st.children.clear();
            }
            if st.forker.is_some() {
                st.forker = None;
            }
            crate::panic::mark_child();
            st.ctx = Context {
                name: req.name,
                identity: req.identity,
                counter: 0,
                daemon: req.daemon,
                parent: Some((parent_name, parent_pid)),
            };
            for hook in &st.child_start {
                hook();
            }
            after_fork_in_child(parent_pid, &st.ctx.name, output_socket);
            drop(st);
            let code = body();
            exit_child(code);
        }
    };
    if output_socket.is_some() {
        // Still holding std's stdout lock (flushed before the fork): the record follows
        // everything this process wrote before forking.
        let record = crate::host::fork_record(pid);
        let _ = out.write_all(&record);
        let _ = out.flush();
    }
    if req.kind == Kind::Process {
        crate::timeline::processes::started(pid, &req.name);
    }
    st.children.insert(
        pid,
        Child {
            name: req.name,
            daemon: req.daemon,
            kind: req.kind,
            exitcode: None,
            owned: true,
        },
    );
    drop(st);
    drop(err);
    drop(out);
    drop(gate);
    drop(body);
    Ok(pid)
}

/// In a new child, after the registered resets: its own output pipes under a host, death with
/// its parent, stdin from `/dev/null`.
fn after_fork_in_child(
    parent_pid: u32,
    name: &str,
    output_socket: Option<std::os::fd::BorrowedFd<'_>>,
) {
    if let Some(socket) = output_socket {
        crate::host::register_output(socket, name);
    }
    let _ = sys::process::kill_me_with_parent();
    if sys::process::getppid() != parent_pid {
        // The parent died before the line above: do not live on as an orphan.
        sys::process::exit_now(1);
    }
    let _ = sys::fd::stdin_from_dev_null();
}

/// Ends a child: joins its own non-daemon children, terminates its daemons, flushes, `_exit`.
pub(crate) fn exit_child(code: i32) -> ! {
    finish_children();
    sys::flush_std();
    // Skips the parent's atexit handlers and destructors, copied by the fork.
    sys::process::exit_now(code)
}

pub(super) extern "C" fn run_atexit() {
    finish_children();
}

/// Python's exit behaviour: daemon children are terminated, non-daemon children are joined.
fn finish_children() {
    let (daemons, others): (Vec<u32>, Vec<u32>) = {
        let st = state();
        let live: Vec<(u32, bool)> = st
            .children
            .iter()
            .filter(|(_, c)| c.exitcode.is_none() && c.kind == Kind::Process)
            .map(|(p, c)| (*p, c.daemon))
            .collect();
        (
            live.iter().filter(|(_, d)| *d).map(|(p, _)| *p).collect(),
            live.iter().filter(|(_, d)| !*d).map(|(p, _)| *p).collect(),
        )
    };
    for &pid in &daemons {
        let _ = signal(pid, Signal::SIGTERM);
    }
    for pid in daemons.into_iter().chain(others) {
        let _ = wait_exit(pid, None, sys::Deadline::never(), None);
    }
}
