//! What a cell ended with, and the error content of a cell that panicked, returned an error
//! through `?` or was interrupted.
//!
//! Whether a cell was interrupted is the engine's own knowledge: its [`super::Interrupter`] sent
//! the interrupt (`interrupted` below). The library's error text only chooses the words: an
//! interrupt that the library reported says what the library did (its `Error::Interrupted`
//! explains it terminated the children), any other error after an interrupt is quoted.

use super::output::{ErrorContent, ExecuteResult, MimeBundle, Output};
use serde_json::{Value, json};

/// The evalue of a cell that a blocking library call ended on an interrupt (ename
/// `Interrupted`), whether the cell returned the error through `?` or unwrapped it.
const INTERRUPTED: &str =
    "the cell was interrupted; the children created through multiprocessing were terminated";
/// How the library's `Error::Interrupted` reads (`Display`); what follows `; ` says what it did.
/// Only the wording of an interrupted cell's error depends on it, never whether it is one.
const LIBRARY_INTERRUPTED: &str = "interrupted by SIGINT";

/// What a cell ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran; `result` is the MIME bundle of its final expression, if any.
    Ok {
        /// The final expression's MIME bundle.
        result: Option<MimeBundle>,
    },
    /// It failed: a compile error, a panic, an interrupt, or a dead runtime.
    Error(ErrorContent),
}

impl Outcome {
    /// The output that shows the outcome of the cell counted `execution_count`: its result, or
    /// its error; `None` if it ran and has no result.
    pub fn output(&self, execution_count: u64) -> Option<Output> {
        match self {
            Outcome::Ok { result } => result
                .clone()
                .map(|data| Output::ExecuteResult(ExecuteResult::new(execution_count, data))),
            Outcome::Error(error) => Some(Output::Error(error.clone())),
        }
    }
}

/// Per-cell panic information collected from the capture thread.
#[derive(Default)]
pub(super) struct PanicState {
    pub(super) cell_panicked: bool,
    /// The cell returned an error through `?`.
    pub(super) cell_errored: bool,
    /// That error's message, as the `eprintln!` of `relay::QUESTION_MARK_HOOK` sent it (it is
    /// not on stderr).
    pub(super) error_message: Option<String>,
    /// The end of the cell's stderr: without the hook (a cell replaced `eprintln!`), evcxr
    /// printed the `?` error's message there and it is the last line.
    pub(super) stderr_tail: String,
    pub(super) reports: Vec<Value>,
}

/// A string field of a panic report ("" if absent).
pub(super) fn field(report: &Value, key: &str) -> String {
    report
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// A panic report as the text a panic prints.
pub(super) fn report_text(report: &Value) -> String {
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
/// or `Interrupted` if the engine interrupted the cell (`interrupted`): then what the library
/// did if the error is its interrupt, else the error's message.
/// `message` is what the hook sent; without it, the last line of stderr (where evcxr printed it).
pub(super) fn question_mark_outcome(
    message: Option<&str>,
    stderr_tail: &str,
    interrupted: bool,
) -> Outcome {
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
    let (ename, evalue) = if !interrupted {
        ("Error", message)
    } else if let Some(rest) = message.strip_prefix(LIBRARY_INTERRUPTED) {
        ("Interrupted", format!("the cell was interrupted{rest}"))
    } else {
        (
            "Interrupted",
            format!("the cell was interrupted: {message}"),
        )
    };
    Outcome::Error(ErrorContent::headline(ename, evalue))
}

/// A cell that panicked: the first report's message, location and the cell's part of its
/// backtrace, or `Interrupted` if the engine interrupted the cell (`interrupted`) and the panic
/// unwrapped the library's interrupt.
pub(super) fn panic_outcome(reports: &[Value], interrupted: bool) -> Outcome {
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
    if interrupted && message.contains("Interrupted") {
        traceback.insert(0, format!("Interrupted: {INTERRUPTED}"));
        return Outcome::Error(ErrorContent::new("Interrupted", INTERRUPTED, traceback));
    }
    Outcome::Error(ErrorContent::new("panic", message, traceback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(outcome: Outcome) -> (String, String, Vec<String>) {
        match outcome {
            Outcome::Error(ErrorContent {
                ename,
                evalue,
                traceback,
            }) => (ename, evalue, traceback),
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
        let library = multiprocessing::Error::Interrupted.to_string();
        let library = library.as_str();
        let (ename, evalue, traceback) = error(question_mark_outcome(Some(library), "", true));
        assert_eq!(ename, "Interrupted");
        assert_eq!(evalue, INTERRUPTED);
        assert_eq!(traceback, [format!("Interrupted: {INTERRUPTED}")]);
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
        let (ename, evalue, traceback) = error(panic_outcome(&[report], true));
        assert_eq!(ename, "Interrupted");
        assert_eq!(evalue, INTERRUPTED);
        assert_eq!(traceback[0], format!("Interrupted: {INTERRUPTED}"));
        assert_eq!(traceback[1], "panicked at src/lib.rs:3:9:");
    }

    #[test]
    fn only_the_engines_interrupt_makes_a_cell_interrupted() {
        // The library's interrupt text in a cell the engine did not interrupt (the cell raised
        // it itself) is the error it is, whether returned through `?` or unwrapped.
        let library = multiprocessing::Error::Interrupted.to_string();
        let library = library.as_str();
        let (ename, evalue, traceback) = error(question_mark_outcome(Some(library), "", false));
        assert_eq!(ename, "Error");
        assert_eq!(evalue, library);
        assert_eq!(traceback, [format!("Error: {library}")]);
        let report = json!({
            "message": "called `Result::unwrap()` on an `Err` value: Interrupted",
            "location": "src/lib.rs:3:9",
        });
        let (ename, evalue, traceback) = error(panic_outcome(&[report], false));
        assert_eq!(ename, "panic");
        assert_eq!(
            evalue,
            "called `Result::unwrap()` on an `Err` value: Interrupted"
        );
        assert_eq!(traceback[0], "panicked at src/lib.rs:3:9:");
        // Another panic after an interrupt is that panic.
        let report = json!({"message": "index out of bounds", "location": "src/lib.rs:1:1"});
        let (ename, evalue, _) = error(panic_outcome(&[report], true));
        assert_eq!(
            (ename.as_str(), evalue.as_str()),
            ("panic", "index out of bounds")
        );
    }
}
