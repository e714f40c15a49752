//! The pool's manager thread: owns the workers, hands chunks to idle ones, collects answers,
//! notices dead workers and replaces stale ones.

use super::result::Sink;
use super::task::{PanicWire, STATUS_ERROR, STATUS_INIT_FAILED, STATUS_OK, STATUS_PANIC};
use super::worker::{self, HEADER};
use crate::codec;
use crate::error::{Error, Result, TaskError};
use crate::runtime::{self, Kind, Spawn};
use crate::sys::{self, Io};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// One chunk of a job, waiting for a worker.
pub(crate) struct Chunk {
    pub(crate) job: Arc<dyn Sink>,
    pub(crate) job_id: u64,
    pub(crate) index: usize,
    pub(crate) func: usize,
    pub(crate) payload: Vec<u8>,
    /// The loaded-objects generation when it was submitted: it needs a worker forked since.
    pub(crate) generation: u64,
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
    /// Set by the manager when it has exited.
    pub(crate) finished: bool,
}

/// What the pool's handle and its manager thread share.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) finished_cv: Condvar,
    wake: OwnedFd,
}

impl Shared {
    pub(crate) fn new() -> Result<Shared> {
        // SAFETY: eventfd returns a fresh fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::last_os("eventfd"));
        }
        Ok(Shared {
            inner: Mutex::new(Inner {
                status: Status::Run,
                queue: VecDeque::new(),
                next_job: 1,
                finished: false,
            }),
            finished_cv: Condvar::new(),
            // SAFETY: fresh fd, ours.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the manager thread.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd.
        unsafe {
            libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    fn drain_wake(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes from our non-blocking eventfd.
        unsafe {
            libc::read(self.wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
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
}

struct Worker {
    pid: u32,
    name: String,
    pidfd: Option<OwnedFd>,
    sock: OwnedFd,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    busy: Option<InFlight>,
    tasks: usize,
    generation: u64,
    retiring: bool,
}

impl Worker {
    fn idle(&self) -> bool {
        self.busy.is_none() && !self.retiring
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
    /// The error an initializer raised, given to the chunks that could not run because of it.
    init_failure: Option<TaskError>,
}

impl Manager {
    pub(crate) fn new(shared: Arc<Shared>, config: Config) -> Manager {
        Manager {
            shared,
            config,
            workers: Vec::new(),
            pending: VecDeque::new(),
            init_failure: None,
        }
    }

    /// Starts the first workers (Python starts them all with the pool).
    pub(crate) fn start(&mut self) -> Result<()> {
        for _ in 0..self.config.processes {
            self.spawn_worker()?;
        }
        Ok(())
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
        close_in_child.push(self.shared.wake.as_raw_fd());
        let child_fd = theirs.as_raw_fd();
        let initializer = self.config.initializer.clone();
        let body = Box::new(move || {
            for fd in close_in_child {
                // SAFETY: closing the child's copies of the parent's fds.
                unsafe { libc::close(fd) };
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
            let status = {
                let mut inner = self.shared.lock();
                self.pending.extend(inner.queue.drain(..));
                inner.status
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
            if status == Status::Close
                && self.pending.is_empty()
                && self.workers.iter().all(|w| w.busy.is_none())
            {
                self.shutdown_idle_workers();
                break;
            }
            self.wait_for_events(Duration::from_millis(100));
        }
        let mut inner = self.shared.lock();
        inner.finished = true;
        drop(inner);
        self.shared.finished_cv.notify_all();
    }

    fn drop_cancelled(&mut self) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for c in self.pending.drain(..) {
            if c.job.cancelled() {
                c.job.deliver(c.index, Err(Error::Interrupted));
            } else {
                kept.push_back(c);
            }
        }
        self.pending = kept;
    }

    fn live_workers(&self) -> usize {
        self.workers.iter().filter(|w| !w.retiring).count()
    }

    fn dispatch(&mut self) {
        loop {
            let mut progress = false;
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
                let Some(chunk) = self.pending.pop_front() else {
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
                });
                w.flush();
                progress = true;
            }
            if self.pending.is_empty() {
                return;
            }
            let missing = self.config.processes.saturating_sub(self.live_workers());
            if missing == 0 {
                if !progress {
                    return;
                }
                continue;
            }
            if let Some(err) = &self.init_failure {
                // The initializer fails: do not fork forever; fail the waiting work instead.
                let err = err.clone();
                for c in self.pending.drain(..) {
                    c.job.deliver(c.index, Err(Error::Task(err.clone())));
                }
                self.init_failure = None;
                return;
            }
            for _ in 0..missing {
                if let Err(e) = self.spawn_worker() {
                    let msg = e.to_string();
                    for c in self.pending.drain(..) {
                        c.job.deliver(
                            c.index,
                            Err(Error::Broken(format!("cannot start a pool worker: {msg}"))),
                        );
                    }
                    return;
                }
            }
        }
    }

    fn wait_for_events(&mut self, timeout: Duration) {
        let mut fds = Vec::with_capacity(1 + 2 * self.workers.len());
        fds.push(libc::pollfd {
            fd: self.shared.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for w in &self.workers {
            let mut events = libc::POLLIN;
            if w.out_pos < w.out.len() {
                events |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: w.sock.as_raw_fd(),
                events,
                revents: 0,
            });
            fds.push(libc::pollfd {
                fd: w.pidfd.as_ref().map_or(-1, |p| p.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = timeout.as_millis() as libc::c_int;
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            return;
        }
        if fds[0].revents != 0 {
            self.shared.drain_wake();
        }
        let mut answers = Vec::new();
        let mut exited = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            let sock = fds[1 + 2 * i].revents;
            let pidfd = fds[2 + 2 * i].revents;
            if sock & libc::POLLOUT != 0 {
                w.flush();
            }
            if sock & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                answers.extend(read_answers(w).into_iter().map(|a| (i, a)));
            }
            if pidfd != 0 || w.pidfd.is_none() {
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
            if let Some(inflight) = w.busy.take() {
                inflight
                    .job
                    .deliver(inflight.index, Err(Error::Task(err.clone())));
            }
            self.init_failure = Some(err);
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
        if let Some(inflight) = w.busy {
            inflight.job.deliver(
                inflight.index,
                Err(Error::WorkerDied {
                    worker: w.name,
                    pid,
                    exitcode: code,
                }),
            );
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
                let _ = runtime::signal(w.pid, libc::SIGKILL);
                let hard = sys::Deadline::after(Duration::from_secs(2));
                let _ = runtime::wait_exit(w.pid, w.pidfd.as_ref(), hard, None);
            }
            runtime::disown(w.pid);
        }
    }

    fn terminate(&mut self) {
        for w in &self.workers {
            let _ = runtime::signal(w.pid, libc::SIGTERM);
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

/// Reads what the worker sent and splits it into answers.
fn read_answers(w: &mut Worker) -> Vec<Answer> {
    let mut into = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while let Ok(Io::Done(n)) = sys::recv(w.sock.as_raw_fd(), &mut buf, true) {
        w.inbuf.extend_from_slice(&buf[..n]);
    }
    let mut pos = 0;
    while w.inbuf.len() - pos >= HEADER {
        let (len, job_id, index, status) = worker::parse_header(&w.inbuf[pos..pos + HEADER]);
        let end = pos + HEADER + len as usize;
        if w.inbuf.len() < end {
            break;
        }
        into.push(Answer {
            job_id,
            index,
            status,
            body: w.inbuf[pos + HEADER..end].to_vec(),
        });
        pos = end;
    }
    w.inbuf.drain(..pos);
    into
}
