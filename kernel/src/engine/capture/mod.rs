//! Output capture: every process of the runtime's tree writes into pipes of its own, which this
//! module reads and turns into Jupyter outputs.
//!
//! Processes register their pipes on a datagram socket (see `multiprocessing::host`; the runtime
//! itself registers through `relay`). A thread reads all pipes as data arrives, whether a cell
//! runs or not, and publishes:
//! - text as `stream` outputs, one writer's complete lines at a time, so no line is cut or mixed
//!   with another writer's bytes; a partial line goes out when its writer pauses (50 ms) or at the
//!   end of the cell; bytes that are not UTF-8 become U+FFFD, and a character split across reads
//!   is joined first;
//! - records in `\x1b]5379;kind;base64\x07` escapes (from `rustmp_display` and the relay) as
//!   `display_data`, `update_display_data`, `clear_output`, and panics.
//!
//! Output keeps the order in which it happened across processes where the processes themselves
//! ordered it: a child's pipes are read only once its parent's stream reached the `fork` record
//! the library writes after the fork (so what the parent printed first comes first), and at a
//! `sync` record (a child joined, a pool result received) every other pipe is read before the
//! rest of the writer's stream (so a joined child's output precedes what its parent prints next).
//!
//! Output goes to the cell that runs when it is read; while no cell runs, to the last cell.
//! [`Capture::barrier`] reads every byte already written before a cell's reply is sent.
//!
//! - `event`: what the reader hands on ([`Event`]): outputs, panic records, ordering records.
//! - `handle`: the kernel's end ([`Capture`]): starts the reader thread, sets the target cell,
//!   waits for a barrier.
//! - `reader`: the reader thread: pipes, ordering records, partial lines.
//! - `parse`: a pipe's bytes as stream text and records; `record`: one record decoded.
//!
//! The record format and the descriptor passing are the library's (`multiprocessing::host`).

mod event;
mod handle;
mod parse;
mod reader;
mod record;

pub use event::Event;
pub use handle::Capture;
