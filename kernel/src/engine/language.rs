//! The language the kernel runs and a notebook is written in (`language_info`), as the
//! `kernel_info_reply` reports it and `rustmp run` writes it into a notebook's metadata.

use serde::{Deserialize, Serialize};

/// `language_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanguageInfo {
    /// `rust`.
    pub name: String,
    /// The toolchain's version (`rustc --version`).
    pub version: String,
    /// `text/rust`.
    pub mimetype: String,
    /// `.rs`.
    pub file_extension: String,
    /// `rust`.
    pub pygments_lexer: String,
    /// `rust`.
    pub codemirror_mode: String,
    /// `rust`.
    pub nbconvert_exporter: String,
}

impl LanguageInfo {
    /// Rust, with the version of the toolchain the cells are compiled with.
    pub fn rust() -> LanguageInfo {
        LanguageInfo {
            name: "rust".into(),
            version: rustc_version(),
            mimetype: "text/rust".into(),
            file_extension: ".rs".into(),
            pygments_lexer: "rust".into(),
            codemirror_mode: "rust".into(),
            nbconvert_exporter: "rust".into(),
        }
    }
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
