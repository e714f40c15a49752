//! The [`Engine`]: evcxr and its runtime process started with output capture and the embedded
//! crates; one cell run, its outputs sent to the sink and its outcome made; completion and
//! documentation.

#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(unsafe_code, reason = "pre_exec, the hook between fork and exec")]

use super::capture::{Capture, Event};
use super::cells::{self, Locator};
use super::error::EngineError;
use super::interrupter::{INTERRUPT_GRACE, Interrupter};
use super::outcome::{
    Outcome, PanicState, field, panic_outcome, question_mark_outcome, report_text,
};
use super::output::{ErrorContent, MimeBundle, Output, Sink, Stream, StreamName};
use super::paths::Paths;
use super::relay;
use super::sys;
use super::timing::timing;
use evcxr::{CommandContext, EvalCallbacks, EvalContext};
use nix::sys::signal::SigSet;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
        let capture = Capture::start(Box::new(move |event, target| match event {
            Event::CellPanicked => {
                if let Ok(mut p) = p2.lock() {
                    p.cell_panicked = true;
                }
            }
            Event::Panic(report) => {
                if let Ok(mut p) = p2.lock() {
                    p.reports.push(report);
                }
            }
            Event::CellErrored => {
                if let Ok(mut p) = p2.lock() {
                    p.cell_errored = true;
                }
            }
            Event::CellErrorMessage(message) => {
                if let Ok(mut p) = p2.lock() {
                    p.error_message = Some(message);
                }
            }
            Event::Fork(_) | Event::Sync(_) => {}
            Event::Output(mut other) => {
                // A location in the cells' crate (a child's panic report, say) is shown as the
                // cell's.
                if let Output::Stream(Stream { text, .. }) = &mut other
                    && text.contains(cells::FILE)
                    && let Ok(mut l) = stream_locator.lock()
                {
                    *text = l.locations(text);
                }
                if let Output::Stream(Stream {
                    name: StreamName::Stderr,
                    text,
                }) = &other
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
        let mut cmd = std::process::Command::new(&exe);
        cmd.env(relay::CAPTURE_ENV, "1");
        // This executable contains the library: started again as a spawn pool worker, its copy
        // becomes the worker before `main` and runs the notebook's copy, shipped to it.
        cmd.env(multiprocessing::host::SPAWN_HOST_ENV, &exe);
        cmd.process_group(0);
        let socket = capture.child_socket();
        let parent = nix::unistd::getpid();
        let pre_exec = move || {
            // The capture's socket lives as long as the engine, which outlives the runtime's start.
            sys::dup_onto(socket, relay::OUTPUT_SOCKET_FD)?;
            // The runtime takes SIGINT for interrupts: start it with no signal blocked,
            // whatever the thread that starts it blocks (`rustmp run` waits for Ctrl-C on a
            // thread of its own).
            SigSet::empty().thread_set_mask()?;
            // The runtime watches this pid and ends its process group when the kernel is gone
            // (PR_SET_PDEATHSIG would follow the thread that started it, not the kernel).
            if nix::unistd::getppid() != parent {
                sys::exit_now(1);
            }
            Ok(())
        };
        // SAFETY: between fork and exec the closure makes only async-signal-safe calls (dup2,
        // pthread_sigmask, getppid, _exit) and allocates nothing.
        unsafe { cmd.pre_exec(pre_exec) };
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
            super::embedded::materialize(&paths.crates).map_err(|source| EngineError::Io {
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
            super::wrapper::SHOW_DEBUG_IMPORT
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
            let compiled = !matches!(&outcome, Outcome::Error(e) if e.ename == "CompilationError");
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
        let interrupted = self.interrupter.take_interrupted();
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
                    return panic_outcome(&reports, interrupted);
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
                            Output::stream(StreamName::Stderr, report_text(&report)),
                            &target,
                        );
                    }
                }
                let mut bundle = MimeBundle::new();
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
                    result: (!bundle.is_empty()).then_some(bundle),
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
                Outcome::Error(ErrorContent::new(
                    "CompilationError",
                    first.unwrap_or_else(|| "compilation failed".into()),
                    traceback,
                ))
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
                Outcome::Error(ErrorContent::headline(ename, evalue))
            }
            Err(other) => {
                let text = other.to_string();
                let traceback = text.lines().map(String::from).collect();
                Outcome::Error(ErrorContent::new("Error", text, traceback))
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
