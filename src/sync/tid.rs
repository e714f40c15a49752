//! The calling thread's kernel thread id, cached: `gettid` is a system call (about 150 ns on a
//! VM), and lock ownership is checked on every acquire and release.

#![deny(unsafe_code)]

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bumped in the child after every `fork` (a `pthread_atfork` handler): the forking thread's
/// cached id belongs to the parent, and the child must ask again.
static FORKS: AtomicU64 = AtomicU64::new(0);
static HANDLER: Once = Once::new();

thread_local! {
    /// `(FORKS when cached, tid)`; tid 0 means "not cached yet".
    static CACHE: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Relaxed);
}

/// This thread's id (unique among the live threads of every process on the machine).
#[inline]
pub(crate) fn tid() -> u32 {
    HANDLER.call_once(|| {
        // The handler only touches an atomic.
        crate::sys::at_fork_in_child(after_fork_in_child);
    });
    let forks = FORKS.load(Relaxed);
    CACHE.with(|c| {
        let (seen, tid) = c.get();
        if seen == forks && tid != 0 {
            return tid;
        }
        let tid = crate::sys::gettid();
        c.set((forks, tid));
        tid
    })
}

#[cfg(test)]
mod tests {
    use super::tid;

    #[test]
    fn matches_gettid_and_differs_per_thread() {
        // `/proc/thread-self` links to `<pid>/task/<tid>`.
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let kernel: u32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        assert_eq!(tid(), kernel);
        let other = std::thread::spawn(tid).join().unwrap();
        assert_ne!(other, tid());
    }
}
