//! `rustmp-mpi worker`: ranks 1..N. Each runs one worker process (what the front's `Start`
//! says) and relays: bridge frames (checked: from rank 0, with the right MAC and sequence
//! number, else dropped and reported, never run) to the worker's socket; the worker's socket
//! bytes and output lines to the bridge; its end as `Exited`.

use crate::link::{self, Backoff};
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use rustmp_mpi::child::{self, Got, Worker, read_now};
use rustmp_mpi::frame::{Frame, HEADER, Kind};
use rustmp_mpi::lines::Lines;
use rustmp_mpi::outbox::Outbox;
use rustmp_mpi::proto::{Exited, Hello, Output, PeerRaw, Program, Start, Started, Stream};
use rustmp_mpi::stage::Stage;
use rustmp_mpi::sys::Watch;
use rustmp_mpi::wake::MpiSockets;
use rustmp_mpi::{TAG_TO_RANK, mac};
use std::net::Shutdown;

/// Why a rank failed.
#[derive(Debug, thiserror::Error)]
pub enum RankError {
    /// MPI was initialised already.
    #[error("MPI was already initialised in this process")]
    AlreadyInitialised,
    /// Rank 0 is the bridge's.
    #[error("a worker rank cannot be rank 0 (the bridge comes first on mpirun's command line)")]
    RankZero,
}

/// Runs this rank until the bridge stops it.
pub fn run() -> Result<(), RankError> {
    let _ = rustmp_mpi::sys::die_with_parent();
    let universe = mpi::initialize().ok_or(RankError::AlreadyInitialised)?;
    let world = universe.world();
    if world.rank() == 0 {
        return Err(RankError::RankZero);
    }
    let mut key = [0u8; mac::MAC_LEN];
    world.process_at_rank(0).broadcast_into(&mut key[..]);
    let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
    let mut rank = Rank {
        world: &world,
        rank: world.rank() as u32,
        key,
        seq: 0,
        worker: None,
        stage: None,
        last: None,
        sockets: MpiSockets::default(),
    };
    let hello = Hello {
        pid: std::process::id(),
        host,
    };
    rank.send(Kind::Hello, hello.encode());
    let mut backoff = Backoff::default();
    while !rank.step(&mut backoff) {}
    Ok(())
}

/// The worker with its relay state.
struct Running {
    worker: Worker,
    input: Outbox,
    eof_asked: bool,
    socket_open: bool,
    out: Lines,
    err: Lines,
}

struct Rank<'w> {
    world: &'w SimpleCommunicator,
    rank: u32,
    key: [u8; mac::MAC_LEN],
    seq: u64,
    worker: Option<Running>,
    stage: Option<Stage>,
    last: Option<Start>,
    sockets: MpiSockets,
}

impl Rank<'_> {
    fn send(&self, kind: Kind, payload: Vec<u8>) {
        link::to_bridge(self.world, &Frame::new(self.rank, kind, payload));
    }

    fn error(&self, text: String) {
        eprintln!("rustmp-mpi worker rank {}: {text}", self.rank);
        self.send(Kind::Error, text.into_bytes());
    }

    /// The answer to a `Start` or `Restart` that failed.
    fn start_failed(&self, text: String) {
        eprintln!("rustmp-mpi worker rank {}: {text}", self.rank);
        self.send(Kind::StartFailed, text.into_bytes());
    }

    fn dropped(&self, text: String) {
        eprintln!("rustmp-mpi worker rank {}: dropped {text}", self.rank);
        self.send(Kind::Dropped, text.into_bytes());
    }

    /// One turn; `true` when the rank leaves.
    fn step(&mut self, backoff: &mut Backoff) -> bool {
        let mut busy = false;
        for _ in 0..64 {
            let Some(message) = self.world.any_process().immediate_matched_probe() else {
                break;
            };
            busy = true;
            let (bytes, status) = message.matched_receive_vec::<u8>();
            if let Some(frame) = self.accept(status.source_rank(), status.tag(), &bytes)
                && self.handle(frame)
            {
                return true;
            }
        }
        let wait = if busy {
            std::time::Duration::ZERO
        } else {
            backoff.next()
        };
        if busy {
            self.sockets.stale();
        }
        busy |= self.relay(wait);
        if busy {
            backoff.reset();
        }
        false
    }

    /// Checks a bridge → rank message; the frame when it may be run.
    fn accept(&mut self, source: i32, tag: i32, bytes: &[u8]) -> Option<Frame> {
        if source != 0 || tag != TAG_TO_RANK {
            self.dropped(format!(
                "a message from rank {source} with tag {tag}: only rank 0 (the bridge) sends to ranks"
            ));
            return None;
        }
        if bytes.len() < HEADER + mac::MAC_LEN {
            self.dropped(format!(
                "a message of {} bytes, too short for a frame and its MAC",
                bytes.len()
            ));
            return None;
        }
        let (body, tag) = bytes.split_at(bytes.len() - mac::MAC_LEN);
        if !mac::frame_mac_ok(&self.key, self.seq, self.rank, body, tag) {
            self.dropped(format!(
                "a frame with a wrong MAC (forged, replayed or out of order; expected sequence {}): not run",
                self.seq
            ));
            return None;
        }
        self.seq += 1;
        match Frame::decode_one(body) {
            Ok(frame) if frame.rank == self.rank && frame.kind.from_front() => Some(frame),
            Ok(frame) => {
                self.dropped(format!("a {:?} frame for rank {}", frame.kind, frame.rank));
                None
            }
            Err(error) => {
                self.dropped(format!("a bad frame: {error}"));
                None
            }
        }
    }

    /// Runs a checked frame; `true` when the rank leaves.
    fn handle(&mut self, frame: Frame) -> bool {
        match frame.kind {
            Kind::Start => match Start::decode(&frame.payload) {
                Ok(start) => self.start(start),
                Err(error) => self.start_failed(format!("bad start: {error}")),
            },
            Kind::Restart => match self.last.clone() {
                Some(start) => self.start(start),
                None => self.start_failed("restart before any start".into()),
            },
            Kind::Data => match &mut self.worker {
                Some(running) => running.input.push(frame.payload),
                None => self.error(format!(
                    "{} bytes for a worker that is not running: dropped",
                    frame.payload.len()
                )),
            },
            Kind::Eof => {
                if let Some(running) = &mut self.worker {
                    running.eof_asked = true;
                }
            }
            Kind::Signal => {
                let signal = rustmp_mpi::proto::decode_u32(&frame.payload);
                match (&self.worker, signal) {
                    (Some(running), Ok(signal)) => {
                        if let Err(error) = rustmp_mpi::sys::kill(running.worker.pid, signal as i32)
                        {
                            self.error(format!(
                                "cannot signal worker {}: {error}",
                                running.worker.pid
                            ));
                        }
                    }
                    (None, _) => self.error("signal for a worker that is not running".into()),
                    (_, Err(error)) => self.error(format!("bad signal: {error}")),
                }
            }
            Kind::Stop => {
                if let Some(mut running) = self.worker.take() {
                    let status = running.worker.kill();
                    self.finish(running, status);
                }
                self.send(Kind::Bye, Vec::new());
                return true;
            }
            Kind::PeerRaw => match PeerRaw::decode(&frame.payload) {
                Ok(peer) => link::raw_to_rank(self.world, peer.dest, &peer.bytes),
                Err(error) => self.error(format!("bad peer-raw: {error}")),
            },
            other => self.error(format!("a {other:?} frame is not for a rank")),
        }
        false
    }

    fn start(&mut self, start: Start) {
        if let Some(running) = &self.worker {
            return self.start_failed(format!(
                "a worker is running already (pid {})",
                running.worker.pid
            ));
        }
        let path = match &start.program {
            Program::Path(path) => path.clone(),
            Program::Bytes { name, bytes } => {
                if self.stage.is_none() {
                    match Stage::create() {
                        Ok(stage) => self.stage = Some(stage),
                        Err(error) => {
                            return self.start_failed(format!(
                                "cannot create a staging directory: {error}"
                            ));
                        }
                    }
                }
                let Some(stage) = &self.stage else { return };
                match stage.write_program(name, bytes) {
                    Ok(path) => path,
                    Err(error) => {
                        let dir = stage.dir().display().to_string();
                        return self.start_failed(format!("cannot stage {name} in {dir}: {error}"));
                    }
                }
            }
        };
        // A restart runs the same file again (shipped bytes stay staged).
        self.last = Some(Start {
            program: Program::Path(path.clone()),
            args: start.args.clone(),
            env: start.env.clone(),
        });
        match child::start(&path, &start.args, &start.env) {
            Ok(worker) => {
                let started = Started {
                    pid: worker.pid,
                    program: path,
                };
                self.send(Kind::Started, started.encode());
                self.worker = Some(Running {
                    worker,
                    input: Outbox::default(),
                    eof_asked: false,
                    socket_open: true,
                    out: Lines::default(),
                    err: Lines::default(),
                });
            }
            Err(error) => self.start_failed(format!(
                "cannot start the worker {}: {error}",
                path.display()
            )),
        }
    }

    /// Moves bytes between the worker and the bridge, waiting at most `wait` for something to
    /// happen; whether anything did (or an MPI socket woke the wait: probe again at once).
    fn relay(&mut self, wait: std::time::Duration) -> bool {
        let Some(running) = &mut self.worker else {
            let woke = link::wait(&[], &mut self.sockets, wait).is_ok_and(|(_, woke)| woke);
            return self.sockets.note(woke, false);
        };
        let worker = &mut running.worker;
        let mut watches = Vec::new();
        if running.socket_open {
            watches.push(Watch::new(&worker.socket, !running.input.is_empty()));
        }
        if let Some(out) = &worker.stdout {
            watches.push(Watch::new(out, false));
        }
        if let Some(err) = &worker.stderr {
            watches.push(Watch::new(err, false));
        }
        let woke = match link::wait(&watches, &mut self.sockets, wait) {
            Ok((_, woke)) => woke,
            Err(error) => {
                eprintln!("rustmp-mpi worker rank {}: poll: {error}", self.rank);
                false
            }
        };
        let mut busy = self.pump();
        if let Some(running) = &mut self.worker
            && let Some(status) = running.worker.exited()
            && let Some(running) = self.worker.take()
        {
            busy = true;
            self.finish(running, status);
        }
        let again = self.sockets.note(woke, busy);
        busy || again
    }

    /// Reads what the worker wrote and writes what it is sent; whether anything moved.
    fn pump(&mut self) -> bool {
        let Some(running) = &mut self.worker else {
            return false;
        };
        let mut busy = false;
        let mut frames = Vec::new();
        if running.socket_open {
            loop {
                match read_now(&mut running.worker.socket) {
                    Got::Bytes(bytes) => frames.push((Kind::Data, bytes)),
                    Got::Nothing => break,
                    Got::End => {
                        running.socket_open = false;
                        break;
                    }
                }
            }
            match running.input.flush_into(&mut running.worker.socket) {
                Ok(wrote) => busy |= wrote,
                Err(_) => running.input = Outbox::default(),
            }
            if running.eof_asked && running.input.is_empty() {
                running.eof_asked = false;
                let _ = running.worker.socket.shutdown(Shutdown::Write);
            }
        }
        for (stream, lines) in [
            (Stream::Stdout, &mut running.out),
            (Stream::Stderr, &mut running.err),
        ] {
            let got = match stream {
                Stream::Stdout => running.worker.stdout.as_mut().map(read_now),
                Stream::Stderr => running.worker.stderr.as_mut().map(read_now),
            };
            match got {
                Some(Got::Bytes(bytes)) => {
                    for line in lines.push(&bytes) {
                        frames.push((Kind::Output, Output { stream, line }.encode()));
                    }
                }
                Some(Got::End) => match stream {
                    Stream::Stdout => running.worker.stdout = None,
                    Stream::Stderr => running.worker.stderr = None,
                },
                _ => {}
            }
        }
        busy |= !frames.is_empty();
        for (kind, payload) in frames {
            self.send(kind, payload);
        }
        busy
    }

    /// The worker ended: what it left goes to the bridge, then `Exited`.
    fn finish(&mut self, mut running: Running, status: Exited) {
        // Whatever is still in the socket and the pipes (a bounded drain: a grandchild may hold
        // the pipes open).
        self.worker = Some(running);
        for _ in 0..64 {
            if !self.pump() {
                break;
            }
        }
        let Some(taken) = self.worker.take() else {
            return;
        };
        running = taken;
        for (stream, lines) in [
            (Stream::Stdout, &mut running.out),
            (Stream::Stderr, &mut running.err),
        ] {
            if let Some(line) = lines.finish() {
                self.send(Kind::Output, Output { stream, line }.encode());
            }
        }
        self.send(Kind::Exited, status.encode());
        // A spawn host's stages (a notebook's code), which a killed worker could not remove.
        multiprocessing::code::remove_child_stages(running.worker.pid);
    }
}
