//! A child's panic report shows the child's own frames, as Python shows a child's traceback from
//! its target down: not the panic machinery above them, nor the parent's stack that the fork
//! copied below them.

use multiprocessing::Process;
use std::io::Read;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe the child's report goes to (a fn item, not a closure, is the child's target, so that
/// no frame of the child is named after the parent's functions).
static REPORT_PIPE: AtomicI32 = AtomicI32::new(-1);

fn child_target() {
    let fd: RawFd = REPORT_PIPE.load(Ordering::SeqCst);
    // SAFETY: the parent keeps the pipe's write end open until the child has been started, and
    // the fork gave the child its own copy, open for its whole life.
    let pipe = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::unistd::dup2_stderr(pipe).unwrap();
    child_frame_that_panics();
}

#[inline(never)]
fn child_frame_that_panics() {
    panic!("bad value 7");
}

/// The parent's frame below `start`: it must not appear in the child's report.
#[inline(never)]
fn parent_frame_below_start() -> Process {
    let mut p = Process::new(child_target);
    p.start().unwrap();
    p
}

#[test]
fn a_childs_panic_report_holds_its_frames_and_not_the_parents() {
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    REPORT_PIPE.store(
        std::os::fd::AsRawFd::as_raw_fd(&write_end),
        Ordering::SeqCst,
    );
    let mut p = parent_frame_below_start();
    drop(write_end);
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(1));
    let mut report = String::new();
    std::fs::File::from(read_end)
        .read_to_string(&mut report)
        .unwrap();
    assert!(report.starts_with("Process Process-1:\n"), "{report}");
    assert!(report.contains("bad value 7"), "{report}");
    let (_, frames) = report.split_once("stack backtrace:\n").expect(&report);
    let first = frames.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("panic_report::child_frame_that_panics"),
        "the report does not start at the child's code:\n{report}"
    );
    // Below the child's code: the library's fork (on this thread or, as here under the test
    // harness's threads, on the library's forker thread) and what called it.
    for below in [
        "parent_frame_below_start",
        "multiprocessing::runtime",
        "std::thread",
    ] {
        assert!(
            !report.contains(below),
            "frames from below the fork ({below}) are in the child's report:\n{report}"
        );
    }
}
