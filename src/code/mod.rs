//! Where code lives: the loaded object (the executable or a shared library) that holds an
//! address, its GNU build-id, and the offset of the address from the object's load base. A
//! function is named across processes by a [`CodeRef`] (build-id + offset), never by its
//! address: the spawn start method ([`crate::StartMethod::Spawn`]) sends these, and each worker
//! finds the object with that build-id among its own and adds its own load base ([`resolve`]).
//! Objects that a worker lacks can be written to a private [`Stage`] directory and loaded: a
//! spawn pool of this library loaded at run time (a notebook's) sends its workers the bytes of
//! each object its code needs but the system's libraries, each checked to be the code loaded.
//!
//! ```
//! use multiprocessing::code;
//! fn work(x: u64) -> u64 { x + 1 }
//! let (code_ref, object) = code::locate(work as fn(u64) -> u64 as usize).unwrap();
//! assert!(object.is_main_program()); // a doctest is a program of its own
//! assert_eq!(code::resolve(&code_ref).unwrap(), work as fn(u64) -> u64 as usize);
//! ```

#![deny(unsafe_code)]

mod elf;
mod ship;
mod stage;

pub(crate) use ship::{bytes_as_loaded, staged_name, to_ship};

pub use stage::{Stage, remove_child_stages};
pub(crate) use stage::{remove_stages_of, user_dir as stages_dir};

use crate::error::{Error, Result};
use crate::sys::loader::{self, Image, Segment};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A GNU build-id (`.note.gnu.build-id`): what identifies a compiled object, whatever its file
/// name (evcxr's cell libraries repeat names after a restart; cargo rebuilds files in place).
/// Shown in hex. An object linked without one (rustup's `libstd-*.so` has none) is identified
/// instead by `fnv` and a 128-bit FNV-1a digest of its first loadable segment (its headers and
/// symbol tables, which loading leaves as in the file), so the same from its file and from
/// memory.
///
/// ```
/// let object = &multiprocessing::code::loaded_objects()[0];
/// let id = object.build_id().expect("the linker adds a build-id");
/// assert_eq!(id.to_string().len(), 2 * id.as_bytes().len());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BuildId(#[serde(with = "serde_bytes")] Vec<u8>);

impl BuildId {
    /// A build-id from its bytes (as read from a note, or received).
    ///
    /// ```
    /// let id = multiprocessing::code::BuildId::new(vec![0xab, 0x01]);
    /// assert_eq!(id.to_string(), "ab01");
    /// ```
    pub fn new(bytes: Vec<u8>) -> BuildId {
        BuildId(bytes)
    }

    /// The raw bytes.
    ///
    /// ```
    /// let object = &multiprocessing::code::loaded_objects()[0];
    /// assert!(!object.build_id().unwrap().as_bytes().is_empty());
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BuildId({self})")
    }
}

/// A place in compiled code, valid in any process that has the same object loaded: the object's
/// build-id and the offset from its load base.
///
/// ```
/// use multiprocessing::code;
/// fn f() {}
/// let (r, _) = code::locate(f as fn() as usize).unwrap();
/// assert!(r.offset > 0);
/// assert!(!r.object.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeRef {
    /// The object's build-id.
    pub build_id: BuildId,
    /// The offset from the object's load base.
    pub offset: u64,
    /// The object's file name where it was located (for messages only: not part of the
    /// identity).
    pub object: String,
}

/// An object loaded in this process (a copy of what the loader says about it).
///
/// ```
/// let objects = multiprocessing::code::loaded_objects();
/// assert!(objects[0].is_main_program());
/// assert!(objects.iter().any(|o| o.file_name().starts_with("libc.so")));
/// ```
#[derive(Clone, Debug)]
pub struct LoadedObject {
    path: PathBuf,
    main_program: bool,
    base: usize,
    build_id: Option<BuildId>,
    needed: Vec<String>,
    soname: Option<String>,
    segments: Vec<Segment>,
}

impl LoadedObject {
    fn from_image(image: Image) -> LoadedObject {
        let main_program = image.name.is_empty();
        let path = if main_program {
            std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| "/proc/self/exe".into())
        } else {
            use std::os::unix::ffi::OsStrExt;
            PathBuf::from(std::ffi::OsStr::from_bytes(&image.name))
        };
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        LoadedObject {
            path,
            main_program,
            base: image.base,
            build_id: image
                .notes
                .iter()
                .find_map(|n| elf::build_id_in_notes(n))
                .or_else(|| image.head.as_deref().map(|h| content_id(&image, h)))
                .map(BuildId),
            needed: image.needed.into_iter().map(text).collect(),
            soname: image.soname.map(text),
            segments: image.segments,
        }
    }

    /// Its file (for the main program, the executable `/proc/self/exe` points to).
    ///
    /// ```
    /// let main = &multiprocessing::code::loaded_objects()[0];
    /// assert_eq!(main.path(), std::env::current_exe().unwrap());
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its file name (`libc.so.6`), or the loader's name if it has no file (`linux-vdso.so.1`).
    ///
    /// ```
    /// let main = &multiprocessing::code::loaded_objects()[0];
    /// assert!(!main.file_name().is_empty());
    /// ```
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// True for the program's executable.
    ///
    /// ```
    /// assert!(multiprocessing::code::loaded_objects()[0].is_main_program());
    /// ```
    pub fn is_main_program(&self) -> bool {
        self.main_program
    }

    /// Its load base: an address in it is `base + offset`.
    ///
    /// ```
    /// let objects = multiprocessing::code::loaded_objects();
    /// assert!(objects.iter().any(|o| o.base() != 0));
    /// ```
    pub fn base(&self) -> usize {
        self.base
    }

    /// Its GNU build-id, as loaded (for an object linked without one, the digest that stands
    /// for it: see [`BuildId`]; `None` if there is neither).
    ///
    /// ```
    /// assert!(multiprocessing::code::loaded_objects()[0].build_id().is_some());
    /// ```
    pub fn build_id(&self) -> Option<&BuildId> {
        self.build_id.as_ref()
    }

    /// Its `DT_NEEDED` entries: the libraries it was linked against, by name.
    ///
    /// ```
    /// let main = &multiprocessing::code::loaded_objects()[0];
    /// assert!(main.needed().iter().any(|n| n.starts_with("libc.so")));
    /// ```
    pub fn needed(&self) -> &[String] {
        &self.needed
    }

    /// Its `DT_SONAME`, if it has one (executables and evcxr's cell libraries have none).
    ///
    /// ```
    /// let objects = multiprocessing::code::loaded_objects();
    /// let libc = objects.iter().find(|o| o.file_name().starts_with("libc.so")).unwrap();
    /// assert_eq!(libc.soname(), Some("libc.so.6"));
    /// ```
    pub fn soname(&self) -> Option<&str> {
        self.soname.as_deref()
    }

    fn holds(&self, addr: usize) -> bool {
        addr.checked_sub(self.base)
            .is_some_and(|off| self.segments.iter().any(|s| s.contains(off)))
    }

    /// True if a `DT_NEEDED` name `name` refers to this object.
    fn answers_to(&self, name: &str) -> bool {
        self.soname.as_deref() == Some(name) || self.file_name() == name
    }
}

/// The digest that stands for the build-id of a loaded object without one (see [`BuildId`]),
/// computed once per object: objects are never unloaded while their code may be named.
fn content_id(image: &Image, head: &[u8]) -> Vec<u8> {
    type Key = (usize, Vec<u8>, usize);
    static KNOWN: std::sync::Mutex<Vec<(Key, Vec<u8>)>> = std::sync::Mutex::new(Vec::new());
    let key = (image.base, image.name.clone(), head.len());
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, id)) = known.iter().find(|(k, _)| *k == key) {
        return id.clone();
    }
    let id = elf::content_id(head);
    known.push((key, id.clone()));
    id
}

/// Every object loaded in this process, the main program first.
///
/// ```
/// assert!(multiprocessing::code::loaded_objects().len() >= 2);
/// ```
pub fn loaded_objects() -> Vec<LoadedObject> {
    loader::loaded_images()
        .into_iter()
        .map(LoadedObject::from_image)
        .collect()
}

/// The object holding `addr`, and the [`CodeRef`] naming `addr` in any process that loads it.
/// An error if no loaded object holds it or the object has no build-id.
///
/// ```
/// use multiprocessing::{code, Error};
/// assert!(matches!(code::locate(1), Err(Error::CodeLoad { .. })));
/// ```
pub fn locate(addr: usize) -> Result<(CodeRef, LoadedObject)> {
    let Some(object) = loaded_objects().into_iter().find(|o| o.holds(addr)) else {
        return Err(Error::CodeLoad {
            object: format!("address {addr:#x}"),
            message: "no loaded object holds this address".into(),
        });
    };
    let Some(build_id) = object.build_id.clone() else {
        return Err(Error::CodeLoad {
            object: object.path.display().to_string(),
            message: "the object has no GNU build-id (link it with --build-id)".into(),
        });
    };
    let code = CodeRef {
        build_id,
        offset: (addr - object.base) as u64,
        object: object.file_name(),
    };
    Ok((code, object))
}

/// The address `code` names in this process: the loaded object with its build-id, plus the
/// offset, which must fall in one of its code segments. An error naming the object otherwise.
///
/// ```
/// use multiprocessing::{code, Error};
/// fn f() {}
/// let (mut r, _) = code::locate(f as fn() as usize).unwrap();
/// r.offset = u64::MAX / 2; // nowhere in the object
/// assert!(matches!(code::resolve(&r), Err(Error::CodeLoad { .. })));
/// ```
pub fn resolve(code: &CodeRef) -> Result<usize> {
    let objects = loaded_objects();
    let Some(object) = objects
        .iter()
        .find(|o| o.build_id.as_ref() == Some(&code.build_id))
    else {
        return Err(Error::CodeLoad {
            object: format!("{} (build-id {})", code.object, code.build_id),
            message: format!(
                "no object with this build-id is loaded in process {}",
                std::process::id()
            ),
        });
    };
    let off = code.offset as usize;
    if !object
        .segments
        .iter()
        .any(|s| s.executable && s.contains(off))
    {
        return Err(Error::CodeLoad {
            object: object.path.display().to_string(),
            message: format!("offset {off:#x} is not in a code segment of the object"),
        });
    }
    Ok(object.base + off)
}

/// `object` and the loaded objects it needs, directly or not (its `DT_NEEDED` closure, found
/// among the objects loaded in this process by soname or file name), `object` first, each once.
/// What a process without these objects would have to load to run `object`'s code.
///
/// ```
/// use multiprocessing::code;
/// let main = code::loaded_objects().remove(0);
/// let closure = code::closure(&main);
/// assert!(closure[0].is_main_program());
/// assert!(closure.iter().any(|o| o.soname() == Some("libc.so.6")));
/// ```
pub fn closure(object: &LoadedObject) -> Vec<LoadedObject> {
    let loaded = loaded_objects();
    let mut out = vec![object.clone()];
    let mut next = 0;
    while next < out.len() {
        let needed = out[next].needed.clone();
        next += 1;
        for name in needed {
            if out.iter().any(|o| o.answers_to(&name)) {
                continue;
            }
            if let Some(dep) = loaded.iter().find(|o| o.answers_to(&name)) {
                out.push(dep.clone());
            }
        }
    }
    out
}

/// The GNU build-id of the ELF file at `path` (`None` if it has none or is not ELF).
///
/// ```
/// use multiprocessing::code;
/// let main = &code::loaded_objects()[0];
/// assert_eq!(code::build_id_of_file(main.path()).unwrap().as_ref(), main.build_id());
/// ```
pub fn build_id_of_file(path: &Path) -> Result<Option<BuildId>> {
    use std::os::unix::fs::FileExt;
    let error = |e: std::io::Error| Error::CodeLoad {
        object: path.display().to_string(),
        message: e.to_string(),
    };
    // Only the parts it needs (a kernel's executable is hundreds of MB).
    let file = std::fs::File::open(path).map_err(error)?;
    let size = file.metadata().map_err(error)?.len();
    Ok(elf::build_id_by(&mut |at, len| {
        if (at as u64).checked_add(len as u64)? > size {
            return None;
        }
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, at as u64).ok()?;
        Some(bytes)
    })
    .map(BuildId))
}

/// The GNU build-id of ELF file bytes (`None` if they have none or are not ELF).
///
/// ```
/// assert_eq!(multiprocessing::code::build_id_of_elf(b"garbage"), None);
/// ```
pub fn build_id_of_elf(bytes: &[u8]) -> Option<BuildId> {
    elf::build_id_of_elf(bytes).map(BuildId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closure_follows_needed_entries_through_loaded_objects_each_once() {
        let objects = loaded_objects();
        let main = &objects[0];
        let names = |c: &[LoadedObject]| c.iter().map(|o| o.file_name()).collect::<Vec<_>>();
        let all = names(&closure(main));
        assert!(all.iter().any(|n| n == "libc.so.6"), "{all:?}");
        // Loaded but needed by nothing: not in it.
        assert!(!all.iter().any(|n| n.contains("vdso")), "{all:?}");
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "each once: {all:?}");
        // libgcc_s needs only libc, and libc the dynamic loader: that comes in through libc.
        let gcc = objects
            .iter()
            .find(|o| o.soname() == Some("libgcc_s.so.1"))
            .expect("Rust programs link libgcc_s");
        assert_eq!(gcc.needed(), ["libc.so.6"]);
        let via = names(&closure(gcc));
        assert_eq!(via[..2], ["libgcc_s.so.1", "libc.so.6"]);
        assert!(
            via[2..].iter().any(|n| n.starts_with("ld-linux")),
            "{via:?}"
        );

        // A library's build-id as loaded is the one in its file.
        let libc = objects
            .iter()
            .find(|o| o.soname() == Some("libc.so.6"))
            .unwrap();
        assert!(libc.build_id().is_some());
        assert_eq!(
            build_id_of_file(libc.path()).unwrap().as_ref(),
            libc.build_id()
        );
        // An address in libc is located in libc, at its offset, and resolved back.
        let getpid = libc::getpid as *const () as usize;
        let (r, o) = locate(getpid).unwrap();
        assert_eq!(o.soname(), Some("libc.so.6"));
        assert_eq!(o.base() + r.offset as usize, getpid);
        assert_eq!(resolve(&r).unwrap(), getpid);
    }
}
