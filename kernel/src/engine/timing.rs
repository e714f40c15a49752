//! `RUSTMP_TIMING`: where a kernel's time goes.

/// With `RUSTMP_TIMING` in the environment, prints `rustmp timing: <what>` on stderr: where a
/// kernel's time goes (the benchmark and a test read these lines).
pub fn timing(what: impl FnOnce() -> String) {
    if std::env::var_os("RUSTMP_TIMING").is_some() {
        eprintln!("rustmp timing: {}", what());
    }
}
