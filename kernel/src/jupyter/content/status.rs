//! The kernel's state on IOPub: `status` (starting, then busy and idle around every request)
//! and `iopub_welcome` (protocol 5.5: a new subscriber knows its subscription is live).

use super::Content;
use serde::Serialize;

/// What the kernel is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExecutionState {
    /// The kernel has just started.
    Starting,
    /// It handles a request (the parent).
    Busy,
    /// It has handled it.
    Idle,
}

/// `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Status {
    /// The state.
    pub(crate) execution_state: ExecutionState,
}

impl Content for Status {
    const MSG_TYPE: &'static str = "status";
}

/// `iopub_welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct IopubWelcome {
    /// The topic the subscriber subscribed to.
    pub(crate) subscription: String,
}

impl Content for IopubWelcome {
    const MSG_TYPE: &'static str = "iopub_welcome";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::wire;

    #[test]
    fn status_and_welcome_serialize_as_the_protocol_shows() {
        let busy = Status {
            execution_state: ExecutionState::Busy,
        };
        assert_eq!(wire(&busy), r#"{"execution_state":"busy"}"#);
        let starting = Status {
            execution_state: ExecutionState::Starting,
        };
        assert_eq!(wire(&starting), r#"{"execution_state":"starting"}"#);
        let welcome = IopubWelcome {
            subscription: String::new(),
        };
        assert_eq!(wire(&welcome), r#"{"subscription":""}"#);
    }
}
