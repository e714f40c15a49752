//! The spawn start method, the worker's side: a process started by exec with [`WORKER_ENV`] set
//! becomes a pool worker from the library's load-time constructor, before `main`, and exits
//! when the pool lets it go. It learns who it is from the first frame ([`Setup`]), runs its
//! initializer, and finds each task's function by the [`CodeRef`] the pool defined it with.

// The worker's side where the library was loaded at run time (a notebook): it stages the
// library, then runs this module's loop in the staged copy (C ABI, hence unsafe code).
#[allow(unsafe_code)]
mod host;

use super::spawn::{DEFINE, Define, ENTER, OBJECT, Object, SETUP, Setup, WORKER_ENV, WORKER_FD};
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
/// the objects it was sent, staged in its own directory. An object that could not be staged
/// (too big for the disk, say) fails only the functions in it or in an object that needs it.
#[derive(Default)]
pub(super) struct Table {
    functions: HashMap<u64, Result<Trampoline, (String, String)>>,
    pub(super) stage: Option<Stage>,
    pub(super) staged: HashMap<BuildId, PathBuf>,
    /// The objects that could not be staged, by build-id: their name, and the error.
    failed: HashMap<BuildId, (String, (String, String))>,
    /// Why an object frame could not be read (which object it was is not known then).
    unreadable: Option<(String, String)>,
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
        let object: Object = match codec::decode(payload) {
            Ok(object) => object,
            Err(e) => {
                self.unreadable
                    .get_or_insert_with(|| ("an object sent".into(), e.to_string()));
                return;
            }
        };
        let staged = (|| {
            if self.stage.is_none() {
                self.stage = Some(Stage::new()?);
            }
            let stage = self
                .stage
                .as_ref()
                .ok_or_else(|| Error::Broken("no stage".into()))?;
            stage.write(&object.name, &object.build_id, &object.bytes)
        })();
        match staged {
            Ok(path) => {
                self.staged.insert(object.build_id, path);
            }
            Err(e) => {
                let error = match e {
                    Error::CodeLoad { object, message } => (object, message),
                    other => (object.name.clone(), other.to_string()),
                };
                self.failed.insert(object.build_id, (object.name, error));
            }
        }
    }

    /// Why object `build_id` cannot be loaded, if it was sent and could not be staged.
    pub(super) fn stage_failure(&self, build_id: &BuildId) -> Option<(String, String)> {
        self.failed.get(build_id).map(|(_, e)| e.clone())
    }

    /// Why an object is not staged when it was not sent as far as this table knows: an object
    /// frame that could not be read may have been it.
    pub(super) fn unreadable(&self) -> Option<(String, String)> {
        self.unreadable.clone()
    }

    /// A staged object failed to load with `error` (the object, the loader's message): if the
    /// loader names an object it needs that could not be staged, that object's error, which
    /// says why.
    pub(super) fn explain(&self, error: (String, String)) -> (String, String) {
        match self
            .failed
            .values()
            .find(|(name, _)| error.1.contains(&format!("{name}: ")))
        {
            Some((_, (object, message))) => (
                object.clone(),
                format!(
                    "could not be staged: {message}; {} needs it: {}",
                    error.0, error.1
                ),
            ),
            None => error,
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
        if let Some(e) = self.stage_failure(&code.build_id) {
            return Err(e);
        }
        let (Some(stage), Some(path)) = (&self.stage, self.staged.get(&code.build_id)) else {
            // Not sent: resolving says it is not loaded.
            return self.unreadable().map_or(Ok(()), Err);
        };
        stage
            .load(path)
            .map(|_| ())
            .map_err(|e| self.explain(code_error(code, e)))
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
            ENTER => return host::enter(fd, &payload, table),
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
/// A cluster pool's workers (`cluster`) need no host here: `rustmp-mpi` on the ranks is one.
pub(crate) fn check_program(cluster: bool) -> Result<Option<code::LoadedObject>> {
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
    if cluster {
        return Ok(Some(object));
    }
    let spawn_host = std::env::var_os(crate::host::SPAWN_HOST_ENV);
    if spawn_host
        .as_deref()
        .is_some_and(|v| names_this_program(v, &main))
    {
        return Ok(Some(object));
    }
    let host = match spawn_host {
        Some(v) if !v.is_empty() => format!(
            "{} is {}, another program: inherited from the program that started this one?",
            crate::host::SPAWN_HOST_ENV,
            std::path::Path::new(&v).display()
        ),
        _ => format!(
            "{} is not set; the rustmp kernel sets it",
            crate::host::SPAWN_HOST_ENV
        ),
    };
    Err(Error::InvalidArgument(format!(
        "StartMethod::Spawn starts this program ({}) again, but it does not contain this \
         multiprocessing library ({}), which was loaded at run time, and it does not say it can \
         host spawn workers ({host}): use StartMethod::Fork",
        main.path().display(),
        object.path().display(),
    )))
}

/// Whether `value`, of [`crate::host::SPAWN_HOST_ENV`], names this program (`main`): the file
/// `/proc/self/exe` is, or one with its build-id. The variable is inherited by everything the
/// host starts, which must not take it for itself: exec'd again, such a program would do
/// what it does by default instead of becoming a worker.
fn names_this_program(value: &std::ffi::OsStr, main: &code::LoadedObject) -> bool {
    if value.is_empty() {
        return false;
    }
    let named = std::path::Path::new(value);
    let Ok(named) = std::fs::canonicalize(named) else {
        return false;
    };
    if std::fs::canonicalize("/proc/self/exe").is_ok_and(|exe| exe == named) {
        return true;
    }
    main.build_id()
        .is_some_and(|id| code::build_id_of_file(&named).is_ok_and(|n| n.as_ref() == Some(id)))
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

    /// The variable is inherited by everything a host starts: only the program it names is one.
    #[test]
    fn only_the_program_the_spawn_host_variable_names_is_a_spawn_host() {
        let main = code::loaded_objects().remove(0);
        let me = std::env::current_exe().unwrap();
        assert!(names_this_program(me.as_os_str(), &main));
        assert!(!names_this_program("/bin/sh".as_ref(), &main));
        assert!(!names_this_program("1".as_ref(), &main));
        assert!(!names_this_program("".as_ref(), &main));
    }

    #[test]
    fn a_function_in_an_object_that_is_not_loaded_answers_with_the_objects_name() {
        let mut table = Table::default();
        define(&mut table, 1, &[0xde, 0xad, 0xbe, 0xef], "libcode_3.so");
        let (object, message) = error_of(&mut table, 1);
        assert_eq!(object, "libcode_3.so (build-id deadbeef)");
        assert!(
            message.starts_with("no object with this build-id is loaded"),
            "{message}"
        );
        // A number never defined.
        assert_eq!(error_of(&mut table, 2).0, "function #2");
    }

    fn define(table: &mut Table, fnid: u64, build_id: &[u8], object: &str) {
        let def = Define {
            fnid,
            code: CodeRef {
                build_id: BuildId::new(build_id.to_vec()),
                offset: 0x1000,
                object: object.into(),
            },
        };
        let mut payload = Vec::new();
        codec::encode_into(&def, &mut payload).unwrap();
        table.control(DEFINE, &payload);
    }

    fn error_of(table: &mut Table, fnid: u64) -> (String, String) {
        let mut out = Vec::new();
        assert_eq!(table.lookup(fnid, &mut out).err(), Some(STATUS_CODE_ERROR));
        codec::decode(&out).unwrap()
    }

    /// One object that cannot be staged (too big for the disk, say) fails the functions in it,
    /// not the worker's others.
    #[test]
    fn an_object_that_cannot_be_staged_fails_only_the_functions_in_it() {
        let mut table = Table::with_stage(Stage::new().unwrap());
        let object = Object {
            build_id: BuildId::new(vec![1, 2, 3, 4]),
            name: "libcode_2-01020304.so".into(),
            bytes: b"not an ELF object".to_vec(),
        };
        let mut payload = Vec::new();
        codec::encode_into(&object, &mut payload).unwrap();
        table.control(OBJECT, &payload);
        define(&mut table, 1, &[1, 2, 3, 4], "libcode_2.so");
        define(&mut table, 2, &[5, 6, 7, 8], "libcode_3.so");
        let (object, message) = error_of(&mut table, 1);
        assert!(object.ends_with("/libcode_2-01020304.so"), "{object}");
        assert!(message.contains("build-id none, not 01020304"), "{message}");
        let (object, message) = error_of(&mut table, 2);
        assert_eq!(object, "libcode_3.so (build-id 05060708)");
        assert!(
            message.starts_with("no object with this build-id is loaded"),
            "{message}"
        );
        // An object that needs the failed one fails to load: the error says why.
        let (object, message) = table.explain((
            "libcode_3-05060708.so".into(),
            "libcode_2-01020304.so: cannot open shared object file: No such file or directory"
                .into(),
        ));
        assert!(object.ends_with("/libcode_2-01020304.so"), "{object}");
        assert!(
            message.starts_with("could not be staged: the bytes have build-id none")
                && message.contains("; libcode_3-05060708.so needs it: libcode_2-01020304.so: "),
            "{message}"
        );
        // Another failure of it is left as it is.
        let other = (
            "libcode_3.so".to_string(),
            "undefined symbol: x".to_string(),
        );
        assert_eq!(table.explain(other.clone()), other);
    }
}
