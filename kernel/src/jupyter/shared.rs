//! The state the kernel's tasks and threads share: the session, the signer, the queues of the
//! sockets, the running cell and its interrupter; publishing on IOPub and building replies.

use super::content::{BadContent, Content, ErrorReply, ExecutionState, Status};
use super::wire::{self, Message, Signer};
use crate::engine::Interrupter;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, mpsc};
use tokio::sync::mpsc as tmpsc;

/// What the IOPub task publishes.
pub(super) struct Publish {
    pub(super) msg_type: &'static str,
    pub(super) parent: Value,
    pub(super) content: Value,
}

/// Shared state of the kernel's threads.
pub(super) struct Shared {
    pub(super) session: String,
    pub(super) signer: Mutex<Signer>,
    pub(super) iopub: tmpsc::UnboundedSender<Publish>,
    /// Replies to send on the shell and control sockets (identities included).
    pub(super) shell_out: tmpsc::UnboundedSender<Message>,
    pub(super) control_out: tmpsc::UnboundedSender<Message>,
    pub(super) stdin_out: tmpsc::UnboundedSender<Message>,
    pub(super) stdin_in: Mutex<mpsc::Receiver<Message>>,
    /// The running cell: its number (0 when idle) and when it was interrupted.
    pub(super) running: AtomicU64,
    pub(super) interrupter: Mutex<Option<Interrupter>>,
    /// The last CPU sample for `usage_request`.
    pub(super) usage: Mutex<crate::usage::Usage>,
    pub(super) shutting_down: AtomicBool,
    /// A request waits for the engine: it does not prime rust-analyzer then (see
    /// `Engine::prime`).
    pub(super) engine_wanted: AtomicBool,
}

impl Shared {
    /// Publishes a `msg_type` message with `content` on IOPub, child of `parent`.
    pub(super) fn publish(&self, msg_type: &'static str, parent: &Value, content: Value) {
        let _ = self.iopub.send(Publish {
            msg_type,
            parent: parent.clone(),
            content,
        });
    }

    /// Publishes `content` on IOPub, child of `parent`.
    pub(super) fn publish_content<C: Content>(&self, parent: &Value, content: &C) {
        self.publish(C::MSG_TYPE, parent, content.to_json());
    }

    /// Publishes the kernel's `status`, child of `parent`.
    pub(super) fn publish_status(&self, parent: &Value, execution_state: ExecutionState) {
        self.publish_content(parent, &Status { execution_state });
    }

    /// Handles `request` between the `busy` and the `idle` it publishes (once per request, as
    /// ipykernel does).
    pub(super) fn while_busy<R>(&self, request: &Message, handle: impl FnOnce() -> R) -> R {
        let parent = request.header_value();
        self.publish_status(&parent, ExecutionState::Busy);
        let handled = handle();
        self.publish_status(&parent, ExecutionState::Idle);
        handled
    }

    /// The reply `content` to `request` (to the same identities).
    pub(super) fn reply<C: Content>(&self, request: &Message, content: &C) -> Message {
        self.message(request, C::MSG_TYPE, content.to_json())
    }

    /// Logs why `request`'s content is invalid; the error reply to send, if it is a request.
    pub(super) fn refuse(
        &self,
        request: &Message,
        error: &BadContent,
        execution_count: Option<u64>,
    ) -> Option<Message> {
        eprintln!("rustmp: {error}");
        let msg_type = ErrorReply::msg_type(&request.header.msg_type)?;
        let content = ErrorReply::bad_content(error, execution_count).to_json();
        Some(self.message(request, &msg_type, content))
    }

    /// A `msg_type` message with `content` answering `request` (to the same identities).
    pub(super) fn message(&self, request: &Message, msg_type: &str, content: Value) -> Message {
        Message {
            identities: request.identities.clone(),
            header: wire::new_header(&self.session, msg_type),
            parent_header: request.header_value(),
            metadata: Value::Object(Map::new()),
            content,
            buffers: Vec::new(),
        }
    }
}
