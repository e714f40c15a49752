//! Interrupting the running cell from another thread: SIGINT to the runtime, then, if the cell
//! still runs after a grace period, the runtime's process group killed (it restarts).

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cell may keep running after an interrupt before the runtime is restarted.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// A handle that can interrupt the running cell from another thread.
#[derive(Clone)]
pub struct Interrupter {
    pub(super) process: Arc<Mutex<std::process::Child>>,
    /// Set while a cell runs: when an interrupt was sent.
    pub(super) interrupted_at: Arc<Mutex<Option<Instant>>>,
}

impl Interrupter {
    fn pid(&self) -> Option<Pid> {
        let mut child = self.process.lock().ok()?;
        match child.try_wait() {
            Ok(None) => Some(Pid::from_raw(child.id() as i32)),
            _ => None,
        }
    }

    /// Interrupts the running cell: SIGINT to the runtime now (blocking library calls return
    /// `Interrupted`); if `still_running()` after [`INTERRUPT_GRACE`], kills the runtime, which
    /// restarts at the next cell (the cell then says its variables were lost).
    pub fn interrupt_cell(&self, still_running: impl Fn() -> bool + Send + 'static) {
        if let Ok(mut t) = self.interrupted_at.lock() {
            *t = Some(Instant::now());
        }
        if let Some(pid) = self.pid() {
            let _ = kill(pid, Signal::SIGINT);
        }
        let this = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(INTERRUPT_GRACE);
            if still_running() {
                this.kill();
            }
        });
    }

    /// Whether the engine interrupted the cell that just ended, and forgets it: the source of
    /// truth for an `Interrupted` outcome.
    pub(super) fn take_interrupted(&self) -> bool {
        self.interrupted_at
            .lock()
            .ok()
            .and_then(|mut t| t.take())
            .is_some()
    }

    /// True once the running cell was interrupted (cleared when the cell ends).
    pub fn was_interrupted(&self) -> bool {
        self.interrupted_at
            .lock()
            .map(|t| t.is_some())
            .unwrap_or(false)
    }

    /// Kills the runtime's whole process group (it restarts at the next cell).
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            // The runtime leads its own process group.
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}
