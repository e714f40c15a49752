//! The reader thread: reads every registered pipe as data arrives, keeps the order the processes
//! gave their output (`fork` and `sync` records), and publishes to the sink.

use super::event::{Event, EventSink};
use super::parse::{Finish, MAX_LINE, parse};
use crate::engine::output::StreamName;
use multiprocessing::host::recv_fds;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::EventFd;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// What the kernel's end asks of the reader thread.
pub(super) enum Command {
    Target(Value),
    Barrier(mpsc::Sender<()>),
}

const PARTIAL_AFTER: Duration = Duration::from_millis(50);

/// A child's pipes wait at most this long for its parent's `fork` record.
const HOLD_MAX: Duration = Duration::from_millis(200);
/// Nested `sync` records (a pipe drained at a sync holds a sync of its own) go this deep at most.
const MAX_SYNC_DEPTH: usize = 16;

struct Pipe {
    fd: OwnedFd,
    name: StreamName,
    /// The writing process.
    pid: u32,
    /// Not read until the parent's `fork` record is seen, or until this instant.
    held_until: Option<Instant>,
    /// Parsed outputs not yet published.
    parsed: VecDeque<Event>,
    /// The writer closed the pipe: drop it once `parsed` is empty.
    eof: bool,
    /// Bytes not yet published: an incomplete UTF-8 character, an unfinished escape, a partial line.
    pending: Vec<u8>,
    /// When `pending` last grew.
    since: Instant,
}

/// The reader thread's state.
pub(super) struct Reader {
    socket: OwnedFd,
    wake: Arc<EventFd>,
    sink: EventSink,
    pipes: HashMap<RawFd, Pipe>,
    target: Value,
    /// `fork` records seen before the child's registration arrived.
    forked: HashSet<u32>,
    /// The pipes being published (a `sync` inside one reads the others, not these).
    busy: Vec<RawFd>,
}

impl Reader {
    pub(super) fn new(socket: OwnedFd, wake: Arc<EventFd>, sink: EventSink) -> Reader {
        Reader {
            socket,
            wake,
            sink,
            pipes: HashMap::new(),
            target: Value::Null,
            forked: HashSet::new(),
            busy: Vec::new(),
        }
    }

    /// Reads and publishes until the [`Capture`](super::Capture) is dropped.
    pub(super) fn run(mut self, commands: mpsc::Receiver<Command>) {
        loop {
            let now = Instant::now();
            for p in self.pipes.values_mut() {
                if p.held_until.is_some_and(|t| t <= now) {
                    p.held_until = None;
                }
            }
            let timeout: u16 = if self
                .pipes
                .values()
                .any(|p| !p.pending.is_empty() || p.held_until.is_some())
            {
                20
            } else {
                1000
            };
            let polled: Vec<(RawFd, &Pipe)> = self
                .pipes
                .iter()
                .filter(|(_, p)| p.held_until.is_none())
                .map(|(&fd, p)| (fd, p))
                .collect();
            let mut fds = vec![
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
            ];
            fds.extend(
                polled
                    .iter()
                    .map(|(_, p)| PollFd::new(p.fd.as_fd(), PollFlags::POLLIN)),
            );
            // An interrupted poll is one more turn.
            let _ = poll(&mut fds, PollTimeout::from(timeout));
            let fired = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
            let woken = fired(&fds[0]);
            let ready: Vec<RawFd> = polled
                .iter()
                .zip(&fds[2..])
                .filter(|(_, p)| fired(p))
                .map(|((fd, _), _)| *fd)
                .collect();
            drop(fds);
            if woken {
                let _ = self.wake.read(); // drains the eventfd
            }
            self.accept_registrations();
            for fd in ready {
                self.read_pipe(fd, Finish::Wait);
            }
            self.flush_stale_partials(false);
            self.publish_deferred();
            loop {
                match commands.try_recv() {
                    Ok(Command::Target(t)) => self.target = t,
                    Ok(Command::Barrier(done)) => {
                        self.drain_everything();
                        let _ = done.send(());
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.drain_everything();
                        return;
                    }
                }
            }
        }
    }

    fn drain_everything(&mut self) {
        self.accept_registrations();
        // The pipes that may be read first; their `fork` records release the others in order.
        let fds: Vec<RawFd> = self.pipes.keys().copied().collect();
        for fd in fds {
            self.read_pipe(fd, Finish::Wait);
        }
        for p in self.pipes.values_mut() {
            p.held_until = None;
        }
        let fds: Vec<RawFd> = self.pipes.keys().copied().collect();
        for fd in fds {
            self.read_pipe(fd, Finish::Wait);
        }
        self.flush_stale_partials(true);
        self.publish_deferred();
    }

    /// Publishes what is parsed but not yet published (until none is left).
    fn publish_deferred(&mut self) {
        loop {
            let waiting: Vec<RawFd> = self
                .pipes
                .iter()
                .filter(|(_, p)| !p.parsed.is_empty() || p.eof)
                .map(|(&fd, _)| fd)
                .collect();
            if waiting.is_empty() {
                return;
            }
            for fd in waiting {
                self.publish(fd);
            }
        }
    }

    /// Publishes the pipe's parsed outputs in order.
    fn publish(&mut self, fd: RawFd) {
        self.busy.push(fd);
        while let Some(pipe) = self.pipes.get_mut(&fd) {
            let Some(output) = pipe.parsed.pop_front() else {
                if pipe.eof {
                    self.pipes.remove(&fd);
                }
                break;
            };
            self.emit(output);
        }
        self.busy.pop();
    }

    /// Handles an output: ordering records here, the rest to the sink.
    fn emit(&mut self, output: Event) {
        match output {
            Event::Fork(pid) => {
                let mut found = false;
                for p in self.pipes.values_mut().filter(|p| p.pid == pid) {
                    p.held_until = None;
                    found = true;
                }
                if !found {
                    self.forked.insert(pid);
                }
            }
            Event::Sync(pids) => self.sync(&pids),
            other => (self.sink)(other, &self.target),
        }
    }

    /// Publishes what processes `pids` wrote so far (partial lines included, and what they
    /// themselves waited for) before the writer's next bytes.
    fn sync(&mut self, pids: &[u32]) {
        if self.busy.len() > MAX_SYNC_DEPTH {
            return;
        }
        self.accept_registrations();
        let fds: Vec<RawFd> = self
            .pipes
            .iter()
            .filter(|(fd, p)| pids.contains(&p.pid) && !self.busy.contains(fd))
            .map(|(&fd, _)| fd)
            .collect();
        for &fd in &fds {
            // Its parent's `fork` record came before this `sync` in the parent's stream.
            if let Some(p) = self.pipes.get_mut(&fd) {
                p.held_until = None;
            }
        }
        for fd in fds {
            self.read_pipe(fd, Finish::Text);
        }
    }

    /// Takes every pending registration: `[stdout, stderr]` read ends.
    fn accept_registrations(&mut self) {
        loop {
            // The writer's pid, then its name; `[stdout, stderr]` attached.
            let mut payload = [0u8; 512];
            let Ok((len, fds)) = recv_fds(self.socket.as_fd(), &mut payload) else {
                return; // none pending (the socket does not block)
            };
            let payload = &payload[..len];
            let pid = payload
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            let runtime = payload
                .get(4..)
                .is_some_and(|n| n.starts_with(crate::engine::relay::RUNTIME_NAME.as_bytes()));
            // A child's output waits for its parent's `fork` record, unless it was seen already.
            let held_until =
                (!runtime && !self.forked.remove(&pid)).then(|| Instant::now() + HOLD_MAX);
            for (i, owned) in fds.into_iter().enumerate() {
                if i > 1 {
                    continue; // more than a registration carries: closed
                }
                set_nonblocking(&owned);
                let fd = owned.as_raw_fd();
                self.pipes.insert(
                    fd,
                    Pipe {
                        fd: owned,
                        name: if i == 0 {
                            StreamName::Stdout
                        } else {
                            StreamName::Stderr
                        },
                        pid,
                        held_until,
                        parsed: VecDeque::new(),
                        eof: false,
                        pending: Vec::new(),
                        since: Instant::now(),
                    },
                );
            }
        }
    }

    /// Reads what the pipe holds now; publishes complete lines and records (and a partial line
    /// if `finish` allows).
    fn read_pipe(&mut self, fd: RawFd, finish: Finish) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut eof = false;
        let Some(pipe) = self.pipes.get_mut(&fd) else {
            return;
        };
        if pipe.held_until.is_some() {
            return;
        }
        loop {
            match nix::unistd::read(&pipe.fd, &mut buf) {
                Ok(0) => eof = true,
                Ok(n) => {
                    pipe.pending.extend_from_slice(&buf[..n]);
                    pipe.since = Instant::now();
                    if pipe.pending.len() > 4 * MAX_LINE {
                        break;
                    }
                    continue;
                }
                Err(Errno::EINTR) => continue,
                Err(_) => {} // EAGAIN: nothing more for now
            }
            break;
        }
        let name = pipe.name;
        let finish = if eof { Finish::All } else { finish };
        let (outputs, rest) = parse(std::mem::take(&mut pipe.pending), name, finish);
        pipe.pending = rest;
        pipe.parsed.extend(outputs);
        pipe.eof |= eof;
        self.publish(fd);
    }

    /// Publishes partial lines whose writer paused (or all of them, at a barrier).
    fn flush_stale_partials(&mut self, all: bool) {
        let now = Instant::now();
        let mut touched = Vec::new();
        for (&fd, pipe) in self
            .pipes
            .iter_mut()
            .filter(|(_, p)| p.held_until.is_none())
        {
            if pipe.pending.is_empty() || !(all || now.duration_since(pipe.since) >= PARTIAL_AFTER)
            {
                continue;
            }
            let finish = if all { Finish::All } else { Finish::Text };
            let (outputs, rest) = parse(std::mem::take(&mut pipe.pending), pipe.name, finish);
            pipe.pending = rest;
            pipe.parsed.extend(outputs);
            touched.push(fd);
        }
        for fd in touched {
            self.publish(fd);
        }
    }
}

/// Makes a received pipe non-blocking (its reads never stall the reader); a pipe that refuses
/// stays as it is.
fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}
