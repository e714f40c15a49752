//! The stdin channel's `input_request` (the kernel asks) and `input_reply` (the frontend
//! answers).

use super::Content;
use serde::{Deserialize, Serialize};

/// `input_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct InputRequest {
    /// The prompt to show.
    pub(crate) prompt: String,
    /// Hide what is typed.
    pub(crate) password: bool,
}

impl Content for InputRequest {
    const MSG_TYPE: &'static str = "input_request";
}

/// `input_reply`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct InputReply {
    /// What the user typed.
    pub(crate) value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::decode;
    use crate::jupyter::content::{request, wire};

    #[test]
    fn request_and_reply() {
        let ask = InputRequest {
            prompt: "name: ".into(),
            password: false,
        };
        assert_eq!(wire(&ask), r#"{"password":false,"prompt":"name: "}"#);
        let reply: InputReply = decode("input_reply", &request(r#"{"value": "Ada"}"#)).unwrap();
        assert_eq!(reply.value, "Ada");
    }
}
