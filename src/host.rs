//! Integration with a host that runs code using this library (a notebook kernel, a test runner),
//! configured through environment variables so the host needs no Rust API of ours.
//!
//! - [`OUTPUT_SOCKET_ENV`]: `MULTIPROCESSING_OUTPUT_SOCKET=<fd>` names an inherited `AF_UNIX`
//!   datagram socket. Every child this library forks then gets its **own** stdout and stderr
//!   pipes: right after the fork it creates two pipes, sends their read ends to the host in one
//!   datagram (`SCM_RIGHTS` with `[stdout, stderr]`; the payload is the child's pid as 4 bytes
//!   little-endian followed by its name in UTF-8), and makes the write ends its fd 1 and 2. The host
//!   can so read each process's output apart, and no writer's line is ever cut by another's. A
//!   child registers before it can write anything, so a host that reads the socket before the
//!   pipes sees every byte. If the datagram cannot be sent, the child keeps its inherited fds.
//!
//!   So that the host can put the processes' output in the order it happened, a process also
//!   writes two kinds of ordering records on its own stdout (escapes the host removes):
//!   `ESC ] 5379;fork:<pid>;e30= BEL \n` right after it forked child `<pid>` (what the parent
//!   wrote before comes before anything the child writes), and
//!   `ESC ] 5379;sync:<pid>,<pid>…;e30= BEL \n` when it learns that those processes are done with
//!   something (a child joined, a pool result received): what they wrote before comes before
//!   what this process writes next.
//!
//!   The records' format is [`record`]'s; the descriptor passing is [`send_fds`] and
//!   [`recv_fds`], which a host uses for its side.
//! - [`SIGINT_ENV`]: `MULTIPROCESSING_SIGINT=interrupt` turns `multiprocessing::interrupt::enable`
//!   on as soon as the library is loaded (a shared library's constructor, in the interrupt
//!   module), for hosts that cannot call it.
//!
//! - [`SPAWN_HOST_ENV`]: `MULTIPROCESSING_SPAWN_HOST=<path>` says that the program can be
//!   started again as a spawn pool worker for this library loaded at run time.
//!
//! This module is a leaf: it names no other module of the library but the system layer (its
//! callers hand it what it needs, such as the pids of a `sync` record).

#![deny(unsafe_code)]

pub mod record;

mod fds;

pub use fds::{MAX_FDS, recv_fds, send_fds};

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

/// Environment variable naming the output-registration socket (see the module docs).
///
/// ```
/// assert_eq!(multiprocessing::host::OUTPUT_SOCKET_ENV, "MULTIPROCESSING_OUTPUT_SOCKET");
/// ```
pub const OUTPUT_SOCKET_ENV: &str = "MULTIPROCESSING_OUTPUT_SOCKET";

/// Environment variable that enables interrupts at load time when set to `interrupt`.
///
/// ```
/// assert_eq!(multiprocessing::host::SIGINT_ENV, "MULTIPROCESSING_SIGINT");
/// ```
pub const SIGINT_ENV: &str = "MULTIPROCESSING_SIGINT";

/// Environment variable a program sets (to its own path) to say that it hosts spawn pool
/// workers for this library loaded at run time. Its value must name the program (the file
/// `/proc/self/exe` is, or one with the same build-id): the variable is inherited by every
/// program the host starts, and those are not hosts. The program contains this
/// library, and started again with a worker's socket it becomes a worker (before its `main`)
/// that loads the staged copy of the library it is sent and runs the worker loop there. The
/// rustmp kernel sets it in its runtime process, so that notebooks can use
/// [`crate::StartMethod::Spawn`].
///
/// ```
/// assert_eq!(multiprocessing::host::SPAWN_HOST_ENV, "MULTIPROCESSING_SPAWN_HOST");
/// ```
pub const SPAWN_HOST_ENV: &str = "MULTIPROCESSING_SPAWN_HOST";

/// The registration socket, read once per process tree from the environment.
pub(crate) fn output_socket() -> Option<BorrowedFd<'static>> {
    static SOCKET: OnceLock<Option<OwnedFd>> = OnceLock::new();
    SOCKET
        .get_or_init(|| {
            let fd = std::env::var(OUTPUT_SOCKET_ENV).ok()?.trim().parse().ok()?;
            crate::sys::process::adopt_inherited_fd(fd)
        })
        .as_ref()
        .map(AsFd::as_fd)
}

/// The ordering record written after forking `pid` (see the module docs).
pub(crate) fn fork_record(pid: u32) -> Vec<u8> {
    record::fork(pid)
}

/// Under a host: the `sync` record for `pids()` (called only then, so that outside a host this
/// costs one check). Called when a child was joined or a pool result arrived.
pub(crate) fn sync_fence_with(pids: impl FnOnce() -> Vec<u32>) {
    if output_socket().is_some() {
        sync_fence(&pids());
    }
}

/// Under a host: writes the `sync` record for `pids` on stdout, after what this process's std
/// already buffered (see the module docs). Called when a child was joined or a pool result
/// arrived.
pub(crate) fn sync_fence(pids: &[u32]) {
    if output_socket().is_none() || pids.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&record::sync(pids));
    let _ = out.flush();
}

/// In a new child: give it its own output pipes and hand their read ends to the host. If
/// anything fails, the child keeps the descriptors it inherited (and nothing leaks).
pub(crate) fn register_output(socket: BorrowedFd<'_>, name: &str) {
    use crate::sys::fd::{Std, pipe2, redirect};
    let Ok((out_r, out_w)) = pipe2(false) else {
        return;
    };
    let Ok((err_r, err_w)) = pipe2(false) else {
        return;
    };
    let mut payload = std::process::id().to_le_bytes().to_vec();
    payload.extend_from_slice(name.as_bytes());
    if send_fds(socket, &payload, &[out_r.as_fd(), err_r.as_fd()]).is_ok() {
        let _ = redirect(Std::Out, &out_w);
        let _ = redirect(Std::Err, &err_w);
    }
}
