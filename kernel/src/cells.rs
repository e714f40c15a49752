//! Where a location in the cells' generated crate (`src/lib.rs:98:12`) is in the notebook.
//!
//! evcxr compiles every cell into one crate: the items of all cells so far at the top (a
//! redefined item only once, its newest text), then a function that runs the current cell's
//! statements, with evcxr's own code between them. Each top-level statement or item of a cell is
//! written there verbatim, starting on a line of its own. So a cell's statements and items are
//! found in that source by their text, and each line of one maps to a line of its cell: the
//! current cell's first (it wins over an identical earlier text), then earlier cells, newest
//! first (an item defined in cell 2 and called in cell 5 maps to cell 2). evcxr's own code
//! maps to nothing and keeps its place in the crate.
//!
//! Every location a user sees goes through [`SourceMap::locations`] (panics, a child's or a
//! worker's panic report, a pool's task error) or [`SourceMap::rendered`] (rustc's message,
//! whose snippets are renumbered too), as `cell [3], line 2, column 9`.

use ra_ap_syntax::{AstNode, Edition, SourceFile, ast};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// How a cell is named in a location: by its execution count, or (a silent cell) as "the cell".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// `cell [3]`.
    Count(u64),
    /// A cell run without a count (`silent`, `store_history: false`).
    Uncounted,
}

/// One top-level statement or item of a cell, as evcxr splits it.
#[derive(Debug)]
struct Segment {
    /// Its text without surrounding whitespace.
    text: String,
    /// Its first line in the cell (1-based).
    line: usize,
    /// The column of its first character in that line (0-based, in characters).
    column: usize,
    /// An item (evcxr writes items above the function that runs the statements).
    item: bool,
}

/// A cell's code, split as evcxr splits it.
#[derive(Debug)]
pub struct Cell {
    label: Label,
    segments: Vec<Segment>,
    lines: Vec<String>,
}

impl Cell {
    /// Splits `code` into its top-level statements and items.
    pub fn new(label: Label, code: &str) -> Cell {
        const PRELUDE: &str = "fn f(){";
        // evcxr takes the `:command` and `!shell` lines at the top off before it splits: blank
        // them (same lengths, so every offset stays).
        let mut rust = String::with_capacity(code.len());
        let mut top = true;
        for line in code.split_inclusive('\n') {
            let t = line.trim_start();
            top &= t.is_empty() || t.starts_with(':') || t.starts_with('!') || t.starts_with("//");
            if top && (t.starts_with(':') || t.starts_with('!')) {
                rust.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
            } else {
                rust.push_str(line);
            }
        }
        let code = rust.as_str();
        let parsed = SourceFile::parse(&format!("{PRELUDE}{code}\n}}"), Edition::Edition2024);
        let mut segments = Vec::new();
        let body = parsed
            .tree()
            .syntax()
            .children()
            .find_map(ast::Fn::cast)
            .and_then(|f| f.body())
            .and_then(|b| b.stmt_list());
        if let Some(list) = body {
            for node in list.syntax().children() {
                let range = node.text_range();
                let start = usize::from(range.start()).saturating_sub(PRELUDE.len());
                let end = usize::from(range.end())
                    .saturating_sub(PRELUDE.len())
                    .min(code.len());
                let Some(mut text) = code.get(start..end) else {
                    continue;
                };
                let mut start = start;
                // rust-analyzer gives an item the comments above it; evcxr writes it without.
                while text.trim_start().starts_with("//") {
                    let Some(next) = text.find('\n') else { break };
                    start += next + 1;
                    text = &text[next + 1..];
                }
                let lead = text.len() - text.trim_start().len();
                start += lead;
                let text = text.trim();
                let before = &code[..start];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
                if !text.is_empty() {
                    segments.push(Segment {
                        text: text.to_string(),
                        line,
                        column,
                        item: ast::Item::can_cast(node.kind()),
                    });
                }
            }
        }
        let lines = code.lines().map(String::from).collect();
        Cell {
            label,
            segments,
            lines,
        }
    }
}

/// A place in a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The cell.
    pub label: Label,
    /// 1-based line in the cell.
    pub line: usize,
    /// 1-based column in that line.
    pub column: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.label {
            Label::Count(n) => write!(f, "cell [{n}]")?,
            Label::Uncounted => write!(f, "the cell")?,
        }
        write!(f, ", line {}, column {}", self.line, self.column)
    }
}

/// A line of the crate that is a line of a cell.
#[derive(Clone, Copy, Debug)]
struct LineOrigin {
    label: Label,
    line: usize,
    /// Characters before the crate line's first character in the cell's line (a segment's first
    /// line starts at column 1 in the crate, wherever it starts in the cell).
    shift: usize,
}

/// The map from the lines of one compile of the cells' crate to the cells.
#[derive(Debug, Default)]
pub struct SourceMap {
    lines: HashMap<usize, LineOrigin>,
    /// The whole cell line of a crate line that starts inside it (a second statement on a line).
    whole: HashMap<usize, String>,
}

/// How rustc and panics name the cells' crate's source.
pub const FILE: &str = "src/lib.rs";

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

impl SourceMap {
    /// Maps `source` (the crate's `src/lib.rs`) to `cells` (newest last: the current cell).
    pub fn new(source: &str, cells: &[&Cell]) -> SourceMap {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let line_of = |byte: usize| starts.partition_point(|&s| s <= byte);
        let mut lines = HashMap::new();
        let mut whole = HashMap::new();
        let mut claimed = vec![false; starts.len() + 1];
        // Items are above the function that runs the current cell's statements, which are in it.
        let run = source.find("fn run_user_code_").unwrap_or(source.len());
        for (age, cell) in cells.iter().rev().enumerate() {
            for segment in &cell.segments {
                let range = match (segment.item, age) {
                    (true, _) => 0..run,
                    (false, 0) => run..source.len(),
                    // An earlier cell's statements ran in its own compile, not in this one.
                    (false, _) => continue,
                };
                let Some((first, crate_column)) =
                    find_unclaimed(source, range, &segment.text, &starts, &claimed, line_of)
                else {
                    continue;
                };
                let count = segment.text.matches('\n').count() + 1;
                if segment.column > crate_column
                    && let Some(text) = cell.lines.get(segment.line - 1)
                {
                    whole.insert(first, text.clone());
                }
                for k in 0..count {
                    claimed[first + k] = true;
                    lines.insert(
                        first + k,
                        LineOrigin {
                            label: cell.label,
                            line: segment.line + k,
                            shift: if k == 0 {
                                segment.column.saturating_sub(crate_column)
                            } else {
                                0
                            },
                        },
                    );
                }
            }
        }
        SourceMap { lines, whole }
    }

    /// Where line `line`, column `column` of the crate is in the cells, if it is a cell's.
    pub fn place(&self, line: usize, column: usize) -> Option<Place> {
        let origin = self.lines.get(&line)?;
        Some(Place {
            label: origin.label,
            line: origin.line,
            column: column + origin.shift,
        })
    }

    fn line(&self, line: usize) -> Option<usize> {
        self.lines.get(&line).map(|o| o.line)
    }

    /// `text` with every `src/lib.rs:LINE:COLUMN` that is in a cell written as that cell's place.
    pub fn locations(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(FILE) {
            out.push_str(&rest[..at]);
            let after = &rest[at + FILE.len()..];
            // Not another crate's `…/src/lib.rs` (`./src/lib.rs` is a backtrace's spelling).
            let before = rest[..at].strip_suffix("./").unwrap_or(&rest[..at]);
            let own = before
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || "/._-".contains(c)));
            if !own {
                out.push_str(FILE);
                rest = after;
                continue;
            }
            match parse_line_column(after).and_then(|(l, c, used)| Some((self.place(l, c)?, used)))
            {
                Some((place, used)) => {
                    out.push_str(&place.to_string());
                    rest = &after[used..];
                }
                None => {
                    out.push_str(FILE);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// rustc's rendered message with its locations in the cells and the line numbers of its
    /// snippets from the crate renumbered as the cell's lines (blank for evcxr's own lines).
    pub fn rendered(&self, rendered: &str) -> String {
        let mut out = Vec::new();
        // Whether the snippet lines being read are from the crate (rustc says so in a header;
        // a new message or a suggestion is about the crate unless it says otherwise).
        let mut in_crate = true;
        // How far the markers under the last snippet line move: that line is shown whole, as
        // in the cell, and it started further right there.
        let mut shift = 0;
        for line in rendered.lines() {
            let trimmed = line.trim_start();
            if let Some(path) = trimmed
                .strip_prefix("--> ")
                .or_else(|| trimmed.strip_prefix("::: "))
            {
                in_crate = path.starts_with(FILE);
                out.push(self.locations(line));
                continue;
            }
            if let Some((width, number, tail)) = gutter_number(line) {
                shift = 0;
                if in_crate {
                    let shown = self.line(number).map_or(String::new(), |n| n.to_string());
                    match (self.whole.get(&number), tail.get(..3), tail.get(3..)) {
                        // The cell's line starts before the statement: what precedes it there
                        // is put back before rustc's code (or its suggestion).
                        (Some(whole), Some(mark), Some(code)) => {
                            shift = self.lines.get(&number).map_or(0, |o| o.shift);
                            let prefix: String = whole.chars().take(shift).collect();
                            out.push(format!("{shown:>width$}{mark}{prefix}{code}"));
                        }
                        _ => out.push(format!("{shown:>width$}{tail}")),
                    }
                } else {
                    out.push(line.to_string());
                }
                continue;
            }
            if let Some(bar) = line.find('|')
                && line[..bar].trim().is_empty()
            {
                if shift > 0 && line.len() > bar + 1 {
                    let (gutter, marks) = line.split_at(bar + 1);
                    out.push(format!("{gutter}{}{marks}", " ".repeat(shift)));
                } else {
                    out.push(line.to_string());
                }
                continue;
            }
            shift = 0;
            if !line.starts_with(' ') && !line.is_empty() {
                in_crate = true;
            }
            out.push(self.locations(line));
        }
        out.join("\n")
    }
}

/// rustc's rendered message coloured as rustc colours it on a terminal (Jupyter's frontends
/// show ANSI colour in an error's traceback): the level, the locations and the snippets' gutter,
/// the markers under the code and their labels.
pub fn colour(rendered: &str) -> String {
    const BOLD: &str = "\x1b[1m";
    const BLUE: &str = "\x1b[1m\x1b[94m";
    const RESET: &str = "\x1b[0m";
    let level_colour = |line: &str| {
        [
            ("error", "\x1b[1m\x1b[91m"),
            ("warning", "\x1b[1m\x1b[93m"),
            ("note", "\x1b[1m\x1b[92m"),
            ("help", "\x1b[1m\x1b[96m"),
        ]
        .into_iter()
        .find(|(name, _)| line.starts_with(name))
        .map(|(_, c)| c)
    };
    let mut level = "\x1b[1m\x1b[91m";
    let mut out = Vec::new();
    for line in rendered.lines() {
        if let Some(c) = level_colour(line)
            && let Some(colon) = line.find(": ")
        {
            if line.starts_with("error") || line.starts_with("warning") {
                level = c;
            }
            out.push(format!(
                "{c}{}{RESET}{BOLD}{}{RESET}",
                &line[..colon],
                &line[colon..]
            ));
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("--> ") || trimmed.starts_with("::: ") {
            let indent = line.len() - trimmed.len();
            out.push(format!(
                "{}{BLUE}{}{RESET}{}",
                &line[..indent],
                &trimmed[..3],
                &trimmed[3..]
            ));
            continue;
        }
        if let Some(bar) = line.find('|')
            && line[..bar].trim().bytes().all(|b| b.is_ascii_digit())
        {
            let (gutter, code) = line.split_at(bar + 1);
            let marks = code.trim_start();
            let body = if marks.starts_with('^') {
                format!("{level}{code}{RESET}")
            } else if marks.starts_with('-') || marks.starts_with('|') {
                format!("{BLUE}{code}{RESET}")
            } else {
                code.to_string()
            };
            out.push(format!("{BLUE}{gutter}{RESET}{body}"));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("= ") {
            let indent = line.len() - trimmed.len();
            out.push(format!(
                "{}{BLUE}={RESET} {BOLD}{rest}{RESET}",
                &line[..indent]
            ));
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n")
}

/// The first occurrence of `text` within `range` of `source` that starts a line (but for
/// indentation), ends one (but for a comment) and whose lines no other segment has: its line
/// number (1-based) and the column (in characters) where it starts.
fn find_unclaimed(
    source: &str,
    range: std::ops::Range<usize>,
    text: &str,
    starts: &[usize],
    claimed: &[bool],
    line_of: impl Fn(usize) -> usize,
) -> Option<(usize, usize)> {
    let count = text.matches('\n').count() + 1;
    let base = range.start;
    source.get(range)?.match_indices(text).find_map(|(at, _)| {
        let at = base + at;
        let line = line_of(at);
        let indent = starts.get(line - 1).and_then(|&s| source.get(s..at))?;
        let end = at + text.len();
        let rest = source[end..].split('\n').next().unwrap_or("").trim_start();
        let ends_line = rest.is_empty() || rest.starts_with("//") || rest.starts_with("/*");
        let free = (line..line + count).all(|l| !claimed.get(l).copied().unwrap_or(true));
        (indent.trim().is_empty() && ends_line && free).then(|| (line, indent.chars().count()))
    })
}

/// `:LINE:COLUMN` at the start of `s`: (line, column, bytes used).
fn parse_line_column(s: &str) -> Option<(usize, usize, usize)> {
    let s1 = s.strip_prefix(':')?;
    let n1 = s1.bytes().take_while(u8::is_ascii_digit).count();
    let line = s1[..n1].parse().ok()?;
    let s2 = s1[n1..].strip_prefix(':')?;
    let n2 = s2.bytes().take_while(u8::is_ascii_digit).count();
    let column = s2[..n2].parse().ok()?;
    Some((line, column, 2 + n1 + n2))
}

/// A snippet line of rustc's (`106 | code`): (gutter width, number, the rest from the space
/// before `|`).
fn gutter_number(line: &str) -> Option<(usize, usize, &str)> {
    let digits_start = line.len() - line.trim_start().len();
    let digits = line[digits_start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return None;
    }
    let end = digits_start + digits;
    let tail = &line[end..];
    // ` |` a line of code; ` -`, ` +`, ` ~` a line of a suggestion's diff.
    if ![" |", " -", " +", " ~"].iter().any(|m| tail.starts_with(m)) {
        return None;
    }
    Some((end, line[digits_start..end].parse().ok()?, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate evcxr writes for a cell 4 after a cell 1 that defined `helper` (abridged).
    const SOURCE: &str = "\
#![allow(unused_imports, unused_mut, dead_code)]
fn helper(x: u32) -> u32 {
    if x == 3 { panic!(\"three\"); }
    x * 2
}
use multiprocessing::*;
pub extern \"C\" fn run_user_code_4() {
match std::panic::catch_unwind(
  std::panic::AssertUnwindSafe(||{
  let z = 1; 
let y = helper(3);
(
y
).evcxr_display();
}))
}";

    fn cells() -> (Cell, Cell) {
        (
            Cell::new(
                Label::Count(1),
                "use multiprocessing::*;\nfn helper(x: u32) -> u32 {\n    if x == 3 { panic!(\"three\"); }\n    x * 2\n}",
            ),
            Cell::new(Label::Count(4), "  let z = 1; let y = helper(3);\ny"),
        )
    }

    #[test]
    fn statements_and_items_map_to_their_cells() {
        let (one, four) = cells();
        let map = SourceMap::new(SOURCE, &[&one, &four]);
        let at = |line, column| map.place(line, column).map(|p| p.to_string());
        assert_eq!(at(3, 17).as_deref(), Some("cell [1], line 3, column 17"));
        // Two statements on one line of the cell (evcxr keeps the first one's indentation):
        // the second's columns are shifted.
        assert_eq!(at(10, 5).as_deref(), Some("cell [4], line 1, column 5"));
        assert_eq!(at(11, 9).as_deref(), Some("cell [4], line 1, column 22"));
        assert_eq!(at(13, 1).as_deref(), Some("cell [4], line 2, column 1"));
        // evcxr's own lines are nobody's.
        assert_eq!(at(12, 1), None);
        assert_eq!(at(7, 1), None);
    }

    #[test]
    fn comments_and_commands_are_where_evcxr_puts_them() {
        // What evcxr wrote for these two cells (comments above an item dropped, a trailing one
        // kept, the `:dep` line gone).
        let one = Cell::new(
            Label::Count(1),
            ":dep base64 = \"0.10\"\n// helper\nfn helper(x: u32) -> u32 { // doubles\n    x * 2\n}",
        );
        let two = Cell::new(Label::Count(2), "let y = helper(1); // two\ny");
        let source = "#![allow(unused)]\nfn helper(x: u32) -> u32 { // doubles\n    x * 2\n}\nfn run_user_code_2() {\nlet y = helper(1); // two\n(\ny\n).evcxr_display();\n}\n";
        let map = SourceMap::new(source, &[&one, &two]);
        let at = |line, column| map.place(line, column).map(|p| p.to_string());
        assert_eq!(at(3, 5).as_deref(), Some("cell [1], line 4, column 5"));
        assert_eq!(at(6, 9).as_deref(), Some("cell [2], line 1, column 9"));
        assert_eq!(at(8, 1).as_deref(), Some("cell [2], line 2, column 1"));
    }

    #[test]
    fn an_earlier_cells_statement_claims_nothing() {
        // `v` was cell 1's last expression; in this compile an item's body has a line `v`.
        let one = Cell::new(Label::Count(1), "let v = 1;\nv");
        let two = Cell::new(Label::Count(2), "fn f(v: u8) -> u8 {\n    v\n}");
        let source = "fn f(v: u8) -> u8 {\n    v\n}\nfn run_user_code_3() {\n}\n";
        let map = SourceMap::new(source, &[&one, &two]);
        assert_eq!(map.place(2, 5).map(|p| p.label), Some(Label::Count(2)));
    }

    #[test]
    fn another_crates_lib_rs_is_left_alone() {
        let (one, four) = cells();
        let map = SourceMap::new(SOURCE, &[&one, &four]);
        let text = "::: /cache/rustmp_display/src/lib.rs:3:17 and at ./src/lib.rs:3:17";
        assert_eq!(
            map.locations(text),
            "::: /cache/rustmp_display/src/lib.rs:3:17 and at ./cell [1], line 3, column 17"
        );
    }

    #[test]
    fn a_suggestions_diff_lines_are_renumbered_and_keep_their_code() {
        let cell = Cell::new(Label::Count(5), "let q = 1; let w: String = \"x\";");
        let source = "fn run_user_code_5() {\nlet q = 1; \nlet w: String = \"x\";\n}\n";
        let map = SourceMap::new(source, &[&cell]);
        let rendered = "help: try\n  |\n3 - let w: String = \"x\";\n3 + let w: String = \"x\".to_string();\n  |                    ++++++++++++\n";
        let shown = map.rendered(rendered);
        assert!(
            shown.contains("\n1 - let q = 1; let w: String = \"x\";\n"),
            "{shown}"
        );
        assert!(
            shown.contains("\n1 + let q = 1; let w: String = \"x\".to_string();\n"),
            "{shown}"
        );
        assert!(!shown.contains("3 -"), "{shown}");
    }

    #[test]
    fn the_newest_cell_wins_an_identical_text() {
        let old = Cell::new(Label::Count(2), "let z = 1;");
        let (_, four) = cells();
        let map = SourceMap::new(SOURCE, &[&old, &four]);
        assert_eq!(map.place(10, 5).map(|p| p.label), Some(Label::Count(4)));
    }

    #[test]
    fn locations_in_text_are_rewritten_and_others_kept() {
        let (one, four) = cells();
        let map = SourceMap::new(SOURCE, &[&one, &four]);
        assert_eq!(
            map.locations("thread 'main' panicked at src/lib.rs:3:17:\nthree; src/lib.rs:12:1 and src/lib.rs:x"),
            "thread 'main' panicked at cell [1], line 3, column 17:\nthree; src/lib.rs:12:1 and src/lib.rs:x"
        );
    }

    #[test]
    fn a_second_statement_on_a_line_is_shown_whole_with_its_markers_moved() {
        let cell = Cell::new(Label::Count(5), "let q = 1; let w: u32 = \"x\";");
        let source = "fn run_user_code_5() {\nlet q = 1;\nlet w: u32 = \"x\";\n";
        let map = SourceMap::new(source, &[&cell]);
        let rendered = "error[E0308]: mismatched types\n --> src/lib.rs:3:14\n  |\n3 | let w: u32 = \"x\";\n  |        ---   ^^^ expected `u32`, found `&str`\n";
        let shown = map.rendered(rendered);
        assert!(shown.contains("--> cell [5], line 1, column 25"), "{shown}");
        assert!(
            shown.contains("\n1 | let q = 1; let w: u32 = \"x\";\n"),
            "{shown}"
        );
        assert!(
            shown.contains("\n  |                   ---   ^^^ expected"),
            "{shown}"
        );
    }

    #[test]
    fn rustc_snippets_are_renumbered() {
        let cell = Cell::new(
            Label::Count(3),
            "let mut s = String::new();\ns.push_str(format!(\"foo {}\", 42));",
        );
        let mut source = "fn a() {}\n".repeat(103);
        source.push_str("fn run_user_code_3() {\n");
        source.push_str("let mut s = String::new();\ns.push_str(format!(\"foo {}\", 42));\n");
        let map = SourceMap::new(&source, &[&cell]);
        let rendered = "error[E0308]: mismatched types\n   --> src/lib.rs:106:12\n    |\n106 | s.push_str(format!(\"foo {}\", 42));\n    |            ^^^^ expected `&str`, found `String`\n    |\nnote: method defined here\n   --> /rustlib/src/rust/library/alloc/src/string.rs:1102:12\n    |\n1102 |     pub fn push_str(&mut self, string: &str) {\n";
        let shown = map.rendered(rendered);
        assert!(shown.contains("--> cell [3], line 2, column 12"), "{shown}");
        assert!(shown.contains("\n  2 | s.push_str("), "{shown}");
        // A snippet of another file keeps its numbers.
        assert!(shown.contains("1102 |     pub fn push_str"), "{shown}");
        assert!(
            shown.contains("^^^^ expected `&str`, found `String`"),
            "{shown}"
        );
    }
}
