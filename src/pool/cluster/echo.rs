//! The workers' output lines, written to this process's stdout and stderr by a thread of their
//! own: the relay only queues them, so a caller holding the stdout lock, or a stdout pipe
//! nobody reads, stops neither the pool's traffic nor its drop (as with local workers, which
//! write to the inherited descriptors). The writes go to fd 1 and 2 directly, whole lines, so
//! they need no lock of `std::io::stdout()`.

use crate::error::{Error, Result};
use crate::sys::Errno;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;

/// While this many bytes wait to be written, the relay stops reading the bridge (the workers
/// then wait, as local workers wait on a full stdout pipe).
const LIMIT: usize = 4 << 20;

/// The relay's end: queues lines for the writer thread.
pub(super) struct Echo {
    lines: mpsc::Sender<(u32, Vec<u8>)>,
    queued: Arc<AtomicUsize>,
}

impl Echo {
    /// Starts the writer thread; it ends once the `Echo` is dropped and its lines are written.
    pub(super) fn start() -> Result<Echo> {
        let (lines, receiver) = mpsc::channel::<(u32, Vec<u8>)>();
        let queued = Arc::new(AtomicUsize::new(0));
        let count = queued.clone();
        std::thread::Builder::new()
            .name("multiprocessing-mpi-output".into())
            .spawn(move || {
                let (out, err) = (std::io::stdout(), std::io::stderr());
                for (stream, line) in receiver {
                    // The handles' descriptors, not their locks.
                    let fd = if stream == 2 {
                        err.as_fd()
                    } else {
                        out.as_fd()
                    };
                    write_all(fd, &line);
                    count.fetch_sub(line.len(), SeqCst);
                }
            })
            .map_err(|e| Error::Os {
                call: "spawn the MPI output thread",
                source: e,
            })?;
        Ok(Echo { lines, queued })
    }

    /// Queues `line` for `stream` (1 or 2).
    pub(super) fn line(&self, stream: u32, line: Vec<u8>) {
        self.queued.fetch_add(line.len(), SeqCst);
        if self.lines.send((stream, line)).is_err() {
            self.queued.store(0, SeqCst);
        }
    }

    /// Queues a worker's output `line` (stream 1 or 2), whole, after `prefix` (who wrote it).
    pub(super) fn worker_line(&self, prefix: String, stream: u32, line: &[u8]) {
        let mut text = prefix.into_bytes();
        text.extend_from_slice(line);
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        self.line(stream, text);
    }

    /// Too much waits: the relay reads no more output for now.
    pub(super) fn full(&self) -> bool {
        self.queued.load(SeqCst) > LIMIT
    }
}

/// Writes all of `bytes` (a closed or broken stream drops the rest, as a print would fail).
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match crate::sys::fd::write(fd, bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
