//! `--timeout`: the running cell interrupted when it runs past the limit.

use crate::engine::Engine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Interrupts the running cell when it runs past `timeout`; dropping the sender ends the watch.
pub(super) fn watchdog(
    engine: &Engine,
    timeout: Option<Duration>,
) -> (mpsc::Sender<()>, Arc<AtomicBool>) {
    let (tx, rx) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(limit) = timeout {
        let flag = timed_out.clone();
        let interrupter = engine.interrupter();
        std::thread::spawn(move || {
            if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, Ordering::SeqCst);
                eprintln!(
                    "rustmp run: the cell ran past {} s: interrupting it",
                    limit.as_secs_f64()
                );
                // Still running after the grace period (the sender not yet dropped): restart.
                interrupter.interrupt_cell(move || {
                    matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty))
                });
            }
        });
    }
    (tx, timed_out)
}
