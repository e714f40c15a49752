//! Cursor positions: the protocol counts code points, the engine bytes.

/// The byte offset of the code point `chars` of `s` (the end if `s` is shorter).
pub(super) fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(b, _)| b)
        .unwrap_or(s.len())
}

/// A byte offset in `s` as a count of code points (the protocol's cursor unit).
pub(super) fn byte_to_char(s: &str, byte: usize) -> usize {
    s[..byte.min(s.len())].chars().count()
}
