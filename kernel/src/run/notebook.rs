//! The notebook file: read and checked (nbformat 4, a Rust notebook), written as Jupyter writes
//! it, with outputs in nbformat's form.

use super::error::RunError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `dir/NAME.ipynb` → `dir/NAME.nbconvert.ipynb` (nbconvert's name for an executed copy).
pub(super) fn default_output(notebook: &Path) -> PathBuf {
    let stem = notebook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "notebook".into());
    notebook.with_file_name(format!("{stem}.nbconvert.ipynb"))
}

/// Reads and checks a notebook.
pub(super) fn load(path: &Path) -> Result<Value, RunError> {
    let not_notebook = |reason: String| RunError::NotNotebook {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| RunError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let nb: Value = serde_json::from_slice(&bytes)
        .map_err(|e| not_notebook(format!("not valid JSON ({e})")))?;
    if !nb.is_object() {
        return Err(not_notebook("the top level is not a JSON object".into()));
    }
    match nb.get("nbformat").and_then(Value::as_u64) {
        Some(4) => {}
        Some(v) => return Err(not_notebook(format!("nbformat {v} is not supported"))),
        None => return Err(not_notebook("it has no nbformat version".into())),
    }
    let Some(cells) = nb.get("cells").and_then(Value::as_array) else {
        return Err(not_notebook("it has no list of cells".into()));
    };
    for (i, cell) in cells.iter().enumerate() {
        let kind = cell.get("cell_type").and_then(Value::as_str);
        if !matches!(kind, Some("code" | "markdown" | "raw")) {
            return Err(not_notebook(format!(
                "cell {} has no valid cell_type",
                i + 1
            )));
        }
        let source_ok = match cell.get("source") {
            Some(Value::String(_)) => true,
            Some(Value::Array(a)) => a.iter().all(Value::is_string),
            _ => false,
        };
        if !source_ok {
            return Err(not_notebook(format!("cell {} has no valid source", i + 1)));
        }
    }
    if nb.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(not_notebook("its metadata is not an object".into()));
    }
    let meta = &nb["metadata"];
    let language = meta["kernelspec"]["language"]
        .as_str()
        .or_else(|| meta["language_info"]["name"].as_str());
    if let Some(language) = language
        && !language.eq_ignore_ascii_case("rust")
    {
        return Err(RunError::Language {
            path: path.to_path_buf(),
            language: language.to_string(),
        });
    }
    Ok(nb)
}

/// Writes a notebook as Jupyter does: one-space indent, sorted keys, a final newline.
pub(super) fn write(path: &Path, nb: &Value) -> Result<(), RunError> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&sort_keys(nb), &mut ser).map_err(|e| RunError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    out.push(b'\n');
    std::fs::write(path, out).map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sort_keys(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// The notebook's `metadata.language_info`.
pub(super) fn language_info() -> Value {
    serde_json::to_value(crate::engine::LanguageInfo::rust()).unwrap_or(Value::Null)
}

/// A cell's source, joined if it is a list of lines.
pub(super) fn source_text(source: &Value) -> String {
    match source {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// A cell's tags.
pub(super) fn tags(cell: &Value) -> Vec<String> {
    cell["metadata"]["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Multi-line strings as lists of lines, as Jupyter writes them.
pub(super) fn to_nbformat(mut output: Value) -> Value {
    if let Some(text) = output.get("text").and_then(Value::as_str) {
        output["text"] = lines(text);
    }
    if let Some(data) = output.get_mut("data").and_then(Value::as_object_mut) {
        for (mime, value) in data.iter_mut() {
            if let Value::String(s) = value
                && (mime.starts_with("text/") || mime == "image/svg+xml")
            {
                *value = lines(s);
            }
        }
    }
    output
}

fn lines(text: &str) -> Value {
    Value::Array(
        text.split_inclusive('\n')
            .map(|l| Value::String(l.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_written_as_lines() {
        let o = to_nbformat(json!({"output_type": "stream", "text": "a\nb\nc"}));
        assert_eq!(o["text"], json!(["a\n", "b\n", "c"]));
    }

    #[test]
    fn rejects_what_is_not_a_rust_notebook() {
        let dir = std::env::temp_dir().join(format!("rustmp-runner-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let case = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            load(&p).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(
            case("a.ipynb", "not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            case("b.ipynb", "[]")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            case("c.ipynb", r#"{"nbformat": 3, "cells": []}"#)
                .unwrap_err()
                .contains("nbformat 3")
        );
        assert!(
            case("d.ipynb", r#"{"nbformat": 4, "metadata": {"kernelspec": {"language": "python"}}, "cells": []}"#)
                .unwrap_err()
                .contains("for python, not Rust")
        );
        assert!(
            case(
                "e.ipynb",
                r#"{"nbformat": 4, "metadata": {}, "cells": [{"cell_type": "code"}]}"#
            )
            .unwrap_err()
            .contains("cell 1 has no valid source")
        );
        assert!(
            case("g.ipynb", r#"{"nbformat": 4, "metadata": [], "cells": []}"#)
                .unwrap_err()
                .contains("metadata is not an object")
        );
        assert!(case("f.ipynb", r#"{"nbformat": 4, "metadata": {}, "cells": []}"#).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
