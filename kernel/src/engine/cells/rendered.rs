//! rustc's rendered message as the cells' user sees it: its locations in the cells, and the line
//! numbers of its snippets from the crate renumbered as the cells' lines.

use super::source_map::{FILE, SourceMap};

impl SourceMap {
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
    use crate::engine::cells::{Cell, Label};

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
