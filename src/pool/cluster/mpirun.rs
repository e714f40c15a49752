//! Starting the job: finding `mpirun` and `rustmp-mpi`, the hosts (a list, a hostfile, or this
//! host), the command line, and `mpirun` itself as a child of this process (so that an
//! interrupt terminates it with the other children), its stderr on a pipe.

use super::{Hosts, Mpi};
use crate::error::{Error, Result};
use crate::runtime::{self, Kind, Spawn};
use crate::sys;
use crate::sys::exec::Exec;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The variable naming `rustmp-mpi` when [`Mpi::launcher`] does not.
pub(super) const LAUNCHER_ENV: &str = "RUSTMP_MPI";

/// The slots of a `name:slots` host entry.
pub(super) fn slots_of(host: &str) -> Option<usize> {
    host.rsplit_once(':').and_then(|(_, s)| s.parse().ok())
}

/// An executable file named by `name`: a path, or a name looked up in `PATH`.
fn find_program(name: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.as_os_str().as_bytes().contains(&b'/') {
        return executable(name).then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// `mpirun`, or a clear error.
pub(super) fn mpirun_program(mpi: &Mpi) -> Result<PathBuf> {
    let name = mpi.mpirun.clone().unwrap_or_else(|| "mpirun".into());
    find_program(&name).ok_or_else(|| {
        Error::Cluster(format!(
            "mpirun not found ({}; install Open MPI, e.g. `apt-get install openmpi-bin`)",
            if mpi.mpirun.is_some() {
                format!("{} is not an executable file", name.display())
            } else {
                "not in PATH".to_string()
            }
        ))
    })
}

/// `rustmp-mpi`: [`Mpi::launcher`], else `$RUSTMP_MPI`, else the one beside this program's
/// executable (as `cargo build` leaves them), else `PATH`; or a clear error. An absolute path:
/// the ranks run it from their own working directories.
pub(super) fn launcher_program(mpi: &Mpi) -> Result<PathBuf> {
    // One built without MPI (a plain `cargo build` leaves one there) must not hide the one in
    // PATH: it says so in its `--version` (asked once per process, not at every pool).
    static BESIDE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let beside = || BESIDE.get_or_init(beside_with_mpi).clone();
    let (name, from) = match (&mpi.launcher, std::env::var_os(LAUNCHER_ENV)) {
        (Some(path), _) => (path.clone(), "Mpi::launcher"),
        (None, Some(path)) if !path.is_empty() => (PathBuf::from(path), "$RUSTMP_MPI"),
        _ => match beside() {
            Some(path) => (path, "beside this program"),
            None => (PathBuf::from("rustmp-mpi"), "PATH"),
        },
    };
    let found = find_program(&name).ok_or_else(|| {
        Error::Cluster(format!(
            "the launcher rustmp-mpi was not found ({} from {from}): build it with `cargo build \
             -p rustmp-mpi --features rustmp-mpi/mpi` and name it with Mpi::launcher(path) or \
             $RUSTMP_MPI (the same path on every host)",
            name.display()
        ))
    })?;
    Ok(std::path::absolute(&found).unwrap_or(found))
}

/// The `rustmp-mpi` beside this program's executable, if it was built with MPI.
fn beside_with_mpi() -> Option<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let there = find_program(&exe.parent()?.join("rustmp-mpi"))?;
    let said = std::process::Command::new(&there)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&said.stdout)
        .contains("(with MPI)")
        .then_some(there)
}

/// The `--host` entries of the worker ranks.
pub(super) fn worker_hosts(mpi: &Mpi, here: &str, workers: usize) -> Result<Vec<String>> {
    match &mpi.hosts {
        Hosts::Local => Ok(vec![format!("{here}:{workers}")]),
        Hosts::Allocation => Ok(Vec::new()),
        Hosts::List(list) if list.is_empty() => Err(Error::InvalidArgument(
            "Mpi::hosts: no host given".to_string(),
        )),
        Hosts::List(list) => {
            for host in list {
                let name = host.split(':').next().unwrap_or("");
                let bad = name.is_empty()
                    || host.contains([',', ' ', '\t', '\n'])
                    || (host.contains(':') && slots_of(host).is_none_or(|s| s == 0));
                if bad {
                    return Err(Error::InvalidArgument(format!(
                        "Mpi::hosts: `{host}` is not `name` or `name:slots`"
                    )));
                }
            }
            Ok(list.clone())
        }
        Hosts::File(path) => read_hostfile(path),
    }
}

/// An Open MPI hostfile's hosts as `name:slots`.
pub(super) fn read_hostfile(path: &Path) -> Result<Vec<String>> {
    let bad = |why: String| Error::Cluster(format!("the hostfile {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut hosts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else {
            continue;
        };
        let mut slots = None;
        for word in words {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            match (key, value.parse::<usize>()) {
                ("slots", Ok(s)) if s > 0 => slots = Some(s),
                ("max_slots" | "max-slots", Ok(_)) => {}
                _ => {
                    return Err(bad(format!(
                        "line {}: `{word}` is not slots=N or max_slots=N",
                        n + 1
                    )));
                }
            }
        }
        hosts.push(match slots {
            Some(s) => format!("{name}:{s}"),
            None => name.to_string(),
        });
    }
    if hosts.is_empty() {
        return Err(bad("it names no host".to_string()));
    }
    Ok(hosts)
}

/// This host's name (where rank 0, the bridge, must run).
pub(super) fn here() -> Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .map_err(|e| Error::Cluster(format!("cannot read this host's name: {e}")))
}

/// What the job runs.
pub(super) struct Layout<'a> {
    pub(super) mpirun: &'a Path,
    pub(super) launcher: &'a Path,
    pub(super) here: &'a str,
    pub(super) hosts: &'a [String],
    pub(super) workers: usize,
    pub(super) socket: &'a Path,
    pub(super) secret_file: &'a Path,
}

/// The command line (see [`Mpi`]).
pub(super) fn command_line(mpi: &Mpi, layout: &Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![layout.mpirun.into()];
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    // A killed rank ends the job at once; TCP only, read at every progress call, so that the
    // bridge and the ranks can sleep on their sockets (rustmp-mpi's `wake`).
    push(&["--mca", "odls_base_sigkill_timeout", "0"]);
    push(&["--mca", "btl", "tcp,self"]);
    push(&["--mca", "mpi_event_tick_rate", "1"]);
    push(&["--mca", "mpi_yield_when_idle", "1"]);
    if matches!(mpi.hosts, Hosts::Local) {
        push(&["--oversubscribe"]);
    }
    args.extend(mpi.args.iter().map(OsString::from));
    args.extend(["-np", "1"].map(OsString::from));
    // In an allocation (Mpi::allocation) any `--host` would narrow it: mpirun puts rank 0 on
    // its own node, the first (the front checks that it did).
    if !matches!(mpi.hosts, Hosts::Allocation) {
        args.extend(["--host".into(), format!("{}:1", layout.here).into()]);
    }
    args.push(layout.launcher.into());
    args.extend(["bridge", "--socket"].map(OsString::from));
    args.push(layout.socket.into());
    args.push("--secret-file".into());
    args.push(layout.secret_file.into());
    let np = layout.workers.to_string();
    args.extend([":", "-np", &np].map(OsString::from));
    // No hosts: mpirun places the workers in its allocation (Mpi::allocation).
    if !layout.hosts.is_empty() {
        args.extend(["--host".into(), layout.hosts.join(",").into()]);
    }
    args.push(layout.launcher.into());
    args.push("worker".into());
    args
}

/// A started `mpirun`.
pub(super) struct Job {
    pub(super) pid: u32,
    pub(super) pidfd: Option<OwnedFd>,
    /// The read end of its stderr (non-blocking).
    pub(super) stderr: OwnedFd,
}

/// Starts `mpirun` with `args` (argv\[0\] first) and this process's environment, as a child of
/// the runtime (interrupts terminate it), its stderr on a pipe. The library's own variables are
/// left out, as for a local spawn worker: the bridge and the ranks (which contain the library)
/// must not take them for themselves (an interrupt handler, a host's output socket).
pub(super) fn start(args: Vec<OsString>) -> Result<Job> {
    let env = crate::pool::spawn::environment_without(&[
        crate::pool::spawn::WORKER_ENV,
        crate::host::SIGINT_ENV,
        crate::host::OUTPUT_SOCKET_ENV,
        crate::host::SPAWN_HOST_ENV,
    ]);
    let path = args[0].to_string_lossy().into_owned();
    let exec = Exec::new(&path, args, env)?;
    let (err_r, err_w) = sys::fd::pipe2(false).map_err(|e| e.error("pipe2"))?;
    let write_end = err_w.as_raw_fd();
    let body = Box::new(move || {
        if sys::exec::move_to(write_end, 2).is_err() {
            return 127;
        }
        sys::exec::close_from(3);
        let errno = exec.exec();
        let message = format!(
            "cannot start mpirun: {}\n",
            std::io::Error::from_raw_os_error(errno)
        );
        let _ = sys::fd::write(std::io::stderr(), message.as_bytes());
        127
    });
    let (pid, pidfd) = runtime::spawn(
        Spawn {
            name: "mpirun".into(),
            identity: Vec::new(),
            daemon: true,
            kind: Kind::Launcher,
            bind_to_thread: true,
        },
        body,
    )?;
    drop(err_w);
    sys::set_nonblocking(&err_r, true)?;
    Ok(Job {
        pid,
        pidfd,
        stderr: err_r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostfiles_become_host_lists_and_bad_ones_are_named() {
        let dir = crate::code::Stage::new().unwrap();
        let file = dir.path().join("hosts");
        std::fs::write(&file, "# nodes\nnode1 slots=2\nnode2 max_slots=4 # big\n\n").unwrap();
        assert_eq!(read_hostfile(&file).unwrap(), vec!["node1:2", "node2"]);
        std::fs::write(&file, "node1 slots=two\n").unwrap();
        let e = read_hostfile(&file).unwrap_err().to_string();
        assert!(e.contains("line 1: `slots=two`"), "{e}");
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(
            read_hostfile(&file)
                .unwrap_err()
                .to_string()
                .contains("no host")
        );
        let missing = read_hostfile(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("No such file"), "{missing}");
        let mpi = Mpi::hosts(["a:2", "b:x"]);
        assert!(worker_hosts(&mpi, "here", 2).is_err());
        assert_eq!(
            worker_hosts(&Mpi::local(), "here", 3).unwrap(),
            vec!["here:3"]
        );
    }

    #[test]
    fn missing_programs_are_clear_errors() {
        let mpi = Mpi::local()
            .mpirun("/no/such/mpirun")
            .launcher("/no/such/rustmp-mpi");
        let e = mpirun_program(&mpi).unwrap_err().to_string();
        assert!(
            e.contains("mpirun not found") && e.contains("openmpi-bin"),
            "{e}"
        );
        let e = launcher_program(&mpi).unwrap_err().to_string();
        assert!(
            e.contains("/no/such/rustmp-mpi") && e.contains("Mpi::launcher"),
            "{e}"
        );
    }

    #[test]
    fn the_allocation_leaves_the_workers_placement_to_mpirun() {
        let line = |mpi: &Mpi, hosts: &[String]| {
            let layout = Layout {
                mpirun: Path::new("/usr/bin/mpirun"),
                launcher: Path::new("/opt/rustmp-mpi"),
                here: "front",
                hosts,
                workers: 3,
                socket: Path::new("/s"),
                secret_file: Path::new("/f"),
            };
            let words: Vec<String> = command_line(mpi, &layout)
                .into_iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect();
            words.join(" ")
        };
        let allocation = Mpi::allocation();
        let hosts = worker_hosts(&allocation, "front", 3).unwrap();
        assert!(hosts.is_empty());
        let words = line(&allocation, &hosts);
        assert!(
            words.contains("-np 1 /opt/rustmp-mpi bridge")
                && !words.contains("--host")
                && words.ends_with(": -np 3 /opt/rustmp-mpi worker")
                && !words.contains("--oversubscribe"),
            "{words}"
        );
        let listed = Mpi::hosts(["n1:2", "n2"]);
        let hosts = worker_hosts(&listed, "front", 3).unwrap();
        let words = line(&listed, &hosts);
        assert!(
            words.contains("-np 1 --host front:1 /opt/rustmp-mpi bridge")
                && words.ends_with(": -np 3 --host n1:2,n2 /opt/rustmp-mpi worker"),
            "{words}"
        );
    }
}
