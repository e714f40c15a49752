//! [`IMapIterator`]: where the answers of an `imap` job arrive, and the lazy reading of its
//! input.

use super::feed::Input;
use super::manager_thread::on_manager_thread_of;
use super::result::{CANCELS, Sink, lock};
use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::{self, Watch};
use crate::sys::Deadline;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

struct IState<R> {
    ordered: bool,
    /// Ordered mode: finished chunks not yet reached.
    chunks: BTreeMap<usize, Result<Vec<R>>>,
    next_chunk: usize,
    /// Items ready to be yielded, each with the number of input items it stands for (a failed
    /// chunk stands for all of its items).
    ready: VecDeque<(Result<R>, usize)>,
    delivered: usize,
    /// Chunks and items submitted so far, and items yielded: their difference is the read-ahead.
    submitted: usize,
    submitted_items: usize,
    yielded_items: usize,
    chunksize: usize,
    /// The last, shorter chunk: its index and length.
    short: Option<(usize, usize)>,
}

impl<R> IState<R> {
    fn items_of(&self, index: usize) -> usize {
        match self.short {
            Some((i, n)) if i == index => n,
            _ => self.chunksize,
        }
    }

    fn push_chunk(&mut self, index: usize, chunk: Result<Vec<R>>) {
        match chunk {
            Ok(v) => self.ready.extend(v.into_iter().map(|r| (Ok(r), 1))),
            Err(e) => {
                let n = self.items_of(index);
                self.ready.push_back((Err(e), n));
            }
        }
    }
}

/// Receives the chunks of an `imap` job.
pub(crate) struct IMapShared<R> {
    state: Mutex<IState<R>>,
    cv: Condvar,
    cancelled: AtomicBool,
}

impl<R> IMapShared<R> {
    pub(crate) fn new(ordered: bool, chunksize: usize) -> IMapShared<R> {
        IMapShared {
            state: Mutex::new(IState {
                ordered,
                chunks: BTreeMap::new(),
                next_chunk: 0,
                ready: VecDeque::new(),
                delivered: 0,
                submitted: 0,
                submitted_items: 0,
                yielded_items: 0,
                chunksize,
                short: None,
            }),
            cv: Condvar::new(),
            cancelled: AtomicBool::new(false),
        }
    }
}

impl<R: DeserializeOwned + Send> Sink for IMapShared<R> {
    fn deliver(&self, index: usize, result: Result<&[u8]>) {
        let decoded = result.and_then(codec::decode::<Vec<R>>);
        let mut st = lock(&self.state);
        st.delivered += 1;
        if st.ordered {
            st.chunks.insert(index, decoded);
            loop {
                let next = st.next_chunk;
                let Some(chunk) = st.chunks.remove(&next) else {
                    break;
                };
                st.next_chunk += 1;
                st.push_chunk(next, chunk);
            }
        } else {
            st.push_chunk(index, decoded);
        }
        drop(st);
        self.cv.notify_all();
    }
    fn cancelled(&self) -> bool {
        self.cancelled.load(SeqCst)
    }
}

/// How long one `next` goes on reading the input while a result is already there to return.
const READ_BUDGET: Duration = Duration::from_millis(2);

/// The iterator of [`crate::Pool::imap`] and [`crate::Pool::imap_unordered`]: yields each result
/// (or the error of a failed task, then goes on) as it becomes available.
///
/// The input is read lazily, by the thread that iterates: the call itself and each step read
/// ahead until [`crate::PoolBuilder::readahead`] chunks are submitted and not yet taken (a step
/// stops reading early to return a result that is ready when the input is slow). So an endless
/// input works (`pool.imap(f, 0u64..).take(10)`), a slow source's first result comes as soon as
/// its first item is done, and memory stays bounded. Deviation from Python, whose task thread
/// reads the whole input at once (CPython bpo-40110). The iterator borrows the input (`'a`), and
/// is not `Send` (the input need not be).
///
/// After [`crate::Pool::close`] the input is still read; [`crate::Pool::join`] stops reading it:
/// the iterator then yields what was submitted and ends with [`Error::PoolNotRunning`].
///
/// ```
/// fn double(x: i32) -> i32 { 2 * x }
/// let pool = multiprocessing::Pool::new(2).unwrap();
/// let got: Vec<i32> = pool.imap(double, 0..5).unwrap().map(|r| r.unwrap()).collect();
/// assert_eq!(got, vec![0, 2, 4, 6, 8]);
/// let first: Vec<u64> = pool.imap(|x: u64| x + 1, 0u64..).unwrap().take(3).map(Result::unwrap).collect();
/// assert_eq!(first, vec![1, 2, 3]);
/// ```
pub struct IMapIterator<'a, R> {
    pub(crate) shared: Arc<IMapShared<R>>,
    pub(crate) input: Option<Input<'a>>,
    pub(crate) readahead_items: usize,
    pub(crate) pool: usize,
    /// The interrupt epoch of the call (see `interrupt::epoch`).
    pub(crate) epoch: u64,
    pub(crate) finished: bool,
}

impl<R> std::fmt::Debug for IMapIterator<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<IMapIterator finished={}>", self.finished)
    }
}

impl<R: DeserializeOwned + Send + 'static> IMapIterator<'_, R> {
    /// Reads ahead at the start of the call (bounded by the read-ahead and the read budget).
    pub(crate) fn start(&mut self) {
        let start = Instant::now();
        while self.input.is_some() && self.room() && start.elapsed() < READ_BUDGET {
            self.read_chunk();
        }
    }

    fn room(&self) -> bool {
        let st = lock(&self.shared.state);
        st.submitted_items - st.yielded_items < self.readahead_items
    }

    /// Reads one chunk of the input and submits it (or ends the input).
    fn read_chunk(&mut self) {
        let Some(input) = &mut self.input else {
            return;
        };
        let Some((payload, n)) = input.feed.next_chunk() else {
            self.close_input();
            return;
        };
        let index = input.next_index;
        input.next_index += 1;
        // Counted whether or not the chunk could be encoded: the next ones keep their indexes.
        let first = input.next_first;
        input.next_first += n;
        {
            let mut st = lock(&self.shared.state);
            st.submitted += 1;
            st.submitted_items += n;
            if n < st.chunksize {
                st.short = Some((index, n));
            }
        }
        let sink: Arc<dyn Sink> = self.shared.clone();
        let epoch = self.epoch;
        if let Err(e) = payload.and_then(|p| input.submit(sink, (index, first, n), p, epoch)) {
            let stop = super::feed::stops_input(&e);
            self.shared.deliver(index, Err(e));
            if stop {
                self.close_input();
            }
        }
    }

    fn close_input(&mut self) {
        if let Some(input) = self.input.take() {
            input.close();
        }
    }
}

impl<R> IMapIterator<'_, R> {
    /// The caller gives up: chunks not sent to a worker are skipped (a cluster worker runs those
    /// already queued to it; their results are dropped), the input is no longer read.
    fn stop(&mut self) {
        if !self.shared.cancelled.swap(true, SeqCst) {
            CANCELS.fetch_add(1, SeqCst);
        }
        self.finished = true;
        if let Some(input) = self.input.take() {
            input.close();
        }
    }
}

impl<R: DeserializeOwned + Send + 'static> IMapIterator<'_, R> {
    /// The next result, waiting at most `timeout`: `None` at the end, `Some(Err(Error::Timeout))`
    /// if nothing arrived in time (Python's `next(timeout)`; the iterator can be polled again).
    /// The timeout does not bound the time spent reading the input.
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// use std::time::Duration;
    /// fn slow(x: u64) -> u64 { std::thread::sleep(Duration::from_millis(300)); x }
    /// let pool = Pool::new(1).unwrap();
    /// let mut it = pool.imap(slow, vec![7]).unwrap();
    /// assert!(matches!(it.next_timeout(Duration::from_millis(20)), Some(Err(Error::Timeout))));
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)).unwrap().unwrap(), 7);
    /// assert!(it.next().is_none());
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.next_until(Deadline::after(timeout))
    }

    fn next_until(&mut self, deadline: Deadline) -> Option<Result<R>> {
        if self.finished {
            return None;
        }
        let watch = Watch::new();
        let start = Instant::now();
        loop {
            // An interrupt since the call started (reported here or by another call) ends it:
            // its queued chunks were cancelled, its running ones killed.
            if watch.is_raised() || interrupt::raised_since(self.epoch) {
                self.stop();
                return Some(Err(watch.report()));
            }
            let mut st = lock(&self.shared.state);
            let room = st.submitted_items - st.yielded_items < self.readahead_items;
            if self.input.is_some()
                && room
                && (st.ready.is_empty() || start.elapsed() < READ_BUDGET)
            {
                drop(st);
                self.read_chunk();
                continue;
            }
            if let Some((item, weight)) = st.ready.pop_front() {
                st.yielded_items += weight;
                drop(st);
                crate::host::sync_fence_with(crate::runtime::pool_worker_pids);
                return Some(item);
            }
            if self.input.is_none() && st.delivered >= st.submitted {
                self.finished = true;
                return None;
            }
            let Some(slice) = deadline.slice() else {
                return Some(Err(Error::Timeout));
            };
            if on_manager_thread_of(self.pool) {
                return Some(Err(Error::CallbackDeadlock));
            }
            drop(
                self.shared
                    .cv
                    .wait_timeout(st, slice)
                    .unwrap_or_else(|e| e.into_inner())
                    .0,
            );
        }
    }
}

impl<R: DeserializeOwned + Send + 'static> Iterator for IMapIterator<'_, R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        self.next_until(Deadline::never())
    }
}

impl<R> Drop for IMapIterator<'_, R> {
    fn drop(&mut self) {
        // Nobody will read the rest: the pool skips the chunks not sent to a worker yet.
        self.stop();
    }
}
