//! A rank's staging directory: owner-only (0700), its own, removed when the rank ends.
//!
//! Where: `$OMPI_FILE_LOCATION/rustmp-r<pid>` when that variable is set (Open MPI's session
//! directory of the job on this node, shared by the node's ranks, which orted removes even when
//! a rank is killed), else `${TMPDIR:-/tmp}/rustmp-<uid>/r<pid>`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A staging directory that exists; dropping it removes it with everything in it.
#[derive(Debug)]
pub struct Stage {
    dir: PathBuf,
}

/// Makes `dir` (0700) unless it exists; either way it must be a directory of this user that
/// group and others cannot use.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", dir.display()),
            ));
        }
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let uid = crate::sys::euid();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private directory of uid {uid} (mode {:o}, owner {}): refusing to stage code there",
            dir.display(),
            meta.mode() & 0o7777,
            meta.uid()
        )));
    }
    Ok(())
}

impl Stage {
    /// Creates this rank's directory.
    pub fn create() -> std::io::Result<Stage> {
        let dir = match std::env::var_os("OMPI_FILE_LOCATION") {
            Some(base) if Path::new(&base).is_dir() => {
                PathBuf::from(base).join(format!("rustmp-r{}", std::process::id()))
            }
            _ => {
                let tmp =
                    std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
                let base = tmp.join(format!("rustmp-{}", crate::sys::euid()));
                private_dir(&base)?;
                base.join(format!("r{}", std::process::id()))
            }
        };
        private_dir(&dir)?;
        Ok(Stage { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes an executable (0700) named `name`: to a temporary name, then renamed, so that a
    /// program still running from an earlier copy is not disturbed.
    pub fn write_program(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o700)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_private_and_goes_away() {
        let stage = Stage::create().expect("stage");
        let dir = stage.dir().to_path_buf();
        assert_eq!(std::fs::metadata(&dir).expect("dir").mode() & 0o777, 0o700);
        let program = stage.write_program("prog", b"#!/bin/sh\n").expect("write");
        assert_eq!(
            std::fs::metadata(&program).expect("file").mode() & 0o777,
            0o700
        );
        drop(stage);
        assert!(!dir.exists());
    }
}
