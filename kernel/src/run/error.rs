//! Why a notebook could not be run at all.

use crate::engine;
use std::path::PathBuf;

/// Why a notebook could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an nbformat 4 notebook.
    #[error("{path} is not a Jupyter notebook (nbformat 4): {reason}")]
    NotNotebook {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The notebook is for another language.
    #[error("{path} is a notebook for {language}, not Rust: rustmp runs Rust notebooks")]
    Language {
        /// The file.
        path: PathBuf,
        /// The notebook's language.
        language: String,
    },
    /// The engine could not be prepared or started.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The executed notebook could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
