//! The parts of `rustmp-mpi` that need no MPI: the frame protocol between the front (the
//! library's pool), the bridge (rank 0) and the ranks, its MACs and handshake, the payloads, and
//! the worker process a rank runs. The `rustmp-mpi` binary adds the MPI loops (feature `mpi`).
//!
//! The protocol, in short (all integers little-endian):
//! - A frame is a 16-byte header `rank: u32, kind: u32, len: u64` and `len` bytes of payload
//!   ([`frame`]). `rank` is the worker rank it goes to or comes from (0 = the bridge itself).
//! - Front ↔ bridge: one Unix stream socket. The bridge connects, the front sends
//!   [`mac::MAGIC`] + a 32-byte nonce, the bridge answers [`mac::MAGIC`] + `HMAC-SHA256(secret,
//!   "rustmp-mpi bridge proof v1" || nonce)`; then frames both ways.
//! - Bridge → rank (MPI tag [`TAG_TO_RANK`]): one message per frame, the frame followed by
//!   `HMAC-SHA256(link_key, seq || dest || frame)` ([`mac::frame_mac`]); ranks drop anything
//!   else. Rank → bridge (tag [`TAG_TO_BRIDGE`]): a byte stream of frames, cut into messages of
//!   at most [`PIECE`] bytes (eager-sized, so a rank never blocks on the bridge).

pub mod child;
pub mod frame;
pub mod lines;
pub mod mac;
pub mod outbox;
pub mod proto;
pub mod stage;
pub mod sys;
pub mod wake;

/// The MPI tag of bridge → rank messages.
pub const TAG_TO_RANK: i32 = 1;
/// The MPI tag of rank → bridge messages.
pub const TAG_TO_BRIDGE: i32 = 2;
/// The largest rank → bridge MPI message: under Open MPI's smallest eager limit (vader, 4 KiB),
/// so such a send completes without the bridge posting a receive (no deadlock with a large
/// bridge → rank send in flight).
pub const PIECE: usize = 4000;
/// The file descriptor on which a worker process finds its end of the socket to its rank.
pub const WORKER_FD: i32 = 3;
