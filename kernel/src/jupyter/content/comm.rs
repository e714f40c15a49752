//! Comms: the kernel has no comm targets, so `comm_info_reply` lists none and a `comm_open` is
//! answered with `comm_close`.

use super::{Content, Empty, ReplyStatus};
use serde::{Deserialize, Serialize};

/// `comm_open` (the target and data are not read: every comm is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CommOpen {
    /// The comm's id (`null` in the `comm_close` if left out).
    pub(crate) comm_id: Option<String>,
}

/// `comm_close`, on IOPub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CommClose {
    comm_id: Option<String>,
    data: Empty,
}

impl CommClose {
    /// Closes the comm `comm_id`.
    pub(crate) fn new(comm_id: Option<String>) -> CommClose {
        CommClose {
            comm_id,
            data: Empty {},
        }
    }
}

impl Content for CommClose {
    const MSG_TYPE: &'static str = "comm_close";
}

/// `comm_info_reply`: no comms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CommInfoReply {
    status: ReplyStatus,
    comms: Empty,
}

impl Default for CommInfoReply {
    fn default() -> CommInfoReply {
        CommInfoReply {
            status: ReplyStatus::Ok,
            comms: Empty {},
        }
    }
}

impl Content for CommInfoReply {
    const MSG_TYPE: &'static str = "comm_info_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::wire;

    #[test]
    fn the_replies_are_the_dicts_the_protocol_shows() {
        assert_eq!(
            wire(&CommInfoReply::default()),
            r#"{"comms":{},"status":"ok"}"#
        );
        assert_eq!(
            wire(&CommClose::new(Some("c-1".into()))),
            r#"{"comm_id":"c-1","data":{}}"#
        );
        assert_eq!(wire(&CommClose::new(None)), r#"{"comm_id":null,"data":{}}"#);
    }
}
