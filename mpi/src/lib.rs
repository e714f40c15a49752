//! The parts of `rustmp-mpi` that need no MPI: the frame protocol between the front (the
//! library's pool), the bridge (rank 0) and the ranks, its MACs and handshake, the payloads, and
//! the worker process a rank runs. The `rustmp-mpi` binary adds the MPI loops (feature `mpi`).
//!
//! # The protocol (version 2; all integers little-endian)
//!
//! **Job layout** (the front starts it): `mpirun --mca odls_base_sigkill_timeout 0 --mca btl
//! tcp,self --mca mpi_event_tick_rate 1 -np 1 --host <here>:1 rustmp-mpi bridge --socket S
//! --secret-file F : [-x VAR…] -np N --host h1:s1,h2:s2 rustmp-mpi worker`. `S` is a Unix socket
//! the front listens on, in a 0700 directory; `F` holds the pool's 32-byte secret (0600, this
//! user's; the bridge unlinks it after reading, so the secret never appears on a command line).
//! `btl tcp,self` lets the relay loops sleep on Open MPI's sockets ([`wake`]) and
//! `mpi_event_tick_rate 1` makes Open MPI read them at every progress call (its default reads
//! TCP at most every 10 ms).
//!
//! **Frame** ([`frame`]): a 16-byte header `rank: u32, kind: u32, len: u64`, then `len` bytes
//! (at most 1 GiB). `rank` is the worker rank a frame goes to or comes from, 0 = the bridge.
//!
//! **Handshake** ([`mac`]): the bridge connects to `S` and sends `"RUSTMPB2"` + the 32-byte
//! secret; the front compares it in constant time and closes any connection whose proof is
//! wrong. The front must also check `SO_PEERCRED` (same uid) and accept one connection only,
//! closing its listener. `S` is in a 0700 directory of this user, so only this user's processes
//! can connect, and only one that read the 0600 secret file knows the secret: the front needs no
//! cryptography (the library has none). Then frames both ways.
//!
//! **Front → bridge** (kinds < 16; `rank` ≥ 1 unless said):
//! - `Start`=1 [`proto::Start`]: run a worker (a path on the rank's host, or bytes the rank
//!   stages as an 0700 file in its own 0700 directory, [`stage`]), with argv and extra env; its
//!   socket is fd 3 ([`WORKER_FD`]), stdin /dev/null, stdout/stderr piped to the rank, no other
//!   fd of the rank, `PR_SET_PDEATHSIG`; env = the rank's minus `OMPI_*`/`PMIX_*`/`OPAL_*`.
//!   Answer: `Started` or `StartFailed`.
//! - `Data`=2: bytes for the worker's socket (a byte stream, like a local worker's socket).
//! - `Eof`=3: shut the write side of the worker's socket once the queued bytes are written.
//! - `Signal`=4 (payload `u32` signal number): `kill(worker, sig)`.
//! - `Stop`=5: kill the worker, answer `Exited` (if it ran) + `Bye`, leave the job. To rank 0:
//!   stop every rank, then the bridge ends (mpirun exits 0). The bridge does the same when the
//!   front's socket closes.
//! - `Restart`=6: run the last `Start` again (the staged file is kept). Answer: as `Start`'s.
//! - `Raw`=7, `PeerRaw`=8 ([`proto::PeerRaw`]): for tests only: bytes sent to a rank without a
//!   MAC, or by another rank; the rank must drop them.
//!
//! **Bridge → front** (kinds ≥ 16, plus `Data`):
//! - `Hello`=16 [`proto::Hello`] `(pid, host)`: one per rank, rank 0's own first;
//!   `Ready`=17 (`u32` worker count, `rank` 0) once every rank said hello.
//! - `Started`=18 [`proto::Started`] `(worker pid, program path)`.
//! - `Data`=2: bytes the worker wrote to its socket, in order.
//! - `Output`=19 [`proto::Output`] `(stream 1|2, line)`: one whole line with its `\n`; a
//!   partial line comes when the worker exits (no `\n`), a line over 64 KiB in pieces. A rank's
//!   `Output` and `Data` frames keep the order the rank read them in.
//! - `Exited`=20 [`proto::Exited`] `(code or u32::MAX, signal or 0)`, after the worker's last
//!   `Data` and `Output`.
//! - `Error`=21 (UTF-8): e.g. "cannot start the worker /x: No such file or directory (os error
//!   2)"; `rank` 0 = the bridge's own. `Dropped`=22 (UTF-8): a rank dropped a message it must
//!   not run (wrong MAC, wrong source, runt). `Bye`=23: the rank leaves. `StartFailed`=24
//!   (UTF-8): the answer to a `Start` or `Restart` that failed (never sent otherwise, so a
//!   late `Error`, e.g. about bytes for the previous worker, is never taken for it).
//! - The end of the socket = the job is over (or rank 0 died): mpirun's exit status and stderr
//!   say why ("process rank 3 with PID … on node … exited on signal 9").
//!
//! **Bridge ↔ ranks (MPI)**: after `MPI_Init` the bridge broadcasts `link_key =
//! HMAC-SHA256(secret, "rustmp-mpi link key v1")`. Bridge → rank (tag [`TAG_TO_RANK`]): one
//! message = frame + `HMAC-SHA256(link_key, seq || dest || frame)`, `seq` counting from 0 per
//! rank; a rank runs a frame only from rank 0 with the right MAC and sequence number, else it
//! drops it and reports `Dropped`. Rank → bridge (tag [`TAG_TO_BRIDGE`]): a byte stream of frames
//! cut into messages of at most [`PIECE`] bytes; the bridge drops frames whose `rank` is not the
//! MPI source or whose kind a rank may not send, and anything from outside ranks 1..N.

#![deny(clippy::undocumented_unsafe_blocks)]

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
