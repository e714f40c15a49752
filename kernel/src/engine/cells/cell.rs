//! A cell's code split into its top-level statements and items, as evcxr splits it.

use ra_ap_syntax::{AstNode, Edition, SourceFile, ast};

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
pub(super) struct Segment {
    /// Its text without surrounding whitespace.
    pub(super) text: String,
    /// Its first line in the cell (1-based).
    pub(super) line: usize,
    /// The column of its first character in that line (0-based, in characters).
    pub(super) column: usize,
    /// An item (evcxr writes items above the function that runs the statements).
    pub(super) item: bool,
}

/// A cell's code, split as evcxr splits it.
#[derive(Debug)]
pub struct Cell {
    pub(super) label: Label,
    pub(super) segments: Vec<Segment>,
    pub(super) lines: Vec<String>,
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
