//! `execute_request`: counts the cell, keeps its history, runs it on the engine (or pages the
//! documentation a `?path` asks for), publishes its input and outcome, and replies.

use super::super::content::{
    self, BadContent, Documentation, ExecuteInput, ExecuteReply, ExecuteRequest, Payload,
};
use super::super::history::HistoryEntry;
use super::super::iopub::publish_output;
use super::super::stdin::request_input;
use super::super::wire::Message;
use super::{After, Executor};
use crate::engine::output::{ErrorContent, Output, StreamName};
use crate::engine::{self, Outcome};
use serde_json::Value;
use std::sync::atomic::Ordering;

/// The path of a `?path` help request (letters, digits, `_` and `::`), if the cell is one.
fn help_subject(code: &str) -> Option<&str> {
    let subject = code.trim().strip_prefix('?')?.trim();
    let path = !subject.is_empty()
        && subject
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':');
    path.then_some(subject)
}

impl Executor {
    /// `execute_request`; queued cells are aborted if it fails with `stop_on_error`.
    pub(super) fn execute(&mut self, m: &Message) -> Result<After, BadContent> {
        let request: ExecuteRequest = content::decode(&m.header.msg_type, &m.content)?;
        let ExecuteRequest {
            code,
            silent,
            store_history,
            allow_stdin,
            stop_on_error,
        } = request;
        let store_history = !silent && store_history;
        let parent = m.header_value();
        if store_history {
            self.execution_count += 1;
            self.history.push(HistoryEntry {
                line: self.execution_count,
                input: code.clone(),
                output: None,
            });
        }
        let count = self.execution_count;
        if !silent {
            let input = ExecuteInput {
                code: code.clone(),
                execution_count: count,
            };
            self.shared.publish_content(&parent, &input);
        }
        if let Some(subject) = help_subject(&code) {
            self.page_help(m, subject, count, silent);
            return Ok(After::Next);
        }
        let outcome = if code.trim().is_empty() {
            Outcome::Ok { result: None }
        } else {
            let shared = self.shared.clone();
            let identities = m.identities.clone();
            let request = m.clone();
            let input = move |prompt: &str, password: bool| -> String {
                if !allow_stdin {
                    return String::new();
                }
                request_input(&shared, &request, &identities, prompt, password)
            };
            let target = if silent { Value::Null } else { parent.clone() };
            self.cell_seq += 1;
            self.shared.running.store(self.cell_seq, Ordering::SeqCst);
            let outcome = match self.engine() {
                Ok(engine) => {
                    let label = if store_history {
                        engine::Label::Count(count)
                    } else {
                        engine::Label::Uncounted
                    };
                    engine.execute(&code, label, target, &input)
                }
                Err(e) => Outcome::Error(ErrorContent::new(
                    "KernelError",
                    format!("the Rust engine could not start: {e}"),
                    vec![format!("the Rust engine could not start: {e}")],
                )),
            };
            self.shared.running.store(0, Ordering::SeqCst);
            outcome
        };
        if !silent && let Some(output) = outcome.output(count) {
            publish_output(&self.shared, output, &parent);
        }
        let (reply, after) = match outcome {
            Outcome::Ok { result } => {
                if store_history && let Some(last) = self.history.last_mut() {
                    last.output = result
                        .as_ref()
                        .and_then(|d| d.get("text/plain"))
                        .and_then(Value::as_str)
                        .map(String::from);
                }
                (ExecuteReply::ok(count, Vec::new()), After::Next)
            }
            Outcome::Error(error) => {
                let after = if stop_on_error {
                    After::AbortQueued
                } else {
                    After::Next
                };
                let reply = ExecuteReply::Error {
                    execution_count: count,
                    error,
                };
                (reply, after)
            }
        };
        let _ = self.shared.shell_out.send(self.shared.reply(m, &reply));
        Ok(after)
    }

    /// `?path` (IPython's help syntax, spelled before the path: `x?` is Rust's `?` operator):
    /// the documentation of `path` in the frontend's pager (an execute reply's `page` payload),
    /// or a line saying there is none.
    fn page_help(&mut self, m: &Message, subject: &str, count: u64, silent: bool) {
        let found = self
            .engine()
            .ok()
            .and_then(|e| e.inspect(subject, subject.len()));
        let payload = match found {
            Some((plain, html)) => vec![Payload::Page {
                data: Documentation { plain, html },
                start: 0,
            }],
            None => {
                if !silent {
                    let text = format!("no documentation found for `{subject}`\n");
                    let parent = m.header_value();
                    publish_output(
                        &self.shared,
                        Output::stream(StreamName::Stdout, text),
                        &parent,
                    );
                }
                Vec::new()
            }
        };
        let reply = ExecuteReply::ok(count, payload);
        let _ = self.shared.shell_out.send(self.shared.reply(m, &reply));
    }
}

#[cfg(test)]
mod tests {
    use super::help_subject;

    #[test]
    fn only_a_question_mark_before_a_path_asks_for_help() {
        assert_eq!(help_subject("?std::vec::Vec"), Some("std::vec::Vec"));
        assert_eq!(help_subject("  ? HashMap \n"), Some("HashMap"));
        // Rust's `?` operator, and code that is not a path, are cells.
        assert_eq!(help_subject("result?"), None);
        assert_eq!(help_subject("?"), None);
        assert_eq!(help_subject("?x + 1"), None);
    }
}
