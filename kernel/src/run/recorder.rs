//! The cells' outputs recorded as Jupyter clients record them (nbclient): merged streams,
//! displays updated in place, `clear_output` at once or at the next output.

use crate::engine::Output;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Outputs of the cells as they arrive from the engine's sink.
pub(super) struct Recorder {
    outputs: Vec<Vec<Value>>,
    clear_on_next: Vec<bool>,
    /// display id → (cell, output index) of every output showing it.
    displays: HashMap<String, Vec<(usize, usize)>>,
}

impl Recorder {
    /// A recorder for a notebook of `cells` cells.
    pub(super) fn new(cells: usize) -> Recorder {
        Recorder {
            outputs: vec![Vec::new(); cells],
            clear_on_next: vec![false; cells],
            displays: HashMap::new(),
        }
    }

    fn clear(&mut self, cell: usize) {
        self.outputs[cell].clear();
        self.clear_on_next[cell] = false;
        for places in self.displays.values_mut() {
            places.retain(|(c, _)| *c != cell);
        }
    }

    /// Records an output of cell `cell` (0-based index in the notebook).
    pub(super) fn record(&mut self, cell: usize, output: Output) {
        if cell >= self.outputs.len() {
            return;
        }
        match output {
            Output::Clear { wait: true } => self.clear_on_next[cell] = true,
            Output::Clear { wait: false } => self.clear(cell),
            Output::Display {
                data,
                display_id,
                update: true,
            } => {
                let Some(id) = display_id else { return };
                for &(c, i) in self.displays.get(&id).into_iter().flatten() {
                    if let Some(o) = self.outputs[c].get_mut(i) {
                        o["data"] = data.clone();
                    }
                }
            }
            Output::Display {
                data,
                display_id,
                update: false,
            } => {
                if self.clear_on_next[cell] {
                    self.clear(cell);
                }
                if let Some(id) = display_id {
                    let place = (cell, self.outputs[cell].len());
                    self.displays.entry(id).or_default().push(place);
                }
                self.outputs[cell].push(json!({
                    "output_type": "display_data",
                    "data": data,
                    "metadata": {},
                }));
            }
            Output::Stream { name, text } => {
                if self.clear_on_next[cell] {
                    self.clear(cell);
                }
                if let Some(last) = self.outputs[cell].last_mut()
                    && last["output_type"] == "stream"
                    && last["name"] == name
                    && let Some(prev) = last["text"].as_str()
                {
                    last["text"] = Value::String(format!("{prev}{text}"));
                    return;
                }
                self.outputs[cell].push(json!({
                    "output_type": "stream",
                    "name": name,
                    "text": text,
                }));
            }
            Output::Panic(_)
            | Output::CellPanicked
            | Output::CellErrored
            | Output::CellErrorMessage(_)
            | Output::Fork(_)
            | Output::Sync(_) => {}
        }
    }

    /// The cell's outputs so far (the cell is done).
    pub(super) fn take(&mut self, cell: usize) -> Vec<Value> {
        self.outputs.get(cell).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(name: &'static str, text: &str) -> Output {
        Output::Stream {
            name,
            text: text.into(),
        }
    }

    #[test]
    fn streams_merge_and_displays_update_in_place() {
        let mut r = Recorder::new(2);
        r.record(0, stream("stdout", "a"));
        r.record(0, stream("stdout", "b\n"));
        r.record(0, stream("stderr", "e\n"));
        r.record(
            0,
            Output::Display {
                data: json!({"text/plain": "1"}),
                display_id: Some("d".into()),
                update: false,
            },
        );
        r.record(
            1,
            Output::Display {
                data: json!({"text/plain": "2"}),
                display_id: Some("d".into()),
                update: true,
            },
        );
        let out = r.take(0);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["text"], "ab\n");
        assert_eq!(out[1]["name"], "stderr");
        assert_eq!(out[2]["data"]["text/plain"], "2");
    }

    #[test]
    fn clear_output_waits_for_the_next_output() {
        let mut r = Recorder::new(1);
        r.record(0, stream("stdout", "old\n"));
        r.record(0, Output::Clear { wait: true });
        assert_eq!(r.take(0).len(), 1);
        r.record(0, stream("stdout", "new\n"));
        let out = r.take(0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["text"], "new\n");
    }
}
