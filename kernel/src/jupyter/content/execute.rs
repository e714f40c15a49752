//! `execute_request`, and what the kernel sends for it besides the outputs: `execute_input` on
//! IOPub and the `execute_reply` (ok with its payloads, error, or aborted).

use super::inspect::Documentation;
use super::{Content, Empty};
use crate::engine::output::ErrorContent;
use serde::{Deserialize, Serialize};

/// `execute_request` (`user_expressions` is not read: the reply's are always empty).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ExecuteRequest {
    /// The cell's code.
    pub(crate) code: String,
    /// Run without output, without counting, without history.
    pub(crate) silent: bool,
    /// Count the cell and keep it in the history (ignored when silent).
    pub(crate) store_history: bool,
    /// The cell may ask for input on the stdin channel.
    pub(crate) allow_stdin: bool,
    /// A failure aborts the execute requests queued behind this one.
    pub(crate) stop_on_error: bool,
}

impl Default for ExecuteRequest {
    fn default() -> ExecuteRequest {
        ExecuteRequest {
            code: String::new(),
            silent: false,
            store_history: true,
            allow_stdin: false,
            stop_on_error: true,
        }
    }
}

/// `execute_input`: the code being run, with its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ExecuteInput {
    /// The code.
    pub(crate) code: String,
    /// Its execution count.
    pub(crate) execution_count: u64,
}

impl Content for ExecuteInput {
    const MSG_TYPE: &'static str = "execute_input";
}

/// An `execute_reply` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub(crate) enum Payload {
    /// Documentation for the frontend's pager (the `?path` help).
    Page {
        /// The documentation.
        data: Documentation,
        /// The line to show first.
        start: u64,
    },
}

/// `execute_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum ExecuteReply {
    /// The cell ran.
    Ok {
        /// Its execution count.
        execution_count: u64,
        /// What the frontend should do besides showing outputs.
        payload: Vec<Payload>,
        /// Not evaluated: empty.
        user_expressions: Empty,
    },
    /// The cell failed: the error its `error` output showed.
    Error {
        /// Its execution count.
        execution_count: u64,
        /// The error.
        #[serde(flatten)]
        error: ErrorContent,
    },
    /// The cell did not run: one queued before it failed.
    Aborted {
        /// The execution count (of the last counted cell).
        execution_count: u64,
    },
}

impl ExecuteReply {
    /// The cell counted `execution_count` ran, with these payloads.
    pub(crate) fn ok(execution_count: u64, payload: Vec<Payload>) -> ExecuteReply {
        ExecuteReply::Ok {
            execution_count,
            payload,
            user_expressions: Empty {},
        }
    }
}

impl Content for ExecuteReply {
    const MSG_TYPE: &'static str = "execute_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::wire;

    #[test]
    fn every_execute_reply_is_the_dict_the_protocol_shows() {
        let page = Payload::Page {
            data: Documentation {
                plain: "p".into(),
                html: "<p>".into(),
            },
            start: 0,
        };
        assert_eq!(
            wire(&ExecuteReply::ok(3, vec![page])),
            concat!(
                r#"{"execution_count":3,"payload":[{"data":{"text/html":"<p>","text/plain":"p"},"#,
                r#""source":"page","start":0}],"status":"ok","user_expressions":{}}"#
            )
        );
        assert_eq!(
            wire(&ExecuteReply::ok(1, Vec::new())),
            r#"{"execution_count":1,"payload":[],"status":"ok","user_expressions":{}}"#
        );
        let error = ErrorContent::new("panic", "boom", vec!["boom".into()]);
        assert_eq!(
            wire(&ExecuteReply::Error {
                execution_count: 2,
                error
            }),
            r#"{"ename":"panic","evalue":"boom","execution_count":2,"status":"error","traceback":["boom"]}"#
        );
        assert_eq!(
            wire(&ExecuteReply::Aborted { execution_count: 4 }),
            r#"{"execution_count":4,"status":"aborted"}"#
        );
        let input = ExecuteInput {
            code: "1".into(),
            execution_count: 5,
        };
        assert_eq!(wire(&input), r#"{"code":"1","execution_count":5}"#);
    }
}
