//! What the reader thread hands on: a cell's output, or one of the records that the engine
//! (panics, `?` errors) and the reader itself (ordering) act on.

use crate::engine::output::Output;
use serde_json::Value;

/// An event of the running code's processes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An output to show (a stream, a display, an update, a clear).
    Output(Output),
    /// A panic report (message, location, thread, backtrace).
    Panic(Value),
    /// The cell's code panicked (evcxr caught it): the next [`Event::Panic`] belongs to the cell.
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

/// Where the capture thread sends events, with the token of the cell they belong to.
pub type EventSink = Box<dyn FnMut(Event, &Value) + Send>;
