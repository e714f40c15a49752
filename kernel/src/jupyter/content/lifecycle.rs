//! The control channel's `shutdown_request` and `shutdown_reply` (also published on IOPub), and
//! `interrupt_reply`.

use super::{Content, ReplyStatus};
use serde::{Deserialize, Serialize};

/// `shutdown_request`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ShutdownRequest {
    /// The frontend will start the kernel again.
    pub(crate) restart: bool,
}

/// `shutdown_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ShutdownReply {
    status: ReplyStatus,
    restart: bool,
}

impl ShutdownReply {
    /// The reply to `request`.
    pub(crate) fn new(request: ShutdownRequest) -> ShutdownReply {
        ShutdownReply {
            status: ReplyStatus::Ok,
            restart: request.restart,
        }
    }
}

impl Content for ShutdownReply {
    const MSG_TYPE: &'static str = "shutdown_reply";
}

/// `interrupt_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct InterruptReply {
    status: ReplyStatus,
}

impl Default for InterruptReply {
    fn default() -> InterruptReply {
        InterruptReply {
            status: ReplyStatus::Ok,
        }
    }
}

impl Content for InterruptReply {
    const MSG_TYPE: &'static str = "interrupt_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::{decode, request, wire};

    #[test]
    fn the_replies_are_the_dicts_the_protocol_shows() {
        let restart: ShutdownRequest =
            decode("shutdown_request", &request(r#"{"restart": true}"#)).unwrap();
        assert_eq!(
            wire(&ShutdownReply::new(restart)),
            r#"{"restart":true,"status":"ok"}"#
        );
        let request: ShutdownRequest = decode("shutdown_request", &request("{}")).unwrap();
        assert!(!request.restart);
        assert_eq!(wire(&InterruptReply::default()), r#"{"status":"ok"}"#);
    }
}
