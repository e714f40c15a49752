//! The front: starts the job (an owner-only directory with the socket and the 0600 secret
//! file, `mpirun`), accepts and checks the bridge (`SO_PEERCRED` and the secret), waits for
//! every rank, starts a worker on each (this program, or `rustmp-mpi` as a spawn host), then
//! hands the socket to the relay thread. A
//! worker's [`Link`] is its rank seen from the pool's manager.

use super::job::{self, JobState};
use super::link::Link;
use super::relay::{self, Command};
use super::wire::{self, Decoder, Frame};
use super::{Mpi, mpirun};
use crate::code::Stage;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::runtime;
use crate::sys::poll::{PollFd, poll};
use crate::sys::{self, Events, Io, Signal};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// A running job and its relay; dropping it ends the job (`Stop`, then signals), waits for
/// `mpirun` and removes the directory.
pub(crate) struct Front {
    hosts: Vec<String>,
    /// Ranks whose worker was started once (a new one is a `Restart`).
    started: Vec<bool>,
    job: Arc<JobState>,
    mpirun: u32,
    commands: mpsc::Sender<Command>,
    wake: OwnedFd,
    relay: Option<std::thread::JoinHandle<()>>,
    _stage: Stage,
}

/// `mpirun` while the job starts: killed if the start fails.
struct Starting {
    pid: u32,
    pidfd: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    tail: Vec<u8>,
    deadline: Instant,
    watch: Watch,
}

impl Starting {
    /// Waits for `fd` to be readable, reading mpirun's stderr meanwhile; an error when mpirun
    /// exits, the start times out or an interrupt comes.
    fn wait_readable(&mut self, fd: std::os::fd::BorrowedFd<'_>, what: &str) -> Result<()> {
        loop {
            self.watch.check()?;
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.failed(&format!(
                    "no {what} within the start timeout (a host that cannot be reached, or \
                     that cannot reach this one?)"
                )));
            }
            let mut fds = vec![PollFd::new(fd, Events::IN)];
            if let Some(err) = &self.stderr {
                fds.push(PollFd::new(err.as_fd(), Events::IN));
            }
            let _ = poll(&mut fds, left.min(Duration::from_millis(100)));
            let ready = !fds[0].revents().is_empty();
            drop(fds);
            job::read_tail(&mut self.stderr, &mut self.tail);
            if ready {
                return Ok(());
            }
            if matches!(runtime::poll_exit(self.pid), Ok(Some(_))) {
                job::read_tail(&mut self.stderr, &mut self.tail);
                return Err(self.failed(&format!("mpirun ended before the {what}")));
            }
        }
    }

    fn failed(&mut self, why: &str) -> Error {
        job::end_job(self.pid);
        job::read_tail(&mut self.stderr, &mut self.tail);
        Error::Cluster(format!(
            "the MPI job did not start: {why}{}",
            job::describe_exit(self.pid, &self.tail)
        ))
    }

    /// The next frame from the bridge.
    fn frame(&mut self, stream: &mut UnixStream, input: &mut Decoder, what: &str) -> Result<Frame> {
        loop {
            match input.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(self.failed(&format!("the bridge sent {e}"))),
            }
            self.wait_readable(stream.as_fd(), what)?;
            let mut buf = vec![0u8; 64 * 1024];
            match sys::recv(stream.as_raw_fd(), &mut buf, true) {
                Ok(Io::Done(n)) => input.push(&buf[..n]),
                Ok(Io::WouldBlock) => {}
                _ => return Err(self.failed(&format!("the bridge hung up before the {what}"))),
            }
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if self.pid != 0 {
            job::end_job(self.pid);
            runtime::disown(self.pid);
        }
    }
}

/// Accepts connections until one is this user's and sends the secret.
fn accept_bridge(listener: &UnixListener, secret: &[u8], job: &mut Starting) -> Result<UnixStream> {
    loop {
        job.wait_readable(listener.as_fd(), "connection from the bridge")?;
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        let same_user =
            sys::peer::peer_credentials(&stream).is_ok_and(|(_, uid)| uid == sys::exec::getuid());
        if same_user && proof_ok(&stream, secret, job.deadline) {
            return Ok(stream);
        }
        // Someone else (or a process of ours without the secret): closed, never trusted.
    }
}

/// Reads the connection's proof for at most 2 s, and not past the start's `deadline`.
fn proof_ok(stream: &UnixStream, secret: &[u8], deadline: Instant) -> bool {
    use std::io::Read;
    let mut proof = [0u8; 8 + 32];
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(left.min(Duration::from_secs(2))));
    let read = (&*stream).read_exact(&mut proof).is_ok();
    let _ = stream.set_read_timeout(None);
    read && wire::proof_matches(&proof, secret)
}

impl Front {
    /// Starts the job for `workers` worker ranks and a worker on each of them: this program
    /// (its bytes shipped), or, for this library loaded at run time (`hosted`, a notebook's),
    /// the launcher itself, a spawn host (the manager sends it the library and the cells'
    /// objects as it does a local spawn worker).
    pub(crate) fn start(mpi: &Mpi, workers: usize, hosted: bool) -> Result<Front> {
        let mpirun_path = mpirun::mpirun_program(mpi)?;
        let launcher = mpirun::launcher_program(mpi)?;
        let here = mpirun::here()?;
        let hosts = mpirun::worker_hosts(mpi, &here, workers)?;
        let program = if hosted {
            Vec::new()
        } else {
            std::fs::read("/proc/self/exe").map_err(|e| Error::Os {
                call: "read /proc/self/exe (the program the workers run)",
                source: e,
            })?
        };
        let epoch = crate::interrupt::raised_count();
        let stage = Stage::new()?;
        let socket = stage.path().join("front.sock");
        let secret_file = stage.path().join("secret");
        let mut secret = [0u8; 32];
        sys::fill_random(&mut secret)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret_file)
            .and_then(|mut f| f.write_all(&secret))
            .map_err(|e| Error::Os {
                call: "write the pool's secret file",
                source: e,
            })?;
        let listener = UnixListener::bind(&socket).map_err(|e| Error::Os {
            call: "bind the front's socket",
            source: e,
        })?;
        listener.set_nonblocking(true).map_err(|e| Error::Os {
            call: "fcntl",
            source: e,
        })?;
        let layout = mpirun::Layout {
            mpirun: &mpirun_path,
            launcher: &launcher,
            here: &here,
            hosts: &hosts,
            workers,
            socket: &socket,
            secret_file: &secret_file,
        };
        let started_job = mpirun::start(mpirun::command_line(mpi, &layout))?;
        let mut job = Starting {
            pid: started_job.pid,
            pidfd: started_job.pidfd,
            stderr: Some(started_job.stderr),
            tail: Vec::new(),
            deadline: Instant::now() + mpi.start_timeout,
            watch: Watch::new(),
        };
        let mut stream = accept_bridge(&listener, &secret, &mut job)?;
        drop(listener);
        let _ = std::fs::remove_file(&socket);
        let _ = stream.set_nonblocking(true);
        let mut input = Decoder::default();
        let mut ranks: Vec<(String, u32)> = vec![(String::new(), 0); workers + 1];
        // What the start does not consume (a worker's output, data, exit): the relay's.
        let mut early = Vec::new();
        loop {
            let frame = job.frame(&mut stream, &mut input, "ready message")?;
            match frame.kind {
                wire::HELLO => {
                    if let (Some((pid, host)), Some(slot)) = (
                        wire::number_and_bytes(&frame.payload),
                        ranks.get_mut(frame.rank as usize),
                    ) {
                        *slot = (String::from_utf8_lossy(host).into_owned(), pid);
                    }
                }
                wire::READY => break,
                wire::ERROR => {
                    return Err(job.failed(&format!("the bridge says: {}", frame.text())));
                }
                _ => early.push(frame),
            }
        }
        if ranks[0].0 != here {
            return Err(job.failed(&format!(
                "the bridge runs on {}, not on this host ({here})",
                ranks[0].0
            )));
        }
        let name = std::fs::read_link("/proc/self/exe")
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "program".into());
        let start = if hosted {
            wire::start(wire::Program::Path(&launcher), &worker_env(mpi))
        } else {
            wire::start(
                wire::Program::Bytes {
                    name: &name,
                    bytes: &program,
                },
                &worker_env(mpi),
            )
        };
        drop(program);
        let mut out = Vec::new();
        for rank in 1..=workers as u32 {
            out.clear();
            wire::encode_into(&mut out, rank, wire::START, &start);
            send_all(&stream, &out, &mut job)?;
        }
        let mut pending = workers;
        let mut pids = vec![0u32; workers + 1];
        while pending > 0 {
            let frame = job.frame(&mut stream, &mut input, "start of every worker")?;
            let rank = frame.rank as usize;
            match frame.kind {
                wire::STARTED if (1..=workers).contains(&rank) && pids[rank] == 0 => {
                    pids[rank] = wire::number_and_bytes(&frame.payload).map_or(1, |(p, _)| p);
                    pending -= 1;
                }
                wire::START_FAILED | wire::ERROR
                    if frame.kind == wire::START_FAILED || rank == 0 =>
                {
                    let host = ranks.get(rank).map_or("?", |r| r.0.as_str()).to_string();
                    return Err(job.failed(&format!(
                        "rank {rank} on {host} cannot start the worker: {}",
                        frame.text()
                    )));
                }
                _ => early.push(frame),
            }
        }
        let state = Arc::new(JobState::default());
        let (commands, receiver) = mpsc::channel();
        let (wake_r, wake_w) = sys::pipe()?;
        let hosts: Vec<String> = ranks.iter().map(|r| r.0.clone()).collect();
        let relay = relay::Relay::new(relay::Parts {
            bridge: stream,
            input,
            early,
            mpirun: job.pid,
            pidfd: job.pidfd.take(),
            stderr: job.stderr.take(),
            tail: std::mem::take(&mut job.tail),
            commands: receiver,
            wake: wake_r,
            hosts: hosts.clone(),
            pids,
            state: state.clone(),
            echo: super::echo::Echo::start()?,
            epoch,
        });
        let thread = std::thread::Builder::new()
            .name("multiprocessing-mpi-relay".into())
            .spawn(move || relay.run())
            .map_err(|e| Error::Os {
                call: "spawn the MPI relay thread",
                source: e,
            })?;
        let mpirun = std::mem::replace(&mut job.pid, 0);
        Ok(Front {
            hosts,
            started: vec![true; workers + 1],
            job: state,
            mpirun,
            commands,
            wake: wake_w,
            relay: Some(thread),
            _stage: stage,
        })
    }

    /// The lowest worker rank not in `used` (`None`: each has a worker, one of which may be
    /// retiring), or why there is none (the job ended).
    pub(crate) fn free_rank(&self, used: &[u32]) -> Result<Option<u32>> {
        if let Some(why) = self.job.dead() {
            return Err(Error::Cluster(why));
        }
        Ok((1..self.hosts.len() as u32).find(|r| !used.contains(r)))
    }

    /// Why the job ended, once it has.
    pub(crate) fn ended(&self) -> Option<String> {
        self.job.dead()
    }

    /// The host of `rank`.
    pub(crate) fn host(&self, rank: u32) -> &str {
        self.hosts.get(rank as usize).map_or("?", String::as_str)
    }

    /// Connects `socket` (the relay's end of a new worker's socket) to `rank`, starting its
    /// worker again if it ran one before; `name` prefixes its output lines.
    pub(crate) fn attach(&mut self, rank: u32, socket: OwnedFd, name: String) -> Result<Arc<Link>> {
        let link = Arc::new(Link::new(rank, 0, self.job.clone()));
        let restart = std::mem::replace(&mut self.started[rank as usize], false);
        let restart = !restart;
        self.command(Command::Attach {
            rank,
            socket,
            link: link.clone(),
            name,
            restart,
        })?;
        Ok(link)
    }

    fn command(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| {
            Error::Cluster(self.job.dead().unwrap_or_else(|| "the relay ended".into()))
        })?;
        let _ = sys::fd::write(&self.wake, &[1]);
        Ok(())
    }
}

/// What a worker adds to its rank's environment: the spawn worker's cue, and the backtrace
/// settings of this process.
fn worker_env(mpi: &Mpi) -> Vec<(String, String)> {
    let mut env = vec![(
        crate::pool::spawn::WORKER_ENV.to_string(),
        crate::pool::spawn::WORKER_FD.to_string(),
    )];
    for key in ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        if let Ok(value) = std::env::var(key) {
            env.push((key.to_string(), value));
        }
    }
    env.extend(mpi.env.iter().cloned());
    env
}

/// Writes `bytes` to the bridge during the start (the bridge never blocks writing to us).
fn send_all(stream: &UnixStream, mut bytes: &[u8], job: &mut Starting) -> Result<()> {
    while !bytes.is_empty() {
        match sys::send(stream.as_raw_fd(), bytes, true) {
            Ok(Io::Done(n)) => bytes = &bytes[n..],
            Ok(Io::WouldBlock) => {
                let _ = sys::poll_fd(stream.as_fd(), Events::OUT, Duration::from_millis(100));
                job.watch.check()?;
                if Instant::now() > job.deadline {
                    return Err(
                        job.failed("the program could not be sent within the start timeout")
                    );
                }
            }
            _ => return Err(job.failed("the bridge hung up while the program was sent")),
        }
    }
    Ok(())
}

impl Drop for Front {
    fn drop(&mut self) {
        // Stop to rank 0: the bridge stops every rank and the job ends (mpirun exits 0).
        let _ = self.command(Command::Stop);
        let deadline = sys::Deadline::after(Duration::from_secs(5));
        if !matches!(
            runtime::wait_exit(self.mpirun, None, deadline, None),
            Ok(Some(_))
        ) {
            job::end_job(self.mpirun);
        }
        let _ = self.command(Command::Quit);
        if let Some(thread) = self.relay.take() {
            let _ = thread.join();
        }
        let _ = runtime::signal(self.mpirun, Signal::SIGKILL);
        runtime::disown(self.mpirun);
    }
}
