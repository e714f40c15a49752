//! Cursor positions: the protocol counts code points, the engine bytes.

use super::fields::str_field;
use serde_json::Value;

/// A request's `code` and its `cursor_pos` (in code points, default: the end) as a byte offset.
pub(super) fn code_and_cursor(content: &Value) -> (String, usize) {
    let code = str_field(content, "code", "").to_string();
    let cursor = content
        .get("cursor_pos")
        .and_then(Value::as_u64)
        .map_or(code.len(), |c| char_to_byte(&code, c as usize));
    (code, cursor)
}

fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(b, _)| b)
        .unwrap_or(s.len())
}

/// A byte offset in `s` as a count of code points (the protocol's cursor unit).
pub(super) fn byte_to_char(s: &str, byte: usize) -> usize {
    s[..byte.min(s.len())].chars().count()
}
