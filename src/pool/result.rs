//! [`AsyncResult`] and [`IMapIterator`]: where workers' answers arrive.

use super::feed::Input;
use super::manager::on_manager_thread_of;
use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::{self, Watch};
use crate::sys::Deadline;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Receives the answers for the chunks of one job (in the pool's manager thread).
pub(crate) trait Sink: Send + Sync {
    /// Chunk `index` finished: its encoded `Vec<R>`, or why it failed.
    fn deliver(&self, index: usize, result: Result<&[u8]>);
    /// True once the caller gave up (interrupted): its queued chunks need not run.
    fn cancelled(&self) -> bool;
}

/// Calls given up so far, in this process: a pool's manager looks for cancelled chunks in its
/// queue only when this has moved.
pub(crate) static CANCELS: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type OnSuccess<V> = Box<dyn FnOnce(&V) + Send>;
type OnError = Box<dyn FnOnce(&Error) + Send>;

/// Callbacks for [`crate::Pool::apply_async_with`] and friends. They run in the pool's manager
/// thread when the result is ready, before [`AsyncResult::get`] returns it (Python runs them in
/// its result-handler thread). They should be quick: they delay the delivery of other results.
///
/// ```
/// use multiprocessing::{Callbacks, Pool};
/// use std::sync::{Arc, Mutex};
/// fn triple(x: i32) -> i32 { x * 3 }
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let pool = Pool::new(2).unwrap();
/// let r = pool
///     .map_async_with(triple, vec![1, 2, 3], None, Callbacks::new().on_success(move |v: &Vec<i32>| {
///         s.lock().unwrap().extend_from_slice(v)
///     }))
///     .unwrap();
/// assert_eq!(r.get().unwrap(), vec![3, 6, 9]);
/// assert_eq!(*seen.lock().unwrap(), vec![3, 6, 9]);
/// ```
pub struct Callbacks<V> {
    on_success: Option<OnSuccess<V>>,
    on_error: Option<OnError>,
}

impl<V> Default for Callbacks<V> {
    fn default() -> Self {
        Callbacks {
            on_success: None,
            on_error: None,
        }
    }
}

impl<V> Callbacks<V> {
    /// No callbacks.
    ///
    /// ```
    /// let c: multiprocessing::Callbacks<i32> = multiprocessing::Callbacks::new();
    /// # let _ = c;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
    /// Called with the value on success (Python's `callback`).
    ///
    /// ```
    /// let c = multiprocessing::Callbacks::new().on_success(|v: &i32| println!("{v}"));
    /// # let _ = c;
    /// ```
    pub fn on_success(mut self, f: impl FnOnce(&V) + Send + 'static) -> Self {
        self.on_success = Some(Box::new(f));
        self
    }
    /// Called with the error on failure (Python's `error_callback`).
    ///
    /// ```
    /// let c: multiprocessing::Callbacks<i32> =
    ///     multiprocessing::Callbacks::new().on_error(|e| eprintln!("{e}"));
    /// # let _ = c;
    /// ```
    pub fn on_error(mut self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }
}

struct SlotState<R, V> {
    parts: Vec<Option<Vec<R>>>,
    left: usize,
    first_err: Option<Error>,
    outcome: Option<Result<V>>,
    ready: bool,
    successful: bool,
    taken: bool,
    callbacks: Callbacks<V>,
}

/// Collects the chunks of an `apply`/`map` job into one value `V`.
pub(crate) struct Slot<R, V> {
    state: Mutex<SlotState<R, V>>,
    cv: Condvar,
    cancelled: AtomicBool,
    finish: fn(Vec<R>) -> V,
    /// The pool's id: a wait on its manager thread (in a callback) would never end.
    pool: usize,
}

impl<R, V> Slot<R, V> {
    pub(crate) fn new(
        chunks: usize,
        finish: fn(Vec<R>) -> V,
        callbacks: Callbacks<V>,
        pool: usize,
    ) -> Slot<R, V> {
        let slot = Slot {
            state: Mutex::new(SlotState {
                parts: (0..chunks).map(|_| None).collect(),
                left: chunks,
                first_err: None,
                outcome: None,
                ready: false,
                successful: false,
                taken: false,
                callbacks,
            }),
            cv: Condvar::new(),
            cancelled: AtomicBool::new(false),
            finish,
            pool,
        };
        if chunks == 0 {
            slot.complete(Ok(finish(Vec::new())));
        }
        slot
    }

    /// Runs the callback, then publishes the outcome.
    fn complete(&self, outcome: Result<V>) {
        let callbacks = std::mem::take(&mut lock(&self.state).callbacks);
        // A panicking callback must not take the pool's manager thread down with it.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &outcome {
            Ok(v) => {
                if let Some(f) = callbacks.on_success {
                    f(v)
                }
            }
            Err(e) => {
                if let Some(f) = callbacks.on_error {
                    f(e)
                }
            }
        }));
        if let Err(payload) = ran {
            eprintln!(
                "multiprocessing: a pool callback panicked: {}",
                crate::panic::payload_message(payload.as_ref())
            );
        }
        let mut st = lock(&self.state);
        st.successful = outcome.is_ok();
        st.outcome = Some(outcome);
        st.ready = true;
        drop(st);
        self.cv.notify_all();
    }
}

impl<R: DeserializeOwned + Send, V: Send> Sink for Slot<R, V> {
    fn deliver(&self, index: usize, result: Result<&[u8]>) {
        let decoded = result.and_then(codec::decode::<Vec<R>>);
        let done = {
            let mut st = lock(&self.state);
            if st.ready || index >= st.parts.len() || st.parts[index].is_some() {
                return;
            }
            match decoded {
                Ok(v) => st.parts[index] = Some(v),
                Err(e) => {
                    st.parts[index] = Some(Vec::new());
                    if st.first_err.is_none() {
                        st.first_err = Some(e);
                    }
                }
            }
            st.left -= 1;
            if st.left > 0 {
                return;
            }
            match st.first_err.take() {
                Some(e) => Err(e),
                None => {
                    let all: Vec<R> = st
                        .parts
                        .iter_mut()
                        .flat_map(|p| p.take().unwrap_or_default())
                        .collect();
                    Ok((self.finish)(all))
                }
            }
        };
        self.complete(done);
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(SeqCst)
    }
}

/// What [`AsyncResult`] needs from a slot, whatever its chunk type.
pub(crate) trait Outcome<V>: Send + Sync {
    fn wait_ready(&self, deadline: Deadline, watch: &Watch) -> Result<bool>;
    fn take(&self) -> Result<V>;
    fn is_ready(&self) -> bool;
    fn is_successful(&self) -> bool;
    fn cancel(&self);
}

impl<R: DeserializeOwned + Send, V: Send> Outcome<V> for Slot<R, V> {
    fn wait_ready(&self, deadline: Deadline, watch: &Watch) -> Result<bool> {
        let mut st = lock(&self.state);
        loop {
            if watch.is_raised() {
                // The interrupt wins, even over a result that just arrived (the caller is told
                // it was interrupted, and the interrupt is reported once the children are gone).
                // Cancel first, and never hold the result lock while the children are
                // terminated: the manager must see the cancellation before it hands out more.
                drop(st);
                self.cancel();
                return Err(watch.report());
            }
            if st.ready {
                return Ok(true);
            }
            let Some(slice) = deadline.slice() else {
                return Ok(false);
            };
            if on_manager_thread_of(self.pool) {
                return Err(Error::CallbackDeadlock);
            }
            st = self
                .cv
                .wait_timeout(st, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    fn take(&self) -> Result<V> {
        let mut st = lock(&self.state);
        if st.taken {
            return Err(Error::AlreadyTaken);
        }
        match st.outcome.take() {
            Some(Ok(v)) => {
                st.taken = true;
                Ok(v)
            }
            Some(Err(e)) => {
                let again = match &e {
                    Error::Task(t) => Error::Task(t.clone()),
                    Error::WorkerDied {
                        worker,
                        pid,
                        exitcode,
                    } => Error::WorkerDied {
                        worker: worker.clone(),
                        pid: *pid,
                        exitcode: *exitcode,
                    },
                    Error::PoolTerminated => Error::PoolTerminated,
                    Error::Codec(s) => Error::Codec(s.clone()),
                    Error::Broken(s) => Error::Broken(s.clone()),
                    Error::Interrupted => Error::Interrupted,
                    Error::PoolNotRunning => Error::PoolNotRunning,
                    _ => Error::AlreadyTaken,
                };
                st.outcome = Some(Err(again));
                Err(e)
            }
            None => Err(Error::NotReady),
        }
    }
    fn is_ready(&self) -> bool {
        lock(&self.state).ready
    }
    fn is_successful(&self) -> bool {
        lock(&self.state).successful
    }
    fn cancel(&self) {
        if !self.cancelled.swap(true, SeqCst) {
            CANCELS.fetch_add(1, SeqCst);
        }
    }
}

/// The pending result of [`crate::Pool::apply_async`] or [`crate::Pool::map_async`]: Python's `AsyncResult`.
///
/// Deviation: [`get`](Self::get) moves the value out, so a second successful `get` returns
/// [`Error::AlreadyTaken`] (an error can be read again).
///
/// ```
/// use multiprocessing::Pool;
/// use std::time::Duration;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2).unwrap();
/// let r = pool.apply_async(square, (12,)).unwrap();
/// r.wait();
/// assert!(r.ready());
/// assert!(r.successful().unwrap());
/// assert_eq!(r.get_timeout(Duration::from_secs(5)).unwrap(), 144);
/// ```
pub struct AsyncResult<V> {
    pub(crate) slot: Arc<dyn Outcome<V>>,
}

impl<V> std::fmt::Debug for AsyncResult<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<AsyncResult ready={}>", self.slot.is_ready())
    }
}

impl<V> AsyncResult<V> {
    /// Waits for the result and returns it (or the task's error, or [`Error::Interrupted`]).
    ///
    /// ```
    /// fn one() -> i32 { 1 }
    /// let pool = multiprocessing::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply_async(one, ()).unwrap().get().unwrap(), 1);
    /// ```
    pub fn get(&self) -> Result<V> {
        self.slot.wait_ready(Deadline::never(), &Watch::new())?;
        crate::host::sync_fence_with(crate::runtime::pool_worker_pids);
        self.slot.take()
    }

    /// [`get`](Self::get) for a result only its call holds (`map`, `apply`): if it cannot be
    /// waited for (in a callback of its own pool), its work is cancelled too.
    pub(crate) fn get_owned(self) -> Result<V> {
        let r = self.get();
        if matches!(r, Err(Error::CallbackDeadlock)) {
            self.slot.cancel();
        }
        r
    }

    /// Like [`get`](Self::get), but [`Error::Timeout`] after `timeout` (Python's `multiprocessing.TimeoutError`).
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// use std::time::Duration;
    /// fn slow() { std::thread::sleep(Duration::from_millis(500)) }
    /// let pool = Pool::new(1).unwrap();
    /// let r = pool.apply_async(slow, ()).unwrap();
    /// assert!(matches!(r.get_timeout(Duration::from_millis(50)), Err(Error::Timeout)));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<V> {
        if !self
            .slot
            .wait_ready(Deadline::after(timeout), &Watch::new())?
        {
            return Err(Error::Timeout);
        }
        crate::host::sync_fence_with(crate::runtime::pool_worker_pids);
        self.slot.take()
    }

    /// Waits until the result is ready (an interrupt ends the wait early).
    ///
    /// ```
    /// fn one() -> i32 { 1 }
    /// let pool = multiprocessing::Pool::new(1).unwrap();
    /// let r = pool.apply_async(one, ()).unwrap();
    /// r.wait();
    /// assert!(r.ready());
    /// ```
    pub fn wait(&self) {
        let _ = self.slot.wait_ready(Deadline::never(), &Watch::new());
    }

    /// Waits at most `timeout`; returns whether the result is ready (Python returns None).
    ///
    /// ```
    /// fn one() -> i32 { 1 }
    /// let pool = multiprocessing::Pool::new(1).unwrap();
    /// let r = pool.apply_async(one, ()).unwrap();
    /// assert!(r.wait_timeout(std::time::Duration::from_secs(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        matches!(
            self.slot
                .wait_ready(Deadline::after(timeout), &Watch::new()),
            Ok(true)
        )
    }

    /// True once the result (or error) is there.
    ///
    /// ```
    /// fn one() -> i32 { 1 }
    /// let pool = multiprocessing::Pool::new(1).unwrap();
    /// let r = pool.apply_async(one, ()).unwrap();
    /// r.wait();
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Whether the task succeeded; [`Error::NotReady`] before it finished (as Python's ValueError).
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// fn slow() { std::thread::sleep(std::time::Duration::from_millis(300)) }
    /// let pool = Pool::new(1).unwrap();
    /// let r = pool.apply_async(slow, ()).unwrap();
    /// assert!(matches!(r.successful(), Err(Error::NotReady)));
    /// r.wait();
    /// assert!(r.successful().unwrap());
    /// ```
    pub fn successful(&self) -> Result<bool> {
        if !self.slot.is_ready() {
            return Err(Error::NotReady);
        }
        Ok(self.slot.is_successful())
    }
}

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
        {
            let mut st = lock(&self.shared.state);
            st.submitted += 1;
            st.submitted_items += n;
            if n < st.chunksize {
                st.short = Some((index, n));
            }
        }
        let sink: Arc<dyn Sink> = self.shared.clone();
        if let Err(e) = payload.and_then(|p| input.submit(sink, index, p, self.epoch)) {
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
    /// The caller gives up: chunks not started are skipped, the input is no longer read.
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
        // Nobody will read the rest: the pool skips the chunks not started yet.
        self.stop();
    }
}
