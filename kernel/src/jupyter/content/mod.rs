//! The content of the messages the kernel receives and sends, typed, one file per message
//! family (as the messaging protocol 5.x defines them); the output content (`stream`,
//! `display_data`, `execute_result`, `error`, …) is the engine's output model
//! ([`crate::engine::Output`]).
//!
//! A request decodes with [`decode`]: every field has the protocol's default
//! (`#[serde(default)]`), so a minimal client sends only the fields it means, and a field sent as
//! `null` counts as left out (as jupyter_client sends `None`). A field of the wrong type is a
//! [`BadContent`] error naming the field; the kernel logs it and answers with an
//! [`ErrorReply`], never panicking. Fields the kernel does not read are not decoded. A reply or
//! IOPub content is a [`Content`]: it names its message type, and serializes to exactly the
//! JSON the protocol shows.

mod comm;
mod complete;
mod execute;
mod history;
mod input;
mod inspect;
mod is_complete;
mod kernel_info;
mod lifecycle;
mod status;

pub(crate) use comm::{CommClose, CommInfoReply, CommOpen};
pub(crate) use complete::{CompleteReply, CursorRequest};
pub(crate) use execute::{ExecuteInput, ExecuteReply, ExecuteRequest, Payload};
pub(crate) use history::{HistAccess, HistoryItem, HistoryReply, HistoryRequest, HistoryText};
pub(crate) use input::{InputReply, InputRequest};
pub(crate) use inspect::{Documentation, InspectReply};
pub(crate) use is_complete::{IsCompleteReply, IsCompleteRequest};
pub(crate) use kernel_info::{HelpLink, KernelInfoReply};
pub(crate) use lifecycle::{InterruptReply, ShutdownReply, ShutdownRequest};
pub(crate) use status::{ExecutionState, IopubWelcome, Status};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The content of a message the kernel sends: its type and its serialized form.
pub(crate) trait Content: Serialize {
    /// The message type (`execute_reply`, `status`, …).
    const MSG_TYPE: &'static str;

    /// The content as the JSON dict of the message.
    fn to_json(&self) -> Value {
        // The contents are structs of strings, numbers, lists and string-keyed maps: serializing
        // them cannot fail.
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

/// The `status` of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReplyStatus {
    /// The request was handled.
    Ok,
    /// It failed (see the reply's `ename` and `evalue`).
    Error,
}

/// An empty dict (`{}`): the `metadata`, `user_expressions`, `comms` and `data` the kernel
/// always sends empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Empty {}

/// A request whose content the kernel could not decode.
#[derive(Debug, thiserror::Error)]
#[error("invalid {msg_type} content: {reason}")]
pub(crate) struct BadContent {
    /// The request's type.
    pub(crate) msg_type: String,
    /// Which field is wrong, and how.
    pub(crate) reason: String,
}

/// Decodes the `content` of a `msg_type` message; a field sent as `null` counts as left out.
pub(crate) fn decode<T: DeserializeOwned>(
    msg_type: &str,
    content: &Value,
) -> Result<T, BadContent> {
    let bad = |reason: String| BadContent {
        msg_type: msg_type.to_string(),
        reason,
    };
    let Value::Object(map) = content else {
        return Err(bad("the content is not a dict".into()));
    };
    let given: Map<String, Value> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    T::deserialize(Value::Object(given.clone())).map_err(|whole| {
        // serde_json's error does not say which field: find the first one that fails alone.
        let field = given.iter().find_map(|(k, v)| {
            let alone = Map::from_iter([(k.clone(), v.clone())]);
            T::deserialize(Value::Object(alone))
                .err()
                .map(|e| format!("field `{k}`: {e}"))
        });
        bad(field.unwrap_or_else(|| whole.to_string()))
    })
}

/// The reply to a request the kernel could not handle (its content is invalid): `status`
/// `error`, with the error's class and message, sent as the request's `*_reply`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorReply {
    status: ReplyStatus,
    /// The error's class.
    pub(crate) ename: String,
    /// The message.
    pub(crate) evalue: String,
    /// The lines to show.
    pub(crate) traceback: Vec<String>,
    /// An `execute_reply`'s count (the protocol requires it there; a refused request is not
    /// counted, so it is the current count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) execution_count: Option<u64>,
}

impl ErrorReply {
    /// The reply to a request with invalid content; `execution_count` for an `execute_request`.
    pub(crate) fn bad_content(error: &BadContent, execution_count: Option<u64>) -> ErrorReply {
        let evalue = error.to_string();
        ErrorReply {
            status: ReplyStatus::Error,
            ename: "BadRequest".into(),
            traceback: vec![format!("BadRequest: {evalue}")],
            evalue,
            execution_count,
        }
    }

    /// The reply's type for a request of type `msg_type` (`x_request` → `x_reply`), if it is a
    /// request.
    pub(crate) fn msg_type(request: &str) -> Option<String> {
        request
            .strip_suffix("_request")
            .map(|family| format!("{family}_reply"))
    }

    /// The reply as the JSON dict of the message.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

/// The content as the bytes of its frame (keys sorted, as `serde_json` writes a map).
#[cfg(test)]
pub(crate) fn wire<C: Content>(content: &C) -> String {
    content.to_json().to_string()
}

/// A request's content, written as a client would send it.
#[cfg(test)]
pub(crate) fn request(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_execute_request_decodes_with_the_protocols_defaults() {
        let r: ExecuteRequest = decode("execute_request", &request(r#"{"code": "1"}"#)).unwrap();
        assert_eq!(
            (
                r.code.as_str(),
                r.silent,
                r.store_history,
                r.allow_stdin,
                r.stop_on_error
            ),
            ("1", false, true, false, true)
        );
        let empty: ExecuteRequest = decode("execute_request", &request("{}")).unwrap();
        assert_eq!(empty.code, "");
    }

    #[test]
    fn a_null_field_is_a_field_left_out_and_unknown_fields_are_ignored() {
        let r: ExecuteRequest = decode(
            "execute_request",
            &request(
                r#"{"code": "2", "store_history": null, "allow_stdin": null,
                    "user_expressions": {"x": "1"}, "subshell": 3}"#,
            ),
        )
        .unwrap();
        assert!(r.store_history && !r.allow_stdin);
        let c: CursorRequest = decode(
            "complete_request",
            &request(r#"{"code": "ab", "cursor_pos": null}"#),
        )
        .unwrap();
        assert_eq!(c.byte_cursor(), 2);
    }

    #[test]
    fn a_wrong_typed_field_is_an_error_that_names_it() {
        let e = decode::<ExecuteRequest>(
            "execute_request",
            &request(r#"{"code": "1", "silent": "yes"}"#),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("invalid execute_request content: field `silent`:"),
            "{text}"
        );
        assert!(text.contains("expected a boolean"), "{text}");
        let e = decode::<HistoryRequest>("history_request", &request(r#"{"n": -1}"#)).unwrap_err();
        assert!(e.to_string().contains("field `n`"), "{e}");
        let e = decode::<ExecuteRequest>("execute_request", &request("[1]")).unwrap_err();
        assert!(e.to_string().contains("not a dict"), "{e}");
        let reply = ErrorReply::bad_content(&e, None).to_json();
        assert!(reply.get("execution_count").is_none(), "{reply}");
        assert_eq!(
            ErrorReply::bad_content(&e, Some(3)).to_json()["execution_count"],
            3
        );
        assert_eq!(reply["status"], "error");
        assert_eq!(reply["ename"], "BadRequest");
        assert_eq!(reply["evalue"], e.to_string());
    }

    #[test]
    fn a_requests_reply_type() {
        assert_eq!(
            ErrorReply::msg_type("execute_request").as_deref(),
            Some("execute_reply")
        );
        assert_eq!(ErrorReply::msg_type("comm_open"), None);
    }

    #[test]
    fn empty_is_an_empty_dict() {
        assert_eq!(serde_json::to_string(&Empty {}).unwrap(), "{}");
    }
}
