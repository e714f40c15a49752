//! The content of each output message, as the Jupyter messaging protocol (5.x) defines it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A MIME bundle: MIME type → the data in that form (a string, or JSON for `*json` types).
pub type MimeBundle = Map<String, Value>;

/// Which stream text was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// `stream`: text on stdout or stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// The stream.
    pub name: StreamName,
    /// The text.
    pub text: String,
}

/// The part of a display that is not stored in a notebook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transient {
    /// The display id, if the display can be updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
}

/// `display_data` and `update_display_data`: a MIME bundle, updatable through its display id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayData {
    /// The MIME bundle.
    pub data: MimeBundle,
    /// Metadata per MIME type (none today).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The display id.
    #[serde(default)]
    pub transient: Transient,
}

impl DisplayData {
    /// A display of `data`, under `display_id` if it can be updated.
    pub fn new(data: MimeBundle, display_id: Option<String>) -> DisplayData {
        DisplayData {
            data,
            metadata: Map::new(),
            transient: Transient { display_id },
        }
    }
}

/// `clear_output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearOutput {
    /// Clear at the next output rather than at once.
    #[serde(default)]
    pub wait: bool,
}

/// `execute_result`: the value of a cell's final expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResult {
    /// The cell's execution count.
    pub execution_count: u64,
    /// The value as a MIME bundle.
    pub data: MimeBundle,
    /// Metadata per MIME type (none today).
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl ExecuteResult {
    /// The result `data` of the cell counted `execution_count`.
    pub fn new(execution_count: u64, data: MimeBundle) -> ExecuteResult {
        ExecuteResult {
            execution_count,
            data,
            metadata: Map::new(),
        }
    }
}

/// `error`: what a failed cell shows (also the error fields of its `execute_reply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorContent {
    /// The error's class (`CompilationError`, `panic`, `Error`, `Interrupted`, `RuntimeDied`, …).
    pub ename: String,
    /// The message.
    pub evalue: String,
    /// The lines to show.
    pub traceback: Vec<String>,
}

impl ErrorContent {
    /// An error of class `ename` with message `evalue`, shown as `traceback`.
    pub fn new(
        ename: impl Into<String>,
        evalue: impl Into<String>,
        traceback: Vec<String>,
    ) -> ErrorContent {
        ErrorContent {
            ename: ename.into(),
            evalue: evalue.into(),
            traceback,
        }
    }

    /// An error whose traceback is its one line `ename: evalue`.
    pub fn headline(ename: impl Into<String>, evalue: impl Into<String>) -> ErrorContent {
        let (ename, evalue) = (ename.into(), evalue.into());
        ErrorContent {
            traceback: vec![format!("{ename}: {evalue}")],
            ename,
            evalue,
        }
    }
}
