//! `rustmp run`: executes a notebook's code cells headless, through the same engine as the
//! kernel (evcxr, the embedded library, output capture, interrupts), with no Python or Jupyter.
//!
//! Outputs become nbformat 4 outputs the way Jupyter clients record them (nbclient): consecutive
//! stream text of one name is merged, `update_display_data` rewrites every output with its
//! display id, `clear_output(wait)` clears the cell (at its next output when `wait`). Cells tagged
//! `skip-execution` are skipped; cells tagged `raises-exception` may fail.
//!
//! `rustmp_display::input` reads the answer from the terminal when stdin is one (the prompt
//! shown); otherwise it answers with an empty line and says so in one warning line on stderr.
//! Either way the cell's stdout stream records the prompt followed by the answer and a newline
//! (a password's answer is not recorded).

use crate::capture::Output;
use crate::engine::{self, Engine, Outcome};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Why a notebook could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an nbformat 4 notebook.
    #[error("{path} is not a Jupyter notebook (nbformat 4): {reason}")]
    NotNotebook {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The notebook is for another language.
    #[error("{path} is a notebook for {language}, not Rust: rustmp runs Rust notebooks")]
    Language {
        /// The file.
        path: PathBuf,
        /// The notebook's language.
        language: String,
    },
    /// The engine could not be prepared or started.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The executed notebook could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What `rustmp run` was asked to do.
pub struct Options {
    /// The notebook to execute.
    pub notebook: PathBuf,
    /// Where to write the executed notebook (default: `NAME.nbconvert.ipynb` beside it).
    pub output: Option<PathBuf>,
    /// Overwrite the notebook itself (only when every cell succeeded).
    pub inplace: bool,
    /// Per-cell limit: a cell still running after it is interrupted.
    pub timeout: Option<Duration>,
    /// Record cell errors and go on instead of stopping at the first.
    pub allow_errors: bool,
}

/// How the run ended.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Every cell ran (errors allowed by `--allow-errors` or a `raises-exception` tag included).
    Ok,
    /// A cell failed (1-based cell number).
    CellFailed {
        /// Which cell.
        cell: usize,
        /// The error's class and message.
        error: String,
    },
    /// Ctrl-C (SIGINT): the running cell was interrupted and the run stopped.
    Interrupted {
        /// The cell that ran (or was about to run).
        cell: usize,
    },
    /// A cell ran past the timeout and was interrupted.
    TimedOut {
        /// Which cell.
        cell: usize,
        /// The limit.
        seconds: f64,
    },
}

/// The result of a run.
pub struct Summary {
    /// How it ended.
    pub verdict: Verdict,
    /// Where the executed notebook went, if it was written.
    pub written: Option<PathBuf>,
    /// Code cells executed.
    pub executed: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// Executes the notebook; cell failures are a [`Verdict`], unusable input a [`RunError`].
pub fn run(opts: &Options) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mut nb = load(&opts.notebook)?;
    let ctrl_c = CtrlC::install();
    let paths = engine::prepare()?;
    let cells = nb["cells"].as_array().map(Vec::len).unwrap_or(0);
    let recorder = Arc::new(Mutex::new(Recorder::new(cells)));
    let sink_recorder = recorder.clone();
    let sink = Box::new(move |output: Output, target: &Value| {
        let Some(cell) = target.as_u64() else {
            return;
        };
        echo(&output);
        if let Ok(mut r) = sink_recorder.lock() {
            r.record(cell as usize, output);
        }
    });
    let total_code = nb["cells"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["cell_type"] == "code").count())
        .unwrap_or(0);
    eprintln!(
        "rustmp run: {} ({total_code} code cells); starting the Rust engine…",
        opts.notebook.display()
    );
    let mut engine = Engine::start(&paths, sink)?;
    if let Ok(mut i) = ctrl_c.interrupter.lock() {
        *i = Some(engine.interrupter());
    }
    let mut verdict = Verdict::Ok;
    let mut count = 0u64;
    let mut executed = 0;
    let mut code_index = 0;
    for index in 0..cells {
        let cell = &nb["cells"][index];
        let kind = cell["cell_type"].as_str().unwrap_or("");
        let source = source_text(&cell["source"]);
        if kind == "markdown" {
            for heading in source.lines().filter(|l| l.starts_with('#')) {
                println!("\n{heading}");
            }
            continue;
        }
        if kind != "code" {
            continue;
        }
        code_index += 1;
        let tags = tags(cell);
        let cell_mut = &mut nb["cells"][index];
        cell_mut["outputs"] = json!([]);
        cell_mut["execution_count"] = Value::Null;
        if source.trim().is_empty() || tags.iter().any(|t| t == "skip-execution") {
            continue;
        }
        count += 1;
        executed += 1;
        let first = source.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let more = if source.trim().lines().count() > 1 {
            " …"
        } else {
            ""
        };
        println!("\n[{code_index}/{total_code}] In [{count}]: {first}{more}");
        let _ = std::io::stdout().flush();
        let t0 = Instant::now();
        if ctrl_c.stop.load(Ordering::SeqCst) {
            verdict = Verdict::Interrupted { cell: code_index };
            break;
        }
        let (done_tx, timed_out) = watchdog(&engine, opts.timeout);
        ctrl_c.running.store(true, Ordering::SeqCst);
        let input = |prompt: &str, password: bool| {
            let answer = read_answer(code_index, prompt, password);
            // Recorded: the prompt, then the answer (hidden for a password).
            let shown = if password { "" } else { answer.as_str() };
            if let Ok(mut r) = recorder.lock() {
                r.record(
                    index,
                    Output::Stream {
                        name: "stdout",
                        text: format!("{prompt}{shown}\n"),
                    },
                );
            }
            answer
        };
        let outcome = engine.execute(
            &source,
            crate::cells::Label::Count(count),
            json!(index),
            &input,
        );
        ctrl_c.running.store(false, Ordering::SeqCst);
        drop(done_tx);
        let timed_out = timed_out.load(Ordering::SeqCst);
        let mut outputs = recorder
            .lock()
            .map(|mut r| r.take(index))
            .unwrap_or_default();
        let failed = match outcome {
            Outcome::Ok { result } => {
                if let Some(data) = result {
                    if let Some(text) = data.get("text/plain").and_then(Value::as_str) {
                        println!("Out[{count}]: {text}");
                    }
                    outputs.push(json!({
                        "output_type": "execute_result",
                        "execution_count": count,
                        "data": data,
                        "metadata": {},
                    }));
                }
                None
            }
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => {
                let headline = format!("{ename}: {evalue}");
                eprintln!("{headline}");
                for line in traceback
                    .iter()
                    .filter(|l| **l != evalue && **l != headline)
                {
                    eprintln!("{line}");
                }
                outputs.push(json!({
                    "output_type": "error",
                    "ename": ename,
                    "evalue": evalue,
                    "traceback": traceback,
                }));
                Some(format!("{ename}: {evalue}"))
            }
        };
        let newline = if AT_LINE_START.load(Ordering::SeqCst) {
            ""
        } else {
            "\n"
        };
        println!("{newline}({:.2} s)", t0.elapsed().as_secs_f64());
        AT_LINE_START.store(true, Ordering::SeqCst);
        let cell_mut = &mut nb["cells"][index];
        cell_mut["outputs"] = Value::Array(outputs.into_iter().map(to_nbformat).collect());
        cell_mut["execution_count"] = json!(count);
        if ctrl_c.stop.load(Ordering::SeqCst) {
            verdict = Verdict::Interrupted { cell: code_index };
            break;
        }
        if timed_out {
            verdict = Verdict::TimedOut {
                cell: code_index,
                seconds: opts.timeout.map(|t| t.as_secs_f64()).unwrap_or(0.0),
            };
            break;
        }
        if let Some(error) = failed
            && !opts.allow_errors
            && !tags.iter().any(|t| t == "raises-exception")
        {
            verdict = Verdict::CellFailed {
                cell: code_index,
                error,
            };
            break;
        }
    }
    drop(engine);
    nb["metadata"]["language_info"] = language_info();
    let target = if opts.inplace {
        (verdict == Verdict::Ok).then(|| opts.notebook.clone())
    } else {
        Some(
            opts.output
                .clone()
                .unwrap_or_else(|| default_output(&opts.notebook)),
        )
    };
    if let Some(path) = &target {
        write(path, &nb)?;
    }
    Ok(Summary {
        verdict,
        written: target,
        executed,
        elapsed: started.elapsed(),
    })
}

/// Answers a cell's `rustmp_display::input`: from the terminal when stdin is one (the prompt
/// shown, the typed line without its newline; not echoed for a password); otherwise an empty
/// answer and one warning line on stderr, so a run never waits for input that cannot come.
fn read_answer(cell: usize, prompt: &str, password: bool) -> String {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        println!("{prompt}");
        AT_LINE_START.store(true, Ordering::SeqCst);
        eprintln!(
            "rustmp run: cell {cell} asked for input ({prompt:?}); stdin is not a terminal, \
             answered with an empty line"
        );
        return String::new();
    }
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let echo = password.then(EchoOff::new);
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    if echo.is_some() {
        println!();
    }
    drop(echo);
    AT_LINE_START.store(true, Ordering::SeqCst);
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
}

/// Turns the terminal's echo off (for a password) until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 or fails.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is this process's stdin; `saved` is a valid termios to fill.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return EchoOff(None);
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: setting fd 0's attributes from a valid termios.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) } != 0 {
            return EchoOff(None);
        }
        EchoOff(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restoring fd 0's attributes saved by `new`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
        }
    }
}

/// `dir/NAME.ipynb` → `dir/NAME.nbconvert.ipynb` (nbconvert's name for an executed copy).
pub fn default_output(notebook: &Path) -> PathBuf {
    let stem = notebook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "notebook".into());
    notebook.with_file_name(format!("{stem}.nbconvert.ipynb"))
}

/// Ctrl-C: the first SIGINT interrupts the running cell (as Jupyter's interrupt does) and stops
/// the run after it, so the executed part is still written; a second one exits at once.
struct CtrlC {
    interrupter: Mutex<Option<engine::Interrupter>>,
    running: Arc<AtomicBool>,
    stop: AtomicBool,
}

impl CtrlC {
    /// Blocks SIGINT in this thread (and so in every thread started later; the engine's
    /// processes start with an empty mask) and waits for it on a thread of its own.
    fn install() -> Arc<CtrlC> {
        let this = Arc::new(CtrlC {
            interrupter: Mutex::new(None),
            running: Arc::new(AtomicBool::new(false)),
            stop: AtomicBool::new(false),
        });
        // SAFETY: building a signal set and changing this thread's mask.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return this;
            }
            set
        };
        let handler = this.clone();
        let spawned = std::thread::Builder::new()
            .name("rustmp-ctrl-c".into())
            .spawn(move || {
                loop {
                    let mut sig = 0;
                    // SAFETY: waiting for a signal of a set we built.
                    if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                        return;
                    }
                    handler.on_sigint();
                }
            });
        if spawned.is_err() {
            // Nobody would wait for it: let SIGINT act as usual.
            // SAFETY: unblocking the signal we blocked above.
            unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
        }
        this
    }

    fn on_sigint(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nrustmp run: interrupted again: quitting");
            std::process::exit(130);
        }
        eprintln!(
            "\nrustmp run: interrupted: stopping after this cell (Ctrl-C again to quit at once)"
        );
        let interrupter = self.interrupter.lock().ok().and_then(|i| i.clone());
        if let Some(i) = interrupter
            && self.running.load(Ordering::SeqCst)
        {
            let running = self.running.clone();
            i.interrupt_cell(move || running.load(Ordering::SeqCst));
        }
    }
}

/// Interrupts the running cell when it runs past `timeout`; dropping the sender ends the watch.
fn watchdog(engine: &Engine, timeout: Option<Duration>) -> (mpsc::Sender<()>, Arc<AtomicBool>) {
    let (tx, rx) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(limit) = timeout {
        let flag = timed_out.clone();
        let interrupter = engine.interrupter();
        std::thread::spawn(move || {
            if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, Ordering::SeqCst);
                eprintln!(
                    "rustmp run: the cell ran past {} s: interrupting it",
                    limit.as_secs_f64()
                );
                // Still running after the grace period (the sender not yet dropped): restart.
                interrupter.interrupt_cell(move || {
                    matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty))
                });
            }
        });
    }
    (tx, timed_out)
}

/// Reads and checks a notebook.
pub fn load(path: &Path) -> Result<Value, RunError> {
    let not_notebook = |reason: String| RunError::NotNotebook {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| RunError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let nb: Value = serde_json::from_slice(&bytes)
        .map_err(|e| not_notebook(format!("not valid JSON ({e})")))?;
    if !nb.is_object() {
        return Err(not_notebook("the top level is not a JSON object".into()));
    }
    match nb.get("nbformat").and_then(Value::as_u64) {
        Some(4) => {}
        Some(v) => return Err(not_notebook(format!("nbformat {v} is not supported"))),
        None => return Err(not_notebook("it has no nbformat version".into())),
    }
    let Some(cells) = nb.get("cells").and_then(Value::as_array) else {
        return Err(not_notebook("it has no list of cells".into()));
    };
    for (i, cell) in cells.iter().enumerate() {
        let kind = cell.get("cell_type").and_then(Value::as_str);
        if !matches!(kind, Some("code" | "markdown" | "raw")) {
            return Err(not_notebook(format!(
                "cell {} has no valid cell_type",
                i + 1
            )));
        }
        let source_ok = match cell.get("source") {
            Some(Value::String(_)) => true,
            Some(Value::Array(a)) => a.iter().all(Value::is_string),
            _ => false,
        };
        if !source_ok {
            return Err(not_notebook(format!("cell {} has no valid source", i + 1)));
        }
    }
    let meta = &nb["metadata"];
    let language = meta["kernelspec"]["language"]
        .as_str()
        .or_else(|| meta["language_info"]["name"].as_str());
    if let Some(language) = language
        && !language.eq_ignore_ascii_case("rust")
    {
        return Err(RunError::Language {
            path: path.to_path_buf(),
            language: language.to_string(),
        });
    }
    Ok(nb)
}

/// Writes a notebook as Jupyter does: one-space indent, sorted keys, a final newline.
fn write(path: &Path, nb: &Value) -> Result<(), RunError> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&sort_keys(nb), &mut ser).map_err(|e| RunError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    out.push(b'\n');
    std::fs::write(path, out).map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sort_keys(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

fn language_info() -> Value {
    json!({
        "name": "rust",
        "version": crate::kernel::rustc_version(),
        "mimetype": "text/rust",
        "file_extension": ".rs",
        "pygments_lexer": "rust",
        "codemirror_mode": "rust",
        "nbconvert_exporter": "rust",
    })
}

fn source_text(source: &Value) -> String {
    match source {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn tags(cell: &Value) -> Vec<String> {
    cell["metadata"]["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the terminal's stdout is at the start of a line (the last text echoed ended one).
static AT_LINE_START: AtomicBool = AtomicBool::new(true);

/// Shows an output on the terminal as it arrives.
fn echo(output: &Output) {
    match output {
        Output::Stream { name, text } => {
            if *name == "stderr" {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            } else {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                if !text.is_empty() {
                    AT_LINE_START.store(text.ends_with('\n'), Ordering::SeqCst);
                }
            }
        }
        Output::Display { data, update, .. } => {
            let what = if *update {
                "updated display"
            } else {
                "display"
            };
            match data.get("text/plain").and_then(Value::as_str) {
                Some(text) => println!("{text}"),
                None => println!(
                    "[{what}: {}]",
                    data.as_object()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                ),
            }
        }
        _ => {}
    }
}

/// Outputs of the cells as they arrive from the engine's sink.
struct Recorder {
    outputs: Vec<Vec<Value>>,
    clear_on_next: Vec<bool>,
    /// display id → (cell, output index) of every output showing it.
    displays: HashMap<String, Vec<(usize, usize)>>,
}

impl Recorder {
    fn new(cells: usize) -> Recorder {
        Recorder {
            outputs: vec![Vec::new(); cells],
            clear_on_next: vec![false; cells],
            displays: HashMap::new(),
        }
    }

    fn clear(&mut self, cell: usize) {
        self.outputs[cell].clear();
        self.clear_on_next[cell] = false;
        for places in self.displays.values_mut() {
            places.retain(|(c, _)| *c != cell);
        }
    }

    fn record(&mut self, cell: usize, output: Output) {
        if cell >= self.outputs.len() {
            return;
        }
        match output {
            Output::Clear { wait: true } => self.clear_on_next[cell] = true,
            Output::Clear { wait: false } => self.clear(cell),
            Output::Display {
                data,
                display_id,
                update: true,
            } => {
                let Some(id) = display_id else { return };
                for &(c, i) in self.displays.get(&id).into_iter().flatten() {
                    if let Some(o) = self.outputs[c].get_mut(i) {
                        o["data"] = data.clone();
                    }
                }
            }
            Output::Display {
                data,
                display_id,
                update: false,
            } => {
                if self.clear_on_next[cell] {
                    self.clear(cell);
                }
                if let Some(id) = display_id {
                    let place = (cell, self.outputs[cell].len());
                    self.displays.entry(id).or_default().push(place);
                }
                self.outputs[cell].push(json!({
                    "output_type": "display_data",
                    "data": data,
                    "metadata": {},
                }));
            }
            Output::Stream { name, text } => {
                if self.clear_on_next[cell] {
                    self.clear(cell);
                }
                if let Some(last) = self.outputs[cell].last_mut()
                    && last["output_type"] == "stream"
                    && last["name"] == name
                    && let Some(prev) = last["text"].as_str()
                {
                    last["text"] = Value::String(format!("{prev}{text}"));
                    return;
                }
                self.outputs[cell].push(json!({
                    "output_type": "stream",
                    "name": name,
                    "text": text,
                }));
            }
            Output::Panic(_)
            | Output::CellPanicked
            | Output::CellErrored
            | Output::CellErrorMessage(_)
            | Output::Fork(_)
            | Output::Sync(_) => {}
        }
    }

    /// The cell's outputs so far (the cell is done).
    fn take(&mut self, cell: usize) -> Vec<Value> {
        self.outputs.get(cell).cloned().unwrap_or_default()
    }
}

/// Multi-line strings as lists of lines, as Jupyter writes them.
fn to_nbformat(mut output: Value) -> Value {
    if let Some(text) = output.get("text").and_then(Value::as_str) {
        output["text"] = lines(text);
    }
    if let Some(data) = output.get_mut("data").and_then(Value::as_object_mut) {
        for (mime, value) in data.iter_mut() {
            if let Value::String(s) = value
                && (mime.starts_with("text/") || mime == "image/svg+xml")
            {
                *value = lines(s);
            }
        }
    }
    output
}

fn lines(text: &str) -> Value {
    Value::Array(
        text.split_inclusive('\n')
            .map(|l| Value::String(l.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &'static str, text: &str) -> Output {
        Output::Stream {
            name,
            text: text.into(),
        }
    }

    #[test]
    fn streams_merge_and_displays_update_in_place() {
        let mut r = Recorder::new(2);
        r.record(0, stream("stdout", "a"));
        r.record(0, stream("stdout", "b\n"));
        r.record(0, stream("stderr", "e\n"));
        r.record(
            0,
            Output::Display {
                data: json!({"text/plain": "1"}),
                display_id: Some("d".into()),
                update: false,
            },
        );
        r.record(
            1,
            Output::Display {
                data: json!({"text/plain": "2"}),
                display_id: Some("d".into()),
                update: true,
            },
        );
        let out = r.take(0);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["text"], "ab\n");
        assert_eq!(out[1]["name"], "stderr");
        assert_eq!(out[2]["data"]["text/plain"], "2");
    }

    #[test]
    fn clear_output_waits_for_the_next_output() {
        let mut r = Recorder::new(1);
        r.record(0, stream("stdout", "old\n"));
        r.record(0, Output::Clear { wait: true });
        assert_eq!(r.take(0).len(), 1);
        r.record(0, stream("stdout", "new\n"));
        let out = r.take(0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["text"], "new\n");
    }

    #[test]
    fn text_is_written_as_lines() {
        let o = to_nbformat(json!({"output_type": "stream", "text": "a\nb\nc"}));
        assert_eq!(o["text"], json!(["a\n", "b\n", "c"]));
    }

    #[test]
    fn rejects_what_is_not_a_rust_notebook() {
        let dir = std::env::temp_dir().join(format!("rustmp-runner-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let case = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            load(&p).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(
            case("a.ipynb", "not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            case("b.ipynb", "[]")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            case("c.ipynb", r#"{"nbformat": 3, "cells": []}"#)
                .unwrap_err()
                .contains("nbformat 3")
        );
        assert!(
            case("d.ipynb", r#"{"nbformat": 4, "metadata": {"kernelspec": {"language": "python"}}, "cells": []}"#)
                .unwrap_err()
                .contains("for python, not Rust")
        );
        assert!(
            case(
                "e.ipynb",
                r#"{"nbformat": 4, "metadata": {}, "cells": [{"cell_type": "code"}]}"#
            )
            .unwrap_err()
            .contains("cell 1 has no valid source")
        );
        assert!(case("f.ipynb", r#"{"nbformat": 4, "metadata": {}, "cells": []}"#).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
