//! The processes this one started with [`crate::Process`], for timelines: a bounded record of
//! when each started and ended, kept by the runtime as it forks and reaps them.

use super::{ProcessSpan, now};
use std::collections::VecDeque;
use std::sync::Mutex;

/// The most processes remembered (the oldest are forgotten first).
const KEPT: usize = 10_000;

static SPANS: Mutex<VecDeque<ProcessSpan>> = Mutex::new(VecDeque::new());

fn spans() -> std::sync::MutexGuard<'static, VecDeque<ProcessSpan>> {
    SPANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Process `pid` (`name`) was started now.
pub(crate) fn started(pid: u32, name: &str) {
    let span = ProcessSpan {
        name: name.to_string(),
        pid,
        start: now(),
        end: None,
        exitcode: None,
    };
    let mut spans = spans();
    if spans.len() == KEPT {
        spans.pop_front();
    }
    spans.push_back(span);
}

/// Process `pid` was reaped now, with `exitcode`.
pub(crate) fn ended(pid: u32, exitcode: i32) {
    let at = now();
    if let Some(span) = spans()
        .iter_mut()
        .rev()
        .find(|s| s.pid == pid && s.end.is_none())
    {
        span.end = Some(at);
        span.exitcode = Some(exitcode);
    }
}

/// The processes started since `since` (since [`super::origin`]), oldest first.
pub(crate) fn since(since: std::time::Duration) -> Vec<ProcessSpan> {
    spans()
        .iter()
        .filter(|s| s.start >= since)
        .cloned()
        .collect()
}
