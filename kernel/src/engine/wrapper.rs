//! The kernel's part in evcxr's rustc wrapper (the kernel binary is the wrapper: cargo runs it
//! for every crate it builds). Two jobs:
//!
//! - **The dylib fix** for Rust ≥ 1.9x (dependencies are built as dylibs, so that the
//!   multiprocessing library has one copy of its global state). evcxr's wrapper passes
//!   `--extern core=<sysroot>/libstd-*.so` so that `#![no_std]` crates (libc, serde, …) link
//!   against the one shared std. Newer compilers keep only a metadata stub in that `.so` and ask
//!   for the `.rmeta` beside it, so every `no_std` dependency failed to build ("only metadata
//!   stub found for `dylib` dependency `core`"). Giving rustc the `.rmeta` as a second candidate
//!   for `core` fixes it (`--extern=core=<…>.rmeta`, a spelling evcxr's argument rewriting leaves
//!   alone).
//! - **A trait's display wins over the kernel's `Debug` display.** Every cell imports
//!   [`SHOW_DEBUG_IMPORT`], so that a cell ending in a plain value compiles once (evcxr would
//!   compile it twice: `.evcxr_display()` first, `Debug` after that fails). When another trait in
//!   scope also has an `evcxr_display` for the value's type (`evcxr_image::ImageDisplay`, a
//!   cell's own `trait EvcxrResult`), the call is ambiguous (E0034) and evcxr would fall back to
//!   `Debug`. So when the cells' crate fails with that ambiguity, the wrapper blanks the import's
//!   line (line numbers unchanged) and compiles again: the other trait's display is used, as in
//!   evcxr_jupyter, at the cost of one failed compile.
//!
//! In both cases this binary runs itself again as evcxr's wrapper with `MARK` set.

use std::path::{Path, PathBuf};

const MARK: &str = "RUSTMP_WRAPPER_FIXED";

/// The import of the kernel's `Debug` display that every cell's crate carries.
pub const SHOW_DEBUG_IMPORT: &str = "use rustmp_display::__runtime::ShowDebug as _;";

/// If this process is evcxr's rustc wrapper (and not yet re-run), does the wrapper's work and
/// exits with rustc's status. Otherwise returns.
pub fn fix_and_reexec() {
    if std::env::var_os("EVCXR_RUSTC_WRAPPER").is_none() || std::env::var_os(MARK).is_some() {
        return;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let core_rmeta = core_rmeta();
    let cells_source = cells_crate_source(&args);
    if core_rmeta.is_none() && cells_source.is_none() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let command = || {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(&args).env(MARK, "1");
        if let Some(rmeta) = &core_rmeta {
            cmd.arg(format!("--extern=core={}", rmeta.display()));
        }
        cmd
    };
    let code = match cells_source {
        None => command().status().map(|s| s.code().unwrap_or(1)),
        Some(source) => compile_cells(command, &source),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rustmp: cannot run the rustc wrapper: {e}");
            std::process::exit(1);
        }
    }
}

/// `<sysroot>/libstd-*.rmeta` when the dylib fix applies.
fn core_rmeta() -> Option<PathBuf> {
    std::env::var_os("EVCXR_FORCE_DYLIB")?;
    let core = std::env::var("EVCXR_CORE_EXTERN").ok()?;
    let rmeta = Path::new(core.strip_prefix("core=")?).with_extension("rmeta");
    rmeta.exists().then_some(rmeta)
}

/// The source file of the cells' crate (evcxr names it `ctx`), if this is its compile.
fn cells_crate_source(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let named = args
        .windows(2)
        .any(|w| w[0] == "--crate-name" && w[1] == "ctx");
    let source = args
        .iter()
        .find(|a| Path::new(a).file_name().is_some_and(|n| n == "lib.rs"))?;
    named.then(|| PathBuf::from(source))
}

/// Compiles the cells' crate; on an `evcxr_display` ambiguity with the kernel's `Debug` display,
/// blanks that import and compiles again. Returns rustc's exit code.
fn compile_cells(
    command: impl Fn() -> std::process::Command,
    source: &Path,
) -> std::io::Result<i32> {
    use std::io::Write;
    log_compile(source, "compile");
    let first = command().output()?;
    let code = first.status.code().unwrap_or(1);
    if code != 0 && is_display_ambiguity(&String::from_utf8_lossy(&first.stderr)) {
        let blanked = std::fs::read_to_string(source)
            .ok()
            .and_then(|text| blank_show_debug(&text));
        // If the source cannot be rewritten, the first compile's diagnostics stand.
        if let Some(blanked) = blanked
            && std::fs::write(source, blanked).is_ok()
        {
            log_compile(source, "compile again without ShowDebug");
            return command().status().map(|s| s.code().unwrap_or(1));
        }
    }
    std::io::stdout().write_all(&first.stdout)?;
    std::io::stderr().write_all(&first.stderr)?;
    Ok(code)
}

/// With `RUSTMP_WRAPPER_LOG` set (tests do), appends one line per compile of the cells' crate.
fn log_compile(source: &Path, what: &str) {
    use std::io::Write;
    let Some(log) = std::env::var_os("RUSTMP_WRAPPER_LOG") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{what}: {}", source.display());
    }
}

/// Whether rustc's JSON diagnostics say that `evcxr_display` is ambiguous between the kernel's
/// `ShowDebug` and another trait.
fn is_display_ambiguity(diagnostics: &str) -> bool {
    diagnostics.lines().any(|line| {
        line.contains("\"E0034\"") && line.contains("evcxr_display") && line.contains("ShowDebug")
    })
}

/// The source with the line of [`SHOW_DEBUG_IMPORT`] made empty (so that every other line keeps
/// its number), or `None` if it has no such line.
fn blank_show_debug(source: &str) -> Option<String> {
    let mut found = false;
    let lines: Vec<&str> = source
        .split_inclusive('\n')
        .map(|line| {
            if line.trim() == SHOW_DEBUG_IMPORT {
                found = true;
                if line.ends_with('\n') { "\n" } else { "" }
            } else {
                line
            }
        })
        .collect();
    found.then(|| lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_every_other_line_where_it_was() {
        let source = format!("fn a() {{}}\n{SHOW_DEBUG_IMPORT}\nfn b() {{}}\n");
        let blanked = blank_show_debug(&source).expect("the import is there");
        assert_eq!(blanked, "fn a() {}\n\nfn b() {}\n");
        assert_eq!(blank_show_debug("fn a() {}\n"), None);
    }

    #[test]
    fn only_the_display_ambiguity_counts() {
        let ambiguous = r#"{"code":{"code":"E0034"},"message":"multiple applicable items in scope","children":[{"message":"candidate #1 is defined in an impl of the trait `ShowDebug` for the type `T`"},{"message":"... `evcxr_display` ..."}]}"#;
        assert!(is_display_ambiguity(ambiguous));
        let other = ambiguous.replace("ShowDebug", "Other");
        assert!(!is_display_ambiguity(&other));
        assert!(!is_display_ambiguity(r#"{"code":{"code":"E0308"}}"#));
    }

    #[test]
    fn the_cells_crate_is_recognised_by_its_name() {
        let args = |name: &str| -> Vec<std::ffi::OsString> {
            ["--crate-name", name, "--edition=2024", "src/lib.rs"]
                .map(std::ffi::OsString::from)
                .to_vec()
        };
        assert_eq!(
            cells_crate_source(&args("ctx")),
            Some(PathBuf::from("src/lib.rs"))
        );
        assert_eq!(cells_crate_source(&args("serde")), None);
    }
}
