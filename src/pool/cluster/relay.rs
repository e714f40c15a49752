//! The relay thread: moves `Data` frames between the bridge's socket and each worker's local
//! socketpair (the pool's manager uses the other end as it uses a local spawn worker's
//! socket), never blocking on either side (non-blocking writes, queues, `poll`); writes the
//! workers' output lines, prefixed with the worker and its host; notices a worker's end (its
//! socketpair end is closed) and the job's (every worker's).

use super::echo::Echo;
use super::job::{JobState, read_tail, why_ended};
use super::link::{Ended, Link};
use super::wire::{self, Decoder, Frame};
use crate::runtime;
use crate::sys::poll::{PollFd, poll};
use crate::sys::{self, Events, Io};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Reading the workers' sockets pauses while this much waits for the bridge.
const BACKLOG: usize = 16 << 20;

/// From the front to the relay.
pub(super) enum Command {
    /// A worker for `rank`: the relay's end of its socket.
    Attach {
        rank: u32,
        socket: OwnedFd,
        link: Arc<Link>,
        name: String,
        restart: bool,
    },
    /// End the job (`Stop` to rank 0).
    Stop,
    /// The job is over: end the thread.
    Quit,
}

/// One worker rank.
struct Rank {
    host: String,
    pid: u32,
    socket: Option<OwnedFd>,
    /// Bytes for the worker's socket, from `at`.
    queue: Vec<u8>,
    at: usize,
    link: Option<Arc<Link>>,
    name: String,
    /// It exited: close the socket once the queue is written.
    closing: bool,
    /// Started again, no `Started` yet.
    starting: bool,
    /// Its worker exited with this code (kept apart from the link: it may exit before the
    /// manager attaches a link, or before the link's socket has all its bytes).
    exited: Option<i32>,
}

/// What the relay starts with.
pub(super) struct Parts {
    pub(super) bridge: UnixStream,
    pub(super) input: Decoder,
    /// Frames the start read but did not consume, in order.
    pub(super) early: Vec<Frame>,
    pub(super) mpirun: u32,
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) stderr: Option<OwnedFd>,
    pub(super) tail: Vec<u8>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) wake: OwnedFd,
    pub(super) hosts: Vec<String>,
    pub(super) pids: Vec<u32>,
    pub(super) state: Arc<JobState>,
    /// The interrupt count when the job started (a later interrupt ends the job).
    pub(super) epoch: u64,
    /// Writes the workers' output lines.
    pub(super) echo: Echo,
}

pub(super) struct Relay {
    parts: Parts,
    ranks: Vec<Rank>,
    /// Frames for the bridge, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
    over: bool,
}

impl Relay {
    pub(super) fn new(parts: Parts) -> Relay {
        let ranks = parts
            .hosts
            .iter()
            .zip(&parts.pids)
            .map(|(host, &pid)| Rank {
                host: host.clone(),
                pid,
                socket: None,
                queue: Vec::new(),
                at: 0,
                link: None,
                name: String::new(),
                closing: false,
                starting: false,
                exited: None,
            })
            .collect();
        Relay {
            parts,
            ranks,
            out: Vec::new(),
            out_at: 0,
            over: false,
        }
    }

    pub(super) fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        for frame in std::mem::take(&mut self.parts.early) {
            self.on_frame(frame);
        }
        // What the start read past its last frame.
        self.decode();
        loop {
            let (wake, bridge, stderr, pidfd, socks) = self.wait();
            if wake && !self.commands() {
                return;
            }
            if bridge.intersects(Events::IN | Events::HUP | Events::ERR) && !self.parts.echo.full()
            {
                self.read_bridge(&mut buf);
            }
            if stderr {
                read_tail(&mut self.parts.stderr, &mut self.parts.tail);
            }
            for (r, events) in socks {
                if events.intersects(Events::IN | Events::HUP | Events::ERR) {
                    self.read_worker(r, &mut buf);
                }
                self.write_worker(r);
            }
            self.write_bridge();
            if pidfd && !self.over {
                // mpirun is gone: the bridge's socket closes too (the bridge dies with it).
                self.read_bridge(&mut buf);
            }
            if self.over {
                self.job_over();
                // Only the front's Quit is left to wait for.
                while let Ok(command) = self.parts.commands.recv() {
                    if matches!(command, Command::Quit) {
                        return;
                    }
                }
                return;
            }
        }
    }

    /// Polls everything; which descriptors are ready.
    #[allow(clippy::type_complexity)]
    fn wait(&mut self) -> (bool, Events, bool, bool, Vec<(usize, Events)>) {
        let mut fds = vec![
            PollFd::new(self.parts.wake.as_fd(), Events::IN),
            PollFd::new(
                self.parts.bridge.as_fd(),
                match (self.out_at < self.out.len(), self.parts.echo.full()) {
                    (true, false) => Events::IN | Events::OUT,
                    (true, true) => Events::OUT,
                    (false, false) => Events::IN,
                    (false, true) => Events::NONE,
                },
            ),
        ];
        let stderr_at = self.parts.stderr.as_ref().map(|e| {
            fds.push(PollFd::new(e.as_fd(), Events::IN));
            fds.len() - 1
        });
        let pidfd_at = self.parts.pidfd.as_ref().map(|p| {
            fds.push(PollFd::new(p.as_fd(), Events::IN));
            fds.len() - 1
        });
        let backlog = self.out.len() - self.out_at > BACKLOG;
        let mut socks = Vec::new();
        for (r, rank) in self.ranks.iter().enumerate() {
            if let Some(s) = &rank.socket {
                // A worker that is starting gets the manager's bytes once it has started.
                let mut events = if backlog || rank.closing || rank.starting {
                    Events::NONE
                } else {
                    Events::IN
                };
                if rank.at < rank.queue.len() {
                    events |= Events::OUT;
                }
                socks.push((r, fds.len()));
                fds.push(PollFd::new(s.as_fd(), events));
            }
        }
        // Output waits to be written: look again soon.
        let nap = if self.parts.echo.full() { 10 } else { 1000 };
        let _ = poll(&mut fds, Duration::from_millis(nap));
        let ready = |at: Option<usize>| at.is_some_and(|i| !fds[i].revents().is_empty());
        (
            !fds[0].revents().is_empty(),
            fds[1].revents(),
            ready(stderr_at),
            ready(pidfd_at),
            socks.iter().map(|&(r, i)| (r, fds[i].revents())).collect(),
        )
    }

    /// Handles the front's commands; `false` to end the thread.
    fn commands(&mut self) -> bool {
        let mut buf = [0u8; 64];
        while matches!(
            sys::read_nb(self.parts.wake.as_fd(), &mut buf),
            Ok(Io::Done(_))
        ) {}
        while let Ok(command) = self.parts.commands.try_recv() {
            match command {
                Command::Attach {
                    rank,
                    socket,
                    link,
                    name,
                    restart,
                } => {
                    let Some(slot) = self.ranks.get_mut(rank as usize) else {
                        continue;
                    };
                    if restart {
                        wire::encode_into(&mut self.out, rank, wire::RESTART, &[]);
                        slot.starting = true;
                        slot.exited = None;
                    } else {
                        link.set_pid(slot.pid);
                        if let Some(code) = slot.exited {
                            // It exited before the manager attached: this link ends at once
                            // (dropping the socket closes the manager's end).
                            link.end(Ended::Exit(code));
                            continue;
                        }
                    }
                    let _ = sys::set_nonblocking(&socket, true);
                    slot.socket = Some(socket);
                    slot.queue.clear();
                    slot.at = 0;
                    slot.closing = false;
                    slot.link = Some(link);
                    slot.name = name;
                }
                Command::Stop => {
                    // What the manager wrote before (its workers' EXIT frames) goes first.
                    let mut buf = vec![0u8; 64 * 1024];
                    for r in 0..self.ranks.len() {
                        while self.ranks[r].socket.is_some() && !self.ranks[r].closing {
                            let before = self.out.len();
                            self.read_worker(r, &mut buf);
                            if self.out.len() == before {
                                break;
                            }
                        }
                    }
                    wire::encode_into(&mut self.out, 0, wire::STOP, &[]);
                }
                Command::Quit => return false,
            }
        }
        true
    }

    fn read_bridge(&mut self, buf: &mut [u8]) {
        loop {
            match sys::recv(self.parts.bridge.as_raw_fd(), buf, true) {
                Ok(Io::Done(n)) => self.parts.input.push(&buf[..n]),
                Ok(Io::WouldBlock) => break,
                _ => {
                    self.over = true;
                    break;
                }
            }
        }
        self.decode();
    }

    /// Handles every whole frame decoded so far.
    fn decode(&mut self) {
        loop {
            match self.parts.input.next_frame() {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => break,
                Err(_) => {
                    self.over = true;
                    break;
                }
            }
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        let Some(rank) = self.ranks.get_mut(frame.rank as usize) else {
            return;
        };
        match frame.kind {
            wire::DATA if rank.socket.is_some() && !rank.closing => {
                rank.queue.extend_from_slice(&frame.payload);
            }
            wire::STARTED => {
                rank.exited = None;
                rank.pid = wire::number_and_bytes(&frame.payload).map_or(0, |(p, _)| p);
                rank.starting = false;
                if let Some(link) = &rank.link {
                    link.set_pid(rank.pid);
                }
            }
            wire::OUTPUT => {
                if let Some((stream, line)) = wire::number_and_bytes(&frame.payload) {
                    let who = match rank.name.as_str() {
                        "" => format!("rank {}", frame.rank),
                        name => name.to_string(),
                    };
                    let text = format!("({who} pid={} host={}) ", rank.pid, rank.host);
                    self.parts.echo.worker_line(text, stream, line);
                }
            }
            wire::EXITED => {
                // The link ends once the socket has the worker's last bytes (`write_worker`).
                rank.exited = Some(wire::exit_code(&frame.payload).unwrap_or(-1));
                rank.closing = true;
            }
            wire::START_FAILED if rank.starting => {
                if let Some(link) = &rank.link {
                    link.end(Ended::NotStarted(frame.text()));
                }
                rank.starting = false;
                rank.closing = true;
            }
            wire::ERROR | wire::DROPPED | wire::START_FAILED => {
                let what = match frame.kind {
                    wire::ERROR => "error",
                    wire::DROPPED => "dropped a message",
                    _ => "could not start",
                };
                let line = format!(
                    "(rustmp-mpi rank {} host={}) {what}: {}\n",
                    frame.rank,
                    rank.host,
                    frame.text()
                );
                self.parts.echo.line(2, line.into_bytes());
            }
            wire::BYE | wire::HELLO | wire::READY => {}
            _ => {}
        }
    }

    fn read_worker(&mut self, r: usize, buf: &mut [u8]) {
        let rank = &mut self.ranks[r];
        let Some(socket) = &rank.socket else {
            return;
        };
        match sys::recv(socket.as_raw_fd(), buf, true) {
            Ok(Io::Done(n)) => wire::encode_into(&mut self.out, r as u32, wire::DATA, &buf[..n]),
            Ok(Io::WouldBlock) => {}
            // The manager closed its end: nothing more for this worker.
            _ => rank.closing = true,
        }
    }

    fn write_worker(&mut self, r: usize) {
        let rank = &mut self.ranks[r];
        let Some(socket) = &rank.socket else {
            return;
        };
        let mut broken = false;
        while rank.at < rank.queue.len() {
            match sys::send(socket.as_raw_fd(), &rank.queue[rank.at..], true) {
                Ok(Io::Done(n)) => rank.at += n,
                Ok(Io::WouldBlock) => break,
                _ => {
                    broken = true;
                    break;
                }
            }
        }
        if rank.at == rank.queue.len() {
            rank.queue.clear();
            rank.at = 0;
        }
        if broken || (rank.closing && rank.queue.is_empty()) {
            // The manager sees the end of its socket, and the link says why.
            if let (Some(link), Some(code)) = (&rank.link, rank.exited) {
                link.end(Ended::Exit(code));
            }
            rank.socket = None;
            rank.link = None;
            rank.closing = false;
        }
    }

    fn write_bridge(&mut self) {
        while self.out_at < self.out.len() {
            match sys::send(
                self.parts.bridge.as_raw_fd(),
                &self.out[self.out_at..],
                true,
            ) {
                Ok(Io::Done(n)) => self.out_at += n,
                Ok(Io::WouldBlock) => return,
                _ => {
                    self.over = true;
                    return;
                }
            }
        }
        self.out.clear();
        self.out_at = 0;
    }

    /// The bridge is gone: the job's end is every worker's, with mpirun's reason.
    fn job_over(&mut self) {
        let pid = self.parts.mpirun;
        let soon = sys::Deadline::after(Duration::from_secs(2));
        let _ = runtime::wait_exit(pid, self.parts.pidfd.as_ref(), soon, None);
        read_tail(&mut self.parts.stderr, &mut self.parts.tail);
        let why = why_ended(pid, &self.parts.tail, self.parts.epoch);
        *self
            .parts
            .state
            .dead
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        for rank in &mut self.ranks {
            if let Some(link) = rank.link.take() {
                link.end(Ended::Job(why.clone()));
            }
            rank.socket = None;
        }
    }
}
