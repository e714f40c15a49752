//! A lighter copy of the standard library's source for rust-analyzer.
//!
//! evcxr runs rust-analyzer in the kernel to learn the types of a cell's variables; its first
//! analysis parses the standard library, and more than a third of what it parses on x86-64 is
//! `core::arch`'s SIMD intrinsics (7 MB of source). The kernel points rust-analyzer
//! (`RUST_SRC_PATH`) at a copy of the toolchain's `library/` in its cache in which those
//! intrinsic files are empty; that takes about 1.2 s off a kernel's first cell. The compiler's
//! builtins, `core::simd`, the other architectures and the library's tests are emptied too
//! (about 0.3 s more). rustc still compiles against the real standard library: only completion
//! and hover lose what was emptied.

use std::io;
use std::path::{Path, PathBuf};

/// Directories whose files (but `mod.rs` and `macros.rs`) are emptied in the copy.
const EMPTIED: [&str; 2] = [
    "stdarch/crates/core_arch/src/x86",
    "stdarch/crates/core_arch/src/x86_64",
];

/// Trees whose every `.rs` file is emptied: what a cell never names (the compiler's builtins,
/// `core::simd`, the other architectures' intrinsics, the library's own test crates). Every
/// directory named `tests` or `benches` is emptied too. `Cargo.toml`s are kept: without
/// `library/Cargo.toml` rust-analyzer cannot infer `HashMap`'s methods.
const EMPTIED_TREES: [&str; 4] = [
    "compiler-builtins",
    "portable-simd/crates/core_simd/src",
    "coretests",
    "alloctests",
];

/// The architectures whose intrinsics stay (in part: see [`EMPTIED`]); on another host its own
/// stay whole, with the code its family shares.
const KEPT_ARCHES: [&str; 2] = ["x86", "x86_64"];

/// Whether the intrinsics directory `name` stays.
fn kept_arch(name: &str) -> bool {
    let host = std::env::consts::ARCH;
    KEPT_ARCHES.contains(&name)
        || name == host
        || (name == "arm_shared" && (host == "aarch64" || host == "arm"))
        || name
            .strip_suffix("_shared")
            .is_some_and(|family| host.starts_with(family))
}

/// Changes when what is emptied changes, so that an older copy is not used.
const TRIM_VERSION: u32 = 2;

/// What an emptied file says.
const NOTE: &str = "// Emptied by rustmp for rust-analyzer: see kernel/src/engine/rust_src.rs.\n";

/// Returns the trimmed copy of the toolchain's `library/` under `cache`, making it once per
/// toolchain. `None` when the toolchain has no `rust-src` or the copy fails (rust-analyzer then
/// finds the real sources itself).
pub fn trimmed(cache: &Path) -> Option<PathBuf> {
    let output = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sysroot = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    let library = sysroot.join("lib/rustlib/src/rust/library");
    let stamp = library
        .join("core/src/lib.rs")
        .metadata()
        .ok()?
        .modified()
        .ok()?;
    let key = format!(
        "{:016x}",
        super::embedded::hash(
            format!(
                "{TRIM_VERSION}{}{:?}",
                sysroot.display(),
                stamp.duration_since(std::time::UNIX_EPOCH).ok()?
            )
            .bytes()
        )
    );
    let dir = cache.join("rust-src").join(key);
    let done = dir.join("library");
    if done.join(".complete").exists() {
        return Some(done);
    }
    let staging = dir.join(format!("staging-{}", std::process::id()));
    let made = (|| -> io::Result<()> {
        let _ = std::fs::remove_dir_all(&staging);
        copy_tree(&library, &staging)?;
        trim(&staging)?;
        std::fs::write(staging.join(".complete"), "")?;
        match std::fs::rename(&staging, &done) {
            Ok(()) => Ok(()),
            // Another kernel finished first: use its copy.
            Err(_) if done.join(".complete").exists() => std::fs::remove_dir_all(&staging),
            Err(e) => Err(e),
        }
    })();
    match made {
        Ok(()) => Some(done),
        Err(e) => {
            eprintln!("rustmp: could not prepare rust-analyzer's library copy: {e}");
            let _ = std::fs::remove_dir_all(&staging);
            None
        }
    }
}

/// Empties, in the copy at `library`, what rust-analyzer does not need for a cell.
fn trim(library: &Path) -> io::Result<()> {
    for sub in EMPTIED {
        empty_files(&library.join(sub))?;
    }
    for tree in EMPTIED_TREES {
        empty_tree(&library.join(tree))?;
    }
    let arches = library.join("stdarch/crates/core_arch/src");
    if arches.is_dir() {
        for entry in std::fs::read_dir(&arches)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() && !kept_arch(name) {
                empty_tree(&path)?;
            }
        }
    }
    empty_test_dirs(library)
}

/// Empties every directory named `tests` or `benches` under `dir`.
fn empty_test_dirs(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        match path.file_name().and_then(|n| n.to_str()) {
            Some("tests" | "benches") => empty_tree(&path)?,
            _ => empty_test_dirs(&path)?,
        }
    }
    Ok(())
}

/// Empties every `.rs` file under `dir` (files are kept, so every `mod` still resolves).
fn empty_tree(dir: &Path) -> io::Result<()> {
    empty(dir, true, &[])
}

/// Empties the `.rs` files of `dir` but `mod.rs` and `macros.rs`, not below it.
fn empty_files(dir: &Path) -> io::Result<()> {
    empty(dir, false, &["mod.rs", "macros.rs"])
}

fn empty(dir: &Path, below: bool, keep: &[&str]) -> io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if below {
                empty(&path, below, keep)?;
            }
        } else if path.extension().is_some_and(|e| e == "rs") && !keep.contains(&name) {
            std::fs::write(&path, NOTE)?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if std::fs::metadata(entry.path())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_empties_only_the_intrinsics() {
        let src = tempdir("src");
        let arch = src.join("stdarch/crates/core_arch/src/x86");
        std::fs::create_dir_all(&arch).unwrap();
        std::fs::create_dir_all(src.join("core/src")).unwrap();
        std::fs::write(src.join("core/src/lib.rs"), "pub mod x;").unwrap();
        std::fs::write(arch.join("mod.rs"), "mod avx;").unwrap();
        std::fs::write(arch.join("avx.rs"), "pub fn f() {}").unwrap();
        let write = |p: &str, text: &str| {
            let path = src.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("stdarch/crates/core_arch/src/aarch64/mod.rs", "mod neon;");
        write(
            "compiler-builtins/compiler-builtins/src/lib.rs",
            "pub mod int;",
        );
        write("portable-simd/crates/core_simd/src/mod.rs", "mod vector;");
        write("std/tests/env.rs", "#[test] fn t() {}");
        write("core/benches/lib.rs", "mod any;");
        write("Cargo.toml", "[workspace]");
        let dst = tempdir("dst").join("library");
        copy_tree(&src, &dst).unwrap();
        trim(&dst).unwrap();
        let read = |p: &str| std::fs::read_to_string(dst.join(p)).unwrap();
        assert_eq!(read("core/src/lib.rs"), "pub mod x;");
        assert_eq!(read("stdarch/crates/core_arch/src/x86/mod.rs"), "mod avx;");
        assert_eq!(read("stdarch/crates/core_arch/src/x86/avx.rs"), NOTE);
        for emptied in [
            "stdarch/crates/core_arch/src/aarch64/mod.rs",
            "compiler-builtins/compiler-builtins/src/lib.rs",
            "portable-simd/crates/core_simd/src/mod.rs",
            "std/tests/env.rs",
            "core/benches/lib.rs",
        ] {
            assert_eq!(read(emptied), NOTE, "{emptied}");
        }
        assert_eq!(read("Cargo.toml"), "[workspace]");
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rustmp-rust-src-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
