//! MPI sends of the relay, and the idle backoff of its loops (no busy polling: the loops sleep
//! in `ppoll` between `MPI_Improbe`s, on their own descriptors and Open MPI's TCP sockets
//! ([`rustmp_mpi::wake`]), with a timeout from 20 µs up to 10 ms when nothing happens).

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use rustmp_mpi::frame::Frame;
use rustmp_mpi::sys::{Watch, poll};
use rustmp_mpi::wake::MpiSockets;
use rustmp_mpi::{PIECE, TAG_TO_BRIDGE, TAG_TO_RANK, mac};
use std::os::fd::RawFd;
use std::time::Duration;

/// The longest sleep of an idle loop.
pub const IDLE_MAX: Duration = Duration::from_millis(10);
const IDLE_MIN: Duration = Duration::from_micros(20);

/// How long an idle loop sleeps next.
#[derive(Debug, Default)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// Something happened: the next wait is 0.
    pub fn reset(&mut self) {
        self.next = Duration::ZERO;
    }

    /// The next wait (doubling up to [`IDLE_MAX`]).
    pub fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (now * 2).clamp(IDLE_MIN, IDLE_MAX);
        now
    }
}

/// Rank → bridge: the frame's bytes in pieces of at most [`PIECE`].
pub fn to_bridge(world: &SimpleCommunicator, frame: &Frame) {
    let bytes = frame.encode();
    let bridge = world.process_at_rank(0);
    for piece in bytes.chunks(PIECE) {
        bridge.send_with_tag(piece, TAG_TO_BRIDGE);
    }
}

/// Bridge → rank: the frame and its MAC (for the `seq`-th frame to `dest`), as one message.
pub fn to_rank(world: &SimpleCommunicator, key: &[u8], seq: u64, dest: u32, frame: &Frame) {
    let mut bytes = frame.encode();
    let tag = mac::frame_mac(key, seq, dest, &bytes);
    bytes.extend_from_slice(&tag);
    raw_to_rank(world, dest, &bytes);
}

/// Bridge → rank without a MAC (the tests' forged frames), or a rank → rank `PeerRaw`.
pub fn raw_to_rank(world: &SimpleCommunicator, dest: u32, bytes: &[u8]) {
    world
        .process_at_rank(dest as i32)
        .send_with_tag(bytes, TAG_TO_RANK);
}

/// Waits (`ppoll`) on `own` and on Open MPI's TCP sockets for at most `wait`; which of `own`
/// are ready, and whether an MPI socket woke the wait.
pub fn wait(
    own: &[Watch],
    sockets: &mut MpiSockets,
    wait: Duration,
) -> std::io::Result<(Vec<bool>, bool)> {
    let mine: Vec<RawFd> = own.iter().map(|w| w.fd).collect();
    let mut watches = own.to_vec();
    watches.extend(sockets.fds(&mine).iter().map(|&fd| Watch {
        fd,
        read: true,
        write: false,
    }));
    let mut ready = poll(&watches, wait)?;
    let woke = ready[own.len()..].iter().any(|&r| r);
    ready.truncate(own.len());
    Ok((ready, woke))
}
