//! [`Stage`]: a private directory where a process writes the objects it must load (code shipped
//! to it as bytes), and loads them from. Where stages go, and which are swept: [`dirs`].

use super::{BuildId, LoadedObject, build_id_of_elf, loaded_objects};
use crate::error::{Error, Result};
use crate::sys;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

mod dirs;
use dirs::{pid_namespace, process_dir_name, sweep};
pub(crate) use dirs::{remove_stages_of, user_dir};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A staging directory of this process:
/// `${XDG_RUNTIME_DIR:-/tmp}/rustmp-<uid>/k<pid>-<pid namespace>/stage-<n>` (see the module),
/// owner-only (0700, and so is each directory above it that the library creates), removed with
/// everything in it when the `Stage` is dropped. Files are written atomically (a temporary file,
/// then a rename), under the name the caller gives, and only if their GNU build-id is the one
/// expected, so a name never silently stands for other code.
///
/// ```
/// use multiprocessing::code::Stage;
/// use std::os::unix::fs::PermissionsExt;
/// let stage = Stage::new().unwrap();
/// let dir = stage.path().to_path_buf();
/// assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
/// drop(stage);
/// assert!(!dir.exists());
/// ```
#[derive(Debug)]
pub struct Stage {
    dir: PathBuf,
    /// The process that made it, the only one that removes it (a forked child's copy does not).
    owner: u32,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn stage_error(object: &Path, e: impl std::fmt::Display) -> Error {
    Error::CodeLoad {
        object: object.display().to_string(),
        message: e.to_string(),
    }
}

/// Creates `dir` (0700) if missing and checks that it is ours and owner-only: a directory under a
/// shared `/tmp` made by someone else must not hold our code.
fn private_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(stage_error(dir, e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| stage_error(dir, e))?;
    if !meta.is_dir() || meta.uid() != sys::exec::getuid() || meta.mode() & 0o077 != 0 {
        return Err(stage_error(
            dir,
            "not a directory owned by this user with mode 0700: refusing to stage code there",
        ));
    }
    Ok(())
}

impl Stage {
    /// Creates a new staging directory (see [`Stage`]).
    ///
    /// ```
    /// let a = multiprocessing::code::Stage::new().unwrap();
    /// let b = multiprocessing::code::Stage::new().unwrap();
    /// assert_ne!(a.path(), b.path());
    /// ```
    pub fn new() -> Result<Stage> {
        let user = user_dir();
        private_dir(&user)?;
        let namespace = pid_namespace();
        if let Some(ns) = namespace {
            sweep(&user, ns);
        }
        let me = std::process::id();
        let process = user.join(match namespace {
            Some(ns) => process_dir_name(me, ns),
            None => format!("k{me}"),
        });
        // The process's directory is made and removed under this lock (see `Drop`).
        let mut live = live_stages();
        private_dir(&process)?;
        // A directory of that name may be left by an earlier process with this pid that was
        // killed: step over it (owner-only; a later process sweeps it once this one is gone).
        let mut attempts = 0;
        let dir = loop {
            let dir = process.join(format!("stage-{}", NEXT.fetch_add(1, Relaxed)));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 1000 => {
                    attempts += 1;
                }
                Err(e) => return Err(stage_error(&dir, e)),
            }
        };
        if live.0 != me {
            *live = (me, 0);
        }
        live.1 += 1;
        Ok(Stage { dir, owner: me })
    }

    /// Gives the directory up without removing it: another copy of this library in the process
    /// (see [`Stage::adopt`]) takes it over.
    pub(crate) fn into_path(self) -> PathBuf {
        let dir = self.dir.clone();
        std::mem::forget(self);
        dir
    }

    /// Takes over a directory a [`Stage`] of another copy of this library in this process gave
    /// up ([`Stage::into_path`]): removed when this one is dropped.
    pub(crate) fn adopt(dir: PathBuf) -> Stage {
        let me = std::process::id();
        let mut live = live_stages();
        if live.0 != me {
            *live = (me, 0);
        }
        live.1 += 1;
        Stage { dir, owner: me }
    }

    /// The directory.
    ///
    /// ```
    /// let stage = multiprocessing::code::Stage::new().unwrap();
    /// assert!(stage.path().is_dir());
    /// ```
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` as `name` in the directory, atomically, if their build-id is `build_id`;
    /// returns the file's path. If `name` is there already with that build-id, it is kept; with
    /// another, that is an error (and nothing is overwritten).
    ///
    /// ```
    /// use multiprocessing::code::{self, Stage};
    /// let main = &code::loaded_objects()[0];
    /// let bytes = std::fs::read(main.path()).unwrap();
    /// let stage = Stage::new().unwrap();
    /// let path = stage.write("program", main.build_id().unwrap(), &bytes).unwrap();
    /// assert_eq!(code::build_id_of_file(&path).unwrap().as_ref(), main.build_id());
    /// assert!(stage.write("other", main.build_id().unwrap(), b"not it").is_err());
    /// ```
    pub fn write(&self, name: &str, build_id: &BuildId, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(stage_error(&path, "not a plain file name"));
        }
        match build_id_of_elf(bytes) {
            Some(id) if &id == build_id => {}
            found => {
                return Err(stage_error(
                    &path,
                    format!(
                        "the bytes have build-id {}, not {build_id}",
                        found.map_or_else(|| "none".into(), |i| i.to_string())
                    ),
                ));
            }
        }
        if path.exists() {
            return match super::build_id_of_file(&path)? {
                Some(id) if &id == build_id => Ok(path),
                _ => Err(stage_error(
                    &path,
                    format!("already staged with another build-id than {build_id}"),
                )),
            };
        }
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        ));
        let written = (|| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o700)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(stage_error(&path, e));
        }
        Ok(path)
    }

    /// Loads the object at `path` (`dlopen` with `RTLD_NOW | RTLD_LOCAL`: every symbol resolved
    /// now, none made visible to later objects) and returns it as loaded. It stays loaded for
    /// the life of the process. A failure is [`Error::CodeLoad`] naming the object, with the
    /// loader's message word for word.
    ///
    /// ```
    /// use multiprocessing::{code::Stage, Error};
    /// let stage = Stage::new().unwrap();
    /// let junk = stage.path().join("libjunk.so");
    /// std::fs::write(&junk, b"junk").unwrap();
    /// match stage.load(&junk) {
    ///     Err(Error::CodeLoad { object, message }) => {
    ///         assert_eq!(object, junk.display().to_string());
    ///         assert!(message.contains("libjunk.so"), "{message}");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn load(&self, path: &Path) -> Result<LoadedObject> {
        sys::loader::dlopen_now_local(path).map_err(|message| Error::CodeLoad {
            object: path.display().to_string(),
            message,
        })?;
        let id = super::build_id_of_file(path)?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        loaded_objects()
            .into_iter()
            .find(|o| {
                (id.is_some() && o.build_id() == id.as_ref())
                    || o.path() == path
                    || o.path() == canonical
            })
            .ok_or_else(|| stage_error(path, "loaded, but the loader does not list it"))
    }
}

/// The live stages of this process: (its pid, their count). A forked child starts from none.
fn live_stages() -> std::sync::MutexGuard<'static, (u32, usize)> {
    static LIVE: Mutex<(u32, usize)> = Mutex::new((0, 0));
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.owner != std::process::id() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The process's directory goes too with its last stage.
        let mut live = live_stages();
        if live.0 == std::process::id() {
            live.1 = live.1.saturating_sub(1);
            if live.1 == 0
                && let Some(parent) = self.dir.parent()
            {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Removes the staging directories of process `pid`, a child of this process started with its
/// environment, that has exited and been reaped (one that was killed could not remove its own).
/// Only directories of this user's, in this pid namespace. `rustmp-mpi` calls it for the worker
/// a rank ran, as a pool does for its spawn workers.
///
/// ```
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// child.wait().unwrap();
/// multiprocessing::code::remove_child_stages(child.id()); // it made none: nothing to do
/// ```
pub fn remove_child_stages(pid: u32) {
    remove_stages_of(&user_dir(), pid);
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn stages_made_and_dropped_by_many_threads_at_once_all_work() {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..300 {
                        let stage = Stage::new().unwrap();
                        assert!(stage.path().is_dir());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// What a SIGKILLed earlier process with this pid leaves behind: its stage directories.
    #[test]
    fn a_directory_left_by_an_earlier_process_with_this_pid_is_stepped_over() {
        let first = Stage::new().unwrap();
        let process = first.path().parent().unwrap().to_path_buf();
        let next = super::NEXT.load(std::sync::atomic::Ordering::Relaxed);
        let stale: Vec<_> = (next..next + 3)
            .map(|n| process.join(format!("stage-{n}")))
            .collect();
        for dir in &stale {
            std::fs::create_dir(dir).unwrap();
        }
        let stage = Stage::new();
        for dir in &stale {
            let _ = std::fs::remove_dir(dir);
        }
        let stage = stage.unwrap();
        assert!(!stale.iter().any(|d| d == stage.path()));
    }

    /// A forked child's copy of a stage must not remove the parent's directory.
    #[test]
    fn a_stage_dropped_in_another_process_leaves_the_directory() {
        let stage = Stage::new().unwrap();
        let copy = Stage {
            dir: stage.path().to_path_buf(),
            owner: stage.owner.wrapping_add(1),
        };
        drop(copy);
        assert!(stage.path().is_dir());
    }
}
