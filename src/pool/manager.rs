//! The pool's manager thread: owns the workers, keeps their number up, hands chunks to ready idle
//! ones, collects answers, notices dead workers and replaces them at once.

use super::result::{CANCELS, Sink};
use super::task::{STATUS_ERROR, STATUS_INIT_FAILED, STATUS_OK, STATUS_PANIC, STATUS_READY};
use super::worker::{self, HEADER};
use crate::codec;
use crate::error::{Error, Result, TaskError};
use crate::interrupt;
use crate::panic::PanicWire;
use crate::runtime::{self, Kind, Spawn};
use crate::sys::{self, Io};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::cell::Cell;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

thread_local! {
    /// On a pool's manager thread (where callbacks run): that pool's id.
    static MANAGER_OF: Cell<usize> = const { Cell::new(0) };
}

/// True on the manager thread of pool `id`: a wait there for that pool's results would never end.
pub(crate) fn on_manager_thread_of(id: usize) -> bool {
    MANAGER_OF.with(Cell::get) == id
}

/// Answer frames up to this size are read through the worker's small input buffer; a larger body
/// is read straight into a buffer of its exact size (one copy, freed with the answer).
const STAGING: usize = 64 * 1024;

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
}

impl Chunk {
    /// Its call was given up (the caller interrupted, its iterator dropped): it must not run.
    fn given_up(&self) -> bool {
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
    pub(crate) finished_cv: Condvar,
    /// A non-blocking pipe that wakes the manager's `poll`: a byte written, the read end readable.
    wake: (OwnedFd, OwnedFd),
}

impl Shared {
    pub(crate) fn new() -> Result<Shared> {
        use nix::fcntl::OFlag;
        let wake = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| Error::os("pipe2", e as i32))?;
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
            wake,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This pool's id (what [`on_manager_thread_of`] compares).
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
        let _ = nix::unistd::write(&self.wake.1, &[1]);
    }

    fn drain_wake(&self) {
        let mut buf = [0u8; 256];
        loop {
            match nix::unistd::read(&self.wake.0, &mut buf) {
                Err(Errno::EINTR) => continue,
                Ok(n) if n == buf.len() => continue,
                _ => return,
            }
        }
    }
}

/// The pool's settings.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) initializer: Option<Arc<dyn Fn() + Send + Sync>>,
    pub(crate) maxtasksperchild: Option<usize>,
}

struct InFlight {
    job: Arc<dyn Sink>,
    job_id: u64,
    index: usize,
    epoch: u64,
}

/// A large answer being read straight into its own buffer (`body` filled up to `filled`).
struct Partial {
    answer: Answer,
    filled: usize,
}

struct Worker {
    pid: u32,
    name: String,
    pidfd: Option<OwnedFd>,
    sock: OwnedFd,
    inbuf: Vec<u8>,
    partial: Option<Partial>,
    /// Its initializer has succeeded (always true without one): it may take work.
    ready: bool,
    out: Vec<u8>,
    out_pos: usize,
    busy: Option<InFlight>,
    tasks: usize,
    generation: u64,
    retiring: bool,
}

impl Worker {
    fn idle(&self) -> bool {
        self.ready && self.busy.is_none() && !self.retiring
    }

    fn queue_frame(&mut self, len: u64, job: u64, index: u64, func: u64, payload: &[u8]) {
        self.out
            .extend_from_slice(&worker::header(len, job, index, func));
        self.out.extend_from_slice(payload);
    }

    /// Writes what it can of the pending output. `false` if the worker's socket is closed.
    fn flush(&mut self) -> bool {
        while self.out_pos < self.out.len() {
            match sys::send(self.sock.as_raw_fd(), &self.out[self.out_pos..], true) {
                Ok(Io::Done(n)) => self.out_pos += n,
                Ok(Io::WouldBlock) => return true,
                Ok(Io::Closed) | Err(_) => return false,
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > (4 << 20) {
            self.out = Vec::new();
        }
        true
    }

    fn retire(&mut self) {
        if !self.retiring {
            self.retiring = true;
            self.queue_frame(0, 0, 0, 0, &[]);
            self.flush();
        }
    }
}

/// A frame read back from a worker.
struct Answer {
    job_id: u64,
    index: u64,
    status: u64,
    body: Vec<u8>,
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
}

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
        }
    }

    /// Starts the first workers (Python starts them all with the pool).
    pub(crate) fn start(&mut self) -> Result<()> {
        MANAGER_OF.with(|m| m.set(self.shared.id()));
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

    fn spawn_worker(&mut self) -> Result<()> {
        let (mine, theirs) = sys::socketpair()?;
        let (name, identity) = runtime::next_name("ForkPoolWorker");
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
        let body = Box::new(move || {
            for fd in close_in_child {
                // The child's copies of the parent's descriptors: nothing in the child uses them.
                let _ = nix::unistd::close(fd);
            }
            worker::run(child_fd, initializer)
        });
        let (pid, pidfd) = runtime::spawn(
            Spawn {
                name: name.clone(),
                identity,
                daemon: true,
                kind: Kind::PoolWorker,
                bind_to_thread: true,
            },
            body,
        )?;
        drop(theirs);
        sys::set_nonblocking(&mine, true)?;
        self.workers.push(Worker {
            pid,
            name,
            pidfd,
            sock: mine,
            inbuf: Vec::new(),
            partial: None,
            ready: self.config.initializer.is_none(),
            out: Vec::new(),
            out_pos: 0,
            busy: None,
            tasks: 0,
            generation,
            retiring: false,
        });
        Ok(())
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
            let busy = self.workers.iter().any(|w| w.busy.is_some());
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
                        c.job.deliver(
                            c.index,
                            Err(Error::Broken(format!("cannot start a pool worker: {msg}"))),
                        );
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

    /// Hands pending chunks to ready idle workers, in order.
    fn dispatch(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut cancelled = Vec::new();
        // Held while the epochs are checked and the chunks sent (see `interrupt::hand_out`); no
        // callback runs meanwhile (one that blocks in the library may terminate the children).
        let hand_out = interrupt::hand_out();
        for i in 0..self.workers.len() {
            let Some(front) = self.pending.front() else {
                break;
            };
            let w = &mut self.workers[i];
            if !w.idle() {
                continue;
            }
            if w.generation < front.generation {
                // Forked before the task's code was loaded: replace it.
                w.retire();
                continue;
            }
            // The first chunk whose call still wants it.
            let chunk = loop {
                match self.pending.pop_front() {
                    Some(c) if c.given_up() => cancelled.push(c),
                    other => break other,
                }
            };
            let Some(chunk) = chunk else {
                break;
            };
            w.queue_frame(
                chunk.payload.len() as u64,
                chunk.job_id,
                chunk.index as u64,
                chunk.func as u64,
                &chunk.payload,
            );
            w.busy = Some(InFlight {
                job: chunk.job,
                job_id: chunk.job_id,
                index: chunk.index,
                epoch: chunk.epoch,
            });
            w.flush();
        }
        drop(hand_out);
        for c in cancelled {
            c.job.deliver(c.index, Err(Error::Interrupted));
        }
    }

    fn wait_for_events(&mut self, timeout: Duration) {
        // The wake pipe, then per worker its socket and its pidfd (if it has one).
        let mut fds = Vec::with_capacity(1 + 2 * self.workers.len());
        fds.push(PollFd::new(self.shared.wake.0.as_fd(), PollFlags::POLLIN));
        for w in &self.workers {
            let mut events = PollFlags::POLLIN;
            if w.out_pos < w.out.len() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(w.sock.as_fd(), events));
            if let Some(pidfd) = &w.pidfd {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            }
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        if nix::poll::poll(&mut fds, timeout).is_err() {
            return;
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
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
                PollFlags::empty()
            };
            if sock.contains(PollFlags::POLLOUT) {
                w.flush();
            }
            if sock.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
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

    fn handle_answer(&mut self, wi: usize, a: Answer) {
        let w = &mut self.workers[wi];
        if a.status == STATUS_READY {
            w.ready = true;
            self.init_failures = 0;
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
            self.init_failure = Some(err);
            self.init_failures += 1;
            return;
        }
        let Some(inflight) = w.busy.take() else {
            return;
        };
        if inflight.job_id != a.job_id || inflight.index as u64 != a.index {
            return;
        }
        w.tasks += 1;
        let result = match a.status {
            STATUS_OK => Ok(a.body.as_slice()),
            STATUS_PANIC => Err(match codec::decode::<PanicWire>(&a.body) {
                Ok(wire) => Error::Task(task_error(wire, &w.name, w.pid)),
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
        inflight.job.deliver(inflight.index, result);
    }

    /// Reaps worker `i` if it has exited: its in-flight chunk fails with [`Error::WorkerDied`].
    fn check_exit(&mut self, i: usize) {
        let pid = self.workers[i].pid;
        let Ok(Some(code)) = runtime::poll_exit(pid) else {
            return;
        };
        // Answers it sent before dying come first.
        for a in read_answers(&mut self.workers[i]) {
            self.handle_answer(i, a);
        }
        let w = self.workers.remove(i);
        runtime::disown(pid);
        if self.config.initializer.is_some() && !w.ready && !w.retiring {
            // Died in its initializer without a report (exit, abort, a signal): a failure too
            // (a reported failure already marked it retiring).
            self.init_failures += 1;
            self.init_failure = Some(TaskError {
                message: format!("the initializer exited with code {code}"),
                location: None,
                backtrace: String::new(),
                worker: w.name.clone(),
                pid,
            });
        }
        if let Some(inflight) = w.busy {
            // A worker that dies after its call was interrupted was terminated for it.
            let err = if interrupt::raised_since(inflight.epoch) {
                Error::Interrupted
            } else {
                Error::WorkerDied {
                    worker: w.name,
                    pid,
                    exitcode: code,
                }
            };
            inflight.job.deliver(inflight.index, Err(err));
        }
    }

    fn shutdown_idle_workers(&mut self) {
        for w in &mut self.workers {
            w.retire();
        }
        self.await_workers(Duration::from_secs(5));
        self.workers.clear();
    }

    /// Waits up to `grace` for every worker to exit, then SIGKILLs the rest; reaps them all.
    fn await_workers(&self, grace: Duration) {
        let deadline = sys::Deadline::after(grace);
        for w in &self.workers {
            let exited = runtime::wait_exit(w.pid, w.pidfd.as_ref(), deadline, None);
            if !matches!(exited, Ok(Some(_))) {
                let _ = runtime::signal(w.pid, Signal::SIGKILL);
                let hard = sys::Deadline::after(Duration::from_secs(2));
                let _ = runtime::wait_exit(w.pid, w.pidfd.as_ref(), hard, None);
            }
            runtime::disown(w.pid);
        }
    }

    fn terminate(&mut self) {
        for w in &self.workers {
            let _ = runtime::signal(w.pid, Signal::SIGTERM);
        }
        self.await_workers(Duration::from_millis(200));
        for w in self.workers.drain(..) {
            if let Some(inflight) = w.busy {
                inflight
                    .job
                    .deliver(inflight.index, Err(Error::PoolTerminated));
            }
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

fn task_error(wire: PanicWire, worker: &str, pid: u32) -> TaskError {
    TaskError {
        message: wire.message,
        location: wire.location,
        backtrace: wire.backtrace,
        worker: worker.to_string(),
        pid,
    }
}

/// Reads what the worker sent and splits it into answers. Small frames go through the worker's
/// staging buffer; a large body is read straight into a buffer of its own size, so a large result
/// costs one buffer in this process, not a grown staging buffer kept for the pool's life.
fn read_answers(w: &mut Worker) -> Vec<Answer> {
    let mut into = Vec::new();
    let mut buf = [0u8; STAGING];
    loop {
        if let Some(p) = &mut w.partial {
            while p.filled < p.answer.body.len() {
                match sys::recv(w.sock.as_raw_fd(), &mut p.answer.body[p.filled..], true) {
                    Ok(Io::Done(n)) => p.filled += n,
                    _ => return into,
                }
            }
            if let Some(p) = w.partial.take() {
                into.push(p.answer);
            }
        }
        let n = match sys::recv(w.sock.as_raw_fd(), &mut buf, true) {
            Ok(Io::Done(n)) => n,
            _ => break,
        };
        w.inbuf.extend_from_slice(&buf[..n]);
        let mut pos = 0;
        while w.inbuf.len() - pos >= HEADER {
            let (len, job_id, index, status) = worker::parse_header(&w.inbuf[pos..pos + HEADER]);
            let len = len as usize;
            let start = pos + HEADER;
            let have = w.inbuf.len() - start;
            if have >= len {
                into.push(Answer {
                    job_id,
                    index,
                    status,
                    body: w.inbuf[start..start + len].to_vec(),
                });
                pos = start + len;
            } else {
                if len > STAGING {
                    let mut body = vec![0u8; len];
                    body[..have].copy_from_slice(&w.inbuf[start..]);
                    w.partial = Some(Partial {
                        answer: Answer {
                            job_id,
                            index,
                            status,
                            body,
                        },
                        filled: have,
                    });
                    pos = w.inbuf.len();
                }
                break;
            }
        }
        w.inbuf.drain(..pos);
        if w.inbuf.is_empty() && w.inbuf.capacity() > 4 * STAGING {
            w.inbuf = Vec::new();
        }
    }
    into
}
