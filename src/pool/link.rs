//! The manager's side of one worker: its process, its socket, the frames queued to it, the
//! chunks it was sent and not yet answered, and the answers read back from it.

use super::shared::Chunk;
use super::worker::{self, HEADER};
use crate::sys::{self, Io};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answer frames up to this size are read through the worker's small input buffer; a larger body
/// is read straight into a buffer of its exact size (one copy, freed with the answer).
const STAGING: usize = 64 * 1024;

/// A large answer being read straight into its own buffer (`body` filled up to `filled`).
pub(super) struct Partial {
    pub(super) answer: Answer,
    pub(super) filled: usize,
}

pub(super) struct Worker {
    pub(super) pid: u32,
    pub(super) name: String,
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) sock: OwnedFd,
    pub(super) inbuf: Vec<u8>,
    pub(super) partial: Option<Partial>,
    /// Its initializer has succeeded (always true without one): it may take work.
    pub(super) ready: bool,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    /// The chunks sent to it and not yet answered, oldest first: it runs them in order, so the
    /// oldest is the one it runs. A chunk sent behind another keeps its payload, to go to
    /// another worker if this one dies before it starts it (see [`Worker::depth`]).
    pub(super) in_flight: VecDeque<Chunk>,
    /// How many chunks it may have in flight: 1 for a local worker; a cluster worker more
    /// ([`PIPELINE`]) while its chunks are short (see [`Worker::has_room`]).
    pub(super) depth: usize,
    /// When the oldest chunk in flight could start: sent to it idle, or its predecessor answered.
    pub(super) since: Instant,
    /// The call (job id) whose chunk it answered last, if that chunk took under
    /// [`SHORT_CHUNK`] from then to its answer: only that call's chunks are queued behind
    /// another (a new call's first chunk goes out alone, however short the last call's were).
    pub(super) short: Option<u64>,
    pub(super) tasks: usize,
    /// Its row in the pool's timeline.
    pub(super) row: usize,
    pub(super) generation: u64,
    pub(super) retiring: bool,
    /// A spawn worker: the functions defined to it (numbers of `DEFINE` frames sent).
    pub(super) defined: std::collections::HashSet<u64>,
    /// A spawn worker: the objects sent to it, by build-id.
    pub(super) sent: std::collections::HashSet<crate::code::BuildId>,
    /// A cluster pool's worker: its rank (no local process: `pid` is on its host, and `pidfd`
    /// is `None`).
    pub(super) remote: Option<Arc<crate::pool::cluster::Link>>,
    /// A spawn worker of a library loaded at run time: where it makes its stages (from the
    /// environment it was started with), removed once it is reaped.
    pub(super) stages: Option<std::path::PathBuf>,
}

/// A cluster worker's [`Worker::depth`]. Its round trip (front, bridge, MPI, the rank's relay and
/// back) is ~0.3-0.45 ms: with one chunk in flight a map of small chunks waits on the relay
/// (2-5x slower than with 8 in flight; docs/performance.md, the cluster benchmark).
pub(super) const PIPELINE: usize = 8;

/// After a chunk that took longer, a cluster worker is sent one chunk at a time: the round trip
/// is then a small part of a chunk's time (under ~10%), and work is not queued behind long
/// chunks while another worker could take it (long work is balanced as in a local pool). The
/// rule looks at the last chunk of the same call: a call whose chunks grow from short to long
/// can leave up to `PIPELINE - 1` of its chunks behind the first long one.
pub(super) const SHORT_CHUNK: Duration = Duration::from_millis(5);

impl Worker {
    /// It may be sent another chunk of call `next_job`: ready, not retiring, and with room: one
    /// chunk in flight, or up to [`Worker::depth`] while that call's chunks are short, and, with
    /// `maxtasksperchild`,
    /// never more chunks in all than it may run (it retires after its last, nothing behind it).
    pub(super) fn has_room(&self, next_job: u64, maxtasksperchild: Option<usize>) -> bool {
        let sent = self.tasks + self.in_flight.len();
        let depth = if self.short == Some(next_job) {
            self.depth
        } else {
            1
        };
        self.ready
            && !self.retiring
            && self.in_flight.len() < depth
            && maxtasksperchild.is_none_or(|max| sent < max)
    }

    /// Counts `chunk` in flight, its frame queued. The one it runs next drops its payload (were
    /// the worker to die, that chunk fails); one queued behind keeps it, to go to another worker.
    pub(super) fn push_in_flight(&mut self, mut chunk: Chunk) {
        if self.in_flight.is_empty() {
            chunk.payload = Vec::new();
            self.since = Instant::now();
        }
        self.in_flight.push_back(chunk);
    }

    /// The oldest chunk in flight, answered: how long it took says whether chunks are short.
    pub(super) fn answered(&mut self) -> Option<Chunk> {
        let chunk = self.in_flight.pop_front()?;
        self.short = (self.since.elapsed() < SHORT_CHUNK).then_some(chunk.job_id);
        // The next one can no longer go to another worker (if this one dies it is the one it
        // ran): its payload is not needed any more.
        if let Some(next) = self.in_flight.front_mut() {
            next.payload = Vec::new();
        }
        self.since = Instant::now();
        Some(chunk)
    }

    pub(super) fn queue_frame(
        &mut self,
        len: u64,
        job: u64,
        index: u64,
        func: u64,
        payload: &[u8],
    ) {
        self.out
            .extend_from_slice(&worker::header(len, job, index, func));
        self.out.extend_from_slice(payload);
    }

    /// Writes what it can of the pending output. `false` if the worker's socket is closed.
    pub(super) fn flush(&mut self) -> bool {
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

    pub(super) fn retire(&mut self) {
        if !self.retiring {
            self.retiring = true;
            self.queue_frame(0, 0, 0, 0, &[]);
            self.flush();
        }
    }
}

/// A frame read back from a worker.
pub(super) struct Answer {
    pub(super) job_id: u64,
    pub(super) index: u64,
    pub(super) status: u64,
    pub(super) body: Vec<u8>,
}

/// Reads what the worker sent and splits it into answers. Small frames go through the worker's
/// staging buffer; a large body is read straight into a buffer of its own size, so a large result
/// costs one buffer in this process, not a grown staging buffer kept for the pool's life.
pub(super) fn read_answers(w: &mut Worker) -> Vec<Answer> {
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
