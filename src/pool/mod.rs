//! [`Pool`]: a pool of worker processes with Python's `map`, `imap`, `apply_async`, `starmap`…
//!
//! How it works: a manager thread in the parent owns the workers (forked children, named
//! `ForkPoolWorker-N`), each connected by its own socket. It hands each idle worker one chunk of
//! arguments at a time, so it always knows which task a worker is running: if a worker dies mid-task
//! the call gets [`Error::WorkerDied`] at once and the worker is replaced (Python's `Pool` hangs
//! forever there). A cluster pool's worker (see [`Mpi`]) is sent a few chunks ahead, which it runs
//! in order, to hide the relay's latency; the one it was running when it died fails, and those
//! queued behind it go to another worker. A task that panics gives [`Error::Task`] with the panic
//! message and the worker's backtrace; the worker goes on serving.
//!
//! Functions: a task names its function by the address of its code, valid in the workers because
//! they are forked copies of the parent (with [`StartMethod::Spawn`], by the build-id of the
//! object holding it and an offset, which the fresh worker resolves). So a pool runs `fn` items and closures that capture
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
//!
//! The files: the caller's side is this file (the pool, submitting chunks), `builder` (the
//! settings, starting the manager), `map` (the calls: `apply`, `map`, `imap`, `starmap`…),
//! `result` and `imap` (where answers arrive), `feed` (an `imap`'s lazy input); `shared` is what
//! the caller and the manager thread share; the manager thread is `manager` (scheduling),
//! `manager/answer` (a worker's answers), `manager/workers` (the workers' lives), `manager/spawn`
//! (naming functions to spawn workers), `link` its side of one worker (the chunks it has in
//! flight), `manager_thread` which thread it is (callbacks run there);
//! `worker` is the worker process's side, and `task` how a task's function and data travel;
//! `spawn` and `spawned` are the spawn start method's two sides (see [`StartMethod`]), and
//! `spawned/host` the worker's side where the library was loaded at run time (a notebook);
//! `cluster` runs spawn workers on the ranks of an MPI job (see [`Mpi`]), and `manager/remote`
//! is the manager's side of those workers.

#[deny(unsafe_code)]
mod builder;
#[deny(unsafe_code)]
mod cluster;
#[deny(unsafe_code)]
mod feed;
#[deny(unsafe_code)]
mod imap;
#[deny(unsafe_code)]
mod link;
#[deny(unsafe_code)]
mod manager;
#[deny(unsafe_code)]
mod manager_thread;
#[deny(unsafe_code)]
mod map;
#[deny(unsafe_code)]
mod recorder;
#[deny(unsafe_code)]
mod result;
#[deny(unsafe_code)]
mod shared;
#[deny(unsafe_code)]
mod spawn;
#[deny(unsafe_code)]
mod spawned;
#[deny(clippy::undocumented_unsafe_blocks)]
mod task;
#[deny(clippy::undocumented_unsafe_blocks)]
mod worker;

pub use builder::PoolBuilder;
pub use cluster::Mpi;
pub use imap::IMapIterator;
pub use result::{AsyncResult, Callbacks};
pub use spawn::StartMethod;
pub use task::{StarFn, TaskData};

use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::{self, Watch};
use crate::sys;
use feed::{ChunkFeed, Input};
use imap::IMapShared;
use manager_thread::on_manager_thread_of;
use result::{Outcome, Sink, Slot};
use serde::Serialize;
use shared::{Chunk, Shared, Status};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use task::Call;

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
        (func, function): (usize, &'static str),
        chunks: Vec<Vec<A>>,
        make_sink: impl FnOnce(usize) -> Arc<dyn Sink>,
    ) -> Result<()> {
        self.check_owner()?;
        let generation = sys::loaded_objects_generation();
        let epoch = interrupt::epoch();
        let mut payloads = Vec::with_capacity(chunks.len());
        let mut first = 0;
        for c in &chunks {
            let mut p = Vec::new();
            codec::encode_into(c, &mut p)?;
            payloads.push((p, first, c.len()));
            first += c.len();
        }
        drop(chunks);
        let sink = make_sink(payloads.len());
        let mut inner = self.shared.lock();
        if inner.status != Status::Run {
            return Err(Error::PoolNotRunning);
        }
        let job_id = inner.next_job;
        inner.next_job += 1;
        for (index, (payload, first, tasks)) in payloads.into_iter().enumerate() {
            inner.queue.push_back(Chunk {
                job: sink.clone(),
                job_id,
                index,
                func,
                payload,
                generation,
                epoch,
                first,
                tasks,
                function,
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
        self.submit((func, C::function_name()), chunks, |n| {
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
                function: C::function_name(),
                generation: sys::loaded_objects_generation(),
                next_index: 0,
                next_first: 0,
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
