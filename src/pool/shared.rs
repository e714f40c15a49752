//! What a pool's handle and its manager thread share: the queue of chunks waiting for a worker,
//! the pool's status, and the pipe that wakes the manager.

use super::result::Sink;
use crate::error::{Error, Result};
use crate::interrupt;
use crate::sys::{self, Errno};
use crate::timeline::Span;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// One chunk of a job, waiting for a worker.
pub(crate) struct Chunk {
    pub(crate) job: Arc<dyn Sink>,
    pub(crate) job_id: u64,
    pub(crate) index: usize,
    pub(crate) func: usize,
    pub(crate) payload: Vec<u8>,
    /// The loaded-objects generation when it was submitted: it needs a worker forked since.
    pub(crate) generation: u64,
    /// The interrupt epoch of its call: an interrupt after it cancels the chunk.
    pub(crate) epoch: u64,
    /// Its tasks' indexes in the call's input: `first..first + tasks` (for timelines).
    pub(crate) first: usize,
    pub(crate) tasks: usize,
    /// The function the call runs (for timelines).
    pub(crate) function: &'static str,
}

impl Chunk {
    /// It ran on timeline row `row` from `started` to `ended`, `ok` or not (see `recorder`).
    pub(super) fn span(
        &self,
        row: usize,
        (started, ended): (std::time::Instant, std::time::Instant),
        ok: bool,
    ) -> Span {
        let origin = crate::timeline::origin();
        Span {
            row,
            call: self.job_id,
            function: self.function,
            first: self.first,
            tasks: self.tasks,
            start: started.saturating_duration_since(origin),
            end: ended.saturating_duration_since(origin),
            ok,
        }
    }

    /// Its call was given up (the caller interrupted, its iterator dropped): it must not run.
    pub(super) fn given_up(&self) -> bool {
        self.job.cancelled() || interrupt::raised_since(self.epoch)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Run,
    Close,
    Terminate,
}

pub(crate) struct Inner {
    pub(crate) status: Status,
    pub(crate) queue: VecDeque<Chunk>,
    pub(crate) next_job: u64,
    /// `imap` calls still reading their input: a closed pool waits for them before it finishes.
    pub(crate) open_feeds: usize,
    /// Set by `join`: inputs are no longer read (their iterators end with `PoolNotRunning`).
    pub(crate) feeds_stopped: bool,
    /// Set by the manager when it has exited.
    pub(crate) finished: bool,
}

/// What the pool's handle and its manager thread share.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// What the workers ran, chunk by chunk (`Pool::timeline`).
    pub(crate) recorder: super::recorder::Recorder,
    pub(crate) finished_cv: Condvar,
    /// A non-blocking pipe that wakes the manager's `poll`: a byte written, the read end readable.
    pub(super) wake: (OwnedFd, OwnedFd),
}

impl Shared {
    pub(crate) fn new() -> Result<Shared> {
        let wake = sys::pipe()?;
        Ok(Shared {
            inner: Mutex::new(Inner {
                status: Status::Run,
                queue: VecDeque::new(),
                next_job: 1,
                open_feeds: 0,
                feeds_stopped: false,
                finished: false,
            }),
            finished_cv: Condvar::new(),
            recorder: super::recorder::Recorder::new(),
            wake,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This pool's id (what [`super::manager_thread::on_manager_thread_of`] compares).
    pub(crate) fn id(&self) -> usize {
        self as *const Shared as usize
    }

    /// Queues one chunk for the manager. Accepted while the pool runs; a closed pool still takes
    /// the chunks of an `imap` already under way (`feed`) until `join` stops the feeds.
    pub(crate) fn push(&self, chunk: Chunk, feed: bool) -> Result<()> {
        let mut inner = self.lock();
        let open = match inner.status {
            Status::Run => true,
            Status::Close => feed && !inner.feeds_stopped,
            Status::Terminate => false,
        };
        if !open {
            return Err(match inner.status {
                Status::Terminate => Error::PoolTerminated,
                _ => Error::PoolNotRunning,
            });
        }
        inner.queue.push_back(chunk);
        drop(inner);
        self.wake();
        Ok(())
    }

    /// Wakes the manager thread.
    pub(crate) fn wake(&self) {
        // A full pipe (EAGAIN) is already a wake-up.
        let _ = sys::fd::write(&self.wake.1, &[1]);
    }

    pub(super) fn drain_wake(&self) {
        let mut buf = [0u8; 256];
        loop {
            match sys::fd::read(&self.wake.0, &mut buf) {
                Err(Errno::EINTR) => continue,
                Ok(n) if n == buf.len() => continue,
                _ => return,
            }
        }
    }
}
