//! A small front for the relay tests (the library's cluster pool, `src/pool/cluster`, is the
//! real one): it makes an owner-only socket directory and a 0600 secret file, starts mpirun in
//! the pool's layout (the bridge here, `rustmp-mpi worker` ranks on the given hosts), accepts
//! and authenticates the bridge (refusing any other connection), and exchanges frames.

use super::run::{self, Running};
use rustmp_mpi::frame::{Frame, Kind, read_frame};
use rustmp_mpi::mac;
use rustmp_mpi::proto::Hello;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long mpirun may take to bring the bridge to our socket (the front's own start timeout:
/// some failures make mpirun hang silently).
pub const START_LIMIT: Duration = Duration::from_secs(20);

/// What to launch.
pub struct Launch<'a> {
    /// `rustmp-mpi`.
    pub exe: &'a Path,
    /// This host's name (rank 0 goes there).
    pub here: &'a str,
    /// `host:slots` for the worker ranks.
    pub hosts: Vec<String>,
    /// The number of worker ranks.
    pub workers: usize,
    /// Extra environment for mpirun (the fake cluster's settings).
    pub env: Vec<(String, String)>,
    /// A program run as `PROGRAM connect SOCKET` before mpirun starts: a connection without
    /// the secret that the front must refuse.
    pub rogue: Option<&'a Path>,
}

/// A running job and its bridge.
pub struct Front {
    /// The socket directory (0700).
    pub dir: PathBuf,
    /// The pool's secret.
    pub secret: [u8; mac::SECRET_LEN],
    /// mpirun.
    pub job: Running,
    /// The socket's path.
    pub socket: PathBuf,
    writer: UnixStream,
    frames: Receiver<Option<Frame>>,
    /// Whether the bridge's socket has closed.
    pub closed: bool,
    /// Every rank's hello (0: the bridge).
    pub hellos: BTreeMap<u32, Hello>,
    /// Connections refused before the bridge's.
    pub rejected: usize,
    /// MAC'd frames sent to each rank so far (the sequence number the rank expects next).
    pub sent: BTreeMap<u32, u64>,
    /// Frames received and not taken by an `expect`.
    pub unclaimed: Vec<Frame>,
}

/// mpirun with none of the caller's Open MPI settings.
pub fn mpirun() -> Command {
    let mut command = Command::new("mpirun");
    for (key, _) in std::env::vars() {
        if key.starts_with("OMPI_MCA_") || key.starts_with("RUSTMP_FAKE_") {
            command.env_remove(key);
        }
    }
    command
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    command
}

impl Front {
    /// Starts the job and waits for the bridge's proof and every rank's hello.
    pub fn launch(launch: &Launch) -> Result<Front, String> {
        let base = std::env::temp_dir().join(format!("rustmp-mpi-front-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&base)
            .map_err(|e| format!("create {}: {e}", base.display()))?;
        let socket = base.join("front.sock");
        let secret_file = base.join("secret");
        let secret = mac::random::<{ mac::SECRET_LEN }>().map_err(|e| e.to_string())?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret_file)
            .and_then(|mut f| f.write_all(&secret))
            .map_err(|e| format!("write {}: {e}", secret_file.display()))?;
        let listener = UnixListener::bind(&socket).map_err(|e| format!("bind: {e}"))?;
        let mut rejected = 0;
        if let Some(rogue) = launch.rogue {
            let mut intruder = run::spawn(Command::new(rogue).arg("connect").arg(&socket))?;
            rejected += accept_one(&listener, &secret).err().map_or(0, |_| 1);
            intruder.finish(START_LIMIT)?;
        }
        let mut command = mpirun();
        command
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .args(["--mca", "odls_base_sigkill_timeout", "0"])
            .args(["--mca", "mpi_yield_when_idle", "1"])
            // The ranks only talk to the bridge: TCP everywhere, so that the relay loops can
            // sleep on Open MPI's sockets (rustmp_mpi::wake), which libevent then reads at every
            // progress call instead of every 10 ms.
            .args(["--mca", "btl", "tcp,self"])
            .args(["--mca", "mpi_event_tick_rate", "1"])
            .args(["-np", "1", "--host", &format!("{}:1", launch.here)])
            .arg(launch.exe)
            .arg("bridge")
            .arg("--socket")
            .arg(&socket)
            .arg("--secret-file")
            .arg(&secret_file)
            .args([
                ":",
                "-np",
                &launch.workers.to_string(),
                "--host",
                &launch.hosts.join(","),
            ])
            .arg(launch.exe)
            .arg("worker");
        let mut job = run::spawn(&mut command)?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    match authenticate(stream, &secret) {
                        Ok(stream) => break stream,
                        Err(_) => rejected += 1,
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("accept: {e}")),
            }
            if job.ended() || start.elapsed() > START_LIMIT {
                let why = if job.ended() {
                    "mpirun ended"
                } else {
                    "timed out"
                };
                return Err(format!(
                    "{why} before the bridge connected\n{}",
                    job.stderr_now()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(listener);
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let (send, frames) = channel();
        std::thread::spawn(move || {
            let mut stream = stream;
            while let Ok(Some(frame)) = read_frame(&mut stream) {
                if send.send(Some(frame)).is_err() {
                    return;
                }
            }
            let _ = send.send(None);
        });
        let mut front = Front {
            dir: base,
            secret,
            job,
            socket,
            writer,
            frames,
            closed: false,
            hellos: BTreeMap::new(),
            rejected,
            sent: BTreeMap::new(),
            unclaimed: Vec::new(),
        };
        let limit = START_LIMIT.saturating_sub(start.elapsed());
        let ready = front.expect(limit, "ready", |f| f.kind == Kind::Ready)?;
        let workers = rustmp_mpi::proto::decode_u32(&ready.payload).map_err(|e| e.to_string())?;
        for frame in std::mem::take(&mut front.unclaimed) {
            if frame.kind == Kind::Hello {
                let hello = Hello::decode(&frame.payload).map_err(|e| e.to_string())?;
                front.hellos.insert(frame.rank, hello);
            } else {
                front.unclaimed.push(frame);
            }
        }
        if workers as usize != launch.workers || front.hellos.len() != launch.workers + 1 {
            return Err(format!(
                "ready with {workers} workers, hellos {:?}",
                front.hellos
            ));
        }
        Ok(front)
    }

    /// Sends a frame to the bridge.
    pub fn send(&mut self, rank: u32, kind: Kind, payload: Vec<u8>) -> Result<(), String> {
        if rank != 0 && kind != Kind::Raw {
            *self.sent.entry(rank).or_insert(0) += 1;
        }
        self.writer
            .write_all(&Frame::new(rank, kind, payload).encode())
            .map_err(|e| format!("write to the bridge: {e}"))
    }

    /// The next frame that `want` accepts, within `limit`; others are kept in `unclaimed`.
    pub fn expect(
        &mut self,
        limit: Duration,
        what: &str,
        mut want: impl FnMut(&Frame) -> bool,
    ) -> Result<Frame, String> {
        if let Some(at) = self.unclaimed.iter().position(&mut want) {
            return Ok(self.unclaimed.remove(at));
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Some(frame)) if want(&frame) => return Ok(frame),
                Ok(Some(frame)) => self.unclaimed.push(frame),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    self.closed = true;
                    return Err(self.failure(what, "the bridge's socket closed"));
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(what, &format!("nothing within {limit:?}")));
                }
            }
        }
    }

    fn failure(&self, what: &str, why: &str) -> String {
        format!(
            "waiting for {what}: {why}\nframes seen: {:?}\nmpirun stderr:\n{}",
            self.unclaimed
                .iter()
                .map(|f| format!("{}:{:?}:{}", f.rank, f.kind, f.text()))
                .collect::<Vec<_>>(),
            self.job.stderr_now()
        )
    }

    /// Waits for the bridge's socket to close; how long that took.
    pub fn wait_closed(&mut self, limit: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        while !self.closed {
            let left = limit.saturating_sub(start.elapsed());
            match self.frames.recv_timeout(left) {
                Ok(Some(frame)) => self.unclaimed.push(frame),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => self.closed = true,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure("the end", "the socket stayed open"));
                }
            }
        }
        Ok(start.elapsed())
    }
}

impl Front {
    /// Closes the front's end of the socket (as a dying kernel would); the job is left to end.
    pub fn hang_up(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One connection to `listener` (blocking), which must prove it knows `secret`.
fn accept_one(listener: &UnixListener, secret: &[u8]) -> Result<UnixStream, String> {
    let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
    authenticate(stream, secret)
}

fn authenticate(mut stream: UnixStream, secret: &[u8]) -> Result<UnixStream, String> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    mac::check(&mut stream, secret).map_err(|e| e.to_string())?;
    let _ = stream.set_read_timeout(None);
    Ok(stream)
}
