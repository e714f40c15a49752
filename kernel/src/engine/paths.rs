//! The engine's files: the cache with the embedded crates, a build slot no other live kernel
//! holds, evcxr's configuration, and the environment evcxr reads.

#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(unsafe_code, reason = "the environment set before threads start")]

use super::error::EngineError;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::PathBuf;

/// The cache and build directories, chosen once per process before any thread starts.
pub struct Paths {
    /// Where the embedded crates are written.
    pub crates: PathBuf,
    /// The cells' crate's source, as evcxr last wrote it (`<build slot>/src/lib.rs`).
    pub source: PathBuf,
    /// Holds the build slot (evcxr's build directory) for this process.
    _lock: Flock<File>,
}

/// Prepares the cache: embedded crates, a locked build slot, evcxr's config. Sets the
/// environment evcxr reads, so call it before starting threads.
pub fn prepare() -> Result<Paths, EngineError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| EngineError::Io { what, source }
    };
    let base = std::env::var_os("RUSTMP_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("rustmp")))
        .unwrap_or_else(|| std::env::temp_dir().join("rustmp-cache"));
    let version = format!(
        "{}-{}",
        env!("CARGO_PKG_VERSION"),
        super::embedded::fingerprint()
    );
    let crates = base.join("crates").join(&version);
    std::fs::create_dir_all(&crates).map_err(io("create the cache directory"))?;
    super::embedded::materialize(&crates).map_err(io("write the embedded crates"))?;
    // A build slot: the first one no other live kernel holds (flock).
    let mut slot = 0;
    let (build, lock) = loop {
        let dir = base.join("build").join(format!("slot-{slot}"));
        std::fs::create_dir_all(&dir).map_err(io("create a build directory"))?;
        let lock = File::create(dir.join(".lock")).map_err(io("create a lock file"))?;
        if let Ok(lock) = Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
            break (dir, lock);
        }
        slot += 1;
    };
    // Cells compile fastest unoptimized; their dependencies (the library above all) are built
    // once and should run fast: cargo reads this file from a parent of the build directory.
    let cargo_config = base.join("build").join(".cargo");
    std::fs::create_dir_all(&cargo_config).map_err(io("create the cargo config directory"))?;
    std::fs::write(
        cargo_config.join("config.toml"),
        "[profile.dev.package.\"*\"]\nopt-level = 2\n",
    )
    .map_err(io("write the cargo config"))?;
    let config = base.join("evcxr-config");
    std::fs::create_dir_all(&config).map_err(io("create evcxr's config directory"))?;
    let toml = format!(
        // Offline while the engine starts (evcxr's own first build and the kernel's): cargo then
        // does not read the registry's index. `Engine::start` turns it off afterwards.
        "[evcxr]\nallow_static_linking = false\noffline_mode = true\nopt_level = \"{}\"\ntmpdir = {:?}\n",
        std::env::var("RUSTMP_OPT_LEVEL").unwrap_or_else(|_| "0".into()),
        build.display().to_string()
    );
    std::fs::write(config.join("evcxr.toml"), toml).map_err(io("write evcxr.toml"))?;
    let rust_src = match std::env::var_os("RUST_SRC_PATH") {
        Some(_) => None,
        None => super::rust_src::trimmed(&base),
    };
    // SAFETY: called before any other thread exists (documented contract of `prepare`).
    unsafe {
        std::env::set_var("EVCXR_CONFIG_DIR", &config);
        std::env::set_var("EVCXR_TMPDIR", &build);
        if let Some(dir) = rust_src {
            std::env::set_var("RUST_SRC_PATH", dir);
        }
    }
    Ok(Paths {
        crates,
        source: build.join("src").join("lib.rs"),
        _lock: lock,
    })
}
