//! What spawn pool workers print reaches the parent's output as forked workers' does: the
//! inherited stdout and stderr, or, under a host (a notebook kernel), their own pipes registered
//! through the output socket. And they die with their parent. Each case runs in a fresh copy of
//! this program.

mod common;

use multiprocessing::{Pool, StartMethod, current_process};

fn shout(i: u32) -> u32 {
    println!("out {i} from {}", current_process().name());
    eprintln!("err {i} from {}", current_process().name());
    i
}

/// Run by `spawn_workers_output_goes_where_fork_workers_output_goes` in a fresh copy of this
/// program: with `HOST=1`, under a host (an output-registration socket, as the kernel sets
/// up); else with the inherited stdout and stderr.
#[test]
#[ignore = "a scenario, run in a child process by the test below"]
fn output_scenario() {
    let under_host = std::env::var("SPAWN_OUTPUT_SCENARIO_HOST").is_ok_and(|v| v == "1");
    let mut pair = [0; 2];
    if under_host {
        // SAFETY: creating a socket pair; this scenario runs alone in its process, before any
        // thread of ours reads the environment.
        unsafe {
            assert_eq!(
                libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, pair.as_mut_ptr()),
                0
            );
            std::env::set_var(
                multiprocessing::host::OUTPUT_SOCKET_ENV,
                pair[1].to_string(),
            );
        }
    }
    let pool = common::spawn_pool(1);
    assert_eq!(pool.map(shout, 0..2u32).unwrap(), vec![0, 1]);
    pool.close().unwrap();
    pool.join().unwrap();
    if under_host {
        let (pid, name, out, err) = common::receive_registration(pair[0]);
        let (out, err) = (common::read_all(out), common::read_all(err));
        println!(
            "REGISTERED pid-is-a-child={} name={name}",
            pid != std::process::id()
        );
        println!("REGISTERED-OUT {out:?}");
        println!("REGISTERED-ERR {err:?}");
    }
}

fn run_output_scenario(host: bool) -> (String, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "output_scenario", "--ignored", "--nocapture"])
        .env("SPAWN_OUTPUT_SCENARIO_HOST", if host { "1" } else { "0" })
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn spawn_workers_output_goes_where_fork_workers_output_goes() {
    // Inherited descriptors: the worker writes to this program's stdout and stderr.
    let (stdout, stderr) = run_output_scenario(false);
    assert!(
        stdout.contains("out 0 from SpawnPoolWorker-1\nout 1 from SpawnPoolWorker-1\n"),
        "{stdout}"
    );
    assert!(
        stderr.contains("err 0 from SpawnPoolWorker-1\nerr 1 from SpawnPoolWorker-1\n"),
        "{stderr}"
    );
    // Under a host: its own pipes, registered under its name, as a forked worker's are.
    let (stdout, _) = run_output_scenario(true);
    assert!(
        stdout.contains("REGISTERED pid-is-a-child=true name=SpawnPoolWorker-1\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"REGISTERED-OUT "out 0 from SpawnPoolWorker-1\nout 1 from SpawnPoolWorker-1\n""#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"REGISTERED-ERR "err 0 from SpawnPoolWorker-1\nerr 1 from SpawnPoolWorker-1\n""#
        ),
        "{stdout}"
    );
}

/// Run by `spawn_workers_die_with_a_killed_parent`: prints its workers' pids, then dies of
/// SIGKILL (no exit handler, no destructor runs).
#[test]
#[ignore = "a scenario, run in a child process by the test below"]
fn killed_parent_scenario() {
    use std::io::Write;
    let pool = common::spawn_pool(2);
    let pids = pool.map_chunked(pid_of, 0..2u32, 1).unwrap();
    println!("WORKERS {} {}", pids[0], pids[1]);
    std::io::stdout().flush().unwrap();
    if std::env::var_os("SPAWN_KILL_PARENT_SCENARIO").is_none() {
        return; // run by hand or with --include-ignored: not the scenario's process
    }
    // SAFETY: killing ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

#[test]
fn spawn_workers_die_with_a_killed_parent() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_parent_scenario",
            "--ignored",
            "--nocapture",
        ])
        .env("SPAWN_KILL_PARENT_SCENARIO", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "the scenario must die of SIGKILL, with its pool open: {stdout}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WORKERS "))
        .unwrap_or_else(|| panic!("no pids in {stdout}"));
    let pids: Vec<u32> = line.split(' ').map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    assert!(
        common::wait_for(std::time::Duration::from_secs(5), || pids
            .iter()
            .all(|&p| common::is_dead(p))),
        "workers {pids:?} outlived their parent"
    );
}

/// The descriptors of this process that are `target` (a `pipe:[inode]` link).
fn open_here(target: String) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy() == target) {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// As Python's spawn (`close_fds`): a worker starts with its standard descriptors and its
/// sockets, not with whatever the parent had open without close-on-exec.
#[test]
fn a_spawn_worker_does_not_inherit_the_parents_other_descriptors() {
    let mut fds = [0; 2];
    // SAFETY: pipe (without close-on-exec) writes two new descriptors, closed below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fds[0])).unwrap();
    let target = target.to_string_lossy().into_owned();
    assert!(target.starts_with("pipe:"), "{target}");
    let pool = common::spawn_pool(1);
    let seen = pool.map(open_here, vec![target.clone()]).unwrap();
    // SAFETY: closing the descriptors made above.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert_eq!(
        seen,
        vec![Vec::<String>::new()],
        "{target} reached the spawn worker"
    );
}

/// Run by `a_program_started_through_the_loader_gets_a_clear_error`, under `ld.so`.
#[test]
#[ignore = "a scenario, run in a child process by the test below"]
fn through_the_loader_scenario() {
    let built = Pool::builder()
        .processes(1)
        .start_method(StartMethod::Spawn)
        .build();
    match built {
        Err(e) => println!("BUILD ERROR {e}"),
        Ok(_) => println!("BUILT"),
    }
}

#[test]
fn a_program_started_through_the_loader_gets_a_clear_error() {
    let loader = "/lib64/ld-linux-x86-64.so.2";
    let out = std::process::Command::new(loader)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "through_the_loader_scenario",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BUILD ERROR StartMethod::Spawn starts this program again"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("use StartMethod::Fork"), "{stdout}");
}
