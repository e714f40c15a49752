//! [`AsyncResult`]: where the answers of an `apply` or `map` job arrive (the answers of an
//! `imap` job arrive in [`super::imap`]), and the callbacks run when it is ready.

use super::manager_thread::on_manager_thread_of;
use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::Deadline;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

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

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
                    Error::Cluster(s) => Error::Cluster(s.clone()),
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
