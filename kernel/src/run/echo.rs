//! Outputs shown on the terminal as they arrive.

use crate::engine::Output;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the terminal's stdout is at the start of a line (the last text echoed ended one).
pub(super) static AT_LINE_START: AtomicBool = AtomicBool::new(true);

/// Shows an output on the terminal as it arrives.
pub(super) fn echo(output: &Output) {
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
