//! The output model: what the running code's processes produce, as the reader thread hands it on.

use serde_json::Value;

/// An output of the running code.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Text on stdout or stderr.
    Stream {
        /// `stdout` or `stderr`.
        name: &'static str,
        /// The text.
        text: String,
    },
    /// Rich output: `data` is a MIME bundle; `update` replaces the display `display_id`.
    Display {
        /// The MIME bundle.
        data: Value,
        /// The display id, if it can be updated.
        display_id: Option<String>,
        /// True for `update_display_data`.
        update: bool,
    },
    /// `clear_output`.
    Clear {
        /// Wait for the next output before clearing.
        wait: bool,
    },
    /// A panic report (message, location, thread, backtrace).
    Panic(Value),
    /// The cell's code panicked (evcxr caught it): the next [`Output::Panic`] belongs to the cell.
    CellPanicked,
    /// The cell's code returned an error through `?`.
    CellErrored,
    /// The message of the error the cell returned through `?` (from
    /// [`crate::engine::relay::QUESTION_MARK_HOOK`], which keeps it off stderr).
    CellErrorMessage(String),
    /// Ordering record: the writer forked this pid (its output may be read from now on).
    Fork(u32),
    /// Ordering record: what these processes wrote so far comes before the writer's next bytes.
    Sync(Vec<u32>),
}

/// Where the capture thread sends outputs, with the token of the cell they belong to.
pub type Sink = Box<dyn FnMut(Output, &Value) + Send>;
