//! The record format between a process's output and its host: one escape sequence a terminal
//! shows as nothing (an OSC), `ESC ] 5379 ; kind ; base64 BEL`, followed by a newline.
//!
//! `kind` names the record (`fork:<pid>`, `sync:<pid>,…`, `display`, `panic`, …) and never holds
//! a `;`; the payload (JSON in every record written today, `{}` when there is nothing to say) is
//! standard base64 with padding, so no byte of it can end the record early. The library writes
//! the `fork` and `sync` ordering records (see [`crate::host`]); a host and the crates that talk
//! to it (the kernel's display crate, its runtime relay) write and parse the others with the same
//! functions.
//!
//! ```
//! use multiprocessing::host::record;
//!
//! let bytes = record::encode("display", br#"{"data":{}}"#);
//! assert!(bytes.starts_with(record::INTRODUCER));
//! let record::Split::Whole { body, len } = record::split(&bytes) else { panic!() };
//! assert_eq!(len, bytes.len());
//! assert_eq!(record::decode(body), Some(("display", br#"{"data":{}}"#.to_vec())));
//! ```

/// What every record starts with: `ESC ] 5379 ;`.
///
/// ```
/// assert_eq!(multiprocessing::host::record::INTRODUCER, b"\x1b]5379;");
/// ```
pub const INTRODUCER: &[u8] = b"\x1b]5379;";

/// The byte that ends a record's escape sequence: `BEL`. A newline follows it (see [`encode`]).
///
/// ```
/// assert_eq!(multiprocessing::host::record::TERMINATOR, 0x07);
/// ```
pub const TERMINATOR: u8 = 0x07;

/// The payload of a record that carries nothing: `{}`, written `e30=`.
///
/// ```
/// use multiprocessing::host::record;
/// assert_eq!(record::encode("cellpanic", record::EMPTY), b"\x1b]5379;cellpanic;e30=\x07\n");
/// ```
pub const EMPTY: &[u8] = b"{}";

/// One whole record: [`INTRODUCER`], `kind`, `;`, the payload in base64, [`TERMINATOR`] and a
/// newline. A caller writes it in one `write` so that no other output lands inside it.
///
/// `kind` must not contain `;` or the terminator (the library's kinds never do).
///
/// ```
/// use multiprocessing::host::record;
/// assert_eq!(record::encode("fork:42", b"{}"), b"\x1b]5379;fork:42;e30=\x07\n");
/// ```
pub fn encode(kind: &str, payload: &[u8]) -> Vec<u8> {
    debug_assert!(!kind.contains(';') && !kind.contains('\x07'));
    let mut out = Vec::with_capacity(INTRODUCER.len() + kind.len() + payload.len() * 4 / 3 + 8);
    out.extend_from_slice(INTRODUCER);
    out.extend_from_slice(kind.as_bytes());
    out.push(b';');
    out.extend_from_slice(base64_encode(payload).as_bytes());
    out.push(TERMINATOR);
    out.push(b'\n');
    out
}

/// What [`split`] found at the start of a byte stream.
///
/// ```
/// use multiprocessing::host::record::{split, Split};
/// assert_eq!(split(b"text"), Split::NotARecord);
/// assert_eq!(split(b"\x1b]53"), Split::Partial);
/// assert_eq!(split(b"\x1b]5379;fork:1;e30="), Split::Partial);
/// assert_eq!(
///     split(b"\x1b]5379;fork:1;e30=\x07\nnext"),
///     Split::Whole { body: b"fork:1;e30=", len: 20 },
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split<'a> {
    /// The stream starts with one whole record.
    Whole {
        /// What lies between the introducer and the terminator, `kind;base64` (see [`decode`]).
        body: &'a [u8],
        /// How many bytes the record takes: through its terminator, and its newline if that is
        /// already there (a newline that arrives later is the writer's text).
        len: usize,
    },
    /// The stream starts with a record (or the beginning of its introducer) that has not ended
    /// yet: wait for more bytes, or, if none will come, take them as text.
    Partial,
    /// The stream does not start with a record.
    NotARecord,
}

/// Looks for one record at the start of `data` (see [`Split`]).
///
/// ```
/// use multiprocessing::host::record;
/// let stream = [record::encode("sync:7", b"{}"), b"after\n".to_vec()].concat();
/// let record::Split::Whole { body, len } = record::split(&stream) else { panic!() };
/// assert_eq!(&stream[len..], b"after\n");
/// assert_eq!(record::decode(body).unwrap().0, "sync:7");
/// ```
pub fn split(data: &[u8]) -> Split<'_> {
    if data.len() < INTRODUCER.len() {
        return if !data.is_empty() && INTRODUCER.starts_with(data) {
            Split::Partial
        } else {
            Split::NotARecord
        };
    }
    if !data.starts_with(INTRODUCER) {
        return Split::NotARecord;
    }
    match data.iter().position(|&b| b == TERMINATOR) {
        Some(end) => {
            let len = if data.get(end + 1) == Some(&b'\n') {
                end + 2
            } else {
                end + 1
            };
            Split::Whole {
                body: &data[INTRODUCER.len()..end],
                len,
            }
        }
        None => Split::Partial,
    }
}

/// Decodes a record's body (`kind;base64`, as [`split`] returns it) into its kind and payload;
/// `None` if it is not valid (no `;`, not UTF-8, not base64).
///
/// ```
/// use multiprocessing::host::record;
/// assert_eq!(record::decode(b"panic;eyJhIjoxfQ=="), Some(("panic", br#"{"a":1}"#.to_vec())));
/// assert_eq!(record::decode(b"no separator"), None);
/// assert_eq!(record::decode(b"kind;not base64!"), None);
/// ```
pub fn decode(body: &[u8]) -> Option<(&str, Vec<u8>)> {
    let text = std::str::from_utf8(body).ok()?;
    let (kind, payload) = text.split_once(';')?;
    Some((kind, base64_decode(payload)?))
}

/// `s` as a JSON string: quoted, with `"`, `\` and control characters escaped (records carry
/// JSON; this library has no JSON dependency).
///
/// ```
/// use multiprocessing::host::record::json_string;
/// assert_eq!(json_string("a \"q\"\n\u{1}"), r#""a \"q\"\n\u0001""#);
/// ```
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, `+/`, with `=` padding), the encoding of a record's payload.
///
/// ```
/// use multiprocessing::host::record::base64_encode;
/// assert_eq!(base64_encode(b""), "");
/// assert_eq!(base64_encode(b"f"), "Zg==");
/// assert_eq!(base64_encode(b"fo"), "Zm8=");
/// assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
/// ```
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on a byte outside the alphabet or a
/// length no encoder produces.
///
/// ```
/// use multiprocessing::host::record::base64_decode;
/// assert_eq!(base64_decode("Zm9vYmFy"), Some(b"foobar".to_vec()));
/// assert_eq!(base64_decode("Zg=="), Some(b"f".to_vec()));
/// assert_eq!(base64_decode("Zg"), Some(b"f".to_vec()));
/// assert_eq!(base64_decode("Z"), None);
/// assert_eq!(base64_decode("Zm9v!"), None);
/// ```
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

/// The ordering record written after forking `pid` (see [`crate::host`]).
pub(crate) fn fork(pid: u32) -> Vec<u8> {
    encode(&format!("fork:{pid}"), EMPTY)
}

/// The ordering record for `pids` being done with something (see [`crate::host`]).
pub(crate) fn sync(pids: &[u32]) -> Vec<u8> {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    encode(&format!("sync:{}", list.join(",")), EMPTY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ordering_records_keep_their_bytes() {
        assert_eq!(fork(12), b"\x1b]5379;fork:12;e30=\x07\n");
        assert_eq!(sync(&[3, 4]), b"\x1b]5379;sync:3,4;e30=\x07\n");
    }

    #[test]
    fn base64_round_trips_every_length_and_byte() {
        let data: Vec<u8> = (0..=255).collect();
        for n in 0..data.len() {
            assert_eq!(
                base64_decode(&base64_encode(&data[..n])),
                Some(data[..n].to_vec())
            );
        }
    }

    #[test]
    fn a_record_without_its_newline_yet_ends_at_the_terminator() {
        let bytes = encode("clear", b"{}");
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(
            split(cut),
            Split::Whole {
                body: b"clear;e30=",
                len: cut.len()
            }
        );
    }

    #[test]
    fn an_escape_that_is_not_ours_is_not_a_record() {
        assert_eq!(split(b"\x1b[31mred"), Split::NotARecord);
        assert_eq!(split(b""), Split::NotARecord);
    }
}
