//! What the benchmarks against Python share: running the Python side, formatting the figures.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

/// Reads `--quick` and prints the benchmark's title; returns (quick, the factor counts are
/// divided by).
pub fn start(title: &str) -> (bool, u64) {
    let quick = std::env::args().any(|a| a == "--quick");
    println!(
        "{title} ({} counts, {} CPUs)",
        if quick { "quick: 1/10" } else { "full" },
        multiprocessing::cpu_count()
    );
    (quick, if quick { 10 } else { 1 })
}

/// Python's figures from the baseline script (`$env_var`, else `default` relative to the crate's
/// root), or `None` after saying why they are unavailable.
pub fn python_figures(env_var: &str, default: &str, quick: bool) -> Option<HashMap<String, f64>> {
    match run_python(&script(env_var, default), env_var, quick) {
        Ok(figures) => Some(figures),
        Err(msg) => {
            println!("Python figures unavailable: {msg}");
            None
        }
    }
}

/// The Python script: `$env_var` if set, else `default` (relative to the crate's root).
fn script(env_var: &str, default: &str) -> PathBuf {
    match std::env::var_os(env_var) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default),
    }
}

/// Runs a Python baseline script (`--quick` if asked) and parses the JSON line it ends with.
fn run_python(
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
