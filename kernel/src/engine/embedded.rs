//! The crates cells use without `:dep`, carried inside the binary and written to a cache
//! directory on first use.

use std::path::{Path, PathBuf};

/// One embedded crate: its name and its files (path relative to the crate root, contents).
pub struct Crate {
    /// The crate's name.
    pub name: &'static str,
    /// `(relative path, contents)`, including a standalone `Cargo.toml`.
    pub files: &'static [(&'static str, &'static str)],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// A hash of all embedded files: a new binary with other sources gets other directories.
pub fn fingerprint() -> String {
    let bytes = CRATES
        .iter()
        .flat_map(|c| c.files.iter())
        .flat_map(|(path, text)| path.bytes().chain(text.bytes()));
    format!("{:016x}", hash(bytes))
}

/// FNV-1a, 64 bits: stable across builds and platforms.
pub fn hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes every embedded crate under `dir/<name>` unless already there; returns `(name, path)`.
pub fn materialize(dir: &Path) -> std::io::Result<Vec<(&'static str, PathBuf)>> {
    let mut out = Vec::new();
    for c in CRATES {
        let root = dir.join(c.name);
        let done = root.join(".complete");
        if !done.exists() {
            let tmp = dir.join(format!(".{}-{}", c.name, std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            for (rel, text) in c.files {
                let path = tmp.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(path, text)?;
            }
            std::fs::write(tmp.join(".complete"), b"")?;
            // Another kernel may have won the race: keep its copy.
            if std::fs::rename(&tmp, &root).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        out.push((c.name, root));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_and_the_display_crate_are_embedded_with_standalone_manifests() {
        let names: Vec<&str> = CRATES.iter().map(|c| c.name).collect();
        assert_eq!(names, vec!["multiprocessing", "rustmp_display"]);
        let lib = &CRATES[0];
        let manifest = lib
            .files
            .iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .unwrap()
            .1;
        assert!(manifest.contains("name = \"multiprocessing\""));
        assert!(manifest.contains("rmp-serde"));
        assert!(!manifest.contains(".workspace"), "{manifest}");
        assert!(lib.files.iter().any(|(p, _)| *p == "src/pool/manager.rs"));
        // The display crate uses the library's record format: its path dependency names the
        // library's directory beside it.
        let display = CRATES[1]
            .files
            .iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .unwrap()
            .1;
        assert!(
            display.contains("multiprocessing = { path = \"../multiprocessing\" }"),
            "{display}"
        );
        let dir = std::env::temp_dir().join(format!("rustmp-embed-{}", std::process::id()));
        let written = materialize(&dir).unwrap();
        assert!(written[0].1.join("src/lib.rs").exists());
        // Where the display crate's manifest looks for the library, the library is.
        assert!(written[1].1.join("../multiprocessing/Cargo.toml").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
