//! What the benchmarks against Python share: running the Python side, formatting the figures.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

/// The Python script: `$env_var` if set, else `default` (relative to the crate's root).
pub fn script(env_var: &str, default: &str) -> PathBuf {
    match std::env::var_os(env_var) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default),
    }
}

/// Runs a Python baseline script (`--quick` if asked) and parses the JSON line it ends with.
pub fn run_python(
    script: &std::path::Path,
    env_var: &str,
    quick: bool,
) -> Result<HashMap<String, f64>, String> {
    if !script.is_file() {
        return Err(format!(
            "the baseline script {} does not exist (set {env_var} to its path)",
            script.display()
        ));
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script);
    if quick {
        cmd.arg("--quick");
    }
    println!("running {cmd:?} ...");
    let output = cmd.output().map_err(|e| match e.kind() {
        ErrorKind::NotFound => "python3 was not found on PATH".to_string(),
        _ => format!("could not run python3: {e}"),
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}:\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("no JSON line in the script's output:\n{stdout}"))?;
    serde_json::from_str(line)
        .map_err(|e| format!("could not parse the script's JSON line ({e}): {line}"))
}

/// A figure's value, with a precision that suits its magnitude.
pub fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The Rust figures as one JSON line, in `keys`' order, rounded like the Python scripts do.
pub fn json_line<'a>(keys: impl Iterator<Item = &'a str>, rust: &HashMap<&str, f64>) -> String {
    let fields: Vec<String> = keys
        .filter_map(|key| {
            let v = serde_json::Value::from((rust.get(key)? * 1000.0).round() / 1000.0);
            Some(format!("{}: {v}", serde_json::Value::from(key)))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}
