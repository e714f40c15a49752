//! `rustmp run`: executes a notebook's code cells headless, through the same engine as the
//! kernel (evcxr, the embedded library, output capture, interrupts), with no Python or Jupyter.
//!
//! Outputs become nbformat 4 outputs the way Jupyter clients record them (nbclient): consecutive
//! stream text of one name is merged, `update_display_data` rewrites every output with its
//! display id, `clear_output(wait)` clears the cell (at its next output when `wait`). Cells tagged
//! `skip-execution` are skipped; cells tagged `raises-exception` may fail.
//!
//! `rustmp_display::input` reads the answer from the terminal when stdin is one (the prompt
//! shown); otherwise it answers with an empty line and says so in one warning line on stderr.
//! Either way the cell's stdout stream records the prompt followed by the answer and a newline
//! (a password's answer is not recorded).
//!
//! - `runner`: the run loop, cell by cell. `options`: what was asked and how it ended.
//! - `notebook`: reading, checking and writing the `.ipynb`; outputs in nbformat's form.
//! - `recorder`: the cells' outputs as they arrive (merged streams, updated displays, clears).
//! - `echo`: outputs shown on the terminal as they arrive. `input`: answering `input()`.
//! - `ctrl_c`: the first Ctrl-C interrupts the cell and stops the run; a second one quits.
//! - `watchdog`: interrupting a cell that runs past `--timeout`.

#![deny(unsafe_code)]

mod ctrl_c;
mod echo;
mod error;
mod input;
mod notebook;
mod options;
mod recorder;
mod runner;
mod watchdog;

pub use options::{Options, Verdict};
pub use runner::run;
