//! [`Process`]: a forked child running a closure, with Python's names, exit codes and lifecycle.

#![deny(unsafe_code)]

use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::runtime::{self, Kind, Spawn};
use crate::sys::Signal;
use crate::sys::{self, Deadline};
use std::os::fd::OwnedFd;
use std::time::Duration;

/// A child process that runs a closure, like Python's `multiprocessing.Process` with the fork start method.
///
/// The closure may capture anything (fork copies the whole address space). Conventions follow Python:
/// exit code `0` when the closure returns, `1` when it panics (the panic message and a backtrace go
/// to the child's stderr, under a `Process <name>:` line, as Python prints a traceback), `n` for
/// `std::process::exit(n)`, and `-N` for death by signal `N`. Default names are `Process-1`,
/// `Process-2`, … (the counter advances even for named processes).
///
/// Fork safety: stdout and stderr are flushed before the fork (so buffered text is not printed
/// twice), the child's stdin is `/dev/null`, the child never returns into the caller's code (it
/// flushes and `_exit`s), and children never outlive the process that created them: each gets
/// `SIGKILL` if its parent dies. When the parent exits normally, it first terminates its daemon
/// children and waits for the others, as Python does.
///
/// Deviation from Python: `start` drops the closure (and so whatever it captured, such as the
/// child's end of a [`crate::Pipe`]) in the parent right after the fork, so the parent does not
/// have to close those copies by hand.
///
/// ```
/// use multiprocessing::Process;
/// let mut p = Process::new(|| println!("hello from the child"));
/// assert_eq!(p.exitcode(), None);
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(0));
/// ```
pub struct Process {
    name: String,
    identity: Vec<u32>,
    daemon: bool,
    target: Option<Box<dyn FnOnce() + Send + 'static>>,
    pid: Option<u32>,
    pidfd: Option<OwnedFd>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match (self.pid, self.exitcode()) {
            (None, _) => "initial".to_string(),
            (Some(_), None) => "started".to_string(),
            (Some(_), Some(c)) if c < 0 => format!("stopped exitcode=-{}", signal_name(-c)),
            (Some(_), Some(c)) => format!("stopped exitcode={c}"),
        };
        write!(
            f,
            "<Process name='{}' pid={:?} {}>",
            self.name, self.pid, state
        )
    }
}

fn signal_name(sig: i32) -> String {
    match Signal::name(sig) {
        Some(name) => name.into(),
        None => sig.to_string(),
    }
}

impl Process {
    /// A process that will run `target` once started. Its default name is `Process-N`.
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| ());
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn new<F>(target: F) -> Process
    where
        F: FnOnce() + Send + 'static,
    {
        let (name, identity) = runtime::next_name("Process");
        Process {
            name,
            identity,
            daemon: false,
            target: Some(Box::new(target)),
            pid: None,
            pidfd: None,
        }
    }

    /// Sets the name (builder style). The default name's number is still used up.
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| ()).with_name("worker-x");
    /// assert_eq!(p.name(), "worker-x");
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Process {
        self.name = name.into();
        self
    }

    /// Makes the process a daemon (builder style): terminated, not waited for, when the parent exits;
    /// it may not create children of its own.
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| ()).with_daemon(true);
    /// assert!(p.daemon());
    /// ```
    pub fn with_daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// Renames the process (Python allows this at any time; the child sees the name it had at start).
    ///
    /// ```
    /// let mut p = multiprocessing::Process::new(|| ());
    /// p.set_name("renamed");
    /// assert_eq!(p.name(), "renamed");
    /// ```
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Sets the daemon flag; an error after `start`, as in Python.
    ///
    /// ```
    /// use multiprocessing::{Error, Process};
    /// let mut p = Process::new(|| ());
    /// p.set_daemon(true).unwrap();
    /// p.start().unwrap();
    /// assert!(matches!(p.set_daemon(false), Err(Error::StartedAlready)));
    /// p.join().unwrap();
    /// ```
    pub fn set_daemon(&mut self, daemon: bool) -> Result<()> {
        if self.pid.is_some() {
            return Err(Error::StartedAlready);
        }
        self.daemon = daemon;
        Ok(())
    }

    /// The process's name.
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| ()).with_name("n");
    /// assert_eq!(p.name(), "n");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The daemon flag.
    ///
    /// ```
    /// assert!(!multiprocessing::Process::new(|| ()).daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// Forks the child. An error if called twice, or from a daemon process.
    ///
    /// Like Python's, it first reaps this process's children that have exited (their handles
    /// keep their exit codes), so children that are never joined do not pile up as zombies.
    ///
    /// ```
    /// use multiprocessing::{Error, Process};
    /// let mut p = Process::new(|| ());
    /// p.start().unwrap();
    /// assert!(matches!(p.start(), Err(Error::AlreadyStarted)));
    /// p.join().unwrap();
    /// ```
    pub fn start(&mut self) -> Result<()> {
        if self.pid.is_some() {
            return Err(Error::AlreadyStarted);
        }
        let target = self.target.take().ok_or(Error::AlreadyStarted)?;
        let body = Box::new(move || crate::panic::run_child(target));
        let (pid, pidfd) = runtime::spawn(
            Spawn {
                name: self.name.clone(),
                identity: self.identity.clone(),
                daemon: self.daemon,
                kind: Kind::Process,
                bind_to_thread: false,
            },
            body,
        )?;
        self.pid = Some(pid);
        self.pidfd = pidfd;
        Ok(())
    }

    /// Waits for the child to exit. An error before `start`; [`Error::Interrupted`] on an interrupt.
    ///
    /// ```
    /// use multiprocessing::{Error, Process};
    /// let mut p = Process::new(|| std::process::exit(3));
    /// assert!(matches!(p.join(), Err(Error::NotStarted)));
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(3));
    /// ```
    pub fn join(&mut self) -> Result<()> {
        self.wait(Deadline::never())
    }

    /// Waits at most `timeout`. Like Python, it returns `Ok(())` either way: check
    /// [`is_alive`](Self::is_alive) or [`exitcode`](Self::exitcode).
    ///
    /// ```
    /// use multiprocessing::Process;
    /// use std::time::Duration;
    /// let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(2)));
    /// p.start().unwrap();
    /// p.join_timeout(Duration::from_millis(50)).unwrap();
    /// assert!(p.is_alive());
    /// p.kill().unwrap();
    /// p.join().unwrap();
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.wait(Deadline::after(timeout))
    }

    fn wait(&mut self, deadline: Deadline) -> Result<()> {
        let pid = self.pid.ok_or(Error::NotStarted)?;
        let watch = Watch::new();
        let interrupted = || watch.check();
        if runtime::wait_exit(pid, self.pidfd.as_ref(), deadline, Some(&interrupted))?.is_some() {
            crate::host::sync_fence(&[pid]);
        }
        Ok(())
    }

    /// True from `start` until the child has exited.
    ///
    /// ```
    /// let mut p = multiprocessing::Process::new(|| ());
    /// assert!(!p.is_alive());
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// assert!(!p.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        match self.pid {
            None => false,
            Some(pid) => matches!(runtime::poll_exit(pid), Ok(None)),
        }
    }

    /// Sends SIGTERM (exit code `-15`). Does nothing once the child has exited.
    ///
    /// ```
    /// use multiprocessing::Process;
    /// let mut p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(5)));
    /// p.start().unwrap();
    /// p.terminate().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(-15));
    /// ```
    pub fn terminate(&self) -> Result<()> {
        self.send(Signal::SIGTERM)
    }

    /// Sends SIGKILL (exit code `-9`). Does nothing once the child has exited.
    ///
    /// ```
    /// use multiprocessing::Process;
    /// let mut p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(5)));
    /// p.start().unwrap();
    /// p.kill().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(-9));
    /// ```
    pub fn kill(&self) -> Result<()> {
        self.send(Signal::SIGKILL)
    }

    fn send(&self, sig: Signal) -> Result<()> {
        match self.pid {
            None => Ok(()),
            Some(pid) => runtime::signal(pid, sig),
        }
    }

    /// The exit code: `None` while running (or before start), `0`, `1` on panic, `n` for
    /// `exit(n)`, `-N` for signal `N`.
    ///
    /// ```
    /// let mut p = multiprocessing::Process::new(|| panic!("bad value 5"));
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(1));
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.pid
            .and_then(|pid| runtime::poll_exit(pid).ok().flatten())
    }

    /// The child's pid, once started.
    ///
    /// ```
    /// let mut p = multiprocessing::Process::new(|| ());
    /// assert_eq!(p.pid(), None);
    /// p.start().unwrap();
    /// assert!(p.pid().is_some());
    /// p.join().unwrap();
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            runtime::disown(pid);
        }
    }
}

/// What [`current_process`] and [`parent_process`] tell about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    daemon: bool,
}

impl ProcessInfo {
    /// The process's name (`MainProcess` for the first process).
    ///
    /// ```
    /// assert_eq!(multiprocessing::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The process's pid.
    ///
    /// ```
    /// assert_eq!(multiprocessing::current_process().pid(), std::process::id());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// The daemon flag (pool workers are daemons).
    ///
    /// ```
    /// assert!(!multiprocessing::current_process().daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }
    /// Whether the process is still running.
    ///
    /// ```
    /// assert!(multiprocessing::current_process().is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        // Signal 0 only checks existence.
        crate::sys::signal::kill(self.pid, None).is_ok()
    }
}

/// The process this code runs in: its name and pid. Works in every process.
///
/// ```
/// use multiprocessing::{current_process, Process, Queue};
/// let q = Queue::new().unwrap();
/// let q2 = q.clone();
/// let mut p = Process::new(move || q2.put(current_process().name().to_string()).unwrap())
///     .with_name("worker-x");
/// p.start().unwrap();
/// assert_eq!(q.get().unwrap(), "worker-x");
/// p.join().unwrap();
/// ```
pub fn current_process() -> ProcessInfo {
    let st = runtime::state();
    ProcessInfo {
        name: st.ctx.name(),
        pid: sys::getpid(),
        daemon: st.ctx.daemon,
    }
}

/// The parent of this process if it was created by this library (`None` in the main process).
///
/// ```
/// assert!(multiprocessing::parent_process().is_none());
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    let st = runtime::state();
    st.ctx.parent.as_ref().map(|(name, pid)| ProcessInfo {
        name: name.clone(),
        pid: *pid,
        daemon: false,
    })
}

/// The live children of this process (processes and pool workers); finished ones are reaped.
///
/// ```
/// use multiprocessing::{active_children, Process};
/// let mut p = Process::new(|| std::thread::sleep(std::time::Duration::from_millis(300)));
/// p.start().unwrap();
/// assert!(active_children().iter().any(|c| c.pid() == p.pid().unwrap()));
/// p.join().unwrap();
/// assert!(active_children().iter().all(|c| Some(c.pid()) != p.pid()));
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    runtime::live_children()
        .into_iter()
        .map(|(pid, name, daemon)| ProcessInfo { name, pid, daemon })
        .collect()
}

/// The number of CPUs online (Python's `os.cpu_count()`).
///
/// ```
/// assert!(multiprocessing::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    sys::process::processors_online().unwrap_or(1)
}
