//! The worker process of a rank: a program with its socket on fd [`crate::WORKER_FD`], stdout
//! and stderr on pipes, stdin on /dev/null, no other descriptor of the rank, and
//! `PR_SET_PDEATHSIG` so that it dies with its rank.

use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

use crate::proto::Exited;

/// Environment variables of the rank that a worker does not inherit (prefixes).
pub const NOT_INHERITED: [&str; 3] = ["OMPI_", "PMIX_", "OPAL_"];

/// A running worker.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    /// Its pid.
    pub pid: u32,
    /// The rank's end of its socket (non-blocking).
    pub socket: UnixStream,
    /// Its stdout (non-blocking), until it closes.
    pub stdout: Option<ChildStdout>,
    /// Its stderr (non-blocking), until it closes.
    pub stderr: Option<ChildStderr>,
}

fn nonblocking(fd: &impl AsRawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let ok = unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts `program` with `args` and `env` (on top of this process's environment without
/// [`NOT_INHERITED`]). An exec failure comes back as the error (e.g. "Permission denied" on a
/// `noexec` staging directory); a loader failure shows as the worker's stderr and exit code 127.
pub fn start(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
) -> std::io::Result<Worker> {
    let (ours, theirs) = UnixStream::pair()?;
    let fd = theirs.as_raw_fd();
    let parent = std::process::id();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        let text = key.to_string_lossy();
        if NOT_INHERITED.iter().any(|p| text.starts_with(p)) {
            command.env_remove(&key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions
    // (prctl, getppid, dup2, fcntl) on integers; it allocates nothing.
    unsafe {
        command.pre_exec(move || crate::sys::child::prepare(fd, parent));
    }
    let mut child = command.spawn()?;
    drop(theirs);
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    nonblocking(&ours)?;
    if let Some(out) = &stdout {
        nonblocking(out)?;
    }
    if let Some(err) = &stderr {
        nonblocking(err)?;
    }
    Ok(Worker {
        child,
        pid,
        socket: ours,
        stdout,
        stderr,
    })
}

/// What a non-blocking read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// These bytes.
    Bytes(Vec<u8>),
    /// Nothing now.
    Nothing,
    /// The end of the stream (or an error that ends it).
    End,
}

/// Reads what is there now (at most 64 KiB).
pub fn read_now(input: &mut impl Read) -> Got {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        return match input.read(&mut buffer) {
            Ok(0) => Got::End,
            Ok(n) => {
                buffer.truncate(n);
                Got::Bytes(buffer)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => Got::Nothing,
            Err(_) => Got::End,
        };
    }
}

impl Worker {
    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<Exited> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(Exited {
                code: status.code(),
                signal: status.signal(),
            }),
            Ok(None) => None,
            Err(_) => Some(Exited {
                code: None,
                signal: None,
            }),
        }
    }

    /// SIGKILLs it and waits for it.
    pub fn kill(&mut self) -> Exited {
        let _ = self.child.kill();
        let status = self.child.wait();
        status.map_or(
            Exited {
                code: None,
                signal: None,
            },
            |s| Exited {
                code: s.code(),
                signal: s.signal(),
            },
        )
    }
}
