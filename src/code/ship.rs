//! What a process lacking an object is sent so that it can load it: the objects of its
//! `DT_NEEDED` closure that are not the system's, each one's bytes as read from its file
//! (checked to be the code loaded here), and the name each is staged under.

use super::{BuildId, LoadedObject, build_id_of_elf, closure};
use crate::error::{Error, Result};
use std::path::Path;

/// Directories whose libraries every host is taken to have (the C library, the loader, the
/// libraries of `-sys` crates): never shipped.
const SYSTEM: [&str; 5] = [
    "/lib/",
    "/lib64/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/local/lib/",
];

fn is_system(path: &Path) -> bool {
    SYSTEM.iter().any(|d| path.to_string_lossy().starts_with(d))
}

/// The objects to ship for `object`: it and its closure, minus the system's libraries and the
/// main program (which the receiver runs already). Each has a build-id (an error otherwise).
pub(crate) fn to_ship(object: &LoadedObject) -> Result<Vec<LoadedObject>> {
    let mut out = Vec::new();
    for o in closure(object) {
        if o.is_main_program() || is_system(o.path()) || o.path().as_os_str().is_empty() {
            continue;
        }
        if o.build_id().is_none() {
            return Err(Error::CodeLoad {
                object: o.path().display().to_string(),
                message: "the object has no GNU build-id (link it with --build-id)".into(),
            });
        }
        out.push(o);
    }
    Ok(out)
}

/// The name `object` is staged under: its soname (what `DT_NEEDED` entries name, found through
/// `$ORIGIN`); without one, a dependency keeps its file name (what needs it names it so), and
/// the `root` of a closure (what is loaded by path: evcxr's cells, which have no soname and
/// whose names repeat after a kernel restart) gets 16 hex digits of its build-id before the
/// extension.
pub(crate) fn staged_name(object: &LoadedObject, root: bool) -> String {
    if let Some(soname) = object.soname() {
        return soname.to_string();
    }
    let name = object.file_name();
    if !root {
        return name;
    }
    let id: String = object
        .build_id()
        .map(|b| b.to_string().chars().take(16).collect())
        .unwrap_or_default();
    match name.strip_suffix(".so") {
        Some(stem) => format!("{stem}-{id}.so"),
        None => format!("{name}-{id}"),
    }
}

/// The bytes of `object`'s file, if they are the code loaded here (same build-id); an error
/// naming the file otherwise (cargo rebuilds libraries in place, e.g. after a `:dep`).
pub(crate) fn bytes_as_loaded(object: &LoadedObject) -> Result<(BuildId, Vec<u8>)> {
    let path = object.path();
    let changed = || Error::CodeLoad {
        object: path.display().to_string(),
        message: format!(
            "{} changed on disk since it was loaded; restart the kernel",
            path.display()
        ),
    };
    let Some(id) = object.build_id().cloned() else {
        return Err(changed());
    };
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => changed(),
        _ => Error::CodeLoad {
            object: path.display().to_string(),
            message: e.to_string(),
        },
    })?;
    if build_id_of_elf(&bytes).as_ref() != Some(&id) {
        return Err(changed());
    }
    Ok((id, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::loaded_objects;

    #[test]
    fn the_system_libraries_and_the_program_are_not_shipped_and_names_keep_sonames() {
        let main = loaded_objects().remove(0);
        // A test program links its libraries statically: nothing of its closure is shipped.
        assert!(to_ship(&main).unwrap().is_empty());
        let libc = loaded_objects()
            .into_iter()
            .find(|o| o.soname() == Some("libc.so.6"))
            .unwrap();
        assert!(is_system(libc.path()), "{}", libc.path().display());
        assert_eq!(staged_name(&libc, true), "libc.so.6");
        let (id, bytes) = bytes_as_loaded(&main).unwrap();
        assert_eq!(Some(&id), main.build_id());
        assert!(!bytes.is_empty());
        // No soname: the build-id goes into the name.
        let name = staged_name(&main, true);
        assert!(name.ends_with(&id.to_string()[..16]), "{name}");
        // A dependency is named as what needs it names it.
        assert_eq!(staged_name(&main, false), main.file_name());
    }
}
