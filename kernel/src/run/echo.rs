//! Outputs shown on the terminal as they arrive.

use crate::engine::output::{Output, Stream, StreamName};
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the terminal's stdout is at the start of a line (the last text echoed ended one).
pub(super) static AT_LINE_START: AtomicBool = AtomicBool::new(true);

/// Shows an output on the terminal as it arrives.
pub(super) fn echo(output: &Output) {
    match output {
        Output::Stream(Stream { name, text }) => {
            if *name == StreamName::Stderr {
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
        Output::DisplayData(display) | Output::UpdateDisplayData(display) => {
            let what = if matches!(output, Output::UpdateDisplayData(_)) {
                "updated display"
            } else {
                "display"
            };
            let data = &display.data;
            match data.get("text/plain").and_then(Value::as_str) {
                Some(text) => println!("{text}"),
                None => println!(
                    "[{what}: {}]",
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        }
        _ => {}
    }
}
