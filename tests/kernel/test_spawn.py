"""The spawn start method in a notebook: workers are the kernel's executable started again by
exec, which load the cells' code shipped to them as bytes (by GNU build-id) into a private
staging directory, and run the pool's worker loop in the notebook's own copy of the library."""
import glob
import os
import re
import stat
import time

from conftest import execute, pid_alive, stream_text


def run(kc, code, timeout=300):
    reply, outputs, _ = execute(kc, code, timeout=timeout)
    assert reply["content"]["status"] == "ok", (reply["content"], stream_text(outputs, "stderr"))
    return stream_text(outputs)


def stage_dirs(pid):
    roots = [os.environ.get("XDG_RUNTIME_DIR") or "/tmp", "/tmp"]
    return sorted({d for r in roots for d in glob.glob(f"{r}/rustmp-{os.getuid()}/k{pid}-*")})


def test_a_spawn_pool_in_a_notebook_runs_cells_code_in_fresh_processes(kernel):
    _, kc = kernel
    out = run(kc, r"""
static TOUCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
fn work(x: u64) -> u64 { x * x + TOUCHED.load(std::sync::atomic::Ordering::SeqCst) }
fn who(_: u64) -> (String, u32, u32, String) {
    let ppid = std::fs::read_to_string("/proc/self/stat").unwrap()
        .rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let exe = std::fs::read_link("/proc/self/exe").unwrap().display().to_string();
    (current_process().name().to_string(), std::process::id(), ppid, exe)
}
TOUCHED.store(1000, std::sync::atomic::Ordering::SeqCst);
let pool = Pool::builder().processes(2).start_method(StartMethod::Spawn).build().unwrap();
let squares = pool.map(work, 0..100).unwrap();
println!("right {}", squares == (0..100u64).map(|x| x * x).collect::<Vec<_>>());
println!("here {}", work(2));
println!("me {} {}", std::process::id(), std::fs::read_link("/proc/self/exe").unwrap().display());
for (name, pid, ppid, exe) in pool.map_chunked(who, 0..8, 1).unwrap() {
    println!("worker {name} {pid} {ppid} {exe}");
}
""")
    # The static was set here, and is fresh in the workers: they are not forked copies.
    assert "right true\n" in out, out
    assert "here 1004\n" in out, out
    me = re.search(r"^me (\d+) (.+)$", out, re.M)
    runtime, exe = int(me.group(1)), me.group(2)
    workers = re.findall(r"^worker (\S+) (\d+) (\d+) (.+)$", out, re.M)
    assert workers, out
    names = {w[0] for w in workers}
    assert all(re.fullmatch(r"SpawnPoolWorker-\d+", n) for n in names), names
    pids = {int(w[1]) for w in workers}
    assert runtime not in pids
    assert all(int(w[2]) == runtime for w in workers), workers
    assert all(w[3] == exe for w in workers), workers

    # A function of a later cell runs on the pool made earlier (its object is shipped then).
    out = run(kc, r"""
fn later(x: u64) -> u64 { 3 * x + 7 }
println!("later {:?}", pool.map(later, 0..5).unwrap());
println!("again {}", pool.map(work, 0..100).unwrap().iter().sum::<u64>());
""")
    assert "later [7, 10, 13, 16, 19]\n" in out, out
    assert f"again {sum(x * x for x in range(100))}\n" in out, out

    # What a worker prints reaches the running cell.
    out = run(kc, r"""
fn shout(x: u64) -> u64 { println!("spawned worker {} says {x}", current_process().name()); x }
println!("shouted {:?}", pool.map_chunked(shout, 0..4, 1).unwrap());
""")
    said = re.findall(r"^spawned worker SpawnPoolWorker-\d+ says (\d)$", out, re.M)
    assert sorted(said) == ["0", "1", "2", "3"], out
    assert "shouted [0, 1, 2, 3]\n" in out, out

    # A panic is an error with its message, and the pool goes on.
    out = run(kc, r"""
fn boom(x: u64) -> u64 { if x == 3 { panic!("boom at {x}") } x }
match pool.map(boom, 0..5) {
    Err(Error::Task(t)) => {
        println!("task error {} in {}", t.message, t.worker);
        // The worker loop runs in the notebook's copy of the library, entered from the kernel's.
        for name in ["ctx::boom", "multiprocessing_spawn_worker", "spawned::host::enter"] {
            println!("backtrace names {name}: {}", t.backtrace.contains(name));
        }
    }
    other => println!("unexpected {other:?}"),
}
println!("still {:?}", pool.map(later, 0..2).unwrap());
""")
    assert re.search(r"^task error boom at 3 in SpawnPoolWorker-\d+$", out, re.M), out
    assert out.count(": true\n") == 3, out
    assert "still [7, 10]\n" in out, out

    # The workers' staging directories are owner-only while they run, gone after the pool.
    alive = [p for p in pids if pid_alive(p)]
    assert alive, "the workers are still running"
    dirs = [d for p in alive for d in stage_dirs(p)]
    assert dirs, f"no staging directory for {alive}"
    for d in dirs:
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
        assert any(n.startswith("libmultiprocessing-") for s in os.listdir(d) for n in os.listdir(f"{d}/{s}")), d
    # A worker that is killed cannot remove its own: the pool does once it has reaped it.
    killed = alive[0]
    os.kill(killed, 9)
    out = run(kc, 'println!("after kill {:?}", pool.map(later, 0..3).unwrap());')
    assert "after kill [7, 10, 13]\n" in out, out
    assert not pid_alive(killed)
    assert stage_dirs(killed) == []
    # Dropping the pool terminates its workers (as Python's does), and their directories go.
    workers = run(kc, 'for (name, pid, _, _) in pool.map_chunked(who, 0..8, 1).unwrap() { println!("{pid}"); }')
    alive = {int(p) for p in workers.split()}
    assert alive and all(stage_dirs(p) for p in alive), alive
    run(kc, "drop(pool);")
    assert not any(pid_alive(p) for p in alive)
    assert [d for p in alive for d in stage_dirs(p)] == []


def test_code_that_changed_on_disk_is_refused_with_the_objects_name(kernel):
    _, kc = kernel
    out = run(kc, r"""
fn probe(x: u64) -> u64 { x + 1 }
let spool = Pool::builder().processes(1).start_method(StartMethod::Spawn).build().unwrap();
let (_, object) = multiprocessing::code::locate(probe as fn(u64) -> u64 as usize).unwrap();
let path = object.path().to_path_buf();
let moved = path.with_extension("moved");
std::fs::rename(&path, &moved).unwrap();
std::fs::write(&path, b"not the cell any more").unwrap();
let result = spool.map(probe, 0..3);
std::fs::rename(&moved, &path).unwrap();
match result {
    Err(Error::CodeLoad { object, message }) => println!("refused {object}: {message}"),
    other => println!("unexpected {other:?}"),
}
println!("cell {}", path.display());
println!("after {:?}", spool.map(probe, 0..3));
drop(spool);
""")
    cell = re.search(r"^cell (.+)$", out, re.M).group(1)
    assert f"refused {cell}: {cell} changed on disk since it was loaded; restart the kernel\n" in out, out
    # The refusal is kept for that function (its object was not sent), and nothing crashed.
    assert "after Err(CodeLoad" in out, out

    # The library itself rebuilt in place (what evcxr does after a `:dep`): refused at `build`.
    out = run(kc, r"""
let (_, library) = multiprocessing::code::locate(multiprocessing::cpu_count as fn() -> usize as usize).unwrap();
let lib = library.path().to_path_buf();
let moved = lib.with_extension("moved");
std::fs::rename(&lib, &moved).unwrap();
std::fs::write(&lib, b"rebuilt").unwrap();
let built = Pool::builder().processes(1).start_method(StartMethod::Spawn).build();
std::fs::rename(&moved, &lib).unwrap();
match built {
    Err(Error::CodeLoad { object, message }) => println!("refused {object}: {message}"),
    Err(other) => println!("unexpected {other:?}"),
    Ok(_) => println!("unexpected: built"),
}
println!("library {}", lib.display());
println!("restored {}", Pool::builder().processes(1).start_method(StartMethod::Spawn).build().is_ok());
""")
    lib = re.search(r"^library (.+)$", out, re.M).group(1)
    assert "/libmultiprocessing-" in lib, lib
    assert f"refused {lib}: {lib} changed on disk since it was loaded; restart the kernel\n" in out, out
    assert "restored true\n" in out, out


def test_a_worker_that_cannot_load_the_code_answers_with_the_loaders_message(kernel, tmp_path):
    _, kc = kernel
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    if os.system(f"mount -t tmpfs -o noexec,mode=0700 none {noexec}") != 0:
        import pytest
        pytest.skip("cannot mount a noexec tmpfs (not root?)")
    try:
        out = run(kc, r"""
fn three(x: u64) -> u64 { x + 3 }
let old = std::env::var_os("XDG_RUNTIME_DIR");
unsafe { std::env::set_var("XDG_RUNTIME_DIR", "%s") };
let npool = Pool::builder().processes(1).start_method(StartMethod::Spawn).build();
match old { Some(v) => unsafe { std::env::set_var("XDG_RUNTIME_DIR", v) }, None => unsafe { std::env::remove_var("XDG_RUNTIME_DIR") } }
match npool.as_ref().map(|p| p.map(three, 0..2)) {
    Ok(Err(Error::CodeLoad { object, message })) => println!("codeload {object}: {message}"),
    other => println!("unexpected {other:?}"),
}
if let Ok(p) = &npool { p.close().unwrap(); p.join().unwrap(); }
drop(npool);
""" % noexec)
        # The worker that could not run the library removed its staging directory as it ended.
        assert os.listdir(noexec / f"rustmp-{os.getuid()}") == []
    finally:
        os.system(f"umount {noexec}")
    assert re.search(r"^codeload \S*/libmultiprocessing-[0-9a-f]+\.so: .*failed to map segment", out, re.M), out


def used_bytes(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_a_cell_whose_object_cannot_be_staged_fails_alone(kernel, tmp_path):
    """A worker staging into a nearly full disk: a cell's object too big to be written (ENOSPC)
    fails that cell's functions only; a later small cell and an earlier one still run."""
    _, kc = kernel
    small = tmp_path / "small"
    small.mkdir()
    if os.system(f"mount -t tmpfs -o size=64m,mode=0700 none {small}") != 0:
        import pytest
        pytest.skip("cannot mount a tmpfs (not root?)")
    try:
        out = run(kc, r"""
fn tiny1(x: u64) -> u64 { x + 1 }
let old = std::env::var_os("XDG_RUNTIME_DIR");
unsafe { std::env::set_var("XDG_RUNTIME_DIR", "%s") };
let spool = Pool::builder().processes(1).start_method(StartMethod::Spawn).build().unwrap();
match old { Some(v) => unsafe { std::env::set_var("XDG_RUNTIME_DIR", v) }, None => unsafe { std::env::remove_var("XDG_RUNTIME_DIR") } }
println!("tiny1 {:?}", spool.map(tiny1, 0..2));
""" % small)
        assert "tiny1 Ok([1, 2])\n" in out, out
        # Room for a small cell's object, not for one with 6 MB of data.
        assert os.system(f"mount -o remount,size={used_bytes(small) + 1536 * 1024} {small}") == 0
        big = run(kc, r"""
static BIG: [u8; 6_000_000] = [7; 6_000_000];
fn big(x: u64) -> u64 { BIG[(x as usize) * 1000] as u64 }
match spool.map(big, 0..2) {
    Err(Error::CodeLoad { object, message }) => println!("codeload {object}: {message}"),
    other => println!("unexpected {other:?}"),
}
""")
        assert re.search(r"^codeload \S*/libcode_\d+-[0-9a-f]{16}\.so: .*No space left on device", big, re.M), big
        out = run(kc, r"""
fn tiny2(x: u64) -> u64 { x + 2 }
println!("tiny2 {:?}", spool.map(tiny2, 0..2));
println!("tiny1 again {:?}", spool.map(tiny1, 0..2));
spool.close().unwrap();
spool.join().unwrap();
drop(spool);
""")
        assert "tiny2 Ok([2, 3])\n" in out, (big, out)
        assert "tiny1 again Ok([1, 2])\n" in out, (big, out)
    finally:
        os.system(f"umount {small}")


def test_a_killed_workers_stages_are_removed_where_it_made_them(kernel, tmp_path):
    """A worker stages under the runtime directory of the environment it was started with: once
    it is killed (it cannot remove its own) and reaped, the pool removes its stages there, not
    where the notebook's environment points by then."""
    _, kc = kernel
    root = tmp_path / "runtime"
    root.mkdir(mode=0o700)
    out = run(kc, r"""
fn pid_of(_: u64) -> u32 { std::process::id() }
let old = std::env::var_os("XDG_RUNTIME_DIR");
unsafe { std::env::set_var("XDG_RUNTIME_DIR", "%s") };
let kpool = Pool::builder().processes(1).start_method(StartMethod::Spawn).build().unwrap();
match old { Some(v) => unsafe { std::env::set_var("XDG_RUNTIME_DIR", v) }, None => unsafe { std::env::remove_var("XDG_RUNTIME_DIR") } }
println!("victim {:?}", kpool.map(pid_of, 0..1));
""" % root)
    pid = int(re.search(r"^victim Ok\(\[(\d+)\]\)$", out, re.M).group(1))
    pattern = f"{root}/rustmp-{os.getuid()}/k{pid}-*"
    assert glob.glob(pattern), (pattern, out)
    os.kill(pid, 9)
    out = run(kc, r"""
println!("after {:?}", kpool.map(pid_of, 0..1).map(|p| p[0] != %d));
kpool.close().unwrap();
kpool.join().unwrap();
drop(kpool);
""" % pid)
    assert "after Ok(true)\n" in out, out
    deadline = time.time() + 10
    while glob.glob(pattern) and time.time() < deadline:
        time.sleep(0.1)
    assert not glob.glob(pattern), pattern


def test_a_cell_using_rustmp_display_runs_in_a_spawn_worker(kernel):
    """The kernel's display crate installs the runtime's hooks when it is loaded, from an address
    the runtime puts in the environment: a spawn worker inherits the variable, loads the crate
    with the cell, and must not take the runtime's address for its own."""
    _, kc = kernel
    out = run(kc, r"""
fn shown(x: u64) -> u64 { if x == 9 { rustmp_display::html("<b>never</b>") } x * 10 }
fn sad(x: u64) -> u64 { if x == 1 { panic!("sad {x}") } x }
let dpool = Pool::builder().processes(1).start_method(StartMethod::Spawn).build().unwrap();
println!("shown {:?}", dpool.map(shown, 0..3));
match dpool.map(sad, 0..3) {
    Err(Error::Task(t)) => println!("sad error {} at {:?}", t.message, t.location),
    other => println!("unexpected {other:?}"),
}
drop(dpool);
""")
    assert "shown Ok([0, 10, 20])\n" in out, out
    assert re.search(r"^sad error sad 1 at Some\(", out, re.M), out


def test_an_interrupt_ends_a_blocked_spawn_map_and_its_workers(kernel):
    km, kc = kernel
    run(kc, "let ipool = Pool::builder().processes(2).start_method(StartMethod::Spawn).build().unwrap();")
    code = r"""
fn slow(x: u64) -> u64 {
    println!("slow pid {}", std::process::id());
    std::thread::sleep(std::time::Duration::from_secs(60));
    x
}
ipool.map_chunked(slow, 0..4, 1)?;
"""
    msg_id = kc.execute(code)
    pids, deadline = set(), time.time() + 120
    while len(pids) < 2 and time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            pids |= {int(p) for p in re.findall(r"slow pid (\d+)", msg["content"]["text"])}
    assert len(pids) == 2, pids
    sent = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    elapsed = time.time() - sent
    assert reply["content"]["ename"] == "Interrupted", reply["content"]
    assert elapsed < 1.0, elapsed
    deadline = time.time() + 5
    while any(pid_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)
    # The pool replaced them, and goes on.
    out = run(kc, 'fn again(x: u64) -> u64 { x + 1 }\nprintln!("again {:?}", ipool.map(again, 0..3).unwrap());\ndrop(ipool);')
    assert "again [1, 2, 3]\n" in out, out
    assert not any(stage_dirs(p) for p in pids)
