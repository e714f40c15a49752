//! The pool on an MPI cluster: [`Mpi`] (where the workers run), and the front that starts the
//! job and relays the workers' sockets (`front`, `mpirun`, `relay`, `wire`; `link` is one remote worker as both the manager and the relay see it).
//!
//! A cluster pool's workers are spawn workers ([`crate::StartMethod::Spawn`]) that run on the
//! ranks of an `mpirun` job: rank 0 is `rustmp-mpi bridge`, on this host, connected to this
//! process by a Unix socket in an owner-only directory; ranks 1..N are `rustmp-mpi worker`, each
//! running one copy of this program (its bytes shipped at the start) as an ordinary spawn worker.
//! Where this library was loaded at run time (a notebook's), each rank runs `rustmp-mpi` itself
//! as the worker instead: it contains the library, and is sent the library's and the cells'
//! objects like a local spawn worker of a spawn host. MPI is never initialised in this process.

mod echo;
mod front;
mod job;
mod link;
mod mpirun;
mod relay;
mod wire;

pub(crate) use front::Front;
pub(crate) use link::{Ended, Link};

use std::path::PathBuf;
use std::time::Duration;

/// Where a cluster pool's workers run, and how its MPI job starts: `Pool::builder().mpi(..)`.
///
/// The job is `mpirun [args] -np 1 --host <this host>:1 rustmp-mpi bridge … : -np N --host
/// h1:s1,h2:s2,… rustmp-mpi worker` (no `--host` in an allocation, [`Mpi::allocation`]), so `mpirun` (Open MPI) must be in `PATH` here, and
/// `rustmp-mpi` (built with its `mpi` feature) at the same path on every host (see
/// [`Mpi::launcher`]). Each worker runs this program, shipped as bytes to each rank at the
/// start: the hosts need the same OS and libraries, not the program. In a notebook (this
/// library loaded at run time) each worker is `rustmp-mpi` on its host, sent the bytes of the
/// library and of each cell's object a task needs, as [`crate::StartMethod::Spawn`] describes.
///
/// An interrupt ([`crate::interrupt`]) ends the job with the other children of this process
/// (`mpirun` is one): the interrupted call returns [`crate::Error::Interrupted`] and every
/// later call of that pool [`crate::Error::Cluster`] saying an interrupt ended it (a local
/// pool starts its workers again instead); make a new pool.
///
/// A worker's round trip goes through the job's relays (a few hundred µs), so a worker whose
/// last chunk of a call took under 5 ms is sent up to 8 more of that call ahead, which it runs
/// in order; the first chunk of a call, and the chunks after a longer one, go one at a time, as
/// in a local pool. A worker that dies fails the chunk it was running with
/// [`crate::Error::WorkerDied`]; the chunks queued behind it run on another worker. Chunks
/// already queued to a worker still run when their call is given up (an `imap` iterator
/// dropped): their results are dropped; after an interrupt, which ends the job, a remote worker
/// may start one before its rank is gone.
///
/// ```
/// use multiprocessing::Mpi;
/// use std::time::Duration;
/// let mpi = Mpi::hosts(["node1:2", "node2:2"])
///     .launcher("/opt/rustmp/bin/rustmp-mpi")
///     .mpirun_args(["--mca", "btl_tcp_if_include", "eth0"])
///     .start_timeout(Duration::from_secs(30));
/// assert_eq!(mpi.slots(), Some(4));
/// assert_eq!(Mpi::local().slots(), None);
/// ```
///
/// Deviation from Python: Python's `multiprocessing` has no cluster pool; this plays the part of
/// `mpi4py.futures.MPIPoolExecutor` with `multiprocessing.Pool`'s methods.
#[derive(Clone, Debug)]
pub struct Mpi {
    pub(crate) hosts: Hosts,
    pub(crate) launcher: Option<PathBuf>,
    pub(crate) mpirun: Option<PathBuf>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) start_timeout: Duration,
}

/// Where the worker ranks go.
#[derive(Clone, Debug)]
pub(crate) enum Hosts {
    /// This host, oversubscribed.
    Local,
    /// `host[:slots]` entries.
    List(Vec<String>),
    /// An Open MPI hostfile.
    File(PathBuf),
    /// Where `mpirun` places them by itself: a resource manager's allocation (Slurm's).
    Allocation,
}

/// The default [`Mpi::start_timeout`].
const START_TIMEOUT: Duration = Duration::from_secs(20);

impl Mpi {
    fn with(hosts: Hosts) -> Mpi {
        Mpi {
            hosts,
            launcher: None,
            mpirun: None,
            args: Vec::new(),
            env: Vec::new(),
            start_timeout: START_TIMEOUT,
        }
    }

    /// Every rank on this host (`--oversubscribe`: more workers than cores is allowed): a
    /// cluster pool without a cluster, to try things.
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::local();
    /// # drop(mpi);
    /// ```
    pub fn local() -> Mpi {
        Mpi::with(Hosts::Local)
    }

    /// Workers on these hosts, each `name` or `name:slots` (mpirun's `--host`). The pool's
    /// default size is the sum of the slots.
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::hosts(["node1:2", "node2"]);
    /// assert_eq!(mpi.slots(), Some(3));
    /// ```
    pub fn hosts<I, S>(hosts: I) -> Mpi
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Mpi::with(Hosts::List(hosts.into_iter().map(Into::into).collect()))
    }

    /// Workers on the hosts of an Open MPI hostfile (lines `name [slots=N] [max_slots=N]`, `#`
    /// comments). It is read when the pool starts: a missing or malformed file is an error of
    /// `build`. The pool's default size is the sum of its slots (a host without `slots=` counts
    /// one).
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::hostfile("/etc/cluster-hosts");
    /// # drop(mpi);
    /// ```
    pub fn hostfile(path: impl Into<PathBuf>) -> Mpi {
        Mpi::with(Hosts::File(path.into()))
    }

    /// Workers where `mpirun` puts them by itself: the nodes of the batch allocation it runs in
    /// (Slurm's, from `salloc` or `sbatch`; Open MPI reads it), or this host's cores without
    /// one. No `--host` is given: `mpirun` puts rank 0, the bridge, on its own node, which must
    /// be this host (run the kernel or the program inside the job; `build` checks it). Not
    /// tried under a real Slurm here: the tests run it without one. The pool's default size is
    /// `SLURM_NTASKS`
    /// minus one, the bridge's slot (as `mpi4py.futures` uses one rank for itself), else this
    /// host's CPUs minus one; at least 1.
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::allocation();
    /// assert_eq!(mpi.slots(), None);
    /// ```
    pub fn allocation() -> Mpi {
        Mpi::with(Hosts::Allocation)
    }

    /// The `rustmp-mpi` program, at this path on every host. Default: `$RUSTMP_MPI`, else the
    /// `rustmp-mpi` beside this program's executable (where `cargo build` puts both) if it was
    /// built with MPI, else the one found in `PATH` here.
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::local().launcher("/usr/local/bin/rustmp-mpi");
    /// # drop(mpi);
    /// ```
    pub fn launcher(mut self, path: impl Into<PathBuf>) -> Mpi {
        self.launcher = Some(path.into());
        self
    }

    /// The `mpirun` program (default: `mpirun` found in `PATH`).
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::local().mpirun("/usr/bin/mpirun");
    /// # drop(mpi);
    /// ```
    pub fn mpirun(mut self, path: impl Into<PathBuf>) -> Mpi {
        self.mpirun = Some(path.into());
        self
    }

    /// Extra arguments for `mpirun`, before the job's layout (`--mca` settings, for instance).
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::local().mpirun_args(["--mca", "btl_tcp_if_include", "eth0"]);
    /// # drop(mpi);
    /// ```
    pub fn mpirun_args<I, S>(mut self, args: I) -> Mpi
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// A variable set in every worker's environment. A worker gets its rank's environment
    /// (what `mpirun` gives a process on that host: not this process's), without Open MPI's
    /// variables, plus `RUST_BACKTRACE` and `RUST_LIB_BACKTRACE` as set here, plus these.
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::local().env("OMP_NUM_THREADS", "1");
    /// # drop(mpi);
    /// ```
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Mpi {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long the job may take to start, from `mpirun` to every worker running (default
    /// 20 s). Some failures (a host that cannot call back) make `mpirun` wait silently: the
    /// pool then ends the job and `build` fails.
    ///
    /// ```
    /// let mpi = multiprocessing::Mpi::local().start_timeout(std::time::Duration::from_secs(5));
    /// # drop(mpi);
    /// ```
    pub fn start_timeout(mut self, limit: Duration) -> Mpi {
        self.start_timeout = limit;
        self
    }

    /// The number of slots the host list names, if it is a list (`None` for a hostfile, read
    /// at `build`, and for [`Mpi::local`]); a host without `:slots` counts one.
    ///
    /// ```
    /// assert_eq!(multiprocessing::Mpi::hosts(["a:4", "b:4"]).slots(), Some(8));
    /// ```
    pub fn slots(&self) -> Option<usize> {
        match &self.hosts {
            Hosts::List(list) => Some(sum_slots(list)),
            _ => None,
        }
    }

    /// The pool's default size: the slots of the host list or of the hostfile (read now), those
    /// of the allocation but the bridge's ([`Mpi::allocation`]), none for [`Mpi::local`].
    pub(crate) fn default_processes(&self) -> crate::Result<Option<usize>> {
        match &self.hosts {
            Hosts::File(path) => Ok(Some(sum_slots(&mpirun::read_hostfile(path)?))),
            Hosts::Allocation => {
                let tasks = ["SLURM_NTASKS", "SLURM_NPROCS"]
                    .iter()
                    .find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or_else(crate::cpu_count);
                Ok(Some(tasks.saturating_sub(1).max(1)))
            }
            _ => Ok(self.slots()),
        }
    }
}

fn sum_slots(hosts: &[String]) -> usize {
    hosts.iter().map(|h| mpirun::slots_of(h).unwrap_or(1)).sum()
}
