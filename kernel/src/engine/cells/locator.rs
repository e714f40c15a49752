//! The cells the engine ran and the compiles evcxr made of them: which map a location needs.

use super::cell::Cell;
use super::source_map::SourceMap;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// How many earlier compiles are kept for the code they left running (a thread a cell started).
const KEPT_COMPILES: usize = 64;

/// The cells the engine ran and the sources evcxr compiled them into: maps a location in any
/// compile that may still run code to its cell.
#[derive(Debug)]
pub struct Locator {
    source: PathBuf,
    /// The cells that compiled, oldest first.
    cells: Vec<Cell>,
    current: Option<Cell>,
    /// The current cell's map and the source it was made from (evcxr may rewrite the source
    /// while the cell compiles, and output can ask for a map before that).
    current_map: Option<(String, Arc<SourceMap>)>,
    /// Earlier compiles by their number (evcxr's `run_user_code_N`): the source and how many
    /// cells it had.
    earlier: BTreeMap<u64, (Arc<str>, usize)>,
    earlier_maps: HashMap<u64, Arc<SourceMap>>,
}

impl Locator {
    /// A locator for the crate whose source evcxr writes to `source`.
    pub fn new(source: PathBuf) -> Locator {
        Locator {
            source,
            cells: Vec::new(),
            current: None,
            current_map: None,
            earlier: BTreeMap::new(),
            earlier_maps: HashMap::new(),
        }
    }

    /// A cell starts.
    pub fn start(&mut self, cell: Cell) {
        self.current = Some(cell);
        self.current_map = None;
    }

    /// The cell ended; `compiled` if its code became part of the crate.
    pub fn finish(&mut self, compiled: bool) {
        let cell = self.current.take();
        self.current_map = None;
        let (Some(cell), true) = (cell, compiled) else {
            return;
        };
        self.cells.push(cell);
        if let Ok(text) = std::fs::read_to_string(&self.source)
            && let Some(n) = compile_number(&text)
        {
            self.earlier_maps.remove(&n);
            self.earlier.insert(n, (text.into(), self.cells.len()));
            while self.earlier.len() > KEPT_COMPILES {
                if let Some((old, _)) = self.earlier.pop_first() {
                    self.earlier_maps.remove(&old);
                }
            }
        }
    }

    /// The map of the compile the current cell runs (or last ran).
    pub fn current_map(&mut self) -> Arc<SourceMap> {
        let text = std::fs::read_to_string(&self.source).unwrap_or_default();
        if let Some((made_from, map)) = &self.current_map
            && *made_from == text
        {
            return map.clone();
        }
        let cells: Vec<&Cell> = self.cells.iter().chain(self.current.as_ref()).collect();
        let map = Arc::new(SourceMap::new(&text, &cells));
        self.current_map = Some((text, map.clone()));
        map
    }

    /// `text` with its locations shown as the cells'.
    pub fn locations(&mut self, text: &str) -> String {
        self.locations_with(text, text)
    }

    /// `text` with its locations shown as the cells', in the compile that `context` (a
    /// backtrace) names, if it names an earlier one that is kept; else in the current one.
    pub fn locations_with(&mut self, text: &str, context: &str) -> String {
        // The current compile is not among the earlier ones until its cell ends.
        let earlier = compile_number(context).and_then(|n| self.earlier_map(n));
        match earlier {
            Some(map) => map.locations(text),
            None => self.current_map().locations(text),
        }
    }

    fn earlier_map(&mut self, n: u64) -> Option<Arc<SourceMap>> {
        if let Some(map) = self.earlier_maps.get(&n) {
            return Some(map.clone());
        }
        let (text, count) = self.earlier.get(&n)?;
        let cells: Vec<&Cell> = self.cells.iter().take(*count).collect();
        let map = Arc::new(SourceMap::new(text, &cells));
        self.earlier_maps.insert(n, map.clone());
        Some(map)
    }
}

/// The number N of the first `run_user_code_N` in `text` (evcxr's name for a compile's entry
/// point, in its source and in backtraces).
fn compile_number(text: &str) -> Option<u64> {
    const NAME: &str = "run_user_code_";
    let at = text.find(NAME)? + NAME.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}
