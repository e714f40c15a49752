//! Scenarios of workers that fail while they start (the review's `early_exit` and
//! `transient`), and of a caller holding stdout's lock (`stdout_lock`); all on this host.

use multiprocessing::{Mpi, Pool};
use std::io::Write;
use std::time::{Duration, Instant};

/// Set in the workers' environment: each worker's start claims a file `fail-N` (N below
/// `POOL_TEST_FAIL_STARTS`) in this directory and exits 3 at load time while one is left.
const FAIL_DIR: &str = "POOL_TEST_FAIL_DIR";
const FAIL_STARTS: &str = "POOL_TEST_FAIL_STARTS";

/// Runs before `main` in every copy of this binary: a worker told to fail exits at load time
/// (as one whose library is missing on its host would).
extern "C" fn fail_at_load() {
    if std::env::var_os("MULTIPROCESSING_SPAWN_WORKER").is_none() {
        return;
    }
    let Some(dir) = std::env::var_os(FAIL_DIR) else {
        return;
    };
    let starts: u32 = std::env::var(FAIL_STARTS)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX);
    for n in 0..starts {
        let file = std::path::Path::new(&dir).join(format!("fail-{n}"));
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .is_ok()
            || starts == u32::MAX
        {
            eprintln!("failing at load time ({n})");
            // SAFETY: _exit ends the process at once; nothing is shared yet.
            unsafe { libc::_exit(3) };
        }
    }
}

#[used]
#[unsafe(link_section = ".init_array.00050")]
static FAIL_AT_LOAD: extern "C" fn() = fail_at_load;

fn square(x: u64) -> u64 {
    x * x
}

fn who(_x: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    std::process::id()
}

fn noisy(x: u64) -> u64 {
    println!("task {x}");
    x * x
}

fn fail_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("pool-test-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Every worker exits at load time: the pool's map (or its build) is an error within 30 s,
/// not a hang (3 times: whether a worker's exit comes before the last start varies).
pub fn early_exit() -> Result<(), String> {
    for _ in 0..3 {
        early_exit_once()?;
    }
    Ok(())
}

fn early_exit_once() -> Result<(), String> {
    let dir = fail_dir()?;
    let mpi = Mpi::local()
        .start_timeout(Duration::from_secs(20))
        .env(FAIL_DIR, dir.to_string_lossy());
    let t = Instant::now();
    let got = Pool::builder()
        .processes(3)
        .mpi(mpi)
        .build()
        .and_then(|pool| {
            pool.map_async(square, 0..8u64)?
                .get_timeout(Duration::from_secs(20))
        });
    let _ = std::fs::remove_dir_all(&dir);
    println!("RESULT early_exit={got:?} after {:?}", t.elapsed());
    match got {
        Err(multiprocessing::Error::Timeout) => Err("the map hung (timed out)".into()),
        Err(e) if e.to_string().contains("code 3") && t.elapsed() < Duration::from_secs(30) => {
            Ok(())
        }
        other => Err(format!(
            "expected an error soon, got {other:?} after {:?}",
            t.elapsed()
        )),
    }
}

/// The first 2 worker starts fail at load time: the pool ends up with its 3 workers serving.
pub fn transient() -> Result<(), String> {
    let dir = fail_dir()?;
    let mpi = Mpi::local()
        .start_timeout(Duration::from_secs(30))
        .env(FAIL_DIR, dir.to_string_lossy())
        .env(FAIL_STARTS, "2");
    let got = Pool::builder()
        .processes(3)
        .mpi(mpi)
        .build()
        .and_then(|pool| {
            std::thread::sleep(Duration::from_secs(2));
            pool.map_async(who, 0..60u64)?
                .get_timeout(Duration::from_secs(40))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let pids: std::collections::BTreeSet<u32> =
        got.map_err(|e| format!("map: {e}"))?.into_iter().collect();
    println!("RESULT serving={}", pids.len());
    if pids.len() == 3 {
        Ok(())
    } else {
        Err(format!("{} workers served, not 3: {pids:?}", pids.len()))
    }
}

/// The caller holds stdout's lock while tasks print: the map still ends (as with a local
/// spawn pool).
pub fn stdout_lock() -> Result<(), String> {
    let pool = Pool::builder()
        .processes(2)
        .mpi(Mpi::local().start_timeout(Duration::from_secs(30)))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let out = std::io::stdout();
    let mut lock = out.lock();
    let got = pool
        .map_async(noisy, 0..4u64)
        .and_then(|r| r.get_timeout(Duration::from_secs(10)));
    let _ = writeln!(lock, "RESULT stdout_lock={got:?}");
    drop(lock);
    match got {
        Ok(v) if v == [0, 1, 4, 9] => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// A 4 MiB result, then (maxtasksperchild(1)) the worker exits at once.
fn big(x: u64) -> Vec<u8> {
    vec![x as u8; 4 << 20]
}

/// Each worker sends a 4 MiB result and exits right after it (maxtasksperchild(1)): every
/// result arrives whole (a worker's end is announced only after its last bytes).
pub fn last_data() -> Result<(), String> {
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .mpi(Mpi::local().start_timeout(Duration::from_secs(30)))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let out = pool
        .map_chunked(big, 0..8u64, 1)
        .map_err(|e| format!("map: {e}"))?;
    let whole = out
        .iter()
        .enumerate()
        .all(|(i, v)| v.len() == 4 << 20 && v.iter().all(|&b| b == i as u8));
    println!("RESULT last_data results={} whole={whole}", out.len());
    if whole && out.len() == 8 {
        Ok(())
    } else {
        Err("a result is missing or cut".into())
    }
}

fn slow(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(100));
    x
}

/// SIGINT during a map on `Mpi::local()`: `Interrupted`; the interrupt ended the pool's job
/// (with the other children), and a later call on that pool says so.
pub fn after_interrupt() -> Result<(), String> {
    multiprocessing::interrupt::enable().map_err(|e| e.to_string())?;
    let pool = Pool::builder()
        .processes(2)
        .mpi(Mpi::local().start_timeout(Duration::from_secs(30)))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let me = std::process::id() as i32;
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on this process; no memory is involved.
        unsafe { libc::kill(me, libc::SIGINT) };
    });
    let got = pool.map_chunked(slow, 0..100u64, 1);
    let _ = signaller.join();
    if !matches!(got, Err(multiprocessing::Error::Interrupted)) {
        return Err(format!("expected Interrupted, got {got:?}"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let next = pool.map(slow, 0..4u64);
    println!("RESULT after_interrupt next={next:?}");
    match next {
        Err(e) if e.to_string().contains("interrupt") => Ok(()),
        other => Err(format!(
            "a call after the interrupt should say the interrupt ended the pool: {other:?}"
        )),
    }
}
