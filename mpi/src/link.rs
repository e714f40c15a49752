//! MPI sends of the relay, and the idle backoff of its loops (no busy polling: the loops sleep
//! in `ppoll` between `MPI_Improbe`s, from 20 µs up to 2 ms when nothing happens).

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use rustmp_mpi::frame::Frame;
use rustmp_mpi::{PIECE, TAG_TO_BRIDGE, TAG_TO_RANK, mac};
use std::time::Duration;

/// The longest sleep of an idle loop.
pub const IDLE_MAX: Duration = Duration::from_millis(2);
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
