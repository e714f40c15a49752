//! An output as a notebook stores it (nbformat 4): tagged with its `output_type`, without the
//! transient display id; `update_display_data` and `clear_output` act on stored outputs instead.

use super::{ErrorContent, ExecuteResult, MimeBundle, Output, Stream};
use serde::Serialize;
use serde_json::{Map, Value};

/// The nbformat form of an output, borrowed.
#[derive(Serialize)]
#[serde(tag = "output_type", rename_all = "snake_case")]
enum Stored<'a> {
    Stream(&'a Stream),
    DisplayData {
        data: &'a MimeBundle,
        metadata: &'a Map<String, Value>,
    },
    ExecuteResult(&'a ExecuteResult),
    Error(&'a ErrorContent),
}

impl Output {
    /// The output as a notebook stores it; `None` for an update or a clear, which are not stored
    /// (multi-line strings are still strings here).
    pub fn nbformat(&self) -> Option<Value> {
        let stored = match self {
            Output::Stream(s) => Stored::Stream(s),
            Output::DisplayData(d) => Stored::DisplayData {
                data: &d.data,
                metadata: &d.metadata,
            },
            Output::ExecuteResult(r) => Stored::ExecuteResult(r),
            Output::Error(e) => Stored::Error(e),
            Output::UpdateDisplayData(_) | Output::ClearOutput(_) => return None,
        };
        serde_json::to_value(stored).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ClearOutput, DisplayData, StreamName};
    use super::*;

    #[test]
    fn stored_outputs_are_tagged_and_keep_no_display_id() {
        let mut data = MimeBundle::new();
        data.insert("text/plain".into(), Value::String("1".into()));
        let cases = [
            (
                Output::stream(StreamName::Stdout, "a\n"),
                r#"{"name":"stdout","output_type":"stream","text":"a\n"}"#,
            ),
            (
                Output::DisplayData(DisplayData::new(data.clone(), Some("d".into()))),
                r#"{"data":{"text/plain":"1"},"metadata":{},"output_type":"display_data"}"#,
            ),
            (
                Output::ExecuteResult(ExecuteResult::new(2, data)),
                r#"{"data":{"text/plain":"1"},"execution_count":2,"metadata":{},"output_type":"execute_result"}"#,
            ),
            (
                Output::Error(ErrorContent::headline("Error", "boom")),
                r#"{"ename":"Error","evalue":"boom","output_type":"error","traceback":["Error: boom"]}"#,
            ),
        ];
        for (output, stored) in cases {
            assert_eq!(
                output.nbformat().map(|v| v.to_string()).as_deref(),
                Some(stored)
            );
        }
        assert_eq!(
            Output::ClearOutput(ClearOutput { wait: false }).nbformat(),
            None
        );
    }
}
