//! The history the shell keeps of the cells it ran, and the `history_reply` (tail, range and
//! search access).

use super::fields::{bool_field, str_field, u64_field};
use serde_json::{Value, json};

/// One cell in the history.
pub(super) struct HistoryEntry {
    pub(super) line: u64,
    pub(super) input: String,
    /// The text/plain of the cell's result, if it had one.
    pub(super) output: Option<String>,
}

/// The `history_reply` content for a `history_request`'s `content`.
pub(super) fn reply(history: &[HistoryEntry], content: &Value) -> Value {
    let op = str_field(content, "hist_access_type", "tail");
    let with_output = bool_field(content, "output", false);
    let entry = |h: &HistoryEntry| {
        if with_output {
            json!([1, h.line, [h.input, h.output]])
        } else {
            json!([1, h.line, h.input])
        }
    };
    let items: Vec<Value> = match op {
        "tail" => {
            let n = u64_field(content, "n", 10) as usize;
            let skip = history.len().saturating_sub(n);
            history[skip..].iter().map(entry).collect()
        }
        "range" => {
            let start = u64_field(content, "start", 0);
            let stop = u64_field(content, "stop", u64::MAX);
            history
                .iter()
                .filter(|h| h.line >= start && h.line < stop)
                .map(entry)
                .collect()
        }
        "search" => {
            let pattern = str_field(content, "pattern", "*");
            let unique = bool_field(content, "unique", false);
            let mut seen = std::collections::HashSet::new();
            let mut v: Vec<Value> = history
                .iter()
                .filter(|h| glob(pattern, &h.input))
                .filter(|h| !unique || seen.insert(h.input.clone()))
                .map(entry)
                .collect();
            if let Some(n) = content.get("n").and_then(Value::as_u64) {
                let skip = v.len().saturating_sub(n as usize);
                v.drain(..skip);
            }
            v
        }
        _ => Vec::new(),
    };
    json!({"status": "ok", "history": items})
}

/// Shell-style `*` and `?` matching (history search).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}
