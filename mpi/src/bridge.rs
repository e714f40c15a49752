//! `rustmp-mpi bridge`: rank 0, on the front's host. It reads the pool's secret from its file
//! (and unlinks it), initialises MPI, broadcasts the link key, connects to the front's Unix
//! socket and proves itself (sends the secret), then relays: front frames to ranks (with a MAC), rank frames to the
//! front. It ends the job when the front asks (`Stop` to rank 0) or its socket closes.

use crate::cli::BridgeOptions;
use crate::link::{self, Backoff};
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use rustmp_mpi::child::{Got, read_now};
use rustmp_mpi::frame::{Decoder, Frame, Kind};
use rustmp_mpi::outbox::Outbox;
use rustmp_mpi::proto::Hello;
use rustmp_mpi::sys::Watch;
use rustmp_mpi::wake::MpiSockets;
use rustmp_mpi::{TAG_TO_BRIDGE, mac};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long the ranks have to say goodbye after `Stop`.
const STOP_LIMIT: Duration = Duration::from_secs(3);
/// How long writing the proof to the front may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Why the bridge failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The secret file, or the handshake.
    #[error("{0}")]
    Auth(#[from] mac::AuthError),
    /// MPI was initialised already.
    #[error("MPI was already initialised in this process")]
    AlreadyInitialised,
    /// Not rank 0.
    #[error("the bridge must be rank 0, it is rank {0} (put it first on mpirun's command line)")]
    NotRankZero(i32),
    /// The front's socket.
    #[error("cannot connect to the front's socket {path}: {error}")]
    Connect {
        /// The socket.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// Reading or writing the front's socket.
    #[error("the front's socket: {0}")]
    Front(#[from] std::io::Error),
    /// Ranks that did not leave after `Stop`.
    #[error("ranks {0:?} did not leave within {STOP_LIMIT:?} of the stop")]
    StopTimeout(Vec<usize>),
}

/// Runs the bridge.
pub fn run(options: &BridgeOptions) -> Result<(), BridgeError> {
    let secret = mac::take_secret(&options.secret_file)?;
    let _ = rustmp_mpi::sys::die_with_parent();
    let universe = mpi::initialize().ok_or(BridgeError::AlreadyInitialised)?;
    let world = universe.world();
    if world.rank() != 0 {
        return Err(BridgeError::NotRankZero(world.rank()));
    }
    let mut key = mac::link_key(&secret);
    world.process_at_rank(0).broadcast_into(&mut key[..]);
    match serve(&world, &secret, key, options) {
        Ok(()) => Ok(()),
        Err(error) => {
            // Everything else of the job ends at once rather than waiting for a bridge.
            eprintln!("rustmp-mpi bridge: {error}");
            world.abort(crate::EXIT_FAILED as i32)
        }
    }
}

struct Bridge<'w> {
    world: &'w SimpleCommunicator,
    key: [u8; mac::MAC_LEN],
    size: usize,
    front: UnixStream,
    front_open: bool,
    input: Decoder,
    outbox: Outbox,
    seq: Vec<u64>,
    streams: Vec<Decoder>,
    hello: Vec<bool>,
    bye: Vec<bool>,
    ready: bool,
    stopping: Option<Instant>,
    sockets: MpiSockets,
}

fn serve(
    world: &SimpleCommunicator,
    secret: &[u8],
    key: [u8; mac::MAC_LEN],
    options: &BridgeOptions,
) -> Result<(), BridgeError> {
    let mut front = UnixStream::connect(&options.socket).map_err(|error| BridgeError::Connect {
        path: options.socket.display().to_string(),
        error,
    })?;
    front.set_read_timeout(Some(HANDSHAKE_LIMIT))?;
    front.set_write_timeout(Some(HANDSHAKE_LIMIT))?;
    mac::present(&mut front, secret)?;
    front.set_nonblocking(true)?;
    let size = world.size() as usize;
    let mut bridge = Bridge {
        world,
        key,
        size,
        front,
        front_open: true,
        input: Decoder::default(),
        outbox: Outbox::default(),
        seq: vec![0; size],
        streams: (0..size).map(|_| Decoder::default()).collect(),
        hello: vec![false; size],
        bye: vec![false; size],
        ready: false,
        stopping: None,
        sockets: MpiSockets::default(),
    };
    let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
    let hello = Hello {
        pid: std::process::id(),
        host,
    };
    bridge.forward(Frame::new(0, Kind::Hello, hello.encode()));
    bridge.check_ready();
    let mut backoff = Backoff::default();
    while !bridge.step(&mut backoff)? {}
    // What is left for the front goes out before the job ends (at most 2 s).
    if bridge.front_open && !bridge.outbox.is_empty() {
        bridge.front.set_nonblocking(false)?;
        bridge
            .front
            .set_write_timeout(Some(Duration::from_secs(2)))?;
        let _ = bridge.outbox.flush_into(&mut bridge.front);
    }
    Ok(())
}

impl Bridge<'_> {
    fn forward(&mut self, frame: Frame) {
        if self.front_open {
            self.outbox.push(frame.encode());
        }
    }

    fn error(&mut self, rank: u32, text: String) {
        eprintln!("rustmp-mpi bridge: {text}");
        self.forward(Frame::new(rank, Kind::Error, text.into_bytes()));
    }

    fn check_ready(&mut self) {
        if !self.ready && self.hello[1..].iter().all(|&h| h) {
            self.ready = true;
            let workers = (self.size - 1) as u32;
            self.forward(Frame::new(0, Kind::Ready, workers.to_le_bytes().to_vec()));
        }
    }

    /// One turn of the loop; `Ok(true)` when the job is over.
    fn step(&mut self, backoff: &mut Backoff) -> Result<bool, BridgeError> {
        let mut busy = false;
        for _ in 0..256 {
            let Some(message) = self.world.any_process().immediate_matched_probe() else {
                break;
            };
            busy = true;
            let (bytes, status) = message.matched_receive_vec::<u8>();
            self.on_rank(status.source_rank(), status.tag(), &bytes);
        }
        let wait = if busy { Duration::ZERO } else { backoff.next() };
        let mpi_busy = busy;
        let own = if self.front_open {
            vec![Watch::new(&self.front, !self.outbox.is_empty())]
        } else {
            Vec::new()
        };
        let (_, woke) = link::wait(&own, &mut self.sockets, wait)?;
        if self.front_open {
            busy |= self.read_front();
            match self.outbox.flush_into(&mut self.front) {
                Ok(wrote) => busy |= wrote,
                Err(_) => self.front_closed(),
            }
        }
        let again = self.sockets.note(woke, busy);
        if mpi_busy {
            self.sockets.stale();
        }
        if busy || again {
            backoff.reset();
        }
        if let Some(since) = self.stopping {
            let left: Vec<usize> = (1..self.size).filter(|&r| !self.bye[r]).collect();
            if left.is_empty() {
                return Ok(true);
            }
            if since.elapsed() > STOP_LIMIT {
                return Err(BridgeError::StopTimeout(left));
            }
        }
        Ok(false)
    }

    fn front_closed(&mut self) {
        self.front_open = false;
        self.outbox = Outbox::default();
        self.begin_stop();
    }

    /// Reads and handles what the front sent; whether anything came.
    fn read_front(&mut self) -> bool {
        let mut got = false;
        loop {
            match read_now(&mut self.front) {
                Got::Bytes(bytes) => {
                    got = true;
                    self.input.push(&bytes);
                }
                Got::Nothing => break,
                Got::End => {
                    self.front_closed();
                    return true;
                }
            }
        }
        loop {
            match self.input.next_frame() {
                Ok(Some(frame)) => self.on_front(frame),
                Ok(None) => break,
                Err(error) => {
                    // The front speaks nonsense: nothing it says can be trusted from here.
                    self.error(
                        0,
                        format!("the front sent a bad frame ({error}): ending the job"),
                    );
                    self.front_closed();
                    break;
                }
            }
        }
        got
    }

    fn on_front(&mut self, frame: Frame) {
        if !frame.kind.from_front() {
            return self.error(
                frame.rank,
                format!("the front may not send {:?} frames", frame.kind),
            );
        }
        if frame.rank == 0 {
            if frame.kind == Kind::Stop {
                self.begin_stop();
            } else {
                self.error(
                    0,
                    format!(
                        "a {:?} frame for rank 0 (the bridge runs no worker)",
                        frame.kind
                    ),
                );
            }
            return;
        }
        let rank = frame.rank as usize;
        if rank >= self.size {
            return self.error(
                frame.rank,
                format!("no rank {rank}: the job has ranks 1..{}", self.size - 1),
            );
        }
        if self.stopping.is_some() {
            return self.error(frame.rank, "the job is stopping".to_string());
        }
        if frame.kind == Kind::Raw {
            link::raw_to_rank(self.world, frame.rank, &frame.payload);
        } else {
            link::to_rank(self.world, &self.key, self.seq[rank], frame.rank, &frame);
            self.seq[rank] += 1;
        }
    }

    fn begin_stop(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(Instant::now());
        for rank in 1..self.size {
            let stop = Frame::new(rank as u32, Kind::Stop, Vec::new());
            link::to_rank(self.world, &self.key, self.seq[rank], rank as u32, &stop);
            self.seq[rank] += 1;
        }
    }

    fn on_rank(&mut self, source: i32, tag: i32, bytes: &[u8]) {
        let valid = usize::try_from(source)
            .ok()
            .filter(|&s| s >= 1 && s < self.size);
        let Some(source) = valid.filter(|_| tag == TAG_TO_BRIDGE) else {
            return self.error(
                0,
                format!("dropped an MPI message from rank {source} with tag {tag}"),
            );
        };
        self.streams[source].push(bytes);
        loop {
            match self.streams[source].next_frame() {
                Ok(Some(frame)) => {
                    if !frame.kind.from_rank() || frame.rank as usize != source {
                        let text = format!(
                            "rank {source} sent a {:?} frame as rank {}: dropped",
                            frame.kind, frame.rank
                        );
                        self.error(source as u32, text);
                        continue;
                    }
                    match frame.kind {
                        Kind::Hello => self.hello[source] = true,
                        Kind::Bye => self.bye[source] = true,
                        _ => {}
                    }
                    self.forward(frame);
                    self.check_ready();
                }
                Ok(None) => break,
                Err(error) => {
                    self.streams[source] = Decoder::default();
                    self.error(
                        source as u32,
                        format!("rank {source} sent a bad stream: {error}"),
                    );
                    break;
                }
            }
        }
    }
}
