//! `history_request` (tail, range and search access) and `history_reply`.

use super::{Content, ReplyStatus};
use serde::{Deserialize, Serialize};

/// How a `history_request` selects cells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HistAccess {
    /// The last `n`.
    #[default]
    Tail,
    /// The lines `start..stop`.
    Range,
    /// Those matching `pattern`.
    Search,
    /// Another access type: no cells.
    #[serde(other)]
    Other,
}

/// `history_request` (`raw` and `session` are not read: the kernel keeps the raw input of
/// this session only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct HistoryRequest {
    /// How cells are selected.
    pub(crate) hist_access_type: HistAccess,
    /// Each cell with the text/plain of its result.
    pub(crate) output: bool,
    /// Tail: how many (default 10); search: the last `n` matches (default all).
    pub(crate) n: Option<u64>,
    /// Range: the first line.
    pub(crate) start: u64,
    /// Range: the line after the last (default: no end).
    pub(crate) stop: Option<u64>,
    /// Search: a shell pattern (`*`, `?`).
    pub(crate) pattern: String,
    /// Search: each input once.
    pub(crate) unique: bool,
}

impl Default for HistoryRequest {
    fn default() -> HistoryRequest {
        HistoryRequest {
            hist_access_type: HistAccess::Tail,
            output: false,
            n: None,
            start: 0,
            stop: None,
            pattern: "*".into(),
            unique: false,
        }
    }
}

/// A history item's cell: its input, or its input and the text/plain of its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum HistoryText {
    /// Without output.
    Input(String),
    /// With output (`null` if it had no result).
    InputOutput(String, Option<String>),
}

/// A `history_reply` item: `[session, line, entry]` (the session is 1, this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HistoryItem(pub(crate) u64, pub(crate) u64, pub(crate) HistoryText);

/// `history_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HistoryReply {
    status: ReplyStatus,
    history: Vec<HistoryItem>,
}

impl HistoryReply {
    /// The reply listing `history`.
    pub(crate) fn new(history: Vec<HistoryItem>) -> HistoryReply {
        HistoryReply {
            status: ReplyStatus::Ok,
            history,
        }
    }
}

impl Content for HistoryReply {
    const MSG_TYPE: &'static str = "history_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::{decode, request, wire};

    #[test]
    fn a_request_decodes_with_the_protocols_defaults() {
        let r: HistoryRequest = decode("history_request", &request("{}")).unwrap();
        assert_eq!(r, HistoryRequest::default());
        let r: HistoryRequest = decode(
            "history_request",
            &request(
                r#"{"hist_access_type": "range", "start": 2, "stop": 4, "output": true,
                    "raw": true, "session": 0}"#,
            ),
        )
        .unwrap();
        assert_eq!(r.hist_access_type, HistAccess::Range);
        assert_eq!((r.start, r.stop, r.output), (2, Some(4), true));
        let r: HistoryRequest = decode(
            "history_request",
            &request(r#"{"hist_access_type": "sideways"}"#),
        )
        .unwrap();
        assert_eq!(r.hist_access_type, HistAccess::Other);
    }

    #[test]
    fn the_reply_lists_session_line_and_entry() {
        let reply = HistoryReply::new(vec![
            HistoryItem(1, 1, HistoryText::Input("1".into())),
            HistoryItem(1, 2, HistoryText::InputOutput("2".into(), Some("2".into()))),
            HistoryItem(1, 3, HistoryText::InputOutput("3;".into(), None)),
        ]);
        assert_eq!(
            wire(&reply),
            r#"{"history":[[1,1,"1"],[1,2,["2","2"]],[1,3,["3;",null]]],"status":"ok"}"#
        );
    }
}
