//! The stdin channel: asking the frontend for input while a cell runs.

use super::content::{self, InputReply, InputRequest};
use super::shared::Shared;
use super::wire::Message;
use crate::engine::Interrupter;
use bytes::Bytes;
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
    let ask = InputRequest {
        prompt: prompt.to_string(),
        password,
    };
    let mut msg = shared.reply(request, &ask);
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
                return match content::decode::<InputReply>("input_reply", &reply.content) {
                    Ok(reply) => reply.value,
                    Err(e) => {
                        eprintln!("rustmp: {e}; the cell reads an empty line");
                        String::new()
                    }
                };
            }
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return String::new(),
        }
    }
}
