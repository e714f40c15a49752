//! The input side of `imap`: the caller's iterator, read a chunk at a time as results are taken,
//! so work starts on the first item and an endless or slow input works with bounded memory.

use super::result::Sink;
use super::shared::{Chunk, Shared};
use crate::codec;
use crate::error::{Error, Result};
use serde::Serialize;
use std::sync::Arc;

/// Reads an `imap` call's input, one chunk at a time.
pub(crate) trait Feed {
    /// The next chunk: its encoded items and how many there are; `None` at the end of the input.
    fn next_chunk(&mut self) -> Option<(Result<Vec<u8>>, usize)>;
}

/// A [`Feed`] over any iterator of serializable items.
pub(crate) struct ChunkFeed<I: Iterator> {
    /// Fused: after its first `None` the input is never called again (so only the last chunk
    /// can be short).
    items: std::iter::Fuse<I>,
    chunksize: usize,
    buf: Vec<I::Item>,
}

impl<I: Iterator> ChunkFeed<I> {
    pub(crate) fn new(items: I, chunksize: usize) -> ChunkFeed<I> {
        ChunkFeed {
            items: items.fuse(),
            chunksize,
            buf: Vec::with_capacity(chunksize.min(1024)),
        }
    }
}

impl<I> Feed for ChunkFeed<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn next_chunk(&mut self) -> Option<(Result<Vec<u8>>, usize)> {
        self.buf.clear();
        self.buf.extend(self.items.by_ref().take(self.chunksize));
        if self.buf.is_empty() {
            return None;
        }
        let mut payload = Vec::new();
        let encoded = codec::encode_into(&self.buf, &mut payload).map(|()| payload);
        let n = self.buf.len();
        self.buf.clear();
        Some((encoded, n))
    }
}

/// An `imap` call's open input: where its chunks go and what they carry.
pub(crate) struct Input<'a> {
    pub(crate) feed: Box<dyn Feed + 'a>,
    pub(crate) pool: Arc<Shared>,
    pub(crate) job_id: u64,
    pub(crate) func: usize,
    /// The function's name (for timelines).
    pub(crate) function: &'static str,
    pub(crate) generation: u64,
    pub(crate) next_index: usize,
    /// The index of the next chunk's first item.
    pub(crate) next_first: usize,
}

impl Input<'_> {
    /// Queues chunk `index` (its items `first..first + tasks`) of the job `sink`, of the call
    /// started at interrupt `epoch`. `Err` if the pool no longer takes it.
    pub(crate) fn submit(
        &self,
        sink: Arc<dyn Sink>,
        (index, first, tasks): (usize, usize, usize),
        payload: Vec<u8>,
        epoch: u64,
    ) -> Result<()> {
        self.pool.push(
            Chunk {
                job: sink,
                job_id: self.job_id,
                index,
                func: self.func,
                payload,
                generation: self.generation,
                epoch,
                first,
                tasks,
                function: self.function,
            },
            true,
        )
    }

    /// The input is read to its end, or abandoned: the pool stops waiting for it.
    pub(crate) fn close(self) {
        let mut inner = self.pool.lock();
        inner.open_feeds = inner.open_feeds.saturating_sub(1);
        drop(inner);
        self.pool.wake();
    }
}

/// True for the errors after which a pool takes no more chunks.
pub(crate) fn stops_input(e: &Error) -> bool {
    matches!(e, Error::PoolNotRunning | Error::PoolTerminated)
}
