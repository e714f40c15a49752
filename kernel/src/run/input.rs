//! Answering a cell's `rustmp_display::input` from the terminal (echo off for a password).

use super::echo::AT_LINE_START;
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::io::Write;
use std::sync::atomic::Ordering;

/// Answers a cell's `rustmp_display::input`: from the terminal when stdin is one (the prompt
/// shown, the typed line without its newline; not echoed for a password); otherwise an empty
/// answer and one warning line on stderr, so a run never waits for input that cannot come.
pub(super) fn read_answer(cell: usize, prompt: &str, password: bool) -> String {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        println!("{prompt}");
        AT_LINE_START.store(true, Ordering::SeqCst);
        eprintln!(
            "rustmp run: cell {cell} asked for input ({prompt:?}); stdin is not a terminal, \
             answered with an empty line"
        );
        return String::new();
    }
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let echo = password.then(EchoOff::new);
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    if echo.is_some() {
        println!();
    }
    drop(echo);
    AT_LINE_START.store(true, Ordering::SeqCst);
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
}

/// Turns the terminal's echo off (for a password) until dropped.
struct EchoOff(Option<Termios>);

impl EchoOff {
    fn new() -> EchoOff {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return EchoOff(None);
        };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        if termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet).is_err() {
            return EchoOff(None);
        }
        EchoOff(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}
