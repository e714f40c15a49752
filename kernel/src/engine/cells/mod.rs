//! Where a location in the cells' generated crate (`src/lib.rs:98:12`) is in the notebook.
//!
//! evcxr compiles every cell into one crate: the items of all cells so far at the top (a
//! redefined item only once, its newest text), then a function that runs the current cell's
//! statements, with evcxr's own code between them. Each top-level statement or item of a cell is
//! written there verbatim, starting on a line of its own. So a cell's statements and items are
//! found in that source by their text, and each line of one maps to a line of its cell: the
//! current cell's first (it wins over an identical earlier text), then earlier cells, newest
//! first (an item defined in cell 2 and called in cell 5 maps to cell 2). evcxr's own code
//! maps to nothing and keeps its place in the crate.
//!
//! Every location a user sees goes through
//! [`SourceMap::locations`](source_map::SourceMap::locations) (panics, a child's or a worker's
//! panic report, a pool's task error) or [`SourceMap::rendered`](source_map::SourceMap::rendered)
//! (rustc's message, whose snippets are renumbered too), as `cell [3], line 2, column 9`.
//!
//! - `cell`: a cell's code split into statements and items as evcxr splits it.
//! - `source_map`: the map from one compile's lines to the cells; locations in text.
//! - `rendered`: rustc's rendered message with its snippets renumbered.
//! - `colour`: rustc's message coloured as on a terminal.
//! - `locator`: the compiles that may still run code, each with its map.

mod cell;
mod colour;
mod locator;
mod rendered;
mod source_map;

pub use cell::{Cell, Label};
pub use colour::colour;
pub use locator::Locator;
pub use source_map::FILE;
