//! The sockets' plumbing: each socket's messages signed and sent, or received, authenticated
//! and handed on.

use super::shared::Shared;
use super::wire::Message;
use bytes::Bytes;
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tokio::sync::mpsc as tmpsc;
use zeromq::{SocketRecv, SocketSend, ZmqMessage};

pub(super) fn to_frames(msg: ZmqMessage) -> Vec<Bytes> {
    msg.into_vec()
}

pub(super) fn to_zmq(frames: Vec<Bytes>) -> Option<ZmqMessage> {
    ZmqMessage::try_from(frames).ok()
}

/// Signs and sends the messages queued for one socket.
pub(super) async fn send_loop<S: SocketSend>(
    shared: Arc<Shared>,
    mut rx: tmpsc::UnboundedReceiver<Message>,
    mut socket: S,
) {
    while let Some(m) = rx.recv().await {
        let frames = shared
            .signer
            .lock()
            .map(|s| s.encode(&m))
            .unwrap_or_default();
        if let Some(z) = to_zmq(frames) {
            let _ = socket.send(z).await;
        }
    }
}

/// Receives, authenticates and hands on the messages of one socket; drops (and logs) bad ones.
pub(super) async fn recv_loop<S: SocketRecv>(
    shared: Arc<Shared>,
    mut socket: S,
    to: mpsc::Sender<Message>,
    name: &'static str,
) {
    loop {
        match socket.recv().await {
            Ok(z) => {
                let decoded = shared.signer.lock().map(|mut s| s.decode(to_frames(z)));
                match decoded {
                    Ok(Ok(m)) => {
                        if to.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(Err(e)) => eprintln!("rustmp: dropped a {name} message: {e}"),
                    Err(_) => {}
                }
            }
            Err(e) => {
                eprintln!("rustmp: {name} socket error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
