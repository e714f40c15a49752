//! Embeds the sources of the crates cells use without `:dep` (the multiprocessing library and
//! rustmp_display), so an installed `rustmp` works even after its checkout is gone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, base, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((rel, path));
        }
    }
}

/// The crates embedded, each materialized as `<dir>/<name>`, side by side.
const EMBEDDED: [&str; 2] = ["multiprocessing", "rustmp_display"];

/// The `[dependencies]` table of a manifest, as written, except that a dependency on another
/// embedded crate points at its sibling directory (`../<name>`), where it is materialized.
fn dependencies(manifest: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == "[dependencies]";
            continue;
        }
        if !inside || t.is_empty() {
            continue;
        }
        let key = t.split('=').next().unwrap_or("").trim();
        if EMBEDDED.contains(&key) {
            let _ = writeln!(out, "{key} = {{ path = \"../{key}\" }}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn package_value(manifest: &str, key: &str) -> String {
    let mut in_package = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
            continue;
        }
        if in_package
            && let Some(v) = t
                .strip_prefix(key)
                .map(str::trim)
                .and_then(|v| v.strip_prefix('='))
        {
            return v.trim().trim_matches('"').to_string();
        }
    }
    String::new()
}

fn embed(name: &str, root: &Path, code: &mut String) {
    let manifest_path = root.join("Cargo.toml");
    println!("cargo:rerun-if-changed={}", manifest_path.display());
    println!("cargo:rerun-if-changed={}", root.join("src").display());
    let manifest = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    let standalone = format!(
        "[package]\nname = \"{name}\"\nversion = \"{}\"\nedition = \"2024\"\n\n[workspace]\n\n[dependencies]\n{}",
        package_value(&manifest, "version"),
        dependencies(&manifest)
    );
    let mut files = Vec::new();
    collect(&root.join("src"), root, &mut files);
    let _ = writeln!(code, "    Crate {{ name: {name:?}, files: &[");
    let _ = writeln!(code, "        (\"Cargo.toml\", {standalone:?}),");
    for (rel, path) in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "        ({rel:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    let _ = writeln!(code, "    ] }},");
}

fn main() {
    let kernel = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut code = String::from("/// The embedded crates.\npub static CRATES: &[Crate] = &[\n");
    let [library, display] = EMBEDDED;
    embed(library, kernel.parent().unwrap_or(&kernel), &mut code);
    embed(display, &kernel.join("display"), &mut code);
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
