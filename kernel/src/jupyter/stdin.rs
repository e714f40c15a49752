//! The stdin channel: asking the frontend for input while a cell runs.

use super::fields::str_field;
use super::shared::Shared;
use super::wire::Message;
use crate::engine::Interrupter;
use bytes::Bytes;
use serde_json::json;
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Asks the frontend for input on the stdin channel and waits for the matching reply.
pub(super) fn request_input(
    shared: &Arc<Shared>,
    request: &Message,
    identities: &[Bytes],
    prompt: &str,
    password: bool,
) -> String {
    let mut msg = shared.reply(
        request,
        "input_request",
        json!({"prompt": prompt, "password": password}),
    );
    msg.identities = identities.to_vec();
    let _ = shared.stdin_out.send(msg);
    let Ok(rx) = shared.stdin_in.lock() else {
        return String::new();
    };
    // jupyter_client's `input()` sends the reply without a parent header: any input_reply on the
    // stdin channel answers the one pending request.
    loop {
        let interrupted = shared
            .interrupter
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(Interrupter::was_interrupted))
            .unwrap_or(false);
        if interrupted {
            return String::new();
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Ok(reply) if reply.header.msg_type == "input_reply" => {
                return str_field(&reply.content, "value", "").to_string();
            }
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return String::new(),
        }
    }
}
