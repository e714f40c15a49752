//! The worker process's side of the pool: read a task, run it, send the answer.

use super::task::{STATUS_ERROR, STATUS_INIT_FAILED, STATUS_READY, Trampoline};
use crate::codec;
use crate::sys;
use std::os::fd::RawFd;
use std::sync::Arc;

/// Size of a task frame's header: payload length, job id, chunk index, function address.
pub(crate) const HEADER: usize = 32;

pub(crate) fn header(len: u64, a: u64, b: u64, c: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..8].copy_from_slice(&len.to_le_bytes());
    h[8..16].copy_from_slice(&a.to_le_bytes());
    h[16..24].copy_from_slice(&b.to_le_bytes());
    h[24..32].copy_from_slice(&c.to_le_bytes());
    h
}

pub(crate) fn parse_header(h: &[u8]) -> (u64, u64, u64, u64) {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(w)
    };
    (word(0), word(8), word(16), word(24))
}

/// Where a worker finds the function a task names by its `func` word.
pub(crate) trait Functions {
    /// A control frame ([`CONTROL`] in the job word; spawn workers only).
    fn control(&mut self, kind: u64, payload: &[u8]);
    /// The trampoline that `func` names, or the status of the error answer whose body has been
    /// written to `out`.
    fn lookup(&mut self, func: u64, out: &mut Vec<u8>) -> Result<Trampoline, u64>;
}

/// The job word of a control frame (manager to worker): the index word is its kind.
pub(crate) const CONTROL: u64 = u64::MAX;

/// A forked worker's functions: `func` is the trampoline's address, the same in the worker.
struct Forked;

impl Functions for Forked {
    fn control(&mut self, _kind: u64, _payload: &[u8]) {}

    fn lookup(&mut self, func: u64, out: &mut Vec<u8>) -> Result<Trampoline, u64> {
        if sys::address_is_loaded(func as usize) {
            // SAFETY: the address is the trampoline the parent took from the same code, which
            // this forked worker has at the same address (checked above to be loaded here).
            Ok(unsafe { std::mem::transmute::<usize, Trampoline>(func as usize) })
        } else {
            let _ = codec::encode_into(
                &format!("the task's function (address {func:#x}) is not loaded in this worker"),
                out,
            );
            Err(STATUS_ERROR)
        }
    }
}

/// A forked worker's main loop. Returns the exit code.
pub(crate) fn run(fd: RawFd, initializer: Option<Arc<dyn Fn() + Send + Sync>>) -> i32 {
    crate::panic::mark_pool_worker();
    if let Some(init) = initializer {
        if let Err(wire) = crate::panic::catch(|| init()) {
            return init_failed(fd, &wire);
        }
        sys::flush_std();
        if !matches!(send_frame(fd, 0, 0, STATUS_READY, &[]), Ok(true)) {
            return 0;
        }
    }
    serve(fd, &mut Forked)
}

/// Reports a failed initializer (the worker exits with the code returned).
pub(crate) fn init_failed(fd: RawFd, wire: &crate::panic::PanicWire) -> i32 {
    let mut out = Vec::new();
    let _ = codec::encode_into(wire, &mut out);
    let _ = send_frame(fd, 0, 0, STATUS_INIT_FAILED, &out);
    1
}

/// Serves tasks until the manager says to exit or closes the socket. Returns the exit code.
pub(crate) fn serve(fd: RawFd, functions: &mut dyn Functions) -> i32 {
    let mut out = Vec::new();
    let mut head = [0u8; HEADER];
    let mut payload = Vec::new();
    loop {
        match sys::recv_exact_blocking(fd, &mut head) {
            Ok(true) => {}
            _ => return 0,
        }
        let (len, job, index, func) = parse_header(&head);
        payload.clear();
        payload.resize(len as usize, 0);
        match sys::recv_exact_blocking(fd, &mut payload) {
            Ok(true) => {}
            _ => return 0,
        }
        if job == CONTROL {
            functions.control(index, &payload);
            continue;
        }
        if func == 0 {
            return 0;
        }
        out.clear();
        let status = match functions.lookup(func, &mut out) {
            Ok(f) => f(&payload, &mut out),
            Err(status) => status,
        };
        sys::flush_std();
        if !matches!(send_frame(fd, job, index, status, &out), Ok(true)) {
            return 0;
        }
        if out.capacity() > (4 << 20) {
            out = Vec::new();
        }
        if payload.capacity() > (4 << 20) {
            payload = Vec::new();
        }
    }
}

pub(crate) fn send_frame(
    fd: RawFd,
    job: u64,
    index: u64,
    status: u64,
    body: &[u8],
) -> crate::Result<bool> {
    let h = header(body.len() as u64, job, index, status);
    if body.len() <= 64 * 1024 {
        let mut frame = Vec::with_capacity(HEADER + body.len());
        frame.extend_from_slice(&h);
        frame.extend_from_slice(body);
        return sys::send_all_blocking(fd, &frame);
    }
    Ok(sys::send_all_blocking(fd, &h)? && sys::send_all_blocking(fd, body)?)
}
