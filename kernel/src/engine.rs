//! The execution core shared by the kernel and `rustmp run`: an evcxr context whose runtime has
//! the multiprocessing library and rustmp_display available, with output capture, interrupts and
//! restarts.

use crate::capture::{Capture, Output, Sink};
use crate::cells::{self, Locator};
use crate::relay;
use evcxr::{CommandContext, EvalCallbacks, EvalContext};
use serde_json::{Value, json};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cell may keep running after an interrupt before the runtime is restarted.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// The evalue of a cell that a blocking library call ended on an interrupt (ename
/// `Interrupted`), whether the cell returned the error through `?` or unwrapped it.
const INTERRUPTED: &str =
    "the cell was interrupted; the children created through multiprocessing were terminated";
/// How the library's `Error::Interrupted` reads (`Display`); what follows `; ` says what it did.
const LIBRARY_INTERRUPTED: &str = "interrupted by SIGINT";

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file or directory could not be prepared.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// evcxr failed.
    #[error("the Rust evaluation context failed: {0}")]
    Evcxr(String),
}

/// What a cell ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran; `result` is the MIME bundle of its final expression, if any.
    Ok {
        /// The final expression's MIME bundle.
        result: Option<Value>,
    },
    /// It failed: a compile error, a panic, an interrupt, or a dead runtime.
    Error {
        /// Short error class (`CompilationError`, `panic`, `Interrupted`, …).
        ename: String,
        /// The message.
        evalue: String,
        /// Lines to show.
        traceback: Vec<String>,
    },
}

/// Per-cell panic information collected from the capture thread.
#[derive(Default)]
struct PanicState {
    cell_panicked: bool,
    /// The cell returned an error through `?`.
    cell_errored: bool,
    /// That error's message, as the `eprintln!` of `relay::QUESTION_MARK_HOOK` sent it (it is
    /// not on stderr).
    error_message: Option<String>,
    /// The end of the cell's stderr: without the hook (a cell replaced `eprintln!`), evcxr
    /// printed the `?` error's message there and it is the last line.
    stderr_tail: String,
    reports: Vec<Value>,
}

/// The cache and build directories, chosen once per process before any thread starts.
pub struct Paths {
    /// Where the embedded crates are written.
    pub crates: PathBuf,
    /// The cells' crate's source, as evcxr last wrote it (`<build slot>/src/lib.rs`).
    pub source: PathBuf,
    /// Holds the build slot (evcxr's build directory) for this process.
    _lock: File,
}

/// Prepares the cache: embedded crates, a locked build slot, evcxr's config. Sets the
/// environment evcxr reads, so call it before starting threads.
pub fn prepare() -> Result<Paths, EngineError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| EngineError::Io { what, source }
    };
    let base = std::env::var_os("RUSTMP_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("rustmp")))
        .unwrap_or_else(|| std::env::temp_dir().join("rustmp-cache"));
    let version = format!(
        "{}-{}",
        env!("CARGO_PKG_VERSION"),
        crate::embedded::fingerprint()
    );
    let crates = base.join("crates").join(&version);
    std::fs::create_dir_all(&crates).map_err(io("create the cache directory"))?;
    crate::embedded::materialize(&crates).map_err(io("write the embedded crates"))?;
    // A build slot: the first one no other live kernel holds (flock).
    let mut slot = 0;
    let (build, lock) = loop {
        let dir = base.join("build").join(format!("slot-{slot}"));
        std::fs::create_dir_all(&dir).map_err(io("create a build directory"))?;
        let lock = File::create(dir.join(".lock")).map_err(io("create a lock file"))?;
        // SAFETY: flock on a file we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break (dir, lock);
        }
        slot += 1;
    };
    // Cells compile fastest unoptimized; their dependencies (the library above all) are built
    // once and should run fast: cargo reads this file from a parent of the build directory.
    let cargo_config = base.join("build").join(".cargo");
    std::fs::create_dir_all(&cargo_config).map_err(io("create the cargo config directory"))?;
    std::fs::write(
        cargo_config.join("config.toml"),
        "[profile.dev.package.\"*\"]\nopt-level = 2\n",
    )
    .map_err(io("write the cargo config"))?;
    let config = base.join("evcxr-config");
    std::fs::create_dir_all(&config).map_err(io("create evcxr's config directory"))?;
    let toml = format!(
        // Offline while the engine starts (evcxr's own first build and the kernel's): cargo then
        // does not read the registry's index. `Engine::start` turns it off afterwards.
        "[evcxr]\nallow_static_linking = false\noffline_mode = true\nopt_level = \"{}\"\ntmpdir = {:?}\n",
        std::env::var("RUSTMP_OPT_LEVEL").unwrap_or_else(|_| "0".into()),
        build.display().to_string()
    );
    std::fs::write(config.join("evcxr.toml"), toml).map_err(io("write evcxr.toml"))?;
    let rust_src = match std::env::var_os("RUST_SRC_PATH") {
        Some(_) => None,
        None => crate::rust_src::trimmed(&base),
    };
    // SAFETY: called before any other thread exists (documented contract of `prepare`).
    unsafe {
        std::env::set_var("EVCXR_CONFIG_DIR", &config);
        std::env::set_var("EVCXR_TMPDIR", &build);
        if let Some(dir) = rust_src {
            std::env::set_var("RUST_SRC_PATH", dir);
        }
    }
    Ok(Paths {
        crates,
        source: build.join("src").join("lib.rs"),
        _lock: lock,
    })
}

/// A handle that can interrupt the running cell from another thread.
#[derive(Clone)]
pub struct Interrupter {
    process: Arc<Mutex<std::process::Child>>,
    /// Set while a cell runs: when an interrupt was sent.
    interrupted_at: Arc<Mutex<Option<Instant>>>,
}

impl Interrupter {
    fn pid(&self) -> Option<i32> {
        let mut child = self.process.lock().ok()?;
        match child.try_wait() {
            Ok(None) => Some(child.id() as i32),
            _ => None,
        }
    }

    /// Interrupts the running cell: SIGINT to the runtime now (blocking library calls return
    /// `Interrupted`); if `still_running()` after [`INTERRUPT_GRACE`], kills the runtime, which
    /// restarts at the next cell (the cell then says its variables were lost).
    pub fn interrupt_cell(&self, still_running: impl Fn() -> bool + Send + 'static) {
        if let Ok(mut t) = self.interrupted_at.lock() {
            *t = Some(Instant::now());
        }
        if let Some(pid) = self.pid() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let this = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(INTERRUPT_GRACE);
            if still_running() {
                this.kill();
            }
        });
    }

    /// True once the running cell was interrupted (cleared when the cell ends).
    pub fn was_interrupted(&self) -> bool {
        self.interrupted_at
            .lock()
            .map(|t| t.is_some())
            .unwrap_or(false)
    }

    /// Kills the runtime's whole process group (it restarts at the next cell).
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling our child's process group (it leads its own group).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// With `RUSTMP_TIMING` in the environment, prints `rustmp timing: <what>` on stderr: where a
/// kernel's time goes (the benchmark and a test read these lines).
pub fn timing(what: impl FnOnce() -> String) {
    if std::env::var_os("RUSTMP_TIMING").is_some() {
        eprintln!("rustmp timing: {}", what());
    }
}

/// What [`Engine::prime`] asks completions for: it names the library and a std collection, so
/// that their crates are analysed.
const PRIME_SNIPPET: &str = "let mut seen = std::collections::HashMap::<u64, String>::new();\nlet p = multiprocessing::Process::new(|| ());\np.";

/// The evaluation engine.
pub struct Engine {
    ctx: CommandContext,
    capture: Capture,
    panics: Arc<Mutex<PanicState>>,
    sink: Arc<Mutex<Sink>>,
    interrupter: Interrupter,
    locator: Arc<Mutex<Locator>>,
}

impl Engine {
    /// Starts evcxr and the runtime, loads the embedded crates. `sink` gets every output.
    pub fn start(paths: &Paths, sink: Sink) -> Result<Engine, EngineError> {
        let panics = Arc::new(Mutex::new(PanicState::default()));
        let p2 = panics.clone();
        let sink = Arc::new(Mutex::new(sink));
        let capture_sink = sink.clone();
        let locator = Arc::new(Mutex::new(Locator::new(paths.source.clone())));
        let stream_locator = locator.clone();
        let capture = Capture::start(Box::new(move |output, target| match output {
            Output::CellPanicked => {
                if let Ok(mut p) = p2.lock() {
                    p.cell_panicked = true;
                }
            }
            Output::Panic(report) => {
                if let Ok(mut p) = p2.lock() {
                    p.reports.push(report);
                }
            }
            Output::CellErrored => {
                if let Ok(mut p) = p2.lock() {
                    p.cell_errored = true;
                }
            }
            Output::CellErrorMessage(message) => {
                if let Ok(mut p) = p2.lock() {
                    p.error_message = Some(message);
                }
            }
            mut other => {
                // A location in the cells' crate (a child's panic report, say) is shown as the
                // cell's.
                if let Output::Stream { text, .. } = &mut other
                    && text.contains(cells::FILE)
                    && let Ok(mut l) = stream_locator.lock()
                {
                    *text = l.locations(text);
                }
                if let Output::Stream {
                    name: "stderr",
                    text,
                } = &other
                    && let Ok(mut p) = p2.lock()
                {
                    p.stderr_tail.push_str(text);
                    let cut = p.stderr_tail.len().saturating_sub(4096);
                    let cut = (cut..p.stderr_tail.len())
                        .find(|&i| p.stderr_tail.is_char_boundary(i))
                        .unwrap_or(0);
                    p.stderr_tail.drain(..cut);
                }
                if let Ok(mut s) = capture_sink.lock() {
                    s(other, target)
                }
            }
        }))
        .map_err(|source| EngineError::Io {
            what: "start output capture".into(),
            source,
        })?;
        let exe = std::env::current_exe().map_err(|source| EngineError::Io {
            what: "find the kernel's executable".into(),
            source,
        })?;
        let mut cmd = std::process::Command::new(exe);
        cmd.env(relay::CAPTURE_ENV, "1");
        cmd.process_group(0);
        let socket = capture.child_socket();
        let parent = std::process::id() as i32;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(socket, relay::OUTPUT_SOCKET_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The runtime takes SIGINT for interrupts: start it with no signal blocked,
                // whatever the thread that starts it blocks (`rustmp run` waits for Ctrl-C on a
                // thread of its own).
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                // The runtime watches this pid and ends its process group when the kernel is gone
                // (PR_SET_PDEATHSIG would follow the thread that started it, not the kernel).
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let spawned = Instant::now();
        let (eval, outputs) = EvalContext::with_subprocess_command(cmd)
            .map_err(|e| EngineError::Evcxr(e.to_string()))?;
        timing(|| format!("evcxr and its runtime up {:?}", spawned.elapsed()));
        // evcxr's own channels: user output bypasses them; whatever comes is the runtime's own
        // messages. They must be drained or evcxr blocks.
        for (rx, _name) in [(outputs.stdout, "stdout"), (outputs.stderr, "stderr")] {
            std::thread::spawn(move || {
                for line in rx.iter() {
                    eprintln!("rustmp runtime: {line}");
                }
            });
        }
        let mut eval = eval;
        let mut state = eval.state();
        state.set_allow_static_linking(false);
        for (name, path) in
            crate::embedded::materialize(&paths.crates).map_err(|source| EngineError::Io {
                what: "write the embedded crates".into(),
                source,
            })?
        {
            state
                .add_dep(
                    name,
                    &format!("{{ path = {:?} }}", path.display().to_string()),
                )
                .map_err(|e| EngineError::Evcxr(e.to_string()))?;
        }
        // One build for the dependencies and the first cell, which loads rustmp_display in the
        // runtime (its hooks flush partial lines and report panics) and imports the `eprintln!`
        // that sends a `?` error's message to the kernel rather than to stderr.
        let first = format!(
            "{}\n{} rustmp_display::__runtime::ensure_loaded();",
            relay::QUESTION_MARK_HOOK,
            crate::wrapper::SHOW_DEBUG_IMPORT
        );
        // Offline first (evcxr.toml says so): cargo then does not look at the registry's index
        // (about 0.1 s), which it needs only when the embedded crates' dependencies are not
        // fetched yet.
        let mut online_state = state.clone();
        online_state.set_offline_mode(false);
        let t0 = Instant::now();
        let mut built = eval.eval_with_state(&first, state);
        let online = built.is_err();
        if online {
            built = eval.eval_with_state(&first, online_state);
        }
        let built = built.map_err(|e| EngineError::Evcxr(e.to_string()))?;
        timing(|| {
            let how = if online { "online" } else { "offline" };
            format!("first build {:?} ({how})", t0.elapsed())
        });
        for ph in &built.phases {
            timing(|| format!("  {:<26} {:?}", ph.name, ph.duration));
        }
        let interrupter = Interrupter {
            process: eval.process_handle(),
            interrupted_at: Arc::new(Mutex::new(None)),
        };
        let mut ctx = CommandContext::with_eval_context(eval);
        // The cells' `:dep`s may need the registry.
        ctx.execute(":offline 0")
            .map_err(|e| EngineError::Evcxr(e.to_string()))?;
        Ok(Engine {
            ctx,
            capture,
            panics,
            sink,
            interrupter,
            locator,
        })
    }

    /// A handle to interrupt from another thread.
    pub fn interrupter(&self) -> Interrupter {
        self.interrupter.clone()
    }

    /// Runs one cell; outputs go to the sink with `target`; `input` answers stdin requests
    /// (prompt, password) -> value.
    pub fn execute(
        &mut self,
        code: &str,
        label: cells::Label,
        target: Value,
        input: &dyn Fn(&str, bool) -> String,
    ) -> Outcome {
        if let Ok(mut l) = self.locator.lock() {
            l.start(cells::Cell::new(label, code));
        }
        let outcome = self.run(code, target, input);
        if let Ok(mut l) = self.locator.lock() {
            // A cell that did not compile defined nothing.
            let compiled =
                !matches!(&outcome, Outcome::Error { ename, .. } if ename == "CompilationError");
            l.finish(compiled);
        }
        outcome
    }

    fn run(&mut self, code: &str, target: Value, input: &dyn Fn(&str, bool) -> String) -> Outcome {
        self.capture.set_target(target.clone());
        if let Ok(mut p) = self.panics.lock() {
            *p = PanicState::default();
        }
        let mut callbacks = EvalCallbacks {
            input_reader: &|req| input(&req.prompt, req.is_password),
        };
        let result = self.ctx.execute_with_callbacks(code, &mut callbacks);
        self.capture.barrier();
        let interrupted = self
            .interrupter
            .interrupted_at
            .lock()
            .ok()
            .and_then(|mut t| t.take())
            .is_some();
        let panics = self
            .panics
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        match result {
            Ok(outputs) => {
                for ph in &outputs.phases {
                    timing(|| format!("{:<28} {:?}", ph.name, ph.duration));
                }
                if panics.cell_panicked {
                    let reports = self.located(panics.reports);
                    return panic_outcome(&reports);
                }
                if panics.cell_errored || panics.error_message.is_some() {
                    let message = panics.error_message.map(|m| self.locations(&m));
                    return question_mark_outcome(
                        message.as_deref(),
                        &self.locations(&panics.stderr_tail),
                        interrupted,
                    );
                }
                for report in self.located(panics.reports) {
                    // A panic in another thread is not the cell's failure: show it as stderr.
                    if let Ok(mut s) = self.sink.lock() {
                        s(
                            Output::Stream {
                                name: "stderr",
                                text: report_text(&report),
                            },
                            &target,
                        );
                    }
                }
                let mut bundle = serde_json::Map::new();
                let unit = outputs.content_by_mime_type.len() == 1
                    && outputs
                        .content_by_mime_type
                        .get("text/plain")
                        .is_some_and(|t| t == "()");
                for (mime, content) in outputs.content_by_mime_type.into_iter().filter(|_| !unit) {
                    let value = if mime.contains("json") {
                        serde_json::from_str(&content).unwrap_or(Value::String(content))
                    } else {
                        Value::String(content)
                    };
                    bundle.insert(mime, value);
                }
                Outcome::Ok {
                    result: (!bundle.is_empty()).then_some(Value::Object(bundle)),
                }
            }
            Err(evcxr::Error::CompilationErrors(errors)) => {
                let mut traceback = Vec::new();
                let mut first = None;
                let map = self.locator.lock().ok().map(|mut l| l.current_map());
                for e in &errors {
                    first.get_or_insert_with(|| e.message());
                    let rendered = e.rendered();
                    let rendered = match &map {
                        Some(map) => map.rendered(&rendered),
                        None => rendered,
                    };
                    traceback.push(cells::colour(&rendered));
                }
                Outcome::Error {
                    ename: "CompilationError".into(),
                    evalue: first.unwrap_or_else(|| "compilation failed".into()),
                    traceback,
                }
            }
            Err(evcxr::Error::SubprocessTerminated(message)) => {
                let (ename, evalue) = if interrupted {
                    (
                        "Interrupted",
                        format!(
                            "the cell did not stop within {} s of the interrupt: the Rust runtime was restarted and all variables were lost",
                            INTERRUPT_GRACE.as_secs()
                        ),
                    )
                } else {
                    (
                        "RuntimeDied",
                        format!(
                            "the Rust runtime died ({message}); it was restarted and all variables were lost"
                        ),
                    )
                };
                Outcome::Error {
                    ename: ename.into(),
                    traceback: vec![format!("{ename}: {evalue}")],
                    evalue,
                }
            }
            Err(other) => {
                let text = other.to_string();
                Outcome::Error {
                    ename: "Error".into(),
                    evalue: text.clone(),
                    traceback: text.lines().map(String::from).collect(),
                }
            }
        }
    }

    /// `text` with its locations in the cells' crate shown as the cells'.
    fn locations(&self, text: &str) -> String {
        match self.locator.lock() {
            Ok(mut l) if text.contains(cells::FILE) => l.locations(text),
            _ => text.to_string(),
        }
    }

    /// Panic reports with their locations (and those in their messages and backtraces) shown
    /// as the cells'.
    fn located(&self, reports: Vec<Value>) -> Vec<Value> {
        reports
            .into_iter()
            .map(|mut report| {
                let context = field(&report, "backtrace");
                for key in ["location", "message", "backtrace"] {
                    let text = field(&report, key);
                    if text.contains(cells::FILE)
                        && let Ok(mut l) = self.locator.lock()
                    {
                        report[key] = Value::String(l.locations_with(&text, &context));
                    }
                }
                report
            })
            .collect()
    }

    /// Makes rust-analyzer do its first analysis (the standard library and the embedded crates)
    /// now, while the kernel is idle, instead of in the user's first cell: evcxr asks it for the
    /// types of a cell's variables, and the first time costs most of a second cell's time.
    /// A completion on a snippet that uses the library does it, and leaves no state behind.
    pub fn prime(&mut self) {
        let snippet = PRIME_SNIPPET;
        let _ = self.ctx.completions(snippet, snippet.len());
    }

    /// Completions at a byte offset: (matches, start, end).
    pub fn complete(&mut self, code: &str, pos: usize) -> (Vec<String>, usize, usize) {
        match self.ctx.completions(code, pos) {
            Ok(c) => (
                c.completions.into_iter().map(|c| c.code).collect(),
                c.start_offset,
                c.end_offset,
            ),
            Err(_) => (Vec::new(), pos, pos),
        }
    }

    /// Documentation at a byte offset: (plain, html), if any.
    pub fn inspect(&mut self, code: &str, pos: usize) -> Option<(String, String)> {
        match self.ctx.hover_at(code, pos) {
            Ok((plain, html)) if plain != "No documentation found" && !plain.is_empty() => {
                Some((plain, html))
            }
            _ => None,
        }
    }
}

/// A string field of a panic report ("" if absent).
fn field(report: &Value, key: &str) -> String {
    report
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn report_text(report: &Value) -> String {
    let get = |k: &str| field(report, k);
    format!(
        "thread '{}' panicked at {}:\n{}\n{}",
        get("thread"),
        get("location"),
        get("message"),
        get("backtrace")
    )
}

/// A cell whose code returned an `Err` through `?`: one error output, `Error: <its message>`,
/// or `Interrupted` if the kernel interrupted the cell or the error is the library's interrupt.
/// `message` is what the hook sent; without it, the last line of stderr (where evcxr printed it).
fn question_mark_outcome(message: Option<&str>, stderr_tail: &str, interrupted: bool) -> Outcome {
    let message = match message {
        Some(m) => m.trim_end().to_string(),
        None => stderr_tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("the cell returned an error")
            .trim()
            .to_string(),
    };
    let (ename, evalue) = if let Some(rest) = message.strip_prefix(LIBRARY_INTERRUPTED) {
        ("Interrupted", format!("the cell was interrupted{rest}"))
    } else if interrupted {
        (
            "Interrupted",
            format!("the cell was interrupted: {message}"),
        )
    } else {
        ("Error", message)
    };
    Outcome::Error {
        ename: ename.into(),
        traceback: vec![format!("{ename}: {evalue}")],
        evalue,
    }
}

fn panic_outcome(reports: &[Value]) -> Outcome {
    let report = reports.first().cloned().unwrap_or_else(|| json!({}));
    let get = |k: &str| field(&report, k);
    let message = get("message");
    let mut traceback = vec![format!("panicked at {}:", get("location")), message.clone()];
    // The backtrace from the cell's code down to evcxr's entry point: not the panic machinery
    // above it, nor the runtime below it.
    let bt = get("backtrace");
    let lines: Vec<&str> = bt.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("ctx::"))
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .position(|l| l.contains("run_user_code_"))
        .map_or(lines.len(), |e| e + 1);
    if start < end {
        traceback.push("stack backtrace:".into());
        traceback.extend(lines[start..end].iter().map(|l| l.to_string()));
    }
    // An `Interrupted` error unwrapped in the cell is reported as what it is: first what was
    // stopped, then where.
    if message.contains("Interrupted") {
        traceback.insert(0, format!("Interrupted: {INTERRUPTED}"));
        return Outcome::Error {
            ename: "Interrupted".into(),
            evalue: INTERRUPTED.into(),
            traceback,
        };
    }
    Outcome::Error {
        ename: "panic".into(),
        evalue: message,
        traceback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(outcome: Outcome) -> (String, String, Vec<String>) {
        match outcome {
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => (ename, evalue, traceback),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn a_question_mark_error_is_its_whole_message_once() {
        let (ename, evalue, traceback) = error(question_mark_outcome(
            Some("first line\nsecond line\n"),
            "the cell's own stderr\n",
            false,
        ));
        assert_eq!(ename, "Error");
        assert_eq!(evalue, "first line\nsecond line");
        assert_eq!(traceback, ["Error: first line\nsecond line"]);
    }

    #[test]
    fn the_librarys_interrupt_says_what_was_stopped() {
        let library =
            "interrupted by SIGINT; the children created through multiprocessing were terminated";
        for interrupted in [true, false] {
            let (ename, evalue, traceback) =
                error(question_mark_outcome(Some(library), "", interrupted));
            assert_eq!(ename, "Interrupted");
            assert_eq!(evalue, INTERRUPTED);
            assert_eq!(traceback, [format!("Interrupted: {INTERRUPTED}")]);
        }
        // Another error after an interrupt is the interrupt's doing.
        let (ename, evalue, _) = error(question_mark_outcome(Some("broken pipe"), "", true));
        assert_eq!(ename, "Interrupted");
        assert_eq!(evalue, "the cell was interrupted: broken pipe");
    }

    #[test]
    fn without_the_hook_the_message_is_the_last_line_of_stderr() {
        let (ename, evalue, _) = error(question_mark_outcome(None, "own line\nboom\n\n", false));
        assert_eq!((ename.as_str(), evalue.as_str()), ("Error", "boom"));
    }

    #[test]
    fn an_unwrapped_interrupt_is_interrupted_and_keeps_where() {
        let report = json!({
            "message": "called `Result::unwrap()` on an `Err` value: Interrupted",
            "location": "src/lib.rs:3:9",
        });
        let (ename, evalue, traceback) = error(panic_outcome(&[report]));
        assert_eq!(ename, "Interrupted");
        assert_eq!(evalue, INTERRUPTED);
        assert_eq!(traceback[0], format!("Interrupted: {INTERRUPTED}"));
        assert_eq!(traceback[1], "panicked at src/lib.rs:3:9:");
    }
}
