//! `rustmp install`: writes the kernelspec (kernel.json and logos) where Jupyter looks for it.

use serde_json::json;
use std::path::{Path, PathBuf};

/// The kernelspec's default name.
pub const DEFAULT_NAME: &str = "rustmp";
/// The name shown in Jupyter's launchers.
pub const DISPLAY_NAME: &str = "Rust (multiprocessing)";

const LOGO_32: &[u8] = include_bytes!("../assets/logo-32x32.png");
const LOGO_64: &[u8] = include_bytes!("../assets/logo-64x64.png");
const LOGO_SVG: &[u8] = include_bytes!("../assets/logo-svg.svg");

/// Where to install.
#[derive(Debug, Clone)]
pub enum Location {
    /// The user's Jupyter data dir (`$JUPYTER_DATA_DIR`, else `$XDG_DATA_HOME/jupyter`, else
    /// `~/.local/share/jupyter`).
    User,
    /// The active Python environment's prefix (`$VIRTUAL_ENV`, `$CONDA_PREFIX`, or python3's `sys.prefix`).
    SysPrefix,
    /// An explicit prefix: `<prefix>/share/jupyter`.
    Prefix(PathBuf),
}

/// Why the kernelspec could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The name has characters Jupyter does not allow.
    #[error("invalid kernel name {0:?}: use letters, digits, '.', '_' and '-'")]
    BadName(String),
    /// No home directory or Python prefix could be found.
    #[error("cannot find {0}")]
    NoLocation(&'static str),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// What.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn jupyter_data_dir(location: &Location) -> Result<PathBuf, InstallError> {
    Ok(match location {
        Location::User => {
            if let Some(d) = std::env::var_os("JUPYTER_DATA_DIR") {
                PathBuf::from(d)
            } else if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
                PathBuf::from(d).join("jupyter")
            } else {
                dirs::home_dir()
                    .ok_or(InstallError::NoLocation("the home directory"))?
                    .join(".local/share/jupyter")
            }
        }
        Location::SysPrefix => sys_prefix()?.join("share/jupyter"),
        Location::Prefix(p) => p.join("share/jupyter"),
    })
}

fn sys_prefix() -> Result<PathBuf, InstallError> {
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .map_err(|_| {
            InstallError::NoLocation("a Python prefix (no VIRTUAL_ENV, CONDA_PREFIX or python3)")
        })?;
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || prefix.is_empty() {
        return Err(InstallError::NoLocation("python3's sys.prefix"));
    }
    Ok(PathBuf::from(prefix))
}

/// The kernel.json for a kernel started as `exe kernel --connection-file {connection_file}`.
pub fn kernel_json(exe: &Path) -> serde_json::Value {
    json!({
        "argv": [exe.display().to_string(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "kernel_protocol_version": crate::jupyter::PROTOCOL_VERSION,
        "metadata": {}
    })
}

/// Installs the kernelspec `name` at `location`; returns its directory.
pub fn install(location: &Location, name: &str, exe: &Path) -> Result<PathBuf, InstallError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(InstallError::BadName(name.to_string()));
    }
    let dir = jupyter_data_dir(location)?
        .join("kernels")
        .join(name.to_lowercase());
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|source| InstallError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    // Replace an existing spec, as `jupyter kernelspec install` does.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| InstallError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    std::fs::create_dir_all(&dir).map_err(|source| InstallError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let spec = serde_json::to_vec_pretty(&kernel_json(exe)).unwrap_or_default();
    write(dir.join("kernel.json"), &spec)?;
    write(dir.join("logo-32x32.png"), LOGO_32)?;
    write(dir.join("logo-64x64.png"), LOGO_64)?;
    write(dir.join("logo-svg.svg"), LOGO_SVG)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_kernel_json_and_logos_under_the_prefix() {
        let tmp = std::env::temp_dir().join(format!("rustmp-install-{}", std::process::id()));
        let dir = install(
            &Location::Prefix(tmp.clone()),
            "RustMP",
            Path::new("/opt/bin/rustmp"),
        )
        .unwrap();
        assert_eq!(dir, tmp.join("share/jupyter/kernels/rustmp"));
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["argv"][0], "/opt/bin/rustmp");
        assert_eq!(spec["argv"][3], "{connection_file}");
        assert_eq!(spec["display_name"], "Rust (multiprocessing)");
        assert_eq!(spec["language"], "rust");
        for logo in ["logo-32x32.png", "logo-64x64.png"] {
            assert!(
                std::fs::read(dir.join(logo))
                    .unwrap()
                    .starts_with(b"\x89PNG")
            );
        }
        assert!(matches!(
            install(&Location::Prefix(tmp.clone()), "bad name!", Path::new("/x")),
            Err(InstallError::BadName(_))
        ));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
