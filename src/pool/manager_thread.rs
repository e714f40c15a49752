//! Which thread is a pool's manager thread (where its callbacks run): a wait there for that pool's
//! own results would never end, so the waits ask first. A leaf, so that the results and the
//! manager need not know each other.

use std::cell::Cell;

thread_local! {
    /// On a pool's manager thread: that pool's id (0 elsewhere).
    static MANAGER_OF: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as the manager thread of pool `id`.
pub(crate) fn enter(id: usize) {
    MANAGER_OF.with(|m| m.set(id));
}

/// True on the manager thread of pool `id`.
pub(crate) fn on_manager_thread_of(id: usize) -> bool {
    MANAGER_OF.with(Cell::get) == id
}
