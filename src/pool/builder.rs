//! [`PoolBuilder`]: a [`Pool`]'s optional settings (Python's `Pool(processes, initializer,
//! maxtasksperchild)`, plus the read-ahead of `imap`), and starting the pool's manager thread.

use super::Pool;
use super::cluster::Mpi;
use super::manager::{Config, Manager};
use super::shared::Shared;
use super::spawn::StartMethod;
use super::spawned;
use super::task;
use crate::error::{Error, Result};
use crate::sys;
use std::sync::{Arc, Mutex};

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
    start_method: StartMethod,
    /// The initializer's trampoline, if it captures nothing (what a spawn worker can run).
    init_code: Option<usize>,
    mpi: Option<Mpi>,
}

/// The default read-ahead of `imap` calls, in chunks: this many, or 4 per worker if that is more.
const DEFAULT_READAHEAD: usize = 64;

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

    /// Runs in each worker when it starts (and in each replacement worker). With the default
    /// [`StartMethod::Fork`] it may capture anything: workers are forked, so it is copied, not
    /// sent; with [`StartMethod::Spawn`] it must capture nothing (an error at `build`). A worker
    /// takes work only once its initializer has returned; a worker whose initializer panics is
    /// replaced. If the initializer fails `processes + 2` times in a row, the pool stops forking
    /// and the work no worker can take fails with the initializer's panic ([`Error::Task`]); new
    /// work tries again.
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().processes(1).initializer(|| ()).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn initializer<F: Fn() + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.init_code = task::init_trampoline::<F>();
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
    /// 64 chunks, or 4 per worker if that is more, 8 for a cluster pool's; 0 is an error at
    /// `build`). Memory
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

    /// How the workers start: forked copies of this process (the default) or fresh processes
    /// (Python's `get_context("spawn").Pool(...)`); see [`StartMethod`].
    ///
    /// ```
    /// use multiprocessing::{current_process, Error, Pool, StartMethod};
    /// fn whoami(_: u8) -> String { current_process().name().to_string() }
    /// let pool = Pool::builder().processes(1).start_method(StartMethod::Spawn).build().unwrap();
    /// assert_eq!(pool.apply(whoami, (0,)).unwrap(), "SpawnPoolWorker-1");
    ///
    /// let n = 7;
    /// let capturing = Pool::builder()
    ///     .start_method(StartMethod::Spawn)
    ///     .initializer(move || println!("{n}"))
    ///     .build();
    /// assert!(matches!(capturing, Err(Error::InvalidArgument(_))));
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = method;
        self
    }

    /// Runs the workers on the ranks of an MPI job (see [`Mpi`]): a cluster pool. Its workers
    /// are spawn workers ([`StartMethod::Spawn`] semantics: fresh statics, serde arguments,
    /// `fn` items and non-capturing closures), each a copy of this program shipped to its rank
    /// (in a notebook: `rustmp-mpi` itself, sent the library and the cells' objects, as a
    /// local spawn worker is) and named `MpiPoolWorker-N@host`; what they print arrives here
    /// whole, a line at a time, as `(MpiPoolWorker-3@node1 pid=4242 host=node1) text`. Every
    /// method works as on a local pool. `build` starts the job, waits until every worker is
    /// ready, and fails with [`Error::Cluster`] when it cannot (no `mpirun`, no `rustmp-mpi`, a
    /// bad hostfile, an unreachable host, a host that cannot load the library, the start
    /// timeout); a worker that dies fails its task with [`Error::WorkerDied`] and is started
    /// again; when the job itself ends (a rank died), every call fails with [`Error::Cluster`]
    /// and a new pool must be made. The default size is the slots of the host list or hostfile
    /// (see [`Mpi::allocation`] and [`Mpi::local`] for theirs).
    ///
    /// ```no_run
    /// use multiprocessing::{Mpi, Pool};
    /// fn work(x: u64) -> u64 { x * x }
    /// let pool = Pool::builder()
    ///     .processes(4)
    ///     .mpi(Mpi::hosts(["node1:2", "node2:2"]))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.map(work, 0..4).unwrap(), vec![0, 1, 4, 9]);
    /// ```
    ///
    /// Without `mpirun` the error comes at `build`:
    ///
    /// ```
    /// use multiprocessing::{Error, Mpi, Pool};
    /// let pool = Pool::builder().processes(1).mpi(Mpi::local().mpirun("/no/mpirun")).build();
    /// assert!(matches!(pool, Err(Error::Cluster(m)) if m.contains("mpirun not found")));
    /// ```
    pub fn mpi(mut self, mpi: Mpi) -> Self {
        self.mpi = Some(mpi);
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
        let mut start_method = self.start_method;
        if self.mpi.is_some() {
            start_method = StartMethod::Spawn;
        }
        let processes = match (self.processes, &self.mpi) {
            (Some(n), _) => n,
            (None, Some(mpi)) => mpi.default_processes()?.unwrap_or_else(crate::cpu_count),
            (None, None) => crate::cpu_count(),
        };
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
        let readahead = self.readahead.unwrap_or_else(|| {
            // A cluster worker may have 8 short chunks in flight (see `Mpi`).
            let per_worker = if self.mpi.is_some() { 8 } else { 4 };
            DEFAULT_READAHEAD.max(per_worker * processes)
        });
        let mut init_code = None;
        let mut library = None;
        if start_method == StartMethod::Spawn {
            library = spawned::check_program(self.mpi.is_some())?;
            if self.initializer.is_some() {
                let Some(addr) = self.init_code else {
                    return Err(Error::InvalidArgument(
                        "a spawn pool's initializer must capture nothing: it runs in fresh \
                         processes, which cannot receive captured values (use a fn item, or \
                         StartMethod::Fork)"
                            .into(),
                    ));
                };
                init_code = Some(crate::code::locate(addr)?.0);
            }
        }
        let shared = Arc::new(Shared::new()?);
        let config = Config {
            processes,
            initializer: self.initializer,
            maxtasksperchild: self.maxtasksperchild,
            start: start_method,
            init_code,
            library,
            mpi: self.mpi,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (begun, epoch) = (std::time::Instant::now(), crate::interrupt::raised_count());
        let thread_shared = shared.clone();
        // The manager thread forks the workers: they are killed if it dies (PR_SET_PDEATHSIG).
        let handle = std::thread::Builder::new()
            .name("multiprocessing-pool".into())
            .spawn(move || {
                let mut m = Manager::new(thread_shared, config);
                // A cluster pool is ready when every worker is (a host that cannot load the
                // code fails `build`).
                let started = m.start().and_then(|()| m.await_ready(begun, epoch));
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
