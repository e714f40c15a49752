//! Runs a command with a deadline: it gets its own process group, which is killed when the
//! deadline passes, so a stuck `mpirun` fails the test instead of hanging it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
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

/// Runs `command` (stdin closed, outputs captured) and waits at most `deadline`.
pub fn run(command: &mut Command, deadline: Duration) -> Result<Finished, String> {
    let shown = format!("{command:?}");
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot start {shown}: {error}"))?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                kill_group(child.id());
                let _ = child.wait();
                let out = stdout.recv_timeout(DRAIN).unwrap_or_default();
                let err = stderr.recv_timeout(DRAIN).unwrap_or_default();
                return Err(format!(
                    "{shown} did not finish within {} s (killed)\n--- stdout\n{out}--- stderr\n{err}",
                    deadline.as_secs()
                ));
            }
            Err(error) => return Err(format!("cannot wait for {shown}: {error}")),
        }
    };
    let elapsed = start.elapsed();
    // Something the command started and left running would keep its outputs open.
    let drained = |pipe: Receiver<String>, name: &str| {
        pipe.recv_timeout(DRAIN).map_err(|_| {
            kill_group(child.id());
            format!("{shown} exited ({status}) but its {name} stayed open for {} s: a process it started is still running", DRAIN.as_secs())
        })
    };
    let stdout = drained(stdout, "stdout")?;
    let stderr = drained(stderr, "stderr")?;
    Ok(Finished {
        status,
        stdout,
        stderr,
        elapsed,
    })
}

/// Reads `pipe` to its end on a thread; the text arrives on the receiver.
fn reader(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receive
}

/// SIGKILL to the process group `pgid` (through kill(1): no unsafe code in the test).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}
