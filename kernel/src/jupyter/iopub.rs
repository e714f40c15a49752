//! IOPub: the task that publishes the kernel's messages in order and welcomes every subscriber
//! (protocol 5.5), and an output of the running code as the IOPub message that shows it.

use super::content::{Content, IopubWelcome};
use super::shared::{Publish, Shared};
use super::sockets::to_zmq;
use super::wire::{self, Message};
use crate::engine::Output;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::mpsc as tmpsc;
use zeromq::{SocketRecv, SocketSend};

/// Starts the IOPub task: publishes what `iopub_rx` receives, in order; answers a subscription
/// with `iopub_welcome`.
pub(super) fn spawn(
    shared: Arc<Shared>,
    mut iopub: zeromq::XPubSocket,
    mut iopub_rx: tmpsc::UnboundedReceiver<Publish>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                sub = iopub.recv() => {
                    if let Ok(m) = sub
                        && let Some(frame) = m.get(0)
                        && frame.first() == Some(&1)
                    {
                        let topic = String::from_utf8_lossy(&frame[1..]).into_owned();
                        let msg = Message {
                            identities: vec![Bytes::from_static(b"iopub_welcome")],
                            header: wire::new_header(&shared.session, "iopub_welcome"),
                            parent_header: Value::Object(Map::new()),
                            metadata: Value::Object(Map::new()),
                            content: IopubWelcome { subscription: topic }.to_json(),
                            buffers: Vec::new(),
                        };
                        let frames = shared.signer.lock().map(|s| s.encode(&msg)).unwrap_or_default();
                        if let Some(z) = to_zmq(frames) {
                            let _ = iopub.send(z).await;
                        }
                    }
                }
                out = iopub_rx.recv() => {
                    let Some(p) = out else { break };
                    let msg = Message {
                        identities: vec![Bytes::from(p.msg_type.as_bytes().to_vec())],
                        header: wire::new_header(&shared.session, p.msg_type),
                        parent_header: p.parent,
                        metadata: Value::Object(Map::new()),
                        content: p.content,
                        buffers: Vec::new(),
                    };
                    let frames = shared.signer.lock().map(|s| s.encode(&msg)).unwrap_or_default();
                    if let Some(z) = to_zmq(frames) {
                        let _ = iopub.send(z).await;
                    }
                }
            }
        }
    });
}

/// Publishes an output of the running code for the cell `target` (nothing for a silent cell).
pub(super) fn publish_output(shared: &Shared, output: Output, target: &Value) {
    if target.is_null() {
        return; // a silent cell
    }
    shared.publish(output.msg_type(), target, output.content());
}
