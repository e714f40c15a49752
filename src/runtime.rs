//! Process-wide state: who this process is, the children it created, and how they are forked.

use crate::error::{Error, Result};
use crate::sys;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
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

type ForkJob = (
    Box<dyn FnOnce() -> Result<u32> + Send>,
    mpsc::Sender<Result<u32>>,
);

pub(crate) struct State {
    pub(crate) ctx: Context,
    pub(crate) children: BTreeMap<u32, Child>,
    /// The thread that forks for callers on short-lived threads, with the pid it belongs to.
    forker: Option<(u32, mpsc::Sender<ForkJob>)>,
    hooks_installed: bool,
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

/// Allocates the next default name, `{prefix}-N` (`Process-3:1` in a grandchild), and its identity.
pub(crate) fn next_name(prefix: &str) -> (String, Vec<u32>) {
    let mut st = state();
    st.ctx.counter += 1;
    let mut identity = st.ctx.identity.clone();
    identity.push(st.ctx.counter);
    let id: Vec<String> = identity.iter().map(|n| n.to_string()).collect();
    (format!("{prefix}-{}", id.join(":")), identity)
}

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

/// Forks on the calling thread. Every lock a child might need is held across `fork`, so the child
/// never inherits a lock taken by a thread that does not exist in it.
fn fork_here(req: Spawn, body: Box<dyn FnOnce() -> i32 + Send>) -> Result<u32> {
    // Lock order: the fork gate, then the state (a hook in a child takes them in that order too).
    let gate = FORK_GATE.write().unwrap_or_else(|e| e.into_inner());
    let mut st = state();
    if !st.hooks_installed {
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(run_atexit) };
        install_panic_reporter();
        st.hooks_installed = true;
    }
    let output_socket = crate::host::output_socket();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let _ = out.flush();
    let _ = err.flush();
    let parent_pid = sys::getpid();
    // SAFETY: fork; the child only runs code that is safe after fork (it holds every lock it uses).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    if pid == 0 {
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
        IN_CHILD.store(sys::getpid(), Relaxed);
        st.ctx = Context {
            name: req.name,
            identity: req.identity,
            counter: 0,
            daemon: req.daemon,
            parent: Some((parent_name, parent_pid)),
        };
        after_fork_in_child(parent_pid, &st.ctx.name, output_socket);
        drop(st);
        let code = body();
        exit_child(code);
    }
    let pid = pid as u32;
    if output_socket.is_some() {
        // Still holding std's stdout lock (flushed before the fork): the record follows
        // everything this process wrote before forking.
        let record = crate::host::fork_record(pid);
        let _ = out.write_all(&record);
        let _ = out.flush();
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

/// The pid of this process if it is a child started by [`Process`](crate::Process) (else 0).
static IN_CHILD: AtomicU32 = AtomicU32::new(0);
/// Panic hooks hold it shared, forks exclusively (see `install_panic_reporter`).
static FORK_GATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The pid of this process if it is a pool worker (its panics are captured, not printed).
static POOL_WORKER: AtomicU32 = AtomicU32::new(0);

/// Marks this process as a pool worker (called in the worker right after the fork).
pub(crate) fn mark_pool_worker() {
    POOL_WORKER.store(sys::getpid(), Relaxed);
}

/// Makes a panic in a child print like Python's uncaught exception: a `Process <name>:` line, the
/// message and a backtrace. Installed once in the parent, so a child has nothing to set up;
/// elsewhere it defers to the hook it replaced.
fn install_panic_reporter() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // No fork while a hook runs: a child must not inherit the locks a hook holds (std's
        // backtrace lock above all), or its own panic would wait for them forever.
        let _gate = FORK_GATE.read().unwrap_or_else(|e| e.into_inner());
        let me = sys::getpid();
        if POOL_WORKER.load(Relaxed) == me {
            return crate::pool::capture_panic(info);
        }
        if IN_CHILD.load(Relaxed) != me {
            return previous(info);
        }
        let name = state().ctx.name();
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        let text = format!(
            "Process {name}:\n{info}\nstack backtrace:\n{}",
            child_frames(&bt)
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }));
}

/// The frames of a child's backtrace that are its own code, as Python shows a child's traceback
/// from its target down: not the panic machinery above, nor the parent's stack (copied by the
/// fork) below the library's fork. Everything if those marks are not found.
fn child_frames(bt: &str) -> String {
    // A frame is its numbered line plus the `at file:line` lines under it.
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        let numbered = t
            .split_once(": ")
            .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        match frames.last_mut() {
            Some(f) if !numbered => f.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let symbol = |f: &Vec<&str>| {
        f[0].trim_start()
            .split_once(": ")
            .map(|(_, s)| s.to_string())
            .unwrap_or_default()
    };
    let machinery = |s: &str| {
        s.starts_with("std::")
            || s.starts_with("core::")
            || s.starts_with("<std::")
            || s.starts_with("<core::")
            || s.contains("rust_begin_unwind")
            || s.starts_with("__rustc")
            || s.contains("PanicHookInfo")
            || s.contains("multiprocessing::runtime::install_panic_reporter")
    };
    // Below the child's own code: closure shims, boxes and the library's start.
    let plumbing = |s: &str| {
        machinery(s)
            || s.starts_with("<alloc::boxed::Box<F,A>")
            || s.starts_with("multiprocessing::")
    };
    let start = frames
        .iter()
        .position(|f| !machinery(&symbol(f)))
        .unwrap_or(0);
    let mut end = frames
        .iter()
        .position(|f| symbol(f).contains("multiprocessing::runtime::fork_here"))
        .unwrap_or(frames.len());
    while end > start + 1 && plumbing(&symbol(&frames[end - 1])) {
        end -= 1;
    }
    if start >= end {
        return format!("{bt}\n");
    }
    let mut out = String::new();
    for line in frames[start..end].iter().flatten() {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn after_fork_in_child(
    parent_pid: u32,
    name: &str,
    output_socket: Option<std::os::fd::BorrowedFd<'_>>,
) {
    crate::interrupt::reset_in_child();
    if let Some(socket) = output_socket {
        crate::host::register_output(socket, name);
    }
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() as u32 != parent_pid {
            // The parent died before the line above: do not live on as an orphan.
            libc::_exit(1);
        }
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::close(fd);
        }
    }
}

/// Ends a child: joins its own non-daemon children, terminates its daemons, flushes, `_exit`.
pub(crate) fn exit_child(code: i32) -> ! {
    finish_children();
    sys::flush_std();
    // SAFETY: _exit never returns and skips the parent's atexit handlers and destructors.
    unsafe { libc::_exit(code) }
}

extern "C" fn run_atexit() {
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
        let _ = signal(pid, libc::SIGTERM);
    }
    for pid in daemons.into_iter().chain(others) {
        let _ = wait_exit(pid, None, sys::Deadline::never(), None);
    }
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
        // Which child, if any, could be reaped now, without reaping it.
        // SAFETY: a zeroed siginfo_t is valid; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer; WNOWAIT leaves the child waitable.
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: waitid filled `info` (si_pid stays 0 when no child is waitable).
        let pid = unsafe { info.si_pid() } as u32;
        if r != 0 || pid == 0 {
            return; // no child (ECHILD) or none has exited
        }
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

/// Waits until `pid` exits (`Ok(Some(code))`), the deadline passes (`Ok(None)`) or an interrupt arrives.
pub(crate) fn wait_exit(
    pid: u32,
    pidfd: Option<&OwnedFd>,
    deadline: sys::Deadline,
    watch: Option<&crate::interrupt::Watch>,
) -> Result<Option<i32>> {
    let mut backoff = Duration::from_micros(50);
    // A child that is about to exit usually does so within a few dozen microseconds: catch that
    // without a sleep and a wake-up.
    let spin_until = std::time::Instant::now() + Duration::from_micros(100);
    while std::time::Instant::now() < spin_until && deadline.slice().is_some() {
        if let Some(code) = poll_exit(pid)? {
            return Ok(Some(code));
        }
        std::thread::yield_now();
    }
    loop {
        if let Some(code) = poll_exit(pid)? {
            return Ok(Some(code));
        }
        if let Some(w) = watch {
            w.check()?;
        }
        let Some(slice) = deadline.slice() else {
            return Ok(None);
        };
        match pidfd {
            Some(fd) => {
                sys::poll_one(fd.as_raw_fd(), libc::POLLIN, slice)?;
            }
            None => {
                std::thread::sleep(backoff.min(slice));
                backoff = (backoff * 2).min(Duration::from_millis(5));
            }
        }
    }
}

/// Sends `sig` to a child that has not been reaped (never to a recycled pid).
pub(crate) fn signal(pid: u32, sig: libc::c_int) -> Result<()> {
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
        let _ = signal(pid, libc::SIGTERM);
    }
    let grace = sys::Deadline::after(Duration::from_millis(100));
    for &pid in &pids {
        let _ = wait_exit(pid, None, grace, None);
    }
    for &pid in &pids {
        let _ = signal(pid, libc::SIGKILL);
    }
    let hard = sys::Deadline::after(Duration::from_secs(2));
    for &pid in &pids {
        let _ = wait_exit(pid, None, hard, None);
    }
}
