//! The spawn start method for a library loaded at run time (a notebook's), the worker's side: the
//! program (the kernel's executable, whose own copy of this library became the worker before its
//! `main`) has staged the library and the objects it needs, as sent; it loads the staged library
//! and calls its worker entry ([`multiprocessing_spawn_worker`]), so that the worker loop, its
//! state (`current_process`, the panic hook) and the tasks' code are the library's that the
//! tasks were compiled against. Only the C ABI crosses between the two copies (they may come
//! from different compilers). If the library cannot be loaded, the worker answers each task with
//! [`crate::Error::CodeLoad`], the loader's message word for word.

use super::Table;
use crate::code::Stage;
use crate::codec;
use crate::pool::spawn::{ENTRY_SYMBOL, Enter};
use crate::pool::spawned;
use crate::pool::task::{STATUS_CODE_ERROR, STATUS_READY, Trampoline};
use crate::pool::worker::{self, Functions};
use crate::sys;
use std::ffi::{CStr, CString, c_char, c_int};
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The worker entry's type.
type Entry = extern "C" fn(c_int, *const c_char) -> c_int;

/// In the program's copy: loads the staged library named by `enter` and runs the worker loop in
/// it (it never returns then). Returns the exit code when the library could not run it.
pub(super) fn enter(fd: RawFd, enter: &[u8], mut table: Table) -> i32 {
    let entry = (|| {
        let enter: Enter = codec::decode(enter).map_err(|e| ("the pool".into(), e.to_string()))?;
        if let Some(e) = table.stage_failure(&enter.build_id) {
            return Err(e);
        }
        let Some(path) = table.staged.get(&enter.build_id) else {
            return Err(table
                .unreadable()
                .unwrap_or((enter.name, "was not sent to the worker".into())));
        };
        let addr = sys::loader::dlopen_symbol(path, ENTRY_SYMBOL)
            .map_err(|m| table.explain((path.display().to_string(), m)))?;
        Ok(addr)
    })();
    let addr = match entry {
        Ok(addr) => addr,
        Err(error) => return serve_failed(fd, error),
    };
    let Some(stage) = table.stage.take() else {
        return 1;
    };
    let Ok(dir) = CString::new(stage.into_path().into_os_string().into_vec()) else {
        return 1;
    };
    // SAFETY: the address is the staged library's `multiprocessing_spawn_worker` (found by its
    // name in that object), an `extern "C"` function of exactly this type (this source).
    let entry = unsafe { std::mem::transmute::<usize, Entry>(addr) };
    entry(fd, dir.as_ptr())
}

/// The library's worker entry, called by the program's copy of the library in a spawn worker:
/// `fd` is the worker's socket, `dir` the staging directory (a NUL-terminated path), which this
/// copy takes over (removed when the worker ends). Never returns but when `dir` is null.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn multiprocessing_spawn_worker(fd: c_int, dir: *const c_char) -> c_int {
    if dir.is_null() {
        return 1;
    }
    // SAFETY: `enter` passes a NUL-terminated string that lives during this call (copied here).
    let dir = PathBuf::from(std::ffi::OsStr::from_bytes(
        unsafe { CStr::from_ptr(dir) }.to_bytes(),
    ));
    let code = spawned::serve_from(fd, Table::with_stage(Stage::adopt(dir)));
    crate::runtime::exit_child(code)
}

/// A worker that cannot run the library: every task gets the loader's error.
struct Failed((String, String));

impl Functions for Failed {
    fn control(&mut self, _kind: u64, _payload: &[u8]) {}

    fn lookup(&mut self, _func: u64, out: &mut Vec<u8>) -> Result<Trampoline, u64> {
        let _ = codec::encode_into(&self.0, out);
        Err(STATUS_CODE_ERROR)
    }
}

/// Says why first (a [`STATUS_CODE_ERROR`] answer to no task, before the worker is ready: a
/// cluster pool's `build` fails with it), then answers each task with it.
fn serve_failed(fd: RawFd, error: (String, String)) -> i32 {
    let mut why = Vec::new();
    let _ = codec::encode_into(&error, &mut why);
    if !matches!(
        worker::send_frame(fd, 0, 0, STATUS_CODE_ERROR, &why),
        Ok(true)
    ) {
        return 0;
    }
    if !matches!(worker::send_frame(fd, 0, 0, STATUS_READY, &[]), Ok(true)) {
        return 0;
    }
    worker::serve(fd, &mut Failed(error))
}
