//! The state the kernel's tasks and threads share: the session, the signer, the queues of the
//! sockets, the running cell and its interrupter.

use super::wire::{self, Message, Signer};
use crate::engine::Interrupter;
use serde_json::{Value, json};
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
    pub(super) fn publish(&self, msg_type: &'static str, parent: &Value, content: Value) {
        let _ = self.iopub.send(Publish {
            msg_type,
            parent: parent.clone(),
            content,
        });
    }

    pub(super) fn reply(&self, request: &Message, msg_type: &str, content: Value) -> Message {
        Message {
            identities: request.identities.clone(),
            header: wire::new_header(&self.session, msg_type),
            parent_header: request.header_value(),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        }
    }
}
