//! `complete_request` and `complete_reply`; the request's `code` and `cursor_pos` are also
//! those of `inspect_request`.

use super::super::cursor::{byte_to_char, char_to_byte};
use super::{Content, Empty, ReplyStatus};
use serde::{Deserialize, Serialize};

/// A request about the code at a cursor (`complete_request`, `inspect_request`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CursorRequest {
    /// The code.
    pub(crate) code: String,
    /// The cursor, in code points (the protocol's unit); the end of the code if left out.
    pub(crate) cursor_pos: Option<u64>,
}

impl CursorRequest {
    /// The cursor as a byte offset in `code` (the engine's unit).
    pub(crate) fn byte_cursor(&self) -> usize {
        self.cursor_pos.map_or(self.code.len(), |c| {
            char_to_byte(&self.code, usize::try_from(c).unwrap_or(usize::MAX))
        })
    }
}

/// `complete_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CompleteReply {
    status: ReplyStatus,
    matches: Vec<String>,
    cursor_start: usize,
    cursor_end: usize,
    metadata: Empty,
}

impl CompleteReply {
    /// The `matches` that replace the bytes `start..end` of `code`.
    pub(crate) fn new(code: &str, matches: Vec<String>, start: usize, end: usize) -> CompleteReply {
        CompleteReply {
            status: ReplyStatus::Ok,
            matches,
            cursor_start: byte_to_char(code, start),
            cursor_end: byte_to_char(code, end),
            metadata: Empty {},
        }
    }
}

impl Content for CompleteReply {
    const MSG_TYPE: &'static str = "complete_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::wire;

    #[test]
    fn the_cursor_counts_code_points_and_defaults_to_the_end() {
        let at = |code: &str, cursor_pos| CursorRequest {
            code: code.into(),
            cursor_pos,
        };
        assert_eq!(at("é.x", Some(2)).byte_cursor(), 3);
        assert_eq!(at("é.x", None).byte_cursor(), 4);
        assert_eq!(at("ab", Some(99)).byte_cursor(), 2);
    }

    #[test]
    fn the_reply_counts_code_points() {
        let reply = CompleteReply::new("é.ca", vec!["capacity()".into()], 3, 5);
        assert_eq!(
            wire(&reply),
            r#"{"cursor_end":4,"cursor_start":2,"matches":["capacity()"],"metadata":{},"status":"ok"}"#
        );
    }
}
