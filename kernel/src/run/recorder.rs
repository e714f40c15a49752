//! The cells' outputs recorded as Jupyter clients record them (nbclient): merged streams,
//! displays updated in place, `clear_output` at once or at the next output.

use crate::engine::output::{ClearOutput, DisplayData, Output, Stream};
use serde_json::Value;
use std::collections::HashMap;

/// Outputs of the cells as they arrive from the engine's sink.
pub(super) struct Recorder {
    /// Each cell's stored outputs: streams, displays, results, errors.
    outputs: Vec<Vec<Output>>,
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
            Output::ClearOutput(ClearOutput { wait: true }) => self.clear_on_next[cell] = true,
            Output::ClearOutput(ClearOutput { wait: false }) => self.clear(cell),
            Output::UpdateDisplayData(update) => {
                let Some(id) = update.transient.display_id else {
                    return;
                };
                for &(c, i) in self.displays.get(&id).into_iter().flatten() {
                    if let Some(Output::DisplayData(shown)) = self.outputs[c].get_mut(i) {
                        shown.data = update.data.clone();
                    }
                }
            }
            Output::Stream(Stream { name, text }) => {
                if self.clear_on_next[cell] {
                    self.clear(cell);
                }
                if let Some(Output::Stream(last)) = self.outputs[cell].last_mut()
                    && last.name == name
                {
                    last.text.push_str(&text);
                    return;
                }
                self.outputs[cell].push(Output::Stream(Stream { name, text }));
            }
            stored @ (Output::DisplayData(_) | Output::ExecuteResult(_) | Output::Error(_)) => {
                if self.clear_on_next[cell] {
                    self.clear(cell);
                }
                if let Output::DisplayData(DisplayData { transient, .. }) = &stored
                    && let Some(id) = &transient.display_id
                {
                    let place = (cell, self.outputs[cell].len());
                    self.displays.entry(id.clone()).or_default().push(place);
                }
                self.outputs[cell].push(stored);
            }
        }
    }

    /// The cell's outputs so far (the cell is done), as nbformat stores them.
    pub(super) fn take(&mut self, cell: usize) -> Vec<Value> {
        self.outputs
            .get(cell)
            .into_iter()
            .flatten()
            .filter_map(Output::nbformat)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::output::StreamName;
    use serde_json::json;

    fn stream(name: &'static str, text: &str) -> Output {
        let name = if name == "stderr" {
            StreamName::Stderr
        } else {
            StreamName::Stdout
        };
        Output::stream(name, text)
    }

    fn display(text: &str, id: &str, update: bool) -> Output {
        let data = json!({"text/plain": text})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let display = DisplayData::new(data, Some(id.into()));
        if update {
            Output::UpdateDisplayData(display)
        } else {
            Output::DisplayData(display)
        }
    }

    #[test]
    fn streams_merge_and_displays_update_in_place() {
        let mut r = Recorder::new(2);
        r.record(0, stream("stdout", "a"));
        r.record(0, stream("stdout", "b\n"));
        r.record(0, stream("stderr", "e\n"));
        r.record(0, display("1", "d", false));
        r.record(1, display("2", "d", true));
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
        r.record(0, Output::ClearOutput(ClearOutput { wait: true }));
        assert_eq!(r.take(0).len(), 1);
        r.record(0, stream("stdout", "new\n"));
        let out = r.take(0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["text"], "new\n");
    }
}
