//! The history the shell keeps of the cells it ran, and the `history_reply` (tail, range and
//! search access).

use super::content::{HistAccess, HistoryItem, HistoryReply, HistoryRequest, HistoryText};

/// One cell in the history.
pub(super) struct HistoryEntry {
    pub(super) line: u64,
    pub(super) input: String,
    /// The text/plain of the cell's result, if it had one.
    pub(super) output: Option<String>,
}

/// The `history_reply` to `request`.
pub(super) fn reply(history: &[HistoryEntry], request: &HistoryRequest) -> HistoryReply {
    let entry = |h: &HistoryEntry| {
        let text = if request.output {
            HistoryText::InputOutput(h.input.clone(), h.output.clone())
        } else {
            HistoryText::Input(h.input.clone())
        };
        HistoryItem(1, h.line, text)
    };
    let last = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let items: Vec<HistoryItem> = match request.hist_access_type {
        HistAccess::Tail => {
            let skip = history.len().saturating_sub(last(request.n.unwrap_or(10)));
            history[skip..].iter().map(entry).collect()
        }
        HistAccess::Range => {
            let stop = request.stop.unwrap_or(u64::MAX);
            history
                .iter()
                .filter(|h| h.line >= request.start && h.line < stop)
                .map(entry)
                .collect()
        }
        HistAccess::Search => {
            let mut seen = std::collections::HashSet::new();
            let mut v: Vec<HistoryItem> = history
                .iter()
                .filter(|h| glob(&request.pattern, &h.input))
                .filter(|h| !request.unique || seen.insert(h.input.clone()))
                .map(entry)
                .collect();
            if let Some(n) = request.n {
                let skip = v.len().saturating_sub(last(n));
                v.drain(..skip);
            }
            v
        }
        HistAccess::Other => Vec::new(),
    };
    HistoryReply::new(items)
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
