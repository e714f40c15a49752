//! The run loop: each code cell executed in order, its outputs recorded, the run stopped at a
//! failure, an interrupt or a timeout, and the executed notebook written.

use super::ctrl_c::CtrlC;
use super::echo::{AT_LINE_START, echo};
use super::error::RunError;
use super::input::read_answer;
use super::notebook::{default_output, language_info, load, source_text, tags, to_nbformat, write};
use super::options::{Options, Summary, Verdict};
use super::recorder::Recorder;
use super::watchdog::watchdog;
use crate::engine::output::{ErrorContent, Output, StreamName};
use crate::engine::{self, Engine, Outcome};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Executes the notebook; cell failures are a [`Verdict`], unusable input a [`RunError`].
pub fn run(opts: &Options) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mut nb = load(&opts.notebook)?;
    // Before any thread starts: prepare sets the process's environment.
    let paths = engine::prepare()?;
    let ctrl_c = CtrlC::install();
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
                    Output::stream(StreamName::Stdout, format!("{prompt}{shown}\n")),
                );
            }
            answer
        };
        let outcome = engine.execute(&source, engine::Label::Count(count), json!(index), &input);
        ctrl_c.running.store(false, Ordering::SeqCst);
        drop(done_tx);
        let timed_out = timed_out.load(Ordering::SeqCst);
        let mut outputs = recorder
            .lock()
            .map(|mut r| r.take(index))
            .unwrap_or_default();
        let failed = match &outcome {
            Outcome::Ok { result } => {
                if let Some(text) = result
                    .as_ref()
                    .and_then(|data| data.get("text/plain"))
                    .and_then(Value::as_str)
                {
                    println!("Out[{count}]: {text}");
                }
                None
            }
            Outcome::Error(ErrorContent {
                ename,
                evalue,
                traceback,
            }) => {
                let headline = format!("{ename}: {evalue}");
                eprintln!("{headline}");
                for line in traceback.iter().filter(|l| *l != evalue && **l != headline) {
                    eprintln!("{line}");
                }
                Some(headline)
            }
        };
        outputs.extend(outcome.output(count).as_ref().and_then(Output::nbformat));
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
