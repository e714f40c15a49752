//! The library's error type.

#![deny(unsafe_code)]

use std::fmt;

/// A panic (or a decoding failure) that happened while a pool worker ran a task.
///
/// It carries what Python's `RemoteTraceback` carries: the panic message and the worker's
/// backtrace, plus the worker's name and pid.
///
/// ```
/// use multiprocessing::{Error, Pool};
/// fn fail(x: i32) -> i32 { if x == 3 { panic!("no key {x}") } x }
/// let pool = Pool::new(2).unwrap();
/// match pool.map(fail, 0..5) {
///     Err(Error::Task(e)) => {
///         assert_eq!(e.message, "no key 3");
///         assert!(e.worker.starts_with("ForkPoolWorker-"));
///     }
///     other => panic!("expected a task error, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// The panic message (the `&str` or `String` payload; otherwise a placeholder).
    pub message: String,
    /// Where the panic happened (`file:line:column`), when known.
    pub location: Option<String>,
    /// The worker's backtrace at the panic, rendered as text.
    pub backtrace: String,
    /// The worker's process name (`ForkPoolWorker-N`).
    pub worker: String,
    /// The worker's pid.
    pub pid: u32,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task panicked in {} (pid {})", self.worker, self.pid)?;
        if let Some(loc) = &self.location {
            write!(f, " at {loc}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every error the library returns.
///
/// Variants mirror the exceptions of Python's `multiprocessing` where one exists (noted on each).
///
/// ```
/// use multiprocessing::{Error, Queue};
/// use std::time::Duration;
/// let q: Queue<i32> = Queue::new().unwrap();
/// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(Error::Empty)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A blocking call was interrupted by SIGINT (see the `multiprocessing::interrupt` module).
    /// Python: `KeyboardInterrupt`.
    #[error("interrupted by SIGINT; the children created through multiprocessing were terminated")]
    Interrupted,
    /// A timeout expired before a result was ready. Python: `multiprocessing.TimeoutError`.
    #[error("timed out")]
    Timeout,
    /// The queue had nothing to get. Python: `queue.Empty`.
    #[error("the queue is empty")]
    Empty,
    /// The queue was full. Python: `queue.Full`.
    #[error("the queue is full")]
    Full,
    /// Every other end of a connection is closed. Python: `EOFError`.
    #[error("end of file: every other end of the connection is closed")]
    Eof,
    /// The object (queue, connection, …) was closed in this process. Python: `ValueError`/`OSError`.
    #[error("{0} is closed")]
    Closed(&'static str),
    /// The operation is not allowed on this end of a one-way pipe. Python: `OSError`.
    #[error("connection is {0}")]
    WrongDirection(&'static str),
    /// `start` called twice. Python: `AssertionError('cannot start a process twice')`.
    #[error("cannot start a process twice")]
    AlreadyStarted,
    /// `join` before `start`. Python: `AssertionError('can only join a started process')`.
    #[error("can only join a started process")]
    NotStarted,
    /// A setting that can only change before `start`. Python: `AssertionError('process has already started')`.
    #[error("process has already started")]
    StartedAlready,
    /// A daemon process tried to start a child. Python: `AssertionError`.
    #[error("daemonic processes are not allowed to have children")]
    DaemonicChildren,
    /// An argument is out of range. Python: `ValueError`.
    #[error("{0}")]
    InvalidArgument(String),
    /// The pool was closed or terminated. Python: `ValueError("Pool not running")`.
    #[error("Pool not running")]
    PoolNotRunning,
    /// `join` on a running pool. Python: `ValueError("Pool is still running")`.
    #[error("Pool is still running")]
    PoolStillRunning,
    /// The pool was terminated before the task finished (Python leaves such results pending forever).
    #[error("the pool was terminated before the task finished")]
    PoolTerminated,
    /// A task panicked in a worker. Python: the task's exception, with a `RemoteTraceback` cause.
    #[error("{0}")]
    Task(TaskError),
    /// The worker running the task died (killed, or exited) before it answered.
    /// Python's `Pool` hangs here; `ProcessPoolExecutor` raises `BrokenProcessPool`.
    #[error("worker {worker} (pid {pid}) died with exit code {exitcode} while running the task")]
    WorkerDied {
        /// The worker's name.
        worker: String,
        /// The worker's pid.
        pid: u32,
        /// Its exit code in Python's convention (`-9` for SIGKILL).
        exitcode: i32,
    },
    /// `task_done` was called more times than items were put. Python: `ValueError`.
    #[error("task_done() called too many times")]
    TaskDoneTooManyTimes,
    /// A lock or a semaphore was released more times than acquired. Python: `ValueError`.
    #[error("semaphore or lock released too many times")]
    ReleasedTooManyTimes,
    /// A lock was released (or a condition used) by a thread that does not hold it.
    /// Python: `AssertionError` (`RLock`, `Condition`); Python lets another process release a
    /// `Lock`, this library does not (see [`crate::Lock`]).
    #[error("the lock is not held by this thread")]
    NotOwner,
    /// A blocking acquire of a [`crate::Lock`] the calling thread already holds: it could only
    /// wait forever. Python waits forever.
    #[error("this thread already holds the lock: acquiring it again would wait forever")]
    Deadlock,
    /// A pool callback waited for a result of its own pool (`get`, `map`, `join`, an `imap`
    /// step): callbacks run on the pool's result thread, the only one that could deliver it, so
    /// the call could only wait forever. Python deadlocks the whole pool there.
    #[error(
        "a callback of this pool waits for the pool's own results: callbacks run on the thread that delivers them, so it would wait forever"
    )]
    CallbackDeadlock,
    /// The barrier is broken (a party timed out, `abort` was called, the action panicked, a
    /// party died inside `wait`, or it was reset while parties waited). Python:
    /// `threading.BrokenBarrierError`.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// [`crate::Value::get`], `set` or `lock` (or the same on an [`crate::Array`]) while this
    /// thread holds a guard of that value: the guard has it borrowed. Drop the guard first.
    #[error("this thread holds a guard of the value: drop it first")]
    Borrowed,
    /// An index past the end of an [`crate::Array`]. Python: `IndexError('invalid index')`.
    #[error("index {index} is out of range for length {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The length.
        len: usize,
    },
    /// A named shared memory segment exists already. Python: `FileExistsError`.
    #[error("shared memory {name:?} already exists")]
    Exists {
        /// The segment's name.
        name: String,
    },
    /// No shared memory segment has this name. Python: `FileNotFoundError`.
    #[error("no shared memory named {name:?}")]
    NotFound {
        /// The segment's name.
        name: String,
    },
    /// The result was not ready (`successful` before completion). Python: `ValueError`.
    #[error("result is not ready")]
    NotReady,
    /// `get` was already called successfully on this result, which moved the value out.
    #[error("the result was already taken by an earlier get")]
    AlreadyTaken,
    /// A value could not be encoded or decoded; the message names its type and the reason.
    /// Python: `PicklingError` / `UnpicklingError`.
    #[error("{0}")]
    Codec(String),
    /// A message is larger than the channel can carry.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The message's size.
        size: u64,
        /// The channel's limit.
        limit: u64,
    },
    /// The object belongs to another process (a pool is usable only where it was created).
    #[error("this {what} belongs to process {owner} and cannot be used from process {current}")]
    WrongProcess {
        /// What the object is.
        what: &'static str,
        /// The process that created it.
        owner: u32,
        /// The calling process.
        current: u32,
    },
    /// A shared-memory channel was left inconsistent by a process that died inside it.
    #[error("{0}")]
    Broken(String),
    /// A task's code could not be found or loaded in a worker started by exec (the spawn start
    /// method), or an object could not be staged or loaded (see `multiprocessing::code`). Python:
    /// the `AttributeError`/`ImportError` of unpickling a function the worker cannot import.
    #[error("cannot load code from {object}: {message}")]
    CodeLoad {
        /// The object: its path, or its file name and build-id.
        object: String,
        /// Why: the dynamic loader's own message (`dlerror`) when it refused the object.
        message: String,
    },
    /// A cluster pool's MPI job could not start (`mpirun` or `rustmp-mpi` missing, a bad
    /// hostfile, a host that cannot be reached, the start timeout) or ended while the pool ran
    /// (a rank died): the message says why, with the end of `mpirun`'s own messages.
    #[error("{0}")]
    Cluster(String),
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Os {
        /// The call that failed.
        call: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The error of the last failed system call `call` (reads `errno`).
    pub(crate) fn last_os(call: &'static str) -> Error {
        Error::Os {
            call,
            source: std::io::Error::last_os_error(),
        }
    }
    /// The error for an `errno` value returned directly (pthread functions).
    pub(crate) fn os(call: &'static str, errno: i32) -> Error {
        Error::Os {
            call,
            source: std::io::Error::from_raw_os_error(errno),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
