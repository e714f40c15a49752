//! The spawn start method, the worker's side: a process started by exec with [`WORKER_ENV`] set
//! becomes a pool worker from the library's load-time constructor, before `main`, and exits
//! when the pool lets it go. It learns who it is from the first frame ([`Setup`]), runs its
//! initializer, and finds each task's function by the [`CodeRef`] the pool defined it with.

use super::spawn::{DEFINE, Define, ENTER, OBJECT, Object, SETUP, Setup, WORKER_ENV, WORKER_FD};
use super::spawn_host;
use super::task::{self, STATUS_CODE_ERROR, STATUS_READY, Trampoline};
use super::worker::{self, CONTROL, Functions, HEADER};
use crate::code::{self, BuildId, CodeRef, Stage};
use crate::codec;
use crate::error::{Error, Result};
use crate::panic::PanicWire;
use crate::sys;
use std::collections::HashMap;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::PathBuf;

/// The functions a spawn worker was told about: each resolved in this process once, when
/// defined (an unloadable one keeps its error, sent back with each task that names it); and
/// the objects it was sent, staged in its own directory.
#[derive(Default)]
pub(super) struct Table {
    functions: HashMap<u64, Result<Trampoline, (String, String)>>,
    pub(super) stage: Option<Stage>,
    pub(super) staged: HashMap<BuildId, PathBuf>,
    /// The first object that could not be staged, and why.
    pub(super) stage_error: Option<(String, String)>,
}

pub(super) fn code_error(code: &CodeRef, e: crate::Error) -> (String, String) {
    match e {
        crate::Error::CodeLoad { object, message } => (object, message),
        other => (
            format!("{} (build-id {})", code.object, code.build_id),
            other.to_string(),
        ),
    }
}

impl Table {
    /// A table whose objects are staged in `stage`.
    pub(super) fn with_stage(stage: Stage) -> Table {
        Table {
            stage: Some(stage),
            ..Table::default()
        }
    }

    /// Writes an object that was sent into the stage (made at the first).
    fn stage_object(&mut self, payload: &[u8]) {
        let staged = (|| {
            let object: Object = codec::decode(payload)?;
            if self.stage.is_none() {
                self.stage = Some(Stage::new()?);
            }
            let stage = self
                .stage
                .as_ref()
                .ok_or_else(|| Error::Broken("no stage".into()))?;
            let path = stage.write(&object.name, &object.build_id, &object.bytes)?;
            self.staged.insert(object.build_id, path);
            Ok::<(), Error>(())
        })();
        if let Err(e) = staged
            && self.stage_error.is_none()
        {
            self.stage_error = Some(match e {
                Error::CodeLoad { object, message } => (object, message),
                other => ("a staged object".into(), other.to_string()),
            });
        }
    }

    /// Loads the staged object `code` is in, unless it is loaded already.
    fn ensure_loaded(&self, code: &CodeRef) -> std::result::Result<(), (String, String)> {
        if code::loaded_objects()
            .iter()
            .any(|o| o.build_id() == Some(&code.build_id))
        {
            return Ok(());
        }
        if let Some(e) = &self.stage_error {
            return Err(e.clone());
        }
        let (Some(stage), Some(path)) = (&self.stage, self.staged.get(&code.build_id)) else {
            return Ok(()); // not sent: resolving says it is not loaded
        };
        stage
            .load(path)
            .map(|_| ())
            .map_err(|e| code_error(code, e))
    }
}

impl Functions for Table {
    fn control(&mut self, kind: u64, payload: &[u8]) {
        match kind {
            OBJECT => self.stage_object(payload),
            DEFINE => {
                if let Ok(def) = codec::decode::<Define>(payload) {
                    let resolved = self.ensure_loaded(&def.code).and_then(|()| {
                        task::trampoline_at(&def.code).map_err(|e| code_error(&def.code, e))
                    });
                    self.functions.insert(def.fnid, resolved);
                }
            }
            _ => {}
        }
    }

    fn lookup(&mut self, func: u64, out: &mut Vec<u8>) -> Result<Trampoline, u64> {
        let error = match self.functions.get(&func) {
            Some(Ok(f)) => return Ok(*f),
            Some(Err(e)) => e.clone(),
            None => (
                format!("function #{func}"),
                "the pool sent a task for a function it never defined".to_string(),
            ),
        };
        let _ = codec::encode_into(&error, out);
        Err(STATUS_CODE_ERROR)
    }
}

/// Reads one control frame from the manager: its kind and payload.
fn read_control(fd: RawFd) -> Option<(u64, Vec<u8>)> {
    let mut head = [0u8; HEADER];
    if !matches!(sys::recv_exact_blocking(fd, &mut head), Ok(true)) {
        return None;
    }
    let (len, job, kind, _) = worker::parse_header(&head);
    if job != CONTROL || len > (1 << 30) {
        return None;
    }
    let mut payload = vec![0u8; len as usize];
    matches!(sys::recv_exact_blocking(fd, &mut payload), Ok(true)).then_some((kind, payload))
}

/// The worker's life, from its first frame: objects to stage, then either its [`Setup`] (the
/// worker loop runs in this copy of the library) or [`super::spawn::Enter`] (it runs in the
/// staged one). Returns the exit code.
pub(super) fn serve_from(fd: RawFd, mut table: Table) -> i32 {
    let _ = sys::exec::set_cloexec(fd);
    // Rust's `main` would have done it (and a forked worker inherits it).
    sys::exec::ignore_sigpipe();
    loop {
        let Some((kind, payload)) = read_control(fd) else {
            return 1;
        };
        match kind {
            SETUP => return start(fd, &payload, table),
            ENTER => return spawn_host::enter(fd, &payload, table),
            OBJECT | DEFINE => table.control(kind, &payload),
            _ => return 1,
        }
    }
}

/// The worker loop, in this copy of the library: who it is, its initializer, then its tasks.
fn start(fd: RawFd, setup: &[u8], mut table: Table) -> i32 {
    let Ok(setup) = codec::decode::<Setup>(setup) else {
        return 1;
    };
    crate::runtime::become_spawned_worker(
        setup.name,
        setup.identity,
        (setup.parent_name, setup.parent_pid),
    );
    crate::panic::mark_pool_worker();
    if let Some(code) = &setup.init {
        let init = match table
            .ensure_loaded(code)
            .map_err(|(object, message)| Error::CodeLoad { object, message })
            .and_then(|()| task::init_at(code))
        {
            Ok(f) => f,
            Err(e) => {
                let wire = PanicWire {
                    message: format!("the initializer cannot run in a spawn worker: {e}"),
                    location: None,
                    backtrace: String::new(),
                };
                return worker::init_failed(fd, &wire);
            }
        };
        if let Err(wire) = crate::panic::catch(init) {
            return worker::init_failed(fd, &wire);
        }
    }
    sys::flush_std();
    if !matches!(worker::send_frame(fd, 0, 0, STATUS_READY, &[]), Ok(true)) {
        return 0;
    }
    worker::serve(fd, &mut table)
}

/// The library's load-time constructor for spawn workers: does nothing in any other process.
extern "C" fn on_load() {
    let Some(value) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    // Not inherited by what the worker's tasks may exec.
    sys::exec::remove_env_before_main(c"MULTIPROCESSING_SPAWN_WORKER");
    if value.to_str() != Some(&WORKER_FD.to_string()) {
        return;
    }
    let Some(fd) = sys::process::adopt_inherited_fd(WORKER_FD) else {
        return;
    };
    // Kept for the life of the process.
    let fd = fd.into_raw_fd();
    let code = serve_from(fd, Table::default());
    crate::runtime::exit_child(code)
}

// A constructor (the `.init_array` entry the loader calls before `main`).
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// Checks, at `build`, that this program can be started again as a worker, and how: `None` if
/// the library (its load-time constructor) is part of the program (the worker loop runs in it);
/// the library's object if it was loaded at run time (as in a notebook, whose executable is the
/// kernel's) and the program is a spawn host ([`crate::host::SPAWN_HOST_ENV`]): the workers are
/// then sent that object and the objects it needs, and run the worker loop in their copy of it.
pub(crate) fn check_program() -> Result<Option<code::LoadedObject>> {
    let (_, object) = code::locate(entry_address())?;
    let main = code::loaded_objects().remove(0);
    // Started through another program (`ld.so ./prog`, valgrind): exec of /proc/self/exe
    // would start that one, not this program.
    let exe = std::path::Path::new("/proc/self/exe");
    if let Ok(Some(id)) = code::build_id_of_file(exe)
        && Some(&id) != main.build_id()
    {
        return Err(Error::InvalidArgument(format!(
            "StartMethod::Spawn starts this program again through /proc/self/exe, which is \
             {} here, not this program: it was started through another program (the dynamic \
             loader?); use StartMethod::Fork",
            std::fs::read_link(exe).map_or_else(|_| "?".into(), |p| p.display().to_string()),
        )));
    }
    if object.is_main_program() {
        return Ok(None);
    }
    if code::closure(&main)
        .iter()
        .any(|o| o.build_id() == object.build_id())
    {
        return Ok(None);
    }
    if std::env::var_os(crate::host::SPAWN_HOST_ENV).is_some_and(|v| !v.is_empty()) {
        return Ok(Some(object));
    }
    Err(Error::InvalidArgument(format!(
        "StartMethod::Spawn starts this program ({}) again, but it does not contain this \
         multiprocessing library ({}), which was loaded at run time, and it does not say it can \
         host spawn workers ({} is not set; the rustmp kernel sets it): use StartMethod::Fork",
        main.path().display(),
        object.path().display(),
        crate::host::SPAWN_HOST_ENV,
    )))
}

/// The constructor's address: what the parent checks is in the program it will exec (and a
/// use of it, so the linker keeps it in every program that starts spawn pools).
pub(crate) fn entry_address() -> usize {
    *std::hint::black_box(&ON_LOAD) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::BuildId;

    #[test]
    fn a_function_in_an_object_that_is_not_loaded_answers_with_the_objects_name() {
        let mut table = Table::default();
        let def = Define {
            fnid: 1,
            code: CodeRef {
                build_id: BuildId::new(vec![0xde, 0xad, 0xbe, 0xef]),
                offset: 0x1000,
                object: "libcode_3.so".into(),
            },
        };
        let mut payload = Vec::new();
        codec::encode_into(&def, &mut payload).unwrap();
        table.control(DEFINE, &payload);
        let mut out = Vec::new();
        assert_eq!(table.lookup(1, &mut out).err(), Some(STATUS_CODE_ERROR));
        let (object, message): (String, String) = codec::decode(&out).unwrap();
        assert_eq!(object, "libcode_3.so (build-id deadbeef)");
        assert!(
            message.starts_with("no object with this build-id is loaded"),
            "{message}"
        );
        // A number never defined.
        out.clear();
        assert_eq!(table.lookup(2, &mut out).err(), Some(STATUS_CODE_ERROR));
    }
}
