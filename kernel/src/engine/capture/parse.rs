//! A pipe's bytes as outputs: whole lines of text (a partial one when its writer paused),
//! records in their escapes, UTF-8 characters never cut.

use super::event::Event;
use super::record::record;
use crate::engine::output::{Output, StreamName};
use multiprocessing::host::record::{Split, split};

/// A line longer than this is published in pieces (memory bound).
pub(super) const MAX_LINE: usize = 8 << 20;

/// How much of the pending bytes [`parse`] may publish.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Finish {
    /// Only whole lines and whole records: the rest waits for more bytes.
    Wait,
    /// Also a partial line (its writer paused), but an unfinished record or character still waits.
    Text,
    /// Everything (the writer is done: end of file, end of the cell).
    All,
}

/// Splits `data` into outputs; what `finish` does not allow to publish yet is returned as the rest.
pub fn parse(mut data: Vec<u8>, name: StreamName, finish: Finish) -> (Vec<Event>, Vec<u8>) {
    let wait_records = finish != Finish::All;
    let mut outputs = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i] == 0x1b {
            let rest = &data[i..];
            match split(rest) {
                Split::Whole { body, len } => {
                    if !text.is_empty() {
                        outputs.push(stream(name, &std::mem::take(&mut text)));
                    }
                    if let Some(o) = record(body) {
                        outputs.push(o);
                    }
                    // The record's own newline (when it is there) is not output.
                    i += len;
                    continue;
                }
                // Maybe the start of a record, or one not ended yet: wait (a very long one
                // is text).
                Split::Partial if wait_records && rest.len() < MAX_LINE => break,
                Split::Partial | Split::NotARecord => {}
            }
        }
        text.push(data[i]);
        i += 1;
    }
    let mut rest = data.split_off(i);
    // Publish whole lines; keep a partial line unless finishing (or it is too long).
    if finish == Finish::Wait {
        let cut = match text.iter().rposition(|&b| b == b'\n') {
            Some(p) => p + 1,
            None if text.len() > MAX_LINE => text.len(),
            None => 0,
        };
        let mut tail = text.split_off(cut);
        tail.extend_from_slice(&rest);
        rest = tail;
    }
    if !text.is_empty() {
        // Do not cut a UTF-8 character: carry its first bytes over.
        let keep = if finish == Finish::All {
            0
        } else {
            incomplete_utf8_tail(&text)
        };
        let carry = text.split_off(text.len() - keep);
        if !text.is_empty() {
            outputs.push(stream(name, &text));
        }
        let mut r = carry;
        r.extend_from_slice(&rest);
        rest = r;
    }
    (outputs, rest)
}

fn stream(name: StreamName, bytes: &[u8]) -> Event {
    Event::Output(Output::stream(
        name,
        String::from_utf8_lossy(bytes).into_owned(),
    ))
}

/// How many bytes at the end of `b` are the start of a UTF-8 character still missing bytes.
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let need = if c & 0xE0 == 0xC0 {
            2
        } else if c & 0xF0 == 0xE0 {
            3
        } else if c & 0xF8 == 0xF0 {
            4
        } else {
            1
        };
        return if need > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::output::DisplayData;
    use serde_json::json;

    fn text(s: &str) -> Event {
        Event::Output(Output::stream(StreamName::Stdout, s))
    }

    #[test]
    fn a_paused_writer_gets_its_partial_line_out_but_an_unfinished_record_waits() {
        let (out, rest) = parse(
            b"partial\x1b]5379;panic;eyJh".to_vec(),
            StreamName::Stderr,
            Finish::Text,
        );
        assert_eq!(
            out,
            vec![Event::Output(Output::stream(StreamName::Stderr, "partial"))]
        );
        assert_eq!(rest, b"\x1b]5379;panic;eyJh");
    }

    #[test]
    fn complete_lines_go_out_and_a_partial_line_waits() {
        let (out, rest) = parse(b"one\ntwo\nthr".to_vec(), StreamName::Stdout, Finish::Wait);
        assert_eq!(out, vec![text("one\ntwo\n")]);
        assert_eq!(rest, b"thr");
        let (out, rest) = parse(rest, StreamName::Stdout, Finish::Text);
        assert_eq!(out, vec![text("thr")]);
        assert!(rest.is_empty());
    }

    #[test]
    fn a_utf8_character_split_across_reads_is_joined() {
        let bytes = "é-end\n".as_bytes();
        let (out, rest) = parse(
            [b"aa".as_slice(), &bytes[..1]].concat(),
            StreamName::Stdout,
            Finish::Wait,
        );
        assert!(out.is_empty());
        let (out, rest) = parse(
            [rest.as_slice(), &bytes[1..]].concat(),
            StreamName::Stdout,
            Finish::Wait,
        );
        assert_eq!(out, vec![text("aaé-end\n")]);
        assert!(rest.is_empty());
        // Invalid bytes become U+FFFD without stopping anything.
        let (out, _) = parse(
            b"bad \xff\xfe bytes\n".to_vec(),
            StreamName::Stdout,
            Finish::Wait,
        );
        assert_eq!(out, vec![text("bad \u{fffd}\u{fffd} bytes\n")]);
    }

    #[test]
    fn a_question_mark_error_message_record_is_the_message_not_text() {
        // What rustmp_display's `eprintln_at` writes for the message "é\nboom" after a line.
        let payload = "eyJtZXNzYWdlIjoiw6lcbmJvb20ifQ=="; // {"message":"é\nboom"}
        let input = format!("own line\n\x1b]5379;cellerrormsg;{payload}\x07\n");
        let (out, rest) = parse(input.into_bytes(), StreamName::Stderr, Finish::Wait);
        assert_eq!(
            out,
            vec![
                Event::Output(Output::stream(StreamName::Stderr, "own line\n")),
                Event::CellErrorMessage("é\nboom".into())
            ]
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn records_become_displays_and_keep_their_place() {
        let payload = "eyJkYXRhIjp7InRleHQvcGxhaW4iOiJ4In19"; // {"data":{"text/plain":"x"}}
        let input = format!("before\n\x1b]5379;display;{payload}\x07\nafter\n");
        let (out, rest) = parse(input.into_bytes(), StreamName::Stdout, Finish::Wait);
        assert_eq!(
            out,
            vec![
                text("before\n"),
                Event::Output(Output::DisplayData(DisplayData::new(
                    json!({"text/plain": "x"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    None
                ))),
                text("after\n")
            ]
        );
        assert!(rest.is_empty());
        // A record split across reads waits.
        let (out, rest) = parse(
            format!("\x1b]5379;display;{}", &payload[..5]).into_bytes(),
            StreamName::Stdout,
            Finish::Wait,
        );
        assert!(out.is_empty());
        let (out, _) = parse(
            [rest, format!("{}\x07\n", &payload[5..]).into_bytes()].concat(),
            StreamName::Stdout,
            Finish::Wait,
        );
        assert_eq!(out.len(), 1);
    }
}
