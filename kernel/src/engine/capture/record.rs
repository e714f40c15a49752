//! One record (`\x1b]5379;kind;base64(json)\x07`, the format of `multiprocessing::host::record`)
//! decoded into an event.

use super::event::Event;
use crate::engine::output::{ClearOutput, DisplayData, Output};
use crate::engine::relay::{CELL_ERROR, CELL_PANIC};
use multiprocessing::host::record;
use serde_json::Value;

/// Decodes one record's body (`kind;base64(json)`, as `record::split` returns it).
pub(super) fn record(body: &[u8]) -> Option<Event> {
    let (kind, payload) = record::decode(body)?;
    let json: Value = serde_json::from_slice(&payload).ok()?;
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
        // A pool's timeline or a speedup measure, drawn here (the cells do not carry plotters).
        "timeline" => Event::Output(Output::DisplayData(DisplayData::new(
            crate::render::timeline_bundle(&json),
            None,
        ))),
        "speedup" => Event::Output(Output::DisplayData(DisplayData::new(
            crate::render::speedup_bundle(&json),
            None,
        ))),
        "clear" => Event::Output(Output::ClearOutput(ClearOutput {
            wait: json.get("wait").and_then(Value::as_bool).unwrap_or(false),
        })),
        "panic" => Event::Panic(json),
        CELL_PANIC => Event::CellPanicked,
        CELL_ERROR => Event::CellErrored,
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
