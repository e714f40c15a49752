//! `inspect_reply` (the request is a [`super::CursorRequest`]; its `detail_level` is not
//! read), and the documentation it carries, which the `?path` help pages too.

use super::{Content, Empty, ReplyStatus};
use serde::Serialize;

/// A path's documentation, as plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Documentation {
    /// The plain text.
    #[serde(rename = "text/plain")]
    pub(crate) plain: String,
    /// The HTML.
    #[serde(rename = "text/html")]
    pub(crate) html: String,
}

/// What `inspect_reply` found: documentation, or `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
enum Found {
    Documentation(Documentation),
    Nothing(Empty),
}

/// `inspect_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct InspectReply {
    status: ReplyStatus,
    found: bool,
    data: Found,
    metadata: Empty,
}

impl InspectReply {
    /// The reply with the documentation found, if any.
    pub(crate) fn new(found: Option<Documentation>) -> InspectReply {
        InspectReply {
            status: ReplyStatus::Ok,
            found: found.is_some(),
            data: found.map_or(Found::Nothing(Empty {}), Found::Documentation),
            metadata: Empty {},
        }
    }
}

impl Content for InspectReply {
    const MSG_TYPE: &'static str = "inspect_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::wire;

    #[test]
    fn found_or_not_the_reply_is_the_dict_the_protocol_shows() {
        let doc = Documentation {
            plain: "Vec".into(),
            html: "<b>Vec</b>".into(),
        };
        assert_eq!(
            wire(&InspectReply::new(Some(doc))),
            r#"{"data":{"text/html":"<b>Vec</b>","text/plain":"Vec"},"found":true,"metadata":{},"status":"ok"}"#
        );
        assert_eq!(
            wire(&InspectReply::new(None)),
            r#"{"data":{},"found":false,"metadata":{},"status":"ok"}"#
        );
    }
}
