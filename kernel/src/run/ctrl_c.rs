//! Ctrl-C during `rustmp run`.

use crate::engine;
use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Ctrl-C: the first SIGINT interrupts the running cell (as Jupyter's interrupt does) and stops
/// the run after it, so the executed part is still written; a second one exits at once.
pub(super) struct CtrlC {
    pub(super) interrupter: Mutex<Option<engine::Interrupter>>,
    pub(super) running: Arc<AtomicBool>,
    pub(super) stop: AtomicBool,
}

impl CtrlC {
    /// Blocks SIGINT in this thread (and so in every thread started later; the engine's
    /// processes start with an empty mask) and waits for it on a thread of its own.
    pub(super) fn install() -> Arc<CtrlC> {
        let this = Arc::new(CtrlC {
            interrupter: Mutex::new(None),
            running: Arc::new(AtomicBool::new(false)),
            stop: AtomicBool::new(false),
        });
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        if set.thread_block().is_err() {
            return this;
        }
        let handler = this.clone();
        let spawned = std::thread::Builder::new()
            .name("rustmp-ctrl-c".into())
            .spawn(move || {
                while set.wait().is_ok() {
                    handler.on_sigint();
                }
            });
        if spawned.is_err() {
            // Nobody would wait for it: let SIGINT act as usual.
            let _ = set.thread_unblock();
        }
        this
    }

    fn on_sigint(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nrustmp run: interrupted again: quitting");
            std::process::exit(130);
        }
        eprintln!(
            "\nrustmp run: interrupted: stopping after this cell (Ctrl-C again to quit at once)"
        );
        let interrupter = self.interrupter.lock().ok().and_then(|i| i.clone());
        if let Some(i) = interrupter
            && self.running.load(Ordering::SeqCst)
        {
            let running = self.running.clone();
            i.interrupt_cell(move || running.load(Ordering::SeqCst));
        }
    }
}
