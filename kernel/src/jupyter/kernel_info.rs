//! The `kernel_info_reply` (the same on the shell and control channels) and the toolchain's
//! version it reports.

use super::shared::Shared;
use super::wire::{self, Message};
use serde_json::json;

/// The reply to a `kernel_info_request`.
pub(super) fn kernel_info(session_shared: &Shared, request: &Message) -> Message {
    let content = json!({
        "status": "ok",
        "protocol_version": wire::PROTOCOL_VERSION,
        "implementation": "rustmp",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "rust",
            "version": rustc_version(),
            "mimetype": "text/rust",
            "file_extension": ".rs",
            "pygments_lexer": "rust",
            "codemirror_mode": "rust",
            "nbconvert_exporter": "rust"
        },
        "banner": format!("rustmp {}: Rust with Python's multiprocessing (use multiprocessing::...)", env!("CARGO_PKG_VERSION")),
        "help_links": [
            {"text": "Rust standard library", "url": "https://doc.rust-lang.org/std/"}
        ],
        "supported_features": []
    });
    session_shared.reply(request, "kernel_info_reply", content)
}

/// The toolchain's version (`rustc --version`), for `language_info`.
pub fn rustc_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            std::process::Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.split_whitespace().nth(1).map(String::from))
                .unwrap_or_default()
        })
        .clone()
}
