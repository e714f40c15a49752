//! The evcxr runtime process's side of output capture (runs in the runtime, before evcxr's loop).
//!
//! evcxr runs cells in a subprocess (this binary, re-executed) whose stdout is a pipe that carries
//! both the cells' output and evcxr's control lines (`EVCXR_EXECUTION_COMPLETE`, …), parsed line by
//! line: a `print!` without a newline glues onto the next control line, and bytes that are not
//! UTF-8 break it. So before evcxr's loop starts, [`install`]:
//!
//! 1. keeps evcxr's pipe for control lines only (a private fd);
//! 2. gives this process its own output pipes, registered with the kernel like any child of the
//!    multiprocessing library (see `multiprocessing::host`): stderr goes straight there, stdout
//!    through a relay thread that moves evcxr's control lines to evcxr's pipe and everything else,
//!    byte for byte, to the kernel;
//! 3. exports the registration socket and the interrupt opt-in to the library through the
//!    environment, so every child gets pipes of its own and SIGINT interrupts blocking calls;
//! 4. at the end of each cell, flushes the cells' stdout (a different std, `libstd.so`) through the
//!    hook `rustmp_display` registers, so a partial line is not left behind.

#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(
    unsafe_code,
    reason = "the environment set before threads start; the flush hook's address"
)]

use super::sys;
use multiprocessing::host::{record, send_fds};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, dup2_stderr, dup2_stdout, getppid, pipe2};
use std::io::{Read, Write};
use std::os::fd::{AsFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The fd number at which the runtime finds the kernel's output-registration socket.
pub const OUTPUT_SOCKET_FD: RawFd = 100;
/// Environment variable telling the runtime that the kernel set up [`OUTPUT_SOCKET_FD`].
pub const CAPTURE_ENV: &str = "RUSTMP_CAPTURE";
/// The name the runtime registers its own pipes under.
pub const RUNTIME_NAME: &str = "rustmp-runtime";
/// The kind of the record after which the kernel's stream parser treats a panic report as the
/// cell's (evcxr says `EVCXR_PANIC_NOTIFICATION`).
pub const CELL_PANIC: &str = "cellpanic";
/// The kind of the record told to the kernel when the cell's code returned an error through `?`
/// (evcxr says `EVCXR_ERROR_OCCURRED` after its handler printed the error; see
/// [`QUESTION_MARK_HOOK`]).
pub const CELL_ERROR: &str = "cellerror";
/// Imported into the cells' crate at start (evcxr keeps it, as it keeps any item): an
/// `eprintln!` that shadows std's in the crate's root module, where evcxr puts its `?` handler,
/// `impl<T: Display> From<T> for EvcxrUserCodeError`, whose `eprintln!("{}", error)` would put
/// the message on stderr, where the kernel cannot tell it from the cell's own lines. There (and
/// only there: the name of the function it expands in says so) it sends the message as a
/// `cellerrormsg` record instead, which the kernel shows once, as the cell's error output. Every
/// other use is std's `eprintln!`. A cell that defines an item named `eprintln` replaces it: the
/// kernel then falls back to the last line of stderr (which then also shows the message).
pub const QUESTION_MARK_HOOK: &str = "use rustmp_display::__eprintln as eprintln;";

/// Where `rustmp_display` stores its flush function (its address is passed in the environment).
static FLUSH_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Sets the runtime process up; a no-op unless the kernel asked for capture.
pub fn install() {
    if std::env::var_os(CAPTURE_ENV).is_none() {
        return;
    }
    // SIGINT before the library is loaded must not kill the runtime (its variables).
    sys::ignore_sigint_until_handled();
    // Every descriptor is owned as soon as it exists, so that a failure on the way closes what
    // was made before it.
    let Ok(ctrl) = sys::dup_above(std::io::stdout().as_fd(), 10) else {
        return;
    };
    // The runtime's own pipes: registered with the kernel exactly as the library does it.
    let pipe = || pipe2(OFlag::O_CLOEXEC).ok();
    let (Some((user_r, user_w)), Some((err_r, err_w)), Some((relay_r, relay_w))) =
        (pipe(), pipe(), pipe())
    else {
        return;
    };
    // The runtime's registration, as `multiprocessing::host` children send theirs: its pid,
    // its name, `[stdout, stderr]` read ends.
    let Some(socket) = sys::inherited(OUTPUT_SOCKET_FD) else {
        return;
    };
    let mut payload = std::process::id().to_le_bytes().to_vec();
    payload.extend_from_slice(RUNTIME_NAME.as_bytes());
    if send_fds(socket, &payload, &[user_r.as_fd(), err_r.as_fd()]).is_err() {
        return;
    }
    drop((user_r, err_r));
    let _ = dup2_stdout(&relay_w);
    drop(relay_w);
    let _ = dup2_stderr(&err_w);
    drop(err_w);
    let relay_in = std::fs::File::from(relay_r);
    let user_out = std::fs::File::from(user_w);
    let ctrl_out = std::fs::File::from(ctrl);
    // SAFETY: called first thing in main, before any other thread exists (the threads below
    // start after it).
    unsafe {
        std::env::set_var(
            "MULTIPROCESSING_OUTPUT_SOCKET",
            OUTPUT_SOCKET_FD.to_string(),
        );
        std::env::set_var("MULTIPROCESSING_SIGINT", "interrupt");
        std::env::set_var(
            "RUSTMP_RUNTIME_HOOKS",
            // With this process's pid: the address is valid here only, not in a process that
            // inherits the variable (a spawn pool worker loads rustmp_display with the cells).
            format!(
                "{}:{:x}",
                std::process::id(),
                &FLUSH_HOOK as *const AtomicUsize as usize
            ),
        );
    }
    let _ = std::thread::Builder::new()
        .name("rustmp-relay".into())
        .spawn(move || relay_loop(relay_in, user_out, ctrl_out));
    let kernel = getppid();
    let _ = std::thread::Builder::new()
        .name("rustmp-watch".into())
        .spawn(move || watch_kernel(kernel));
}

/// Ends this process group (the runtime and every child it forked) once the kernel is gone.
fn watch_kernel(kernel: Pid) {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if getppid() != kernel {
            // Pid 0: this process's group.
            let _ = kill(Pid::from_raw(0), Signal::SIGKILL);
            sys::exit_now(1);
        }
    }
}

const MARK: &[u8] = b"EVCXR_";

/// Splits the runtime's stdout: evcxr's control lines to `ctrl`, everything else to `user`.
fn relay_loop(mut input: std::fs::File, mut user: std::fs::File, mut ctrl: std::fs::File) {
    let mut splitter = Splitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for piece in splitter.push(&buf[..n]) {
            match piece {
                Piece::User(bytes) => {
                    let _ = user.write_all(&bytes);
                }
                Piece::Control(line) => {
                    if line.starts_with(b"EVCXR_EXECUTION_COMPLETE") {
                        finish_cell(&mut input, &mut splitter, &mut user, &mut ctrl);
                    } else if line.starts_with(b"EVCXR_PANIC_NOTIFICATION") {
                        let _ = user.write_all(&record::encode(CELL_PANIC, record::EMPTY));
                    } else if line.starts_with(b"EVCXR_ERROR_OCCURRED") {
                        let _ = user.write_all(&record::encode(CELL_ERROR, record::EMPTY));
                    }
                    let _ = ctrl.write_all(&line);
                }
            }
        }
    }
}

/// At the end of a cell: flush what the cell left in its stdout buffer and pass it on before
/// evcxr learns the cell is complete.
fn finish_cell(
    input: &mut std::fs::File,
    splitter: &mut Splitter,
    user: &mut std::fs::File,
    ctrl: &mut std::fs::File,
) {
    let hook = FLUSH_HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: rustmp_display stored the address of its `extern "C" fn()` flush function.
        let flush: extern "C" fn() = unsafe { std::mem::transmute::<usize, extern "C" fn()>(hook) };
        flush();
    }
    // Read what the flush (or a late write) put in the pipe, without blocking.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut p = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0) {
            break;
        }
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in splitter.push(&buf[..n]) {
            forward(piece, user, ctrl);
        }
    }
    let _ = user.write_all(&splitter.flush_user());
}

fn forward(piece: Piece, user: &mut std::fs::File, ctrl: &mut std::fs::File) {
    let _ = match piece {
        Piece::User(bytes) => user.write_all(&bytes),
        Piece::Control(line) => ctrl.write_all(&line),
    };
}

/// A piece of the runtime's stdout.
#[derive(Debug, PartialEq)]
pub enum Piece {
    /// Bytes a cell wrote.
    User(Vec<u8>),
    /// One evcxr control line (or a whole `EVCXR_BEGIN_CONTENT` … `EVCXR_END_CONTENT` block),
    /// with its newline.
    Control(Vec<u8>),
}

/// Separates evcxr's control lines from user bytes, wherever a control line starts.
#[derive(Default)]
pub struct Splitter {
    pending: Vec<u8>,
}

impl Splitter {
    /// Takes more bytes; returns the pieces that are complete.
    pub fn push(&mut self, data: &[u8]) -> Vec<Piece> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            match find(&self.pending, MARK) {
                None => {
                    // Keep a tail that could be the start of a marker.
                    let keep = partial_suffix(&self.pending, MARK);
                    let cut = self.pending.len() - keep;
                    if cut > 0 {
                        out.push(Piece::User(self.pending.drain(..cut).collect()));
                    }
                    return out;
                }
                Some(at) => {
                    if at > 0 {
                        out.push(Piece::User(self.pending.drain(..at).collect()));
                    }
                    let block = self.pending.starts_with(b"EVCXR_BEGIN_CONTENT");
                    let end = if block {
                        find(&self.pending, b"EVCXR_END_CONTENT\n")
                            .map(|e| e + b"EVCXR_END_CONTENT\n".len())
                    } else {
                        self.pending.iter().position(|&b| b == b'\n').map(|e| e + 1)
                    };
                    match end {
                        Some(e) => out.push(Piece::Control(self.pending.drain(..e).collect())),
                        None => return out,
                    }
                }
            }
        }
    }

    /// Gives up the held tail as user bytes (at the end of a cell).
    pub fn flush_user(&mut self) -> Vec<u8> {
        if find(&self.pending, MARK).is_some() {
            return Vec::new();
        }
        std::mem::take(&mut self.pending)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest suffix of `hay` that is a proper prefix of `needle`.
fn partial_suffix(hay: &[u8], needle: &[u8]) -> usize {
    (1..needle.len().min(hay.len() + 1))
        .rev()
        .find(|&k| hay.ends_with(&needle[..k]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_pipe_at_start_leaves_nothing_open() {
        use crate::fd_test::{in_child, is_open, limit_to, lowest_free};
        // Room for the control descriptor (10 or above) and the first pipe only: the second
        // pipe fails.
        let code = in_child(|| {
            // SAFETY: the forked child has one thread.
            unsafe { std::env::set_var(CAPTURE_ENV, "1") };
            let ctrl = (10..).find(|&fd| !is_open(fd)).unwrap_or(10);
            let room: Vec<RawFd> = lowest_free(2);
            // Every other free number below the control descriptor is taken.
            for fd in (0..ctrl).filter(|fd| !room.contains(fd) && !is_open(*fd)) {
                // Left open: the number stays taken.
                let _ = nix::fcntl::fcntl(std::io::stdin(), nix::fcntl::FcntlArg::F_DUPFD(fd));
            }
            limit_to(ctrl + 1);
            install();
            let open: Vec<RawFd> = room
                .iter()
                .copied()
                .chain([ctrl])
                .filter(|&fd| is_open(fd))
                .collect();
            i32::from(!open.is_empty())
        });
        assert_eq!(code, 0, "a pipe or the control descriptor leaked");
    }

    fn user(s: &str) -> Piece {
        Piece::User(s.as_bytes().to_vec())
    }
    fn ctrl(s: &str) -> Piece {
        Piece::Control(s.as_bytes().to_vec())
    }

    #[test]
    fn a_partial_line_glued_to_a_marker_is_split_off() {
        let mut s = Splitter::default();
        assert_eq!(
            s.push(b"no newlineEVCXR_EXECUTION_COMPLETE\n"),
            vec![user("no newline"), ctrl("EVCXR_EXECUTION_COMPLETE\n")]
        );
    }

    #[test]
    fn markers_split_across_reads_and_content_blocks() {
        let mut s = Splitter::default();
        assert_eq!(s.push(b"abc\nEVC"), vec![user("abc\n")]);
        assert_eq!(s.push(b"XR_BEGIN_CONTENT text/plain\n42\n"), vec![]);
        assert_eq!(
            s.push(b"EVCXR_END_CONTENT\ntail"),
            vec![
                ctrl("EVCXR_BEGIN_CONTENT text/plain\n42\nEVCXR_END_CONTENT\n"),
                user("tail")
            ]
        );
        assert_eq!(
            s.push(b"\xff\xfe binary"),
            vec![Piece::User(b"\xff\xfe binary".to_vec())]
        );
        assert_eq!(s.flush_user(), Vec::<u8>::new());
    }
}
