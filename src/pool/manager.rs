//! The pool's manager thread: owns the workers, keeps their number up, hands chunks to ready
//! workers with room for them (one in flight per local worker, a few per cluster worker),
//! collects answers (`manager/answer`), notices dead workers and replaces them at once.

use super::link::{Worker, read_answers};
use super::manager_thread;
use super::result::CANCELS;
use super::shared::{Chunk, Shared, Status};
use super::spawn::StartMethod;
use crate::error::{Error, Result, TaskError};
use crate::interrupt;
use crate::sys::Events;
use crate::sys::poll::{PollFd, poll};
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// The pool's settings.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) initializer: Option<Arc<dyn Fn() + Send + Sync>>,
    pub(crate) maxtasksperchild: Option<usize>,
    pub(crate) start: StartMethod,
    /// The initializer as a spawn worker finds it (spawn pools with an initializer only).
    pub(crate) init_code: Option<crate::code::CodeRef>,
    /// A spawn pool run by this library loaded at run time: its object, which the workers are
    /// sent (with the objects it needs) and run the worker loop in.
    pub(crate) library: Option<crate::code::LoadedObject>,
    /// A cluster pool's job (its workers are spawn workers on MPI ranks).
    pub(crate) mpi: Option<crate::pool::cluster::Mpi>,
}

pub(crate) struct Manager {
    shared: Arc<Shared>,
    config: Config,
    workers: Vec<Worker>,
    pending: VecDeque<Chunk>,
    /// The last error an initializer raised, and how many initializers failed since one last
    /// succeeded: past [`Manager::init_retries`] the pool stops forking and fails the work that
    /// no ready worker can take.
    init_failure: Option<TaskError>,
    init_failures: usize,
    /// The newest job seen, and the newest when the initializer was given up on: only a newer
    /// job tries it again.
    newest_job: u64,
    gave_up_at_job: u64,
    /// `CANCELS` and the interrupt count when the queue was last searched for cancelled chunks.
    seen_cancels: (u64, u64),
    /// A spawn pool's functions, as its workers know them.
    code: spawn::CodeTable,
    /// A cluster pool's running job.
    cluster: Option<crate::pool::cluster::Front>,
    /// While a cluster pool's `build` waits for its workers ([`Manager::await_ready`]): why
    /// the first worker that cannot load the pool's code said so, before it was ready.
    start_failure: Option<String>,
    /// The ranks whose worker said it was ready, or that its initializer failed, while `build`
    /// waits (`None` after).
    settled: Option<std::collections::HashSet<u32>>,
}

mod answer;
mod remote;
mod spawn;
mod workers;

impl Manager {
    pub(crate) fn new(shared: Arc<Shared>, config: Config) -> Manager {
        Manager {
            shared,
            config,
            workers: Vec::new(),
            pending: VecDeque::new(),
            init_failure: None,
            init_failures: 0,
            newest_job: 0,
            gave_up_at_job: 0,
            seen_cancels: (0, 0),
            code: spawn::CodeTable::default(),
            cluster: None,
            start_failure: None,
            settled: None,
        }
    }

    /// Starts the first workers (Python starts them all with the pool).
    pub(crate) fn start(&mut self) -> Result<()> {
        manager_thread::enter(self.shared.id());
        if let Some(library) = self.config.library.clone() {
            self.code.prepare_library(&library)?;
        }
        if let Some(mpi) = &self.config.mpi {
            self.cluster = Some(crate::pool::cluster::Front::start(
                mpi,
                self.config.processes,
                self.config.library.is_some(),
            )?);
        }
        for _ in 0..self.config.processes {
            self.spawn_worker()?;
        }
        Ok(())
    }

    /// Initializer failures in a row after which the initializer is taken to fail always.
    fn init_retries(&self) -> usize {
        self.config.processes + 2
    }

    fn init_gave_up(&self) -> bool {
        self.init_failures >= self.init_retries()
    }

    /// The manager thread's loop. Ends when the pool is closed and drained, or terminated.
    pub(crate) fn run(mut self) {
        loop {
            let (status, feeding) = {
                let mut inner = self.shared.lock();
                if !inner.queue.is_empty() {
                    // A new call: an initializer that gave up is tried again for it.
                    let newest = inner.queue.iter().map(|c| c.job_id).max().unwrap_or(0);
                    if self.init_gave_up() && newest > self.gave_up_at_job {
                        self.init_failures = 0;
                    }
                    self.newest_job = self.newest_job.max(newest);
                    self.pending.extend(inner.queue.drain(..));
                }
                (inner.status, inner.open_feeds > 0 && !inner.feeds_stopped)
            };
            if status == Status::Terminate {
                self.terminate();
                break;
            }
            self.drop_cancelled();
            if !self.pending.is_empty() {
                // Notice workers that died meanwhile (an interrupt terminates them) before
                // handing them work.
                self.wait_for_events(Duration::ZERO);
            }
            self.dispatch();
            let busy = self.workers.iter().any(|w| !w.in_flight.is_empty());
            if status == Status::Close && self.pending.is_empty() && !busy && !feeding {
                self.shutdown_idle_workers();
                break;
            }
            // Python's pool keeps its size while it runs, and while a closed pool has work.
            if status == Status::Run || !self.pending.is_empty() || busy || feeding {
                self.maintain();
            }
            self.wait_for_events(Duration::from_millis(100));
        }
        // A cluster pool's job ends (and its directory goes) before the pool is finished.
        self.workers.clear();
        drop(self.cluster.take());
        let mut inner = self.shared.lock();
        inner.finished = true;
        drop(inner);
        self.shared.finished_cv.notify_all();
    }

    /// Chunks whose call was given up (its caller interrupted, its iterator dropped) never run.
    /// The queue is searched only when a call was given up or an interrupt came since last time.
    fn drop_cancelled(&mut self) {
        let now = (CANCELS.load(SeqCst), interrupt::raised_count());
        if now == self.seen_cancels || self.pending.is_empty() {
            return;
        }
        self.seen_cancels = now;
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for c in self.pending.drain(..) {
            if c.given_up() {
                c.job.deliver(c.index, Err(Error::Interrupted));
            } else {
                kept.push_back(c);
            }
        }
        self.pending = kept;
    }

    /// Forks workers until the pool has its size again (none while the initializer keeps
    /// failing); if a fork fails, the work that no worker can take fails with the reason.
    fn maintain(&mut self) {
        if self.init_gave_up() {
            self.gave_up_at_job = self.newest_job;
            self.fail_unrunnable();
            return;
        }
        let missing = self.config.processes.saturating_sub(self.live_workers());
        for _ in 0..missing {
            if let Err(e) = self.spawn_worker() {
                if self.live_workers() == 0 {
                    let msg = e.to_string();
                    for c in self.pending.drain(..) {
                        // A cluster pool whose job ended says so as such.
                        let err = match &e {
                            Error::Cluster(m) => Error::Cluster(m.clone()),
                            _ => Error::Broken(format!("cannot start a pool worker: {msg}")),
                        };
                        c.job.deliver(c.index, Err(err));
                    }
                }
                return;
            }
        }
    }

    /// The initializer fails every time: work that no ready worker can take gets its error.
    fn fail_unrunnable(&mut self) {
        if self.workers.iter().any(|w| w.ready && !w.retiring) {
            return;
        }
        let Some(err) = self.init_failure.clone() else {
            return;
        };
        for c in self.pending.drain(..) {
            c.job.deliver(c.index, Err(Error::Task(err.clone())));
        }
    }

    fn live_workers(&self) -> usize {
        self.workers.iter().filter(|w| !w.retiring).count()
    }

    /// Hands pending chunks, in order, to ready workers with room for them (see
    /// [`Worker::has_room`]): first one to each worker with none in flight, then a second to
    /// each with one, and so on, so that work is spread before it is queued behind other work.
    fn dispatch(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut cancelled = Vec::new();
        let mut unnamed = Vec::new();
        // Held while the epochs are checked and the chunks sent (see `interrupt::hand_out`); no
        // callback runs meanwhile (one that blocks in the library may terminate the children).
        let hand_out = interrupt::hand_out();
        let forked = self.config.start == StartMethod::Fork;
        let max_tasks = self.config.maxtasksperchild;
        let depth = self.workers.iter().map(|w| w.depth).max().unwrap_or(1);
        'levels: for level in 0..depth {
            for i in 0..self.workers.len() {
                let Some(front) = self.pending.front() else {
                    break 'levels;
                };
                let w = &mut self.workers[i];
                if w.in_flight.len() > level || !w.has_room(front.job_id, max_tasks) {
                    continue;
                }
                if forked && w.generation < front.generation {
                    // Forked before the task's code was loaded: replace it.
                    w.retire();
                    continue;
                }
                // The first chunk whose call still wants it and whose function can be named.
                let (chunk, func) = loop {
                    let chunk = match self.pending.pop_front() {
                        Some(c) if c.given_up() => {
                            cancelled.push(c);
                            continue;
                        }
                        Some(c) => c,
                        None => break 'levels,
                    };
                    match self.func_word(i, chunk.func) {
                        Ok(func) => break (chunk, func),
                        Err(e) => unnamed.push((chunk, e)),
                    }
                };
                let w = &mut self.workers[i];
                w.queue_frame(
                    chunk.payload.len() as u64,
                    chunk.job_id,
                    chunk.index as u64,
                    func,
                    &chunk.payload,
                );
                w.push_in_flight(chunk);
                w.flush();
            }
        }
        drop(hand_out);
        for c in cancelled {
            c.job.deliver(c.index, Err(Error::Interrupted));
        }
        for (c, e) in unnamed {
            c.job.deliver(c.index, Err(e));
        }
    }

    fn wait_for_events(&mut self, timeout: Duration) {
        // The wake pipe, then per worker its socket and its pidfd (if it has one).
        let mut fds = Vec::with_capacity(1 + 2 * self.workers.len());
        fds.push(PollFd::new(self.shared.wake.0.as_fd(), Events::IN));
        for w in &self.workers {
            let mut events = Events::IN;
            if w.out_pos < w.out.len() {
                events |= Events::OUT;
            }
            fds.push(PollFd::new(w.sock.as_fd(), events));
            if let Some(pidfd) = &w.pidfd {
                fds.push(PollFd::new(pidfd.as_fd(), Events::IN));
            }
        }
        if poll(&mut fds, timeout).is_err() {
            return;
        }
        let revents: Vec<Events> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !revents[0].is_empty() {
            self.shared.drain_wake();
        }
        let mut answers = Vec::new();
        let mut exited = Vec::new();
        let mut next = 1;
        for (i, w) in self.workers.iter_mut().enumerate() {
            let sock = revents[next];
            next += 1;
            let pidfd = if w.pidfd.is_some() {
                next += 1;
                revents[next - 1]
            } else {
                Events::NONE
            };
            if sock.contains(Events::OUT) {
                w.flush();
            }
            if sock.intersects(Events::IN | Events::HUP | Events::ERR) {
                answers.extend(read_answers(w).into_iter().map(|a| (i, a)));
            }
            if !pidfd.is_empty() || w.pidfd.is_none() {
                exited.push(i);
            }
        }
        for (wi, a) in answers {
            self.handle_answer(wi, a);
        }
        // Highest index first, so removals keep the other indexes valid.
        for i in exited.into_iter().rev() {
            self.check_exit(i);
        }
    }
}
