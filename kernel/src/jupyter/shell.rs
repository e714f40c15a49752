//! The shell channel: the executor thread that handles shell requests one at a time, in order
//! (execute, complete, inspect, is_complete, history, comm_info, kernel_info), starts the engine
//! and aborts the queued cells after a failed one.

use super::cursor::{byte_to_char, code_and_cursor};
use super::fields::{bool_field, str_field};
use super::history::{self, HistoryEntry};
use super::iopub::publish_output;
use super::is_complete::{self, Verdict};
use super::kernel_info::kernel_info;
use super::shared::Shared;
use super::stdin::request_input;
use super::wire::Message;
use crate::engine::{self, Engine, Outcome, Output};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

/// The path of a `?path` help request (letters, digits, `_` and `::`), if the cell is one.
fn help_subject(code: &str) -> Option<&str> {
    let subject = code.trim().strip_prefix('?')?.trim();
    let path = !subject.is_empty()
        && subject
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':');
    path.then_some(subject)
}

/// The executor thread's state: the engine, the execution count, the history, the queue.
pub(super) struct Executor {
    shared: Arc<Shared>,
    paths: Option<engine::Paths>,
    engine_rx: Option<mpsc::Receiver<Result<(Engine, engine::Paths), String>>>,
    engine: Option<Result<(Engine, engine::Paths), String>>,
    execution_count: u64,
    /// Numbers every cell run (silent ones too), for the interrupt's grace timer.
    cell_seq: u64,
    history: Vec<HistoryEntry>,
    queue: VecDeque<Message>,
}

impl Executor {
    pub(super) fn new(shared: Arc<Shared>, paths: engine::Paths) -> Executor {
        Executor {
            shared,
            paths: Some(paths),
            engine_rx: None,
            engine: None,
            execution_count: 0,
            cell_seq: 0,
            history: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// Starts the engine on its own thread at once: kernel_info and friends are answered while it
    /// starts; the first request that needs it waits for it.
    fn start_engine(&mut self) {
        let Some(paths) = self.paths.take() else {
            return;
        };
        let shared = self.shared.clone();
        let (tx, rx) = mpsc::channel();
        self.engine_rx = Some(rx);
        std::thread::spawn(move || {
            let sink_shared = shared.clone();
            let sink =
                Box::new(move |o: Output, target: &Value| publish_output(&sink_shared, o, target));
            let t0 = std::time::Instant::now();
            let started = Engine::start(&paths, sink).map_err(|e| e.to_string());
            engine::timing(|| format!("engine start {:?}", t0.elapsed()));
            if let Ok(e) = &started
                && let Ok(mut i) = shared.interrupter.lock()
            {
                *i = Some(e.interrupter());
            }
            let started = started.map(|mut e| {
                if !shared.engine_wanted.load(Ordering::SeqCst) {
                    let t0 = std::time::Instant::now();
                    e.prime();
                    engine::timing(|| format!("rust-analyzer primed in {:?}", t0.elapsed()));
                }
                e
            });
            // Keep the build slot locked as long as the engine lives.
            let _ = tx.send(started.map(|e| (e, paths)));
        });
    }

    fn engine(&mut self) -> Result<&mut Engine, String> {
        if self.engine.is_none() {
            self.shared.engine_wanted.store(true, Ordering::SeqCst);
            let started = match self.engine_rx.take() {
                Some(rx) => rx
                    .recv()
                    .unwrap_or_else(|_| Err("the engine thread died".into())),
                None => Err("the engine was not started".into()),
            };
            self.engine = Some(started);
        }
        match self.engine.as_mut() {
            Some(Ok((e, _))) => Ok(e),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the engine did not start".into()),
        }
    }

    /// Handles the shell requests `rx` receives, in order, until it closes.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Message>) {
        self.start_engine();
        loop {
            let m = match self.queue.pop_front() {
                Some(m) => m,
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            while let Ok(more) = rx.try_recv() {
                self.queue.push_back(more);
            }
            let parent = m.header_value();
            self.shared
                .publish("status", &parent, json!({"execution_state": "busy"}));
            let aborted = self.handle(&m);
            // Before this request's idle (as ipykernel does): a request sent after a client saw
            // the failed cell end is not aborted, only those already queued.
            if aborted {
                self.abort_queued(&rx);
            }
            self.shared
                .publish("status", &parent, json!({"execution_state": "idle"}));
        }
    }

    /// After an error with `stop_on_error`: answer queued execute requests with `aborted`.
    fn abort_queued(&mut self, rx: &mpsc::Receiver<Message>) {
        while let Ok(more) = rx.try_recv() {
            self.queue.push_back(more);
        }
        let mut kept = VecDeque::new();
        while let Some(m) = self.queue.pop_front() {
            if m.header.msg_type == "execute_request" {
                let parent = m.header_value();
                self.shared
                    .publish("status", &parent, json!({"execution_state": "busy"}));
                let reply = self.shared.reply(
                    &m,
                    "execute_reply",
                    json!({"status": "aborted", "execution_count": self.execution_count}),
                );
                let _ = self.shared.shell_out.send(reply);
                self.shared
                    .publish("status", &parent, json!({"execution_state": "idle"}));
            } else {
                kept.push_back(m);
            }
        }
        self.queue = kept;
    }

    /// Handles one shell request; true if queued cells must be aborted.
    fn handle(&mut self, m: &Message) -> bool {
        let reply = |s: &Self, t: &str, c: Value| {
            let _ = s.shared.shell_out.send(s.shared.reply(m, t, c));
        };
        match m.header.msg_type.as_str() {
            "kernel_info_request" => {
                let _ = self.shared.shell_out.send(kernel_info(&self.shared, m));
            }
            "execute_request" => return self.execute(m),
            "is_complete_request" => {
                let code = str_field(&m.content, "code", "");
                let content = match is_complete::check(code) {
                    Verdict::Complete => json!({"status": "complete"}),
                    Verdict::Incomplete(indent) => {
                        json!({"status": "incomplete", "indent": indent})
                    }
                    Verdict::Invalid => json!({"status": "invalid"}),
                };
                reply(self, "is_complete_reply", content);
            }
            "complete_request" => {
                let (code, byte) = code_and_cursor(&m.content);
                let (matches, start, end) = match self.engine() {
                    Ok(e) => e.complete(&code, byte),
                    Err(_) => (Vec::new(), byte, byte),
                };
                reply(
                    self,
                    "complete_reply",
                    json!({
                        "status": "ok",
                        "matches": matches,
                        "cursor_start": byte_to_char(&code, start),
                        "cursor_end": byte_to_char(&code, end),
                        "metadata": {}
                    }),
                );
            }
            "inspect_request" => {
                let (code, byte) = code_and_cursor(&m.content);
                let found = self.engine().ok().and_then(|e| e.inspect(&code, byte));
                let content = match found {
                    Some((plain, html)) => json!({
                        "status": "ok", "found": true,
                        "data": {"text/plain": plain, "text/html": html}, "metadata": {}
                    }),
                    None => json!({"status": "ok", "found": false, "data": {}, "metadata": {}}),
                };
                reply(self, "inspect_reply", content);
            }
            "history_request" => {
                let content = history::reply(&self.history, &m.content);
                reply(self, "history_reply", content);
            }
            "comm_info_request" => reply(
                self,
                "comm_info_reply",
                json!({"status": "ok", "comms": {}}),
            ),
            "comm_open" => {
                let id = m.content.get("comm_id").cloned().unwrap_or(Value::Null);
                self.shared.publish(
                    "comm_close",
                    &m.header_value(),
                    json!({"comm_id": id, "data": {}}),
                );
            }
            "comm_msg" | "comm_close" => {}
            "shutdown_request" => {
                // Deprecated on shell; answer it like the control channel would.
                reply(
                    self,
                    "shutdown_reply",
                    json!({"status": "ok", "restart": false}),
                );
            }
            other => eprintln!("rustmp: unsupported shell message {other}"),
        }
        false
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
            Some((plain, html)) => json!([{
                "source": "page",
                "data": {"text/plain": plain, "text/html": html},
                "start": 0
            }]),
            None => {
                if !silent {
                    self.shared.publish(
                        "stream",
                        &m.header_value(),
                        json!({"name": "stdout", "text": format!("no documentation found for `{subject}`\n")}),
                    );
                }
                json!([])
            }
        };
        let _ = self.shared.shell_out.send(self.shared.reply(
            m,
            "execute_reply",
            json!({"status": "ok", "execution_count": count, "payload": payload, "user_expressions": {}}),
        ));
    }

    fn execute(&mut self, m: &Message) -> bool {
        let code = str_field(&m.content, "code", "").to_string();
        let silent = bool_field(&m.content, "silent", false);
        let store_history = !silent && bool_field(&m.content, "store_history", true);
        let stop_on_error = bool_field(&m.content, "stop_on_error", true);
        let allow_stdin = bool_field(&m.content, "allow_stdin", false);
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
            self.shared.publish(
                "execute_input",
                &parent,
                json!({"code": code, "execution_count": count}),
            );
        }
        if let Some(subject) = help_subject(&code) {
            self.page_help(m, subject, count, silent);
            return false;
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
                Err(e) => Outcome::Error {
                    ename: "KernelError".into(),
                    evalue: format!("the Rust engine could not start: {e}"),
                    traceback: vec![format!("the Rust engine could not start: {e}")],
                },
            };
            self.shared.running.store(0, Ordering::SeqCst);
            outcome
        };
        match outcome {
            Outcome::Ok { result } => {
                if store_history && let Some(last) = self.history.last_mut() {
                    last.output = result
                        .as_ref()
                        .and_then(|d| d.get("text/plain"))
                        .and_then(Value::as_str)
                        .map(String::from);
                }
                if let Some(data) = result
                    && !silent
                {
                    self.shared.publish(
                        "execute_result",
                        &parent,
                        json!({"execution_count": count, "data": data, "metadata": {}}),
                    );
                }
                let _ = self.shared.shell_out.send(self.shared.reply(
                    m,
                    "execute_reply",
                    json!({"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}}),
                ));
                false
            }
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => {
                if !silent {
                    self.shared.publish(
                        "error",
                        &parent,
                        json!({"ename": ename, "evalue": evalue, "traceback": traceback}),
                    );
                }
                let _ = self.shared.shell_out.send(self.shared.reply(
                    m,
                    "execute_reply",
                    json!({"status": "error", "execution_count": count,
                           "ename": ename, "evalue": evalue, "traceback": traceback}),
                ));
                stop_on_error
            }
        }
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
