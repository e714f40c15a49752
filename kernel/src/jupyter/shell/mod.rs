//! The shell channel: the executor thread that handles shell requests one at a time, in order,
//! starts the engine and aborts the queued cells after a failed one. [`Executor::dispatch`]
//! looks the handler up by message type ([`handler`]) and publishes busy and idle around it,
//! as ipykernel's `dispatch_shell` does.
//!
//! - `execute`: `execute_request` and the `?path` help.
//! - `engine`: the engine, started in the background.

mod engine;
mod execute;

use super::content::{
    self, BadContent, CommClose, CommInfoReply, CommOpen, CompleteReply, CursorRequest,
    Documentation, ExecuteReply, HistoryRequest, InspectReply, IsCompleteReply, IsCompleteRequest,
    ShutdownReply, ShutdownRequest,
};
use super::history::{self, HistoryEntry};
use super::is_complete;
use super::kernel_info::kernel_info;
use super::shared::Shared;
use super::wire::Message;
use crate::engine::{Engine, Paths};
use std::collections::VecDeque;
use std::sync::{Arc, mpsc};

/// What the executor does after a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum After {
    /// Handles the next request.
    Next,
    /// Aborts the execute requests already queued (a cell failed with `stop_on_error`).
    AbortQueued,
}

/// A shell request's handler.
type Handler = fn(&mut Executor, &Message) -> Result<After, BadContent>;

/// The handler of the shell messages of type `msg_type`.
fn handler(msg_type: &str) -> Option<Handler> {
    Some(match msg_type {
        "kernel_info_request" => |s, m| {
            let _ = s.shared.shell_out.send(kernel_info(&s.shared, m));
            Ok(After::Next)
        },
        "execute_request" => Executor::execute,
        "is_complete_request" => Executor::is_complete,
        "complete_request" => Executor::complete,
        "inspect_request" => Executor::inspect,
        "history_request" => Executor::history,
        "comm_info_request" => |s, m| {
            let _ = s
                .shared
                .shell_out
                .send(s.shared.reply(m, &CommInfoReply::default()));
            Ok(After::Next)
        },
        "comm_open" => Executor::comm_open,
        "comm_msg" | "comm_close" => |_, _| Ok(After::Next),
        // Deprecated on shell; answered as the control channel would, without shutting down.
        "shutdown_request" => |s, m| {
            let reply = ShutdownReply::new(ShutdownRequest::default());
            let _ = s.shared.shell_out.send(s.shared.reply(m, &reply));
            Ok(After::Next)
        },
        _ => return None,
    })
}

/// The executor thread's state: the engine, the execution count, the history, the queue.
pub(super) struct Executor {
    shared: Arc<Shared>,
    paths: Option<Paths>,
    engine_rx: Option<mpsc::Receiver<Result<(Engine, Paths), String>>>,
    engine: Option<Result<(Engine, Paths), String>>,
    execution_count: u64,
    /// Numbers every cell run (silent ones too), for the interrupt's grace timer.
    cell_seq: u64,
    history: Vec<HistoryEntry>,
    queue: VecDeque<Message>,
}

impl Executor {
    pub(super) fn new(shared: Arc<Shared>, paths: Paths) -> Executor {
        Executor {
            shared,
            paths: Some(paths),
            engine_rx: None,
            engine: None,
            execution_count: 0,
            cell_seq: 0,
            history: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// Handles the shell requests `rx` receives, in order, until it closes.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Message>) {
        self.start_engine();
        loop {
            let m = match self.queue.pop_front() {
                Some(m) => m,
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            while let Ok(more) = rx.try_recv() {
                self.queue.push_back(more);
            }
            self.dispatch(&m, &rx);
        }
    }

    /// Handles one shell message between its busy and idle; a request whose content is invalid
    /// is answered with an error reply (and logged).
    fn dispatch(&mut self, m: &Message, rx: &mpsc::Receiver<Message>) {
        let shared = self.shared.clone();
        shared.while_busy(m, || {
            let msg_type = m.header.msg_type.as_str();
            let Some(handle) = handler(msg_type) else {
                eprintln!("rustmp: unsupported shell message {msg_type}");
                return;
            };
            match handle(self, m) {
                Ok(After::Next) => {}
                // Before this request's idle (as ipykernel does): a request sent after a client
                // saw the failed cell end is not aborted, only those already queued.
                Ok(After::AbortQueued) => self.abort_queued(rx),
                Err(e) => {
                    let count =
                        (m.header.msg_type == "execute_request").then_some(self.execution_count);
                    if let Some(reply) = shared.refuse(m, &e, count) {
                        let _ = shared.shell_out.send(reply);
                    }
                }
            }
        });
    }

    /// After an error with `stop_on_error`: answer queued execute requests with `aborted`.
    fn abort_queued(&mut self, rx: &mpsc::Receiver<Message>) {
        while let Ok(more) = rx.try_recv() {
            self.queue.push_back(more);
        }
        let (aborted, kept) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| m.header.msg_type == "execute_request");
        self.queue = kept;
        let reply = ExecuteReply::Aborted {
            execution_count: self.execution_count,
        };
        for m in aborted {
            self.shared.while_busy(&m, || {
                let _ = self.shared.shell_out.send(self.shared.reply(&m, &reply));
            });
        }
    }

    fn is_complete(&mut self, m: &Message) -> Result<After, BadContent> {
        let request: IsCompleteRequest = content::decode(&m.header.msg_type, &m.content)?;
        let reply = IsCompleteReply::from(is_complete::check(&request.code));
        let _ = self.shared.shell_out.send(self.shared.reply(m, &reply));
        Ok(After::Next)
    }

    fn complete(&mut self, m: &Message) -> Result<After, BadContent> {
        let request: CursorRequest = content::decode(&m.header.msg_type, &m.content)?;
        let byte = request.byte_cursor();
        let (matches, start, end) = match self.engine() {
            Ok(e) => e.complete(&request.code, byte),
            Err(_) => (Vec::new(), byte, byte),
        };
        let reply = CompleteReply::new(&request.code, matches, start, end);
        let _ = self.shared.shell_out.send(self.shared.reply(m, &reply));
        Ok(After::Next)
    }

    fn inspect(&mut self, m: &Message) -> Result<After, BadContent> {
        let request: CursorRequest = content::decode(&m.header.msg_type, &m.content)?;
        let byte = request.byte_cursor();
        let found = self
            .engine()
            .ok()
            .and_then(|e| e.inspect(&request.code, byte))
            .map(|(plain, html)| Documentation { plain, html });
        let reply = InspectReply::new(found);
        let _ = self.shared.shell_out.send(self.shared.reply(m, &reply));
        Ok(After::Next)
    }

    fn history(&mut self, m: &Message) -> Result<After, BadContent> {
        let request: HistoryRequest = content::decode(&m.header.msg_type, &m.content)?;
        let reply = history::reply(&self.history, &request);
        let _ = self.shared.shell_out.send(self.shared.reply(m, &reply));
        Ok(After::Next)
    }

    /// `comm_open`: the kernel has no comm targets, so the comm is closed at once.
    fn comm_open(&mut self, m: &Message) -> Result<After, BadContent> {
        let open: CommOpen = content::decode(&m.header.msg_type, &m.content)?;
        let close = CommClose::new(open.comm_id);
        self.shared.publish_content(&m.header_value(), &close);
        Ok(After::Next)
    }
}
