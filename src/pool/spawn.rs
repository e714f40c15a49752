//! The spawn start method, the parent's side: [`StartMethod`], what a worker started by exec is
//! told (the control frames), and starting one (fork, then exec of this program with the
//! worker's socket on [`WORKER_FD`]). The worker's side is `spawned`.

use crate::code::CodeRef;
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::exec::Exec;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};

/// How a [`crate::Pool`] starts its workers: Python's start methods
/// (`multiprocessing.get_context`).
///
/// - [`Fork`](StartMethod::Fork) (the default, as Python's on Linux): each worker is a forked copy
///   of this process. Any `fn` item or non-capturing closure runs, including code loaded later (a
///   notebook cell); an initializer may capture anything; statics are the parent's at the fork.
/// - [`Spawn`](StartMethod::Spawn): each worker is a fresh process, this program started again by
///   `exec` (`/proc/self/exe`), which becomes a worker before its `main` would run. Statics start
///   fresh, as in Python's spawn; arguments and results go by serde as always. A task's function
///   is sent as a [`CodeRef`] (the build-id of the object holding it and an offset), never an
///   address: a worker that lacks that object answers with [`Error::CodeLoad`]. The initializer
///   must capture nothing (an error at `build` otherwise). Workers are named `SpawnPoolWorker-N`.
///
///   Where this library was loaded at run time (a notebook: each cell is a shared library linked
///   against the library's own), the program started again is a spawn host (the rustmp kernel,
///   see [`crate::host::SPAWN_HOST_ENV`]; `build` refuses in any other): each worker is sent the
///   bytes of the library and of each cell's object that a task needs, with the libraries they
///   need but the system's (by GNU build-id, never by name), stages them in a directory of its
///   own (0700, removed with the worker), loads them and runs the worker loop in its copy of the
///   library. So a function of a cell run after the pool was made runs on it too. An object whose
///   file changed since it was loaded, or that the worker's loader refuses, gives
///   [`Error::CodeLoad`] naming it (with the loader's message).
///
/// ```
/// use multiprocessing::{Pool, StartMethod};
/// fn cube(x: u64) -> u64 { x * x * x }
/// let pool = Pool::builder().processes(2).start_method(StartMethod::Spawn).build().unwrap();
/// assert_eq!(pool.map(cube, 1..=4).unwrap(), vec![1, 8, 27, 64]);
/// ```
///
/// Deviation from Python: its spawn re-imports the main module and so runs module-level code
/// again; a Rust program has no such code, so the worker runs none of `main`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartMethod {
    /// Workers are forked copies of this process (the default).
    #[default]
    Fork,
    /// Workers are fresh processes: this program, started again by exec.
    Spawn,
}

/// The descriptor number of a spawn worker's socket.
pub(crate) const WORKER_FD: RawFd = 3;
/// The descriptor number of the output-registration socket in a spawn worker, under a host.
const OUTPUT_FD: RawFd = 4;
/// Set (to [`WORKER_FD`]) in a spawn worker's environment: the worker's cue, read before `main`.
pub(crate) const WORKER_ENV: &str = "MULTIPROCESSING_SPAWN_WORKER";

/// Control frame kinds (the index word of a [`super::worker::CONTROL`] frame).
pub(crate) const SETUP: u64 = 1;
pub(crate) const DEFINE: u64 = 2;
/// An object's bytes, to stage (a worker of a library loaded at run time: see [`Object`]).
pub(crate) const OBJECT: u64 = 3;
/// The worker loop is in the staged library named here (see [`Enter`]).
pub(crate) const ENTER: u64 = 4;

/// The symbol of the library's worker entry, which the program's own copy of the library calls
/// in a library loaded at run time (see `spawned/host`).
pub(crate) const ENTRY_SYMBOL: &std::ffi::CStr = c"multiprocessing_spawn_worker";

/// An object a spawn worker must stage to load the code it will be sent (its file's bytes).
#[derive(Serialize, Deserialize)]
pub(crate) struct Object {
    pub(crate) build_id: crate::code::BuildId,
    /// The name to stage it under (see `code::staged_name`).
    pub(crate) name: String,
    #[serde(with = "serde_bytes")]
    pub(crate) bytes: Vec<u8>,
}

/// Sent after the library's objects, when the pool runs in a copy of this library that the
/// program loaded at run time (a notebook's): the worker loads the staged library and runs the
/// worker loop in it, so that its code and state are the ones the tasks use.
#[derive(Serialize, Deserialize)]
pub(crate) struct Enter {
    pub(crate) build_id: crate::code::BuildId,
    pub(crate) name: String,
}

/// The first frame a spawn worker gets: who it is, and its initializer.
#[derive(Serialize, Deserialize)]
pub(crate) struct Setup {
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) parent_name: String,
    pub(crate) parent_pid: u32,
    pub(crate) init: Option<CodeRef>,
}

/// Names function `fnid` (the `func` word of later tasks) for a spawn worker.
#[derive(Serialize, Deserialize)]
pub(crate) struct Define {
    pub(crate) fnid: u64,
    pub(crate) code: CodeRef,
}

/// Prepares the exec of a worker (before the fork: the child then allocates nothing): this
/// program, its environment without the library's own variables, plus [`WORKER_ENV`] and,
/// under a host, the output socket on [`OUTPUT_FD`].
pub(crate) fn prepare() -> Result<Exec> {
    let mut env = environment_without(&[
        WORKER_ENV,
        crate::host::SIGINT_ENV,
        crate::host::OUTPUT_SOCKET_ENV,
    ]);
    env.push(format!("{WORKER_ENV}={WORKER_FD}").into());
    if crate::host::output_socket().is_some() {
        env.push(format!("{}={OUTPUT_FD}", crate::host::OUTPUT_SOCKET_ENV).into());
    }
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| "multiprocessing-spawn-worker".into());
    Exec::new("/proc/self/exe", vec![argv0], env)
}

/// This process's environment as `KEY=value` entries for an exec, without the variables named.
pub(crate) fn environment_without(names: &[&str]) -> Vec<OsString> {
    std::env::vars_os()
        .filter(|(k, _)| !names.iter().any(|n| k == n))
        .map(|(k, v)| {
            let mut e = k;
            e.push("=");
            e.push(v);
            e
        })
        .collect()
}

/// In the forked child: moves the worker's socket to [`WORKER_FD`] (and the output socket to
/// [`OUTPUT_FD`]) and execs. Returns only if that failed, with the reason.
pub(crate) fn exec_worker(exec: &Exec, socket: RawFd) -> String {
    let moved = (|| {
        let sock = sys::exec::dup_above(socket, 10)?;
        let output = match crate::host::output_socket() {
            Some(o) => Some(sys::exec::dup_above(o.as_raw_fd(), 10)?),
            None => None,
        };
        sys::exec::move_to(sock, WORKER_FD)?;
        let mut last = WORKER_FD;
        if let Some(o) = output {
            sys::exec::move_to(o, OUTPUT_FD)?;
            last = OUTPUT_FD;
        }
        // As Python's spawn (`close_fds`): nothing else of the parent's reaches the worker.
        sys::exec::close_from(last + 1);
        Ok::<(), Error>(())
    })();
    if let Err(e) = moved {
        return format!("cannot start a spawn worker: {e}");
    }
    let errno = exec.exec();
    format!(
        "cannot start a spawn worker: exec of /proc/self/exe failed: {}",
        std::io::Error::from_raw_os_error(errno)
    )
}

#[cfg(test)]
mod tests {
    use crate::pool::result::{Outcome, Slot};
    use crate::{AsyncResult, Callbacks, Error, Pool, StartMethod};
    use std::sync::Arc;

    static NOT_CODE: [u8; 64] = [0; 64];

    /// Submits one chunk whose trampoline is said to be at `func`.
    fn run_at(pool: &Pool, func: usize) -> crate::Result<Vec<u64>> {
        let slot = Arc::new(Slot::<u64, Vec<u64>>::new(
            1,
            |v| v,
            Callbacks::new(),
            pool.shared.id(),
        ));
        let s = slot.clone();
        pool.submit((func, "test"), vec![vec![1u64]], move |_| s)?;
        let slot: Arc<dyn Outcome<Vec<u64>>> = slot;
        AsyncResult { slot }.get()
    }

    fn double(x: u64) -> u64 {
        2 * x
    }

    #[test]
    fn a_function_a_worker_cannot_resolve_is_a_typed_error_and_the_pool_goes_on() {
        let pool = Pool::builder()
            .processes(1)
            .start_method(StartMethod::Spawn)
            .build()
            .unwrap();
        // Data, not code: located in the parent, refused by the worker (never called).
        match run_at(&pool, NOT_CODE.as_ptr() as usize) {
            Err(Error::CodeLoad { object, message }) => {
                assert!(message.contains("not in a code segment"), "{message}");
                let exe = std::fs::read_link("/proc/self/exe").unwrap();
                assert_eq!(object, exe.display().to_string());
            }
            other => panic!("expected CodeLoad, got {other:?}"),
        }
        // In no object at all: refused in the parent, never sent.
        match run_at(&pool, 8) {
            Err(Error::CodeLoad { message, .. }) => {
                assert!(message.contains("no loaded object"), "{message}")
            }
            other => panic!("expected CodeLoad, got {other:?}"),
        }
        assert_eq!(pool.map(double, vec![1, 2]).unwrap(), vec![2, 4]);
    }
}
