//! The manager's handling of a worker's answers: it is ready, its initializer failed, it cannot
//! load the pool's code, or the result of the oldest chunk it was sent.

use super::Manager;
use crate::codec;
use crate::error::{Error, TaskError};
use crate::panic::PanicWire;
use crate::pool::link::Answer;
use crate::pool::task::{
    STATUS_CODE_ERROR, STATUS_ERROR, STATUS_INIT_FAILED, STATUS_OK, STATUS_PANIC, STATUS_READY,
};

impl Manager {
    pub(super) fn handle_answer(&mut self, wi: usize, a: Answer) {
        let w = &mut self.workers[wi];
        if a.status == STATUS_READY {
            if let Some(link) = &w.remote {
                w.pid = link.pid();
                self.shared.recorder.set_pid(w.row, w.pid);
            }
            if let (Some(settled), Some(link)) = (&mut self.settled, &w.remote) {
                settled.insert(link.rank);
            }
            w.ready = true;
            self.init_failures = 0;
            return;
        }
        // Before it was ready and with no chunk sent: its setup failed, not a task.
        if a.status == STATUS_CODE_ERROR && !w.ready && w.in_flight.is_empty() {
            if self.settled.is_some()
                && self.start_failure.is_none()
                && let Ok((object, message)) = codec::decode::<(String, String)>(&a.body)
            {
                self.start_failure = Some(format!(
                    "{} cannot load the pool's code: {object}: {message}",
                    w.name
                ));
            }
            return;
        }
        if a.status == STATUS_INIT_FAILED {
            let err = match codec::decode::<PanicWire>(&a.body) {
                Ok(wire) => task_error(wire, &w.name, w.pid),
                Err(e) => TaskError {
                    message: format!("the initializer failed (undecodable report: {e})"),
                    location: None,
                    backtrace: String::new(),
                    worker: w.name.clone(),
                    pid: w.pid,
                },
            };
            // It exits now and is replaced; it never took work.
            w.retiring = true;
            if let (Some(settled), Some(link)) = (&mut self.settled, &w.remote) {
                settled.insert(link.rank);
            }
            self.init_failure = Some(err);
            self.init_failures += 1;
            return;
        }
        // The answer to the oldest chunk sent (a worker answers in order); any other is stale.
        let oldest = w.in_flight.front();
        if !oldest.is_some_and(|c| c.job_id == a.job_id && c.index as u64 == a.index) {
            return;
        }
        let started = w.since;
        let Some(chunk) = w.answered() else {
            return;
        };
        w.tasks += 1;
        let result = match a.status {
            STATUS_OK => Ok(a.body.as_slice()),
            STATUS_PANIC => Err(match codec::decode::<PanicWire>(&a.body) {
                Ok(wire) => Error::Task(task_error(wire, &w.name, w.pid)),
                Err(e) => Error::Codec(e.to_string()),
            }),
            STATUS_CODE_ERROR => Err(match codec::decode::<(String, String)>(&a.body) {
                Ok((object, message)) => Error::CodeLoad { object, message },
                Err(e) => Error::Codec(e.to_string()),
            }),
            STATUS_ERROR => Err(Error::Codec(
                codec::decode::<String>(&a.body).unwrap_or_else(|e| e.to_string()),
            )),
            other => Err(Error::Broken(format!(
                "unknown answer status {other} from a worker"
            ))),
        };
        if let Some(max) = self.config.maxtasksperchild
            && w.tasks >= max
        {
            w.retire();
        }
        // `answered` set `since` to now, the answer's time: the chunk's end (one clock reading).
        self.shared
            .recorder
            .push(chunk.span(w.row, (started, w.since), result.is_ok()));
        chunk.job.deliver(chunk.index, result);
    }
}

fn task_error(wire: PanicWire, worker: &str, pid: u32) -> TaskError {
    TaskError {
        message: wire.message,
        location: wire.location,
        backtrace: wire.backtrace,
        worker: worker.to_string(),
        pid,
    }
}
