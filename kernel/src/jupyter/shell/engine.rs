//! The engine the executor runs cells on: started on its own thread when the kernel starts, so
//! kernel_info and friends are answered while it starts; the first request that needs it waits
//! for it.

use super::super::iopub::publish_output;
use super::Executor;
use crate::engine::{self, Engine, Output};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

impl Executor {
    /// Starts the engine on its own thread at once.
    pub(super) fn start_engine(&mut self) {
        let Some(paths) = self.paths.take() else {
            return;
        };
        let shared = self.shared.clone();
        let (tx, rx) = mpsc::channel();
        self.engine_rx = Some(rx);
        std::thread::spawn(move || {
            let sink_shared = shared.clone();
            let sink =
                Box::new(move |o: Output, target: &Value| publish_output(&sink_shared, o, target));
            let t0 = std::time::Instant::now();
            let started = Engine::start(&paths, sink).map_err(|e| e.to_string());
            engine::timing(|| format!("engine start {:?}", t0.elapsed()));
            if let Ok(e) = &started
                && let Ok(mut i) = shared.interrupter.lock()
            {
                *i = Some(e.interrupter());
            }
            let started = started.map(|mut e| {
                if !shared.engine_wanted.load(Ordering::SeqCst) {
                    let t0 = std::time::Instant::now();
                    e.prime();
                    engine::timing(|| format!("rust-analyzer primed in {:?}", t0.elapsed()));
                }
                e
            });
            // Keep the build slot locked as long as the engine lives.
            let _ = tx.send(started.map(|e| (e, paths)));
        });
    }

    /// The engine, once it has started (waiting for it), or why it could not start.
    pub(super) fn engine(&mut self) -> Result<&mut Engine, String> {
        if self.engine.is_none() {
            self.shared.engine_wanted.store(true, Ordering::SeqCst);
            let started = match self.engine_rx.take() {
                Some(rx) => rx
                    .recv()
                    .unwrap_or_else(|_| Err("the engine thread died".into())),
                None => Err("the engine was not started".into()),
            };
            self.engine = Some(started);
        }
        match self.engine.as_mut() {
            Some(Ok((e, _))) => Ok(e),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the engine did not start".into()),
        }
    }
}
