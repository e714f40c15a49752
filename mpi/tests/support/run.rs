//! Runs a command with a deadline: it gets its own process group, which is killed when the
//! deadline passes, so a stuck `mpirun` fails the test instead of hanging it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the outputs may stay open after the command exited (something it started and
/// left behind would hold them).
const DRAIN: Duration = Duration::from_secs(5);

/// What a finished command left.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// The command and both outputs, for a failure message.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}: {} after {:.1} s\n--- stdout\n{}--- stderr\n{}",
            self.status,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// A command that runs, its outputs collected as they come.
pub struct Running {
    child: Child,
    shown: String,
    start: Instant,
    stdout: Output,
    stderr: Output,
}

/// One output of a running command: the text so far, and a signal at its end.
struct Output {
    text: Arc<Mutex<String>>,
    closed: Receiver<()>,
}

impl Output {
    fn collect(pipe: Option<impl Read + Send + 'static>) -> Output {
        let text = Arc::new(Mutex::new(String::new()));
        let (close, closed) = channel();
        let sink = Arc::clone(&text);
        std::thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                    let piece = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&piece);
                    }
                }
            }
            let _ = close.send(());
        });
        Output { text, closed }
    }

    fn now(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// Starts `command` (stdin closed, outputs collected) in a process group of its own.
pub fn spawn(command: &mut Command) -> Result<Running, String> {
    let shown = format!("{command:?}");
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot start {shown}: {error}"))?;
    let stdout = Output::collect(child.stdout.take());
    let stderr = Output::collect(child.stderr.take());
    Ok(Running {
        child,
        shown,
        start,
        stdout,
        stderr,
    })
}

/// Runs `command` to its end, waiting at most `deadline`.
pub fn run(command: &mut Command, deadline: Duration) -> Result<Finished, String> {
    spawn(command)?.finish(deadline)
}

impl Running {
    /// Its pid (and process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has ended.
    pub fn ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)) | Err(_))
    }

    /// Its stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr.now()
    }

    /// Its stdout so far.
    pub fn stdout_now(&self) -> String {
        self.stdout.now()
    }

    /// Waits until `ready` holds for the stdout so far; fails (and kills it) after `limit` or
    /// when the command ends first.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if ready(&self.stdout.now()) {
                return Ok(());
            }
            let ended = matches!(self.child.try_wait(), Ok(Some(_)));
            if ended || start.elapsed() > limit {
                kill_group(self.child.id());
                return Err(format!(
                    "{}: {} before its output was ready\n--- stdout\n{}--- stderr\n{}",
                    self.shown,
                    if ended { "ended" } else { "timed out" },
                    self.stdout.now(),
                    self.stderr.now()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the end, at most `deadline` from the start (then kills the group and fails).
    pub fn finish(&mut self, deadline: Duration) -> Result<Finished, String> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if self.start.elapsed() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    kill_group(self.child.id());
                    let _ = self.child.wait();
                    return Err(format!(
                        "{} did not finish within {} s (killed)\n--- stdout\n{}--- stderr\n{}",
                        self.shown,
                        deadline.as_secs(),
                        self.stdout.now(),
                        self.stderr.now()
                    ));
                }
                Err(error) => return Err(format!("cannot wait for {}: {error}", self.shown)),
            }
        };
        let elapsed = self.start.elapsed();
        // Something the command started and left running would keep its outputs open.
        for (output, name) in [(&self.stdout, "stdout"), (&self.stderr, "stderr")] {
            if output.closed.recv_timeout(DRAIN).is_err() {
                kill_group(self.child.id());
                return Err(format!(
                    "{} exited ({status}) but its {name} stayed open for {} s: a process it \
                     started is still running",
                    self.shown,
                    DRAIN.as_secs()
                ));
            }
        }
        Ok(Finished {
            status,
            stdout: self.stdout.now(),
            stderr: self.stderr.now(),
            elapsed,
        })
    }
}

impl Drop for Running {
    /// A command not waited for to its end (a scenario that failed early) is killed.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

/// Sends `signal` (a kill(1) name such as `KILL`) to `pid`, through kill(1): no unsafe code in
/// the test.
pub fn signal(pid: u32, signal: &str) -> Result<(), String> {
    let done = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if done.success() {
        Ok(())
    } else {
        Err(format!("kill -{signal} {pid} failed: {done}"))
    }
}

/// SIGKILL to the process group `pgid`.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}
