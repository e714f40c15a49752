//! The execution core shared by the kernel and `rustmp run`: an evcxr context whose runtime has
//! the multiprocessing library and rustmp_display available, with output capture, interrupts and
//! restarts.
//!
//! - `evaluator`: the [`Engine`]: starts evcxr and its runtime, runs a cell, completes, inspects.
//! - `output`: the output model the kernel and `rustmp run` share: what a cell shows.
//! - `language`: the `language_info` of the kernel and of the notebooks it writes.
//! - `outcome`: what a cell ended with, and the error a panic, a `?` or an interrupt makes.
//! - `interrupter`: interrupting the running cell from another thread; restarting the runtime.
//! - `paths`: the cache, the embedded crates, the build slot and evcxr's configuration.
//! - `capture`: every process's output, read and turned into outputs in the order it happened.
//! - `cells`: a location in evcxr's generated crate as the place in a cell; rustc's messages.
//! - `relay`: the runtime process's side of output capture.
//! - `wrapper`: the rustc wrapper that fixes what evcxr's generated code gets wrong.
//! - `embedded`, `rust_src`: the crates carried in the binary; rust-analyzer's lighter std source.
//! - `timing`: `RUSTMP_TIMING` lines.
//! - `sys`: the system calls `nix` does not offer safely (every other module goes through nix).

#![deny(unsafe_code)]

mod capture;
mod cells;
mod embedded;
mod error;
mod evaluator;
mod interrupter;
mod language;
mod outcome;
pub mod output;
mod paths;
pub mod relay;
mod rust_src;
pub(crate) mod sys;
mod timing;
pub mod wrapper;

pub use cells::Label;
pub use error::EngineError;
pub use evaluator::Engine;
pub use interrupter::Interrupter;
pub use language::LanguageInfo;
pub use outcome::Outcome;
pub use output::Output;
pub use paths::{Paths, prepare};
pub use timing::timing;
