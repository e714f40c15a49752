//! A child's panic, all of it: the process-wide hook that reports it, how a [`crate::Process`]
//! child prints it (Python's uncaught-exception report), how a pool worker captures it instead
//! (message, location and backtrace, sent back as [`PanicWire`]), and the gate that keeps a fork
//! from copying the locks a running hook holds.
//!
//! The hook is installed once, in the parent, before its first fork (see
//! [`crate::runtime`]): a child must never call `std::panic::set_hook`, whose lock another thread
//! of the parent may have held at the fork. Outside a child it defers to the hook it replaced.

#![deny(unsafe_code)]

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{RwLock, RwLockWriteGuard};

/// Panic hooks hold it shared, forks exclusively ([`block_hooks`]).
static HOOK_GATE: RwLock<()> = RwLock::new(());
/// The pid of this process if it is a child started by [`crate::Process`] (else 0).
static IN_CHILD: AtomicU32 = AtomicU32::new(0);
/// The pid of this process if it is a pool worker (its panics are captured, not printed).
static POOL_WORKER: AtomicU32 = AtomicU32::new(0);

/// Held across a fork: no panic hook runs meanwhile, so a child never inherits the locks a hook
/// holds (std's backtrace lock above all), which would make its own panic wait forever. First
/// in the fork lock order (see [`crate::runtime`]).
pub(crate) fn block_hooks() -> RwLockWriteGuard<'static, ()> {
    HOOK_GATE.write().unwrap_or_else(|e| e.into_inner())
}

/// In a new child started by [`crate::Process`]: its panics are reported as a child's.
pub(crate) fn mark_child() {
    IN_CHILD.store(std::process::id(), Relaxed);
}

/// In a new pool worker: its panics are captured for the task that caused them, not printed.
pub(crate) fn mark_pool_worker() {
    POOL_WORKER.store(std::process::id(), Relaxed);
}

/// Installs the process-wide hook (once, in the parent, before its first fork). `child_name`
/// gives the name a child's report starts with; the hook calls it only in a child.
pub(crate) fn install_reporter(child_name: fn() -> String) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _gate = HOOK_GATE.read().unwrap_or_else(|e| e.into_inner());
        let me = std::process::id();
        if POOL_WORKER.load(Relaxed) == me {
            return capture(info);
        }
        if IN_CHILD.load(Relaxed) != me {
            return previous(info);
        }
        let name = child_name();
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

/// The child's side of a [`crate::Process`]: runs its target; a panic (reported by the hook)
/// gives exit code 1, as an uncaught exception does in Python.
pub(crate) fn run_child(target: Box<dyn FnOnce() + Send>) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(target)) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// A panic as it crosses from a pool worker to the parent.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub(crate) struct PanicWire {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    pub(crate) backtrace: String,
}

thread_local! {
    /// Filled by a pool worker's hook ([`capture`]), read after `catch_unwind` ([`catch`]).
    static LAST_PANIC: RefCell<Option<PanicWire>> = const { RefCell::new(None) };
}

/// Records a panic (message, location, backtrace) for the task that caused it, printing nothing:
/// the error goes back to the caller, as Python sends the exception back.
fn capture(info: &std::panic::PanicHookInfo<'_>) {
    let wire = PanicWire {
        message: payload_message(info.payload()),
        location: info.location().map(|l| l.to_string()),
        backtrace: std::backtrace::Backtrace::force_capture().to_string(),
    };
    LAST_PANIC.with(|p| *p.borrow_mut() = Some(wire));
}

/// Runs `f` catching a panic; in a pool worker the panic's message and backtrace come from the
/// hook, elsewhere only the message is known.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, PanicWire> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| PanicWire {
                message: payload_message(payload.as_ref()),
                location: None,
                backtrace: String::new(),
            })
    })
}

/// A panic payload's message (`panic!`'s text), or `Box<dyn Any>` for another payload.
pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// The symbol of the runtime's function that forks (`runtime::fork::fork_here`): below it, a
/// child's stack is the parent's, copied by the fork.
const FORK_FRAME: &str = "multiprocessing::runtime::fork::fork_here";

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
            || s.contains("multiprocessing::panic::install_reporter")
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
        .position(|f| symbol(f).contains(FORK_FRAME))
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
