//! The manager's workers' lives: forking one (with its socket, and nothing of the others'),
//! noticing its exit (the chunk it ran fails, those queued behind it go to another worker),
//! retiring and stopping them all.

use super::Manager;
use crate::error::{Error, Result, TaskError};
use crate::interrupt;
use crate::panic::PanicWire;
use crate::pool::link::{Worker, read_answers};
use crate::pool::shared::Chunk;
use crate::pool::spawn::{self, StartMethod};
use crate::pool::worker;
use crate::runtime::{self, Kind, Spawn};
use crate::sys;
use crate::sys::Signal;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

impl Manager {
    pub(super) fn spawn_worker(&mut self) -> Result<()> {
        if self.cluster.is_some() {
            return self.spawn_remote();
        }
        let (mine, theirs) = sys::socketpair()?;
        let spawned = self.config.start == StartMethod::Spawn;
        let prefix = if spawned {
            "SpawnPoolWorker"
        } else {
            "ForkPoolWorker"
        };
        let (name, identity) = runtime::next_name(prefix);
        let generation = sys::loaded_objects_generation();
        // Fds the child must not keep: every other worker's socket and pidfd, our end, the wake fd.
        let mut close_in_child: Vec<RawFd> = self
            .workers
            .iter()
            .flat_map(|w| {
                std::iter::once(w.sock.as_raw_fd()).chain(w.pidfd.as_ref().map(|p| p.as_raw_fd()))
            })
            .collect();
        close_in_child.push(mine.as_raw_fd());
        close_in_child.push(self.shared.wake.0.as_raw_fd());
        close_in_child.push(self.shared.wake.1.as_raw_fd());
        let child_fd = theirs.as_raw_fd();
        let initializer = self.config.initializer.clone();
        let exec = if spawned {
            Some(spawn::prepare()?)
        } else {
            None
        };
        // Its environment is this one, now: the variable may change before it is reaped.
        let stages = (spawned && self.config.library.is_some()).then(crate::code::stages_dir);
        let body = Box::new(move || {
            for fd in close_in_child {
                // The child's copies of the parent's descriptors: nothing in the child uses them.
                crate::sys::fd::close_inherited(fd);
            }
            match exec {
                None => worker::run(child_fd, initializer),
                // Returns only if the exec failed: reported as an initializer failure, so that
                // the pool does not start workers for ever.
                Some(exec) => worker::init_failed(
                    child_fd,
                    &PanicWire {
                        message: spawn::exec_worker(&exec, child_fd),
                        location: None,
                        backtrace: String::new(),
                    },
                ),
            }
        });
        let (pid, pidfd) = runtime::spawn(
            Spawn {
                name: name.clone(),
                identity: identity.clone(),
                daemon: true,
                kind: Kind::PoolWorker,
                bind_to_thread: true,
            },
            body,
        )?;
        drop(theirs);
        sys::set_nonblocking(&mine, true)?;
        let row = self.shared.recorder.row(&name, pid, None);
        self.workers.push(Worker {
            pid,
            name,
            pidfd,
            sock: mine,
            inbuf: Vec::new(),
            partial: None,
            // A spawn worker always says when it is ready.
            ready: self.config.initializer.is_none() && !spawned,
            out: Vec::new(),
            out_pos: 0,
            in_flight: Default::default(),
            since: Instant::now(),
            short: None,
            depth: 1,
            tasks: 0,
            row,
            generation,
            retiring: false,
            defined: Default::default(),
            sent: Default::default(),
            remote: None,
            stages,
        });
        if spawned {
            self.queue_setup(self.workers.len() - 1, identity)?;
        }
        Ok(())
    }

    /// Reaps worker `i` if it has exited: the chunk it ran fails with [`Error::WorkerDied`].
    pub(super) fn check_exit(&mut self, i: usize) {
        if self.workers[i].remote.is_some() {
            return self.check_remote_exit(i);
        }
        let pid = self.workers[i].pid;
        let Ok(Some(code)) = runtime::poll_exit(pid) else {
            return;
        };
        // Answers it sent before dying come first.
        for a in read_answers(&mut self.workers[i]) {
            self.handle_answer(i, a);
        }
        let w = self.workers.remove(i);
        let spawned = self.config.start == StartMethod::Spawn;
        runtime::disown(pid);
        remove_stages(&w);
        let starts_unready = self.config.initializer.is_some() || spawned;
        if starts_unready && !w.ready && !w.retiring {
            // Died in its initializer (or, spawned, before it was ready) without a report (exit,
            // abort, a signal): a failure too (a reported failure already marked it retiring).
            self.init_failures += 1;
            self.init_failure = Some(TaskError {
                message: if self.config.initializer.is_some() {
                    format!("the initializer exited with code {code}")
                } else {
                    format!("the spawn worker exited with code {code} before it was ready")
                },
                location: None,
                backtrace: String::new(),
                worker: w.name.clone(),
                pid,
            });
        }
        let err = || Error::WorkerDied {
            worker: w.name.clone(),
            pid,
            exitcode: code,
        };
        self.lost((w.row, w.since), w.in_flight, true, err);
    }

    /// What a worker that ended had in flight: the oldest chunk, the one it ran, fails with
    /// `err()` (with [`Error::Interrupted`] if its call was interrupted since: the interrupt
    /// ended the worker); those queued behind it, which it had not started, go back to the
    /// front of the queue in order for another worker, or with `requeue` false (no worker can
    /// take them: the whole job ended) fail the same way. The one it ran goes into the timeline
    /// (its row, from `since`) as failed.
    pub(super) fn lost(
        &mut self,
        (row, since): (usize, Instant),
        mut in_flight: VecDeque<Chunk>,
        requeue: bool,
        err: impl Fn() -> Error,
    ) {
        let fail = |c: Chunk| {
            let err = if interrupt::raised_since(c.epoch) {
                Error::Interrupted
            } else {
                err()
            };
            c.job.deliver(c.index, Err(err));
        };
        if let Some(running) = in_flight.pop_front() {
            let span = running.span(row, (since, Instant::now()), false);
            self.shared.recorder.push(span);
            fail(running);
        }
        if requeue {
            while let Some(c) = in_flight.pop_back() {
                self.pending.push_front(c);
            }
        } else {
            in_flight.into_iter().for_each(fail);
        }
    }

    pub(super) fn shutdown_idle_workers(&mut self) {
        for w in &mut self.workers {
            w.retire();
        }
        self.await_workers(Duration::from_secs(5));
        self.workers.clear();
    }

    /// Waits up to `grace` for every worker to exit, then SIGKILLs the rest; reaps them all.
    pub(super) fn await_workers(&self, grace: Duration) {
        let deadline = sys::Deadline::after(grace);
        for w in self.workers.iter().filter(|w| w.remote.is_none()) {
            let exited = runtime::wait_exit(w.pid, w.pidfd.as_ref(), deadline, None);
            if !matches!(exited, Ok(Some(_))) {
                let _ = runtime::signal(w.pid, Signal::SIGKILL);
                let hard = sys::Deadline::after(Duration::from_secs(2));
                let _ = runtime::wait_exit(w.pid, w.pidfd.as_ref(), hard, None);
            }
            runtime::disown(w.pid);
            remove_stages(w);
        }
    }

    pub(super) fn terminate(&mut self) {
        for w in self.workers.iter().filter(|w| w.remote.is_none()) {
            let _ = runtime::signal(w.pid, Signal::SIGTERM);
        }
        self.await_workers(Duration::from_millis(200));
        for c in self.workers.drain(..).flat_map(|w| w.in_flight) {
            c.job.deliver(c.index, Err(Error::PoolTerminated));
        }
        for c in self.pending.drain(..) {
            c.job.deliver(c.index, Err(Error::PoolTerminated));
        }
        let rest: Vec<Chunk> = self.shared.lock().queue.drain(..).collect();
        for c in rest {
            c.job.deliver(c.index, Err(Error::PoolTerminated));
        }
    }
}

/// After reaping spawn worker `w` of a library loaded at run time: its staging directories,
/// which it could not remove if it was killed.
fn remove_stages(w: &Worker) {
    if let Some(dir) = &w.stages {
        crate::code::remove_stages_of(dir, w.pid);
    }
}
