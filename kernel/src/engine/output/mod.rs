//! The output model: what a cell shows, built by the engine and consumed as it is by the kernel
//! (each [`Output`] is the content of one IOPub message) and by `rustmp run` (which records the
//! nbformat output of the same value, as Jupyter clients do).
//!
//! - `content`: the content of each output message (`stream`, `display_data`,
//!   `update_display_data`, `clear_output`, `execute_result`, `error`), typed.
//! - `nbformat`: an output as a notebook stores it.

mod content;
mod nbformat;

pub use content::{
    ClearOutput, DisplayData, ErrorContent, ExecuteResult, MimeBundle, Stream, StreamName,
};

use serde_json::Value;

/// An output of a cell, as the kernel publishes it and the runner records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Text on stdout or stderr.
    Stream(Stream),
    /// Rich output (a MIME bundle), possibly under a display id that later updates replace.
    DisplayData(DisplayData),
    /// New content for every output showing a display id.
    UpdateDisplayData(DisplayData),
    /// Clear the cell's outputs, at once or at the next output.
    ClearOutput(ClearOutput),
    /// The value of the cell's final expression.
    ExecuteResult(ExecuteResult),
    /// The cell failed: a compile error, a panic, an error returned through `?`, an interrupt.
    Error(ErrorContent),
}

impl Output {
    /// A `stream` output.
    pub fn stream(name: StreamName, text: impl Into<String>) -> Output {
        Output::Stream(Stream {
            name,
            text: text.into(),
        })
    }

    /// The type of the IOPub message that carries this output.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Output::Stream(_) => "stream",
            Output::DisplayData(_) => "display_data",
            Output::UpdateDisplayData(_) => "update_display_data",
            Output::ClearOutput(_) => "clear_output",
            Output::ExecuteResult(_) => "execute_result",
            Output::Error(_) => "error",
        }
    }

    /// The content of the IOPub message that carries this output.
    pub fn content(&self) -> Value {
        let content = match self {
            Output::Stream(c) => serde_json::to_value(c),
            Output::DisplayData(c) | Output::UpdateDisplayData(c) => serde_json::to_value(c),
            Output::ClearOutput(c) => serde_json::to_value(c),
            Output::ExecuteResult(c) => serde_json::to_value(c),
            Output::Error(c) => serde_json::to_value(c),
        };
        // The contents are maps of strings, numbers and JSON values: serializing cannot fail.
        content.unwrap_or(Value::Null)
    }
}

/// Where the engine sends outputs, with the token of the cell they belong to (the kernel's parent
/// header, the runner's cell index; `null` for a silent cell).
pub type Sink = Box<dyn FnMut(Output, &Value) + Send>;

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(text: &str) -> MimeBundle {
        let mut data = MimeBundle::new();
        data.insert("text/plain".into(), Value::String(text.into()));
        data
    }

    #[test]
    fn each_output_is_the_content_of_its_iopub_message() {
        let display = DisplayData::new(bundle("1"), Some("d".into()));
        let cases = [
            (
                Output::stream(StreamName::Stderr, "e\n"),
                "stream",
                r#"{"name":"stderr","text":"e\n"}"#,
            ),
            (
                Output::DisplayData(display.clone()),
                "display_data",
                r#"{"data":{"text/plain":"1"},"metadata":{},"transient":{"display_id":"d"}}"#,
            ),
            (
                Output::UpdateDisplayData(DisplayData::new(MimeBundle::new(), None)),
                "update_display_data",
                r#"{"data":{},"metadata":{},"transient":{}}"#,
            ),
            (
                Output::ClearOutput(ClearOutput { wait: true }),
                "clear_output",
                r#"{"wait":true}"#,
            ),
            (
                Output::ExecuteResult(ExecuteResult::new(3, bundle("1"))),
                "execute_result",
                r#"{"data":{"text/plain":"1"},"execution_count":3,"metadata":{}}"#,
            ),
            (
                Output::Error(ErrorContent::new("panic", "boom", vec!["boom".into()])),
                "error",
                r#"{"ename":"panic","evalue":"boom","traceback":["boom"]}"#,
            ),
        ];
        for (output, msg_type, content) in cases {
            assert_eq!(output.msg_type(), msg_type);
            assert_eq!(output.content().to_string(), content);
        }
    }
}
