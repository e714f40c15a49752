//! The map from the lines of one compile of the cells' crate to the cells, and the locations in
//! a text rewritten through it.

use super::cell::{Cell, Label};
use std::collections::HashMap;
use std::fmt;

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
pub(super) struct LineOrigin {
    label: Label,
    line: usize,
    /// Characters before the crate line's first character in the cell's line (a segment's first
    /// line starts at column 1 in the crate, wherever it starts in the cell).
    pub(super) shift: usize,
}

/// The map from the lines of one compile of the cells' crate to the cells.
#[derive(Debug, Default)]
pub struct SourceMap {
    pub(super) lines: HashMap<usize, LineOrigin>,
    /// The whole cell line of a crate line that starts inside it (a second statement on a line).
    pub(super) whole: HashMap<usize, String>,
}

/// How rustc and panics name the cells' crate's source.
pub const FILE: &str = "src/lib.rs";

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

    /// The cell line of line `line` of the crate, if it is a cell's.
    pub(super) fn line(&self, line: usize) -> Option<usize> {
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
    fn locations_in_text_are_rewritten_and_others_kept() {
        let (one, four) = cells();
        let map = SourceMap::new(SOURCE, &[&one, &four]);
        assert_eq!(
            map.locations("thread 'main' panicked at src/lib.rs:3:17:\nthree; src/lib.rs:12:1 and src/lib.rs:x"),
            "thread 'main' panicked at cell [1], line 3, column 17:\nthree; src/lib.rs:12:1 and src/lib.rs:x"
        );
    }

    #[test]
    fn the_newest_cell_wins_an_identical_text() {
        let old = Cell::new(Label::Count(2), "let z = 1;");
        let (_, four) = cells();
        let map = SourceMap::new(SOURCE, &[&old, &four]);
        assert_eq!(map.place(10, 5).map(|p| p.label), Some(Label::Count(4)));
    }
}
