//! A fix for evcxr's rustc wrapper on Rust ≥ 1.9x (used when dependencies are built as dylibs,
//! which the kernel needs so that the multiprocessing library has one copy of its global state).
//!
//! evcxr's wrapper passes `--extern core=<sysroot>/libstd-*.so` so that `#![no_std]` crates
//! (libc, serde, postcard, …) link against the one shared std. Newer compilers keep only a
//! metadata stub in that `.so` and ask for the `.rmeta` beside it, so every `no_std` dependency
//! failed to build ("only metadata stub found for `dylib` dependency `core`"). Giving rustc the
//! `.rmeta` as a second candidate for `core` fixes it: when this binary runs as the wrapper, it
//! runs itself again with `--extern=core=<…>.rmeta` added (that spelling passes through evcxr's
//! argument rewriting untouched).

const MARK: &str = "RUSTMP_WRAPPER_FIXED";

/// If this process is evcxr's rustc wrapper in dylib mode, re-runs it with the extra argument
/// (and exits with its status). Otherwise returns.
pub fn fix_and_reexec() {
    if std::env::var_os("EVCXR_RUSTC_WRAPPER").is_none()
        || std::env::var_os("EVCXR_FORCE_DYLIB").is_none()
        || std::env::var_os(MARK).is_some()
    {
        return;
    }
    let Some(core) = std::env::var("EVCXR_CORE_EXTERN").ok() else {
        return;
    };
    let Some(so) = core.strip_prefix("core=") else {
        return;
    };
    let rmeta = std::path::Path::new(so).with_extension("rmeta");
    if !rmeta.exists() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg(format!("--extern=core={}", rmeta.display()))
        .env(MARK, "1")
        .status();
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("rustmp: cannot run the rustc wrapper: {e}");
            std::process::exit(1);
        }
    }
}
