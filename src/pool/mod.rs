//! [`Pool`]: a pool of worker processes with Python's `map`, `imap`, `apply_async`, `starmap`…
//!
//! How it works: a manager thread in the parent owns the workers (forked children, named
//! `ForkPoolWorker-N`), each connected by its own socket. It hands each idle worker one chunk of
//! arguments at a time, so it always knows which task a worker is running: if a worker dies mid-task
//! the call gets [`Error::WorkerDied`] at once and the worker is replaced (Python's `Pool` hangs
//! forever there). A task that panics gives [`Error::Task`] with the panic message and the worker's
//! backtrace; the worker goes on serving.
//!
//! Functions: a task names its function by the address of its code, valid in the workers because
//! they are forked copies of the parent. So a pool runs `fn` items and closures that capture
//! nothing; a capturing closure is rejected at compile time (its captured values could not be
//! rebuilt in the worker). Pass data as arguments, or set it up in the initializer:
//!
//! ```compile_fail,E0080
//! let pool = multiprocessing::Pool::new(2).unwrap();
//! let offset = 10;
//! pool.map(move |x: i32| x + offset, 0..4).unwrap(); // error: the closure captures `offset`
//! ```
//!
//! Code loaded after the workers were forked (a shared library `dlopen`ed later, which is what a
//! new notebook cell is) is detected by the count of loaded objects: workers forked before it are
//! replaced before they get such a task.

#[deny(unsafe_code)]
mod feed;
#[deny(unsafe_code)]
mod manager;
#[deny(unsafe_code)]
mod result;
#[deny(clippy::undocumented_unsafe_blocks)]
mod task;
#[deny(clippy::undocumented_unsafe_blocks)]
mod worker;

pub use result::{AsyncResult, Callbacks, IMapIterator};
pub use task::{StarFn, TaskData};

use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::{self, Watch};
use crate::sys;
use feed::{ChunkFeed, Input};
use manager::{Chunk, Config, Manager, Shared, Status, on_manager_thread_of};
use result::{IMapShared, Outcome, Sink, Slot};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use task::{Call, One, Star};

/// A pool of worker processes: Python's `multiprocessing.Pool`.
///
/// Dropping a running pool terminates its workers, as leaving Python's `with Pool(...)` block does.
/// A pool is usable only in the process that created it.
///
/// ```
/// use multiprocessing::Pool;
/// fn square(x: i64) -> i64 { x * x }
/// let pool = Pool::new(4).unwrap();
/// assert_eq!(pool.map(square, 0..10).unwrap(), vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// ```
pub struct Pool {
    shared: Arc<Shared>,
    manager: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
    readahead: usize,
    owner: u32,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.shared.lock().status {
            Status::Run => "RUN",
            Status::Close => "CLOSE",
            Status::Terminate => "TERMINATE",
        };
        write!(
            f,
            "<multiprocessing::Pool state={state} pool_size={}>",
            self.processes
        )
    }
}

/// Builds a [`Pool`] with Python's optional settings.
///
/// ```
/// use multiprocessing::{current_process, Pool};
/// fn whoami(_: u8) -> String { current_process().name().to_string() }
/// let pool = Pool::builder()
///     .processes(2)
///     .initializer(|| eprintln!("worker ready"))
///     .maxtasksperchild(10)
///     .build()
///     .unwrap();
/// assert!(pool.apply(whoami, (0,)).unwrap().starts_with("ForkPoolWorker-"));
/// ```
#[derive(Default)]
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Arc<dyn Fn() + Send + Sync>>,
    maxtasksperchild: Option<usize>,
    readahead: Option<usize>,
}

/// The default read-ahead of `imap` calls, in chunks: this many, or 4 per worker if that is more.
pub const DEFAULT_READAHEAD: usize = 64;

impl PoolBuilder {
    /// The number of workers (default: [`crate::cpu_count`]); 0 is an error at `build`.
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().processes(1).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// Runs in each worker when it starts (and in each replacement worker). It may capture
    /// anything: workers are forked, so it is copied, not sent. A worker takes work only once its
    /// initializer has returned; a worker whose initializer panics is replaced. If the
    /// initializer fails `processes + 2` times in a row, the pool stops forking and the work no
    /// worker can take fails with the initializer's panic ([`Error::Task`]); new work tries again.
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().processes(1).initializer(|| ()).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn initializer(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// Replaces each worker after it has run this many chunks (0 is an error at `build`).
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().processes(1).maxtasksperchild(2).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn maxtasksperchild(mut self, n: usize) -> Self {
        self.maxtasksperchild = Some(n);
        self
    }

    /// How far `imap` and `imap_unordered` read their input ahead of the caller: at most this
    /// many chunks are submitted and not yet taken from the iterator (default
    /// 64 chunks, or 4 per worker if that is more; 0 is an error at `build`). Memory
    /// stays bounded by it whatever the input's length, endless inputs included.
    ///
    /// ```
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = multiprocessing::Pool::builder().processes(2).readahead(4).build().unwrap();
    /// let first: Vec<u64> = pool.imap(inc, 0u64..).unwrap().take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, vec![1, 2, 3]);
    /// ```
    pub fn readahead(mut self, chunks: usize) -> Self {
        self.readahead = Some(chunks);
        self
    }

    /// Starts the pool and its workers.
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// assert!(matches!(Pool::builder().processes(0).build(), Err(Error::InvalidArgument(_))));
    /// assert!(matches!(Pool::builder().maxtasksperchild(0).build(), Err(Error::InvalidArgument(_))));
    /// ```
    pub fn build(self) -> Result<Pool> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        if processes == 0 {
            return Err(Error::InvalidArgument(
                "Number of processes must be at least 1".into(),
            ));
        }
        if self.maxtasksperchild == Some(0) {
            return Err(Error::InvalidArgument(
                "maxtasksperchild must be a positive int or None".into(),
            ));
        }
        if self.readahead == Some(0) {
            return Err(Error::InvalidArgument(
                "readahead must be at least 1 chunk".into(),
            ));
        }
        let readahead = self
            .readahead
            .unwrap_or_else(|| DEFAULT_READAHEAD.max(4 * processes));
        let shared = Arc::new(Shared::new()?);
        let config = Config {
            processes,
            initializer: self.initializer,
            maxtasksperchild: self.maxtasksperchild,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        // The manager thread forks the workers: they are killed if it dies (PR_SET_PDEATHSIG).
        let handle = std::thread::Builder::new()
            .name("multiprocessing-pool".into())
            .spawn(move || {
                let mut m = Manager::new(thread_shared, config);
                let started = m.start();
                let ok = started.is_ok();
                let _ = tx.send(started);
                if ok {
                    m.run();
                }
            })
            .map_err(|e| Error::Os {
                call: "spawn the pool's manager thread",
                source: e,
            })?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(Error::Broken(
                    "the pool's manager thread failed to start".into(),
                ));
            }
        }
        Ok(Pool {
            shared,
            manager: Mutex::new(Some(handle)),
            processes,
            readahead,
            owner: sys::getpid(),
        })
    }
}

/// Python's default chunksize for `map`: `ceil(len / (4 * processes))`.
fn default_chunksize(len: usize, processes: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.div_ceil(4 * processes)
    }
}

fn check_chunksize(chunksize: usize) -> Result<()> {
    if chunksize == 0 {
        return Err(Error::InvalidArgument("Chunksize must be 1+, not 0".into()));
    }
    Ok(())
}

fn single<R>(mut v: Vec<R>) -> R {
    match v.pop() {
        Some(r) => r,
        // A chunk of one argument always gives one result.
        None => unreachable!("a task of one argument returned no result"),
    }
}

fn identity<R>(v: Vec<R>) -> Vec<R> {
    v
}

impl Pool {
    /// A pool of `processes` workers (0 is an error, as in Python).
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// assert!(matches!(Pool::new(0), Err(Error::InvalidArgument(_))));
    /// let pool = Pool::new(2).unwrap();
    /// assert_eq!(pool.processes(), 2);
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the optional settings (initializer, maxtasksperchild, default size).
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().build().unwrap();
    /// assert_eq!(pool.processes(), multiprocessing::cpu_count());
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of workers.
    ///
    /// ```
    /// assert_eq!(multiprocessing::Pool::new(3).unwrap().processes(), 3);
    /// ```
    pub fn processes(&self) -> usize {
        self.processes
    }

    fn check_owner(&self) -> Result<()> {
        let me = sys::getpid();
        if me != self.owner {
            return Err(Error::WrongProcess {
                what: "Pool",
                owner: self.owner,
                current: me,
            });
        }
        Ok(())
    }

    /// Encodes `items` in chunks and queues them for job `sink`.
    fn submit<A: Serialize>(
        &self,
        func: usize,
        chunks: Vec<Vec<A>>,
        make_sink: impl FnOnce(usize) -> Arc<dyn Sink>,
    ) -> Result<()> {
        self.check_owner()?;
        let generation = sys::loaded_objects_generation();
        let epoch = interrupt::epoch();
        let mut payloads = Vec::with_capacity(chunks.len());
        for c in &chunks {
            let mut p = Vec::new();
            codec::encode_into(c, &mut p)?;
            payloads.push(p);
        }
        drop(chunks);
        let sink = make_sink(payloads.len());
        let mut inner = self.shared.lock();
        if inner.status != Status::Run {
            return Err(Error::PoolNotRunning);
        }
        let job_id = inner.next_job;
        inner.next_job += 1;
        for (index, payload) in payloads.into_iter().enumerate() {
            inner.queue.push_back(Chunk {
                job: sink.clone(),
                job_id,
                index,
                func,
                payload,
                generation,
                epoch,
            });
        }
        drop(inner);
        self.shared.wake();
        Ok(())
    }

    fn submit_slot<C, A, R, V>(
        &self,
        chunks: Vec<Vec<A>>,
        finish: fn(Vec<R>) -> V,
        callbacks: Callbacks<V>,
    ) -> Result<AsyncResult<V>>
    where
        C: Call<A, R>,
        A: TaskData,
        R: TaskData + Send,
        V: Send + 'static,
    {
        let func = task::trampoline::<C, A, R>();
        let mut slot_out: Option<Arc<Slot<R, V>>> = None;
        let pool = self.shared.id();
        self.submit(func, chunks, |n| {
            let slot = Arc::new(Slot::new(n, finish, callbacks, pool));
            slot_out = Some(slot.clone());
            slot
        })?;
        let slot: Arc<dyn Outcome<V>> = match slot_out {
            Some(s) => s,
            None => return Err(Error::Broken("the job was not created".into())),
        };
        Ok(AsyncResult { slot })
    }

    /// Starts an `imap` job over `items`, read lazily (see [`IMapIterator`]).
    fn submit_imap<'a, C, A, R>(
        &self,
        items: impl Iterator<Item = A> + 'a,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMapIterator<'a, R>>
    where
        C: Call<A, R>,
        A: TaskData,
        R: TaskData + Send,
    {
        self.check_owner()?;
        check_chunksize(chunksize)?;
        let func = task::trampoline::<C, A, R>();
        let job_id = {
            let mut inner = self.shared.lock();
            if inner.status != Status::Run {
                return Err(Error::PoolNotRunning);
            }
            let id = inner.next_job;
            inner.next_job += 1;
            inner.open_feeds += 1;
            id
        };
        let mut it = IMapIterator {
            shared: Arc::new(IMapShared::new(ordered, chunksize)),
            input: Some(Input {
                feed: Box::new(ChunkFeed::new(items, chunksize)),
                pool: self.shared.clone(),
                job_id,
                func,
                generation: sys::loaded_objects_generation(),
                next_index: 0,
            }),
            readahead_items: self.readahead.saturating_mul(chunksize),
            pool: self.shared.id(),
            epoch: interrupt::epoch(),
            finished: false,
        };
        it.start();
        Ok(it)
    }

    fn chunk<A>(&self, items: Vec<A>, chunksize: Option<usize>) -> Result<Vec<Vec<A>>> {
        let size = match chunksize {
            Some(c) => {
                check_chunksize(c)?;
                c
            }
            None => default_chunksize(items.len(), self.processes),
        };
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut chunks = Vec::with_capacity(items.len().div_ceil(size));
        let mut it = items.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(size).collect());
        }
        Ok(chunks)
    }

    /// Runs `f(*args)` in a worker and waits for the result (Python's `apply`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply(add, (2, 3)).unwrap(), 5);
    /// ```
    pub fn apply<F, A, R>(&self, f: F, args: A) -> Result<R>
    where
        F: StarFn<A, R> + 'static,
        A: TaskData,
        R: TaskData + Send,
    {
        self.apply_async(f, args)?.get_owned()
    }

    /// Starts `f(*args)` in a worker (Python's `apply_async`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let r = pool.apply_async(add, (2, 3)).unwrap();
    /// assert_eq!(r.get().unwrap(), 5);
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>>
    where
        F: StarFn<A, R> + 'static,
        A: TaskData,
        R: TaskData + Send,
    {
        self.apply_async_with(f, args, Callbacks::new())
    }

    /// [`apply_async`](Self::apply_async) with a success and/or error callback.
    ///
    /// ```
    /// use multiprocessing::{Callbacks, Pool};
    /// fn neg(x: i32) -> i32 { if x < 0 { panic!("negative") } x }
    /// let pool = Pool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let r = pool
    ///     .apply_async_with(neg, (-1,), Callbacks::new().on_error(move |e| tx.send(e.to_string()).unwrap()))
    ///     .unwrap();
    /// assert!(r.get().is_err());
    /// assert!(rx.recv().unwrap().contains("negative"));
    /// ```
    pub fn apply_async_with<F, A, R>(
        &self,
        f: F,
        args: A,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>>
    where
        F: StarFn<A, R> + 'static,
        A: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        self.submit_slot::<Star<F>, A, R, R>(vec![vec![args]], single, callbacks)
    }

    /// Applies `f` to every item and returns the results in input order (Python's `map`), with
    /// Python's default chunksize. If tasks panic, the error of the first failure is returned once
    /// every chunk has finished.
    ///
    /// ```
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.map(inc, vec![1, 2, 3]).unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map<F, T, R, I>(&self, f: F, iterable: I) -> Result<Vec<R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        self.map_async_with(f, iterable, None, Callbacks::new())?
            .get_owned()
    }

    /// [`map`](Self::map) with an explicit chunksize (items per task sent to a worker).
    ///
    /// ```
    /// fn pid(_: u32) -> u32 { std::process::id() }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let pids = pool.map_chunked(pid, 0..10, 5).unwrap();
    /// assert!(pids[..5].iter().all(|p| *p == pids[0]));
    /// assert!(pids[5..].iter().all(|p| *p == pids[5]));
    /// ```
    pub fn map_chunked<F, T, R, I>(&self, f: F, iterable: I, chunksize: usize) -> Result<Vec<R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        self.map_async_with(f, iterable, Some(chunksize), Callbacks::new())?
            .get_owned()
    }

    /// Starts a [`map`](Self::map) and returns at once (Python's `map_async`).
    ///
    /// ```
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let r = pool.map_async(inc, vec![1, 2]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3]);
    /// ```
    pub fn map_async<F, T, R, I>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        self.map_async_with(f, iterable, None, Callbacks::new())
    }

    /// [`map_async`](Self::map_async) with an optional chunksize and callbacks (the success callback
    /// gets the whole list once).
    ///
    /// ```
    /// use multiprocessing::{Callbacks, Pool};
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = Pool::new(2).unwrap();
    /// let r = pool.map_async_with(inc, vec![1, 2], Some(1), Callbacks::new()).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3]);
    /// ```
    pub fn map_async_with<F, T, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        let chunks = self.chunk(iterable.into_iter().collect(), chunksize)?;
        self.submit_slot::<One<F>, T, R, Vec<R>>(chunks, identity, callbacks)
    }

    /// Like [`map`](Self::map), but yields results lazily in input order (Python's `imap`,
    /// chunksize 1).
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let v: Vec<i32> = pool.imap(sq, 1..4).unwrap().collect::<Result<_, _>>().unwrap();
    /// assert_eq!(v, vec![1, 4, 9]);
    /// ```
    pub fn imap<'a, F, T, R, I>(&self, f: F, iterable: I) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        self.imap_chunked(f, iterable, 1)
    }

    /// [`imap`](Self::imap) with an explicit chunksize (0 is an error).
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert!(pool.imap_chunked(sq, 1..4, 0).is_err());
    /// let v: Vec<i32> = pool.imap_chunked(sq, 1..4, 2).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, vec![1, 4, 9]);
    /// ```
    pub fn imap_chunked<'a, F, T, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        self.submit_imap::<One<F>, T, R>(iterable.into_iter(), chunksize, true)
    }

    /// Like [`imap`](Self::imap), but yields results in the order they complete (Python's `imap_unordered`).
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let mut v: Vec<i32> = pool.imap_unordered(sq, 1..4).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, vec![1, 4, 9]);
    /// ```
    pub fn imap_unordered<'a, F, T, R, I>(&self, f: F, iterable: I) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        self.imap_unordered_chunked(f, iterable, 1)
    }

    /// [`imap_unordered`](Self::imap_unordered) with an explicit chunksize.
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.imap_unordered_chunked(sq, 0..10, 3).unwrap().count(), 10);
    /// ```
    pub fn imap_unordered_chunked<'a, F, T, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        self.submit_imap::<One<F>, T, R>(iterable.into_iter(), chunksize, false)
    }

    /// Like [`map`](Self::map), but each item is a tuple of arguments (Python's `starmap`).
    ///
    /// ```
    /// fn pow(b: u64, e: u32) -> u64 { b.pow(e) }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.starmap(pow, vec![(2, 3), (3, 2), (10, 0)]).unwrap(), vec![8, 9, 1]);
    /// ```
    pub fn starmap<F, A, R, I>(&self, f: F, iterable: I) -> Result<Vec<R>>
    where
        F: StarFn<A, R> + 'static,
        I: IntoIterator<Item = A>,
        A: TaskData,
        R: TaskData + Send,
    {
        self.starmap_async_with(f, iterable, None, Callbacks::new())?
            .get_owned()
    }

    /// Starts a [`starmap`](Self::starmap) and returns at once (Python's `starmap_async`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.starmap_async(add, vec![(1, 2)]).unwrap().get().unwrap(), vec![3]);
    /// ```
    pub fn starmap_async<F, A, R, I>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: StarFn<A, R> + 'static,
        I: IntoIterator<Item = A>,
        A: TaskData,
        R: TaskData + Send,
    {
        self.starmap_async_with(f, iterable, None, Callbacks::new())
    }

    /// [`starmap_async`](Self::starmap_async) with an optional chunksize and callbacks.
    ///
    /// ```
    /// use multiprocessing::Callbacks;
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let r = pool.starmap_async_with(add, vec![(1, 2), (3, 4)], Some(1), Callbacks::new()).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![3, 7]);
    /// ```
    pub fn starmap_async_with<F, A, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: StarFn<A, R> + 'static,
        I: IntoIterator<Item = A>,
        A: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        let chunks = self.chunk(iterable.into_iter().collect(), chunksize)?;
        self.submit_slot::<Star<F>, A, R, Vec<R>>(chunks, identity, callbacks)
    }

    /// Stops accepting work; the workers exit once the queued work is done (Python's `close`).
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// fn one(_: u8) -> u8 { 1 }
    /// let pool = Pool::new(1).unwrap();
    /// pool.close().unwrap();
    /// assert!(matches!(pool.map(one, vec![1]), Err(Error::PoolNotRunning)));
    /// pool.join().unwrap();
    /// ```
    pub fn close(&self) -> Result<()> {
        self.check_owner()?;
        let mut inner = self.shared.lock();
        if inner.status == Status::Run {
            inner.status = Status::Close;
        }
        drop(inner);
        self.shared.wake();
        Ok(())
    }

    /// Stops the workers at once (SIGTERM, then SIGKILL); pending results fail with
    /// [`Error::PoolTerminated`] (Python leaves them pending forever).
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// fn slow() { std::thread::sleep(std::time::Duration::from_secs(10)) }
    /// let pool = Pool::new(1).unwrap();
    /// let r = pool.apply_async(slow, ()).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(matches!(r.get(), Err(Error::PoolTerminated)));
    /// ```
    pub fn terminate(&self) -> Result<()> {
        self.check_owner()?;
        self.shared.lock().status = Status::Terminate;
        self.shared.wake();
        // From a callback (the manager's own thread), the manager finishes after it returns.
        if !on_manager_thread_of(self.shared.id()) {
            self.join_manager();
        }
        Ok(())
    }

    /// Waits for the workers to exit; an error unless `close` or `terminate` was called first.
    /// An `imap` whose input is not read to its end yet reads no more of it (see
    /// [`IMapIterator`]).
    ///
    /// ```
    /// use multiprocessing::{Error, Pool};
    /// fn sq(x: u32) -> u32 { x * x }
    /// let pool = Pool::new(2).unwrap();
    /// let r = pool.map_async(sq, 0..4).unwrap();
    /// assert!(matches!(pool.join(), Err(Error::PoolStillRunning)));
    /// pool.close().unwrap();
    /// pool.join().unwrap();
    /// assert_eq!(r.get().unwrap(), vec![0, 1, 4, 9]);
    /// ```
    pub fn join(&self) -> Result<()> {
        self.check_owner()?;
        if self.shared.lock().status == Status::Run {
            return Err(Error::PoolStillRunning);
        }
        if on_manager_thread_of(self.shared.id()) {
            return Err(Error::CallbackDeadlock);
        }
        // Inputs of `imap` calls not read yet are read no more (their iterators say so).
        self.shared.lock().feeds_stopped = true;
        self.shared.wake();
        let watch = Watch::new();
        let mut inner = self.shared.lock();
        while !inner.finished {
            if watch.is_raised() {
                drop(inner);
                return Err(watch.report());
            }
            inner = self
                .shared
                .finished_cv
                .wait_timeout(inner, sys::SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(inner);
        self.join_manager();
        Ok(())
    }

    fn join_manager(&self) {
        let handle = self
            .manager
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if sys::getpid() == self.owner {
            let _ = self.terminate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_chunksize;

    #[test]
    fn default_chunksize_is_pythons_formula() {
        // Python 3.11, Pool(4): lengths 0, 1, 10, 16, 17, 100, 1000 give 0, 1, 1, 1, 2, 7, 63.
        let got: Vec<usize> = [0, 1, 10, 16, 17, 100, 1000]
            .iter()
            .map(|&n| default_chunksize(n, 4))
            .collect();
        assert_eq!(got, vec![0, 1, 1, 1, 2, 7, 63]);
        assert_eq!(default_chunksize(200_000, 2), 25_000);
    }
}
