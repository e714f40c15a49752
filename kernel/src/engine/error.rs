//! Why the engine could not start.

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file or directory could not be prepared.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// evcxr failed.
    #[error("the Rust evaluation context failed: {0}")]
    Evcxr(String),
}
