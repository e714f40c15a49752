//! One record (`\x1b]5379;kind;base64(json)\x07`) decoded into an event.

use super::event::Event;
use crate::engine::output::{ClearOutput, DisplayData, Output};
use serde_json::Value;

/// How a record starts: `ESC ] 5379 ;`, then `kind;base64(json)` and BEL.
pub(super) const OSC: &[u8] = b"\x1b]5379;";

/// Decodes one `kind;base64(json)` record.
pub(super) fn record(body: &[u8]) -> Option<Event> {
    let text = std::str::from_utf8(body).ok()?;
    let (kind, payload) = text.split_once(';')?;
    let json: Value = serde_json::from_slice(&base64_decode(payload)?).ok()?;
    let display_id = json
        .get("display_id")
        .and_then(Value::as_str)
        .map(String::from);
    Some(match kind {
        "display" => Event::Output(Output::DisplayData(DisplayData::new(
            json.get("data")?.as_object()?.clone(),
            display_id,
        ))),
        "update" => Event::Output(Output::UpdateDisplayData(DisplayData::new(
            json.get("data")?.as_object()?.clone(),
            display_id,
        ))),
        "clear" => Event::Output(Output::ClearOutput(ClearOutput {
            wait: json.get("wait").and_then(Value::as_bool).unwrap_or(false),
        })),
        "panic" => Event::Panic(json),
        "cellpanic" => Event::CellPanicked,
        "cellerror" => Event::CellErrored,
        "cellerrormsg" => Event::CellErrorMessage(json.get("message")?.as_str()?.to_string()),
        k if k.starts_with("sync:") => Event::Sync(
            k["sync:".len()..]
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect(),
        ),
        k if k.starts_with("fork:") => Event::Fork(k["fork:".len()..].parse().ok()?),
        _ => return None,
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
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
