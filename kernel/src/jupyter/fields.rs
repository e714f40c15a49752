//! Reading a request's content fields, with the protocol's defaults for those a minimal client
//! leaves out.

use serde_json::Value;

/// A string field of a request's content, or `default`.
pub(super) fn str_field<'a>(content: &'a Value, key: &str, default: &'a str) -> &'a str {
    content.get(key).and_then(Value::as_str).unwrap_or(default)
}

/// A boolean field of a request's content, or `default`.
pub(super) fn bool_field(content: &Value, key: &str, default: bool) -> bool {
    content.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// An integer field of a request's content, or `default`.
pub(super) fn u64_field(content: &Value, key: &str, default: u64) -> u64 {
    content.get(key).and_then(Value::as_u64).unwrap_or(default)
}
