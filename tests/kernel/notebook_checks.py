"""What the committed notebooks must print when executed (exact where deterministic, patterns
where random or timing dependent). Cells are found by a piece of their source, not by position."""
import re

NOTEBOOKS = ["multiprocessing-qa.ipynb", "tutorial.ipynb"]


def code_cell(nb, needle):
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(cells) == 1, f"{len(cells)} code cells contain {needle!r}"
    return cells[0]


def stdout(cell):
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == "stdout")


def no_errors(nb):
    """No error output and nothing on stderr, in any cell."""
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        for o in c.outputs:
            assert o["output_type"] != "error", (c.source, o)
            assert not (o["output_type"] == "stream" and o["name"] == "stderr"), (c.source, o)


def lines_matching(text, pattern, count):
    lines = text.splitlines()
    assert len(lines) == count, text
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert all(matches), text
    return matches


def check_qa(nb):
    no_errors(nb)
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("#") and "Question" in line]
    assert [re.search(r"Question (\d)", h).group(1) for h in headings] == ["1", "2", "3", "4", "5", "6"]

    assert re.fullmatch(r"\d+ CPUs; this is MainProcess \(pid \d+\)\n",
                        stdout(code_cell(nb, "cpu_count(), current_process().name()")))
    timing = stdout(code_cell(nb, "fn cpu_job"))
    assert re.fullmatch(r"(\d+) jobs of \d+ iterations each\nsequential: +\d+\.\d{3} s\n\1 std::threads: +\d+\.\d{3} s\n"
                        r"\1 Processes: +\d+\.\d{3} s\nstart \+ join, empty thread: +\d+ µs\n"
                        r"start \+ join, empty process: +\d+ µs\n", timing), timing
    assert stdout(code_cell(nb, "std::process::abort()")) == \
        "the child aborted: exit code Some(-6) (-6: killed by SIGABRT); the notebook goes on\n"
    assert stdout(code_cell(nb, "static COUNTER")) == "in the child:  COUNTER = 42\nin the parent: COUNTER = 0\n"

    tickets = stdout(code_cell(nb, "fn produce(q: Queue<Option<String>>)")).splitlines()
    assert sorted(tickets) == [f"ticket{i}" for i in range(1, 6)], tickets
    assert [t for t in tickets if t != "ticket5"] == [f"ticket{i}" for i in range(1, 5)], tickets

    assert stdout(code_cell(nb, "fn add(a: i64, b: i64)")) == (
        "apply(add, (2, 3))             = 5\n"
        "apply_async(square, (12,))     = 144\n"
        "map(square, 1..=10)            = [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]\n"
        "map_async: ready after wait()  = true\n"
        "map_async(square, [7, 8, 9])   = [49, 64, 81]\n")

    # What Python prints for `math.gamma` over the seed's list (python3 -c ..., verified).
    assert stdout(code_cell(nb, "fn calc_gamma")) == (
        "Gamma(0.5) = 1.7724538509055159\nGamma(1) = 1.0\nGamma(2) = 1.0\nGamma(3) = 2.0\nGamma(4) = 6.0\n"
        "Gamma(5) = 24.0\nGamma(6) = 120.0\nGamma(7) = 720.0\nGamma(8) = 5040.0\nGamma(9) = 40320.0\n"
        "Gamma(10) = 362880.0\n")

    answer6 = lines_matching(stdout(code_cell(nb, "fn generate_random_number")),
                             r"Process number ([0-3]), random number generated : (\d+)", 4)
    assert sorted(m.group(1) for m in answer6) == ["0", "1", "2", "3"]
    numbers = [int(m.group(2)) for m in answer6]
    assert all(1 <= n <= 100 for n in numbers)
    # Four independent draws may repeat a number now and then; all four equal means the
    # generator was not reseeded after fork (about one run in a million otherwise).
    assert len(set(numbers)) > 1, numbers
    trap = lines_matching(stdout(code_cell(nb, "seeded once, in the parent")),
                          r"without reseeding, process ([0-3]) drew (\d+)", 4)
    assert len({m.group(2) for m in trap}) == 1


def check_tutorial(nb):
    no_errors(nb)
    assert stdout(code_cell(nb, 'with_name("sleeper")')) == (
        "sleeper is alive after 100 ms: true\nactive children: [\"sleeper\"]\n"
        "after terminate(): alive false, exit code Some(-15)\nstd::process::exit(3) gives exit code Some(3)\n")
    assert stdout(code_cell(nb, "Pipe::new::<Option<i64>>")) == (
        "sent 3, received Some(9)\nsent 4, received Some(16)\nsent 12, received Some(144)\n"
        "the child exited with code Some(0)\nrecv() now: Err(Eof)\n")
    assert stdout(code_cell(nb, "Pipe::oneway::<String>")) == (
        "anything to read before the child starts? false\nreceived \"alpha\"\nreceived \"beta\"\n"
        "received \"gamma\"\nEof: every copy of the writing end is closed\n")
    assert stdout(code_cell(nb, "fn square_worker")) == "[(1, 1), (2, 4), (3, 9), (4, 16), (5, 25), (6, 36)]\n"
    naps = lines_matching(stdout(code_cell(nb, "fn nap(ms: u64)")),
                          r"(imap|imap_unordered): +(\d+) ms task, received after +\d+ ms", 8)
    assert [(m.group(1), m.group(2)) for m in naps[:4]] == [("imap", n) for n in ["600", "150", "450", "300"]]
    assert sorted(m.group(2) for m in naps[4:]) == ["150", "300", "450", "600"]
    assert all(m.group(1) == "imap_unordered" for m in naps[4:])
    assert stdout(code_cell(nb, "fn power(base: u64")) == (
        "starmap(power, ..)       = [1024, 81, 1000]\nstarmap(label, ..)       = [\"run-007\", \"test-042\"]\n"
        "starmap_async(power, ..) = [25, 32]\napply(power, (7, 2))     = 49\nmap(|x| x * 10, 1..=3)   = [10, 20, 30]\n")
    assert re.fullmatch(r'a task panicked: not a number: "x3"\nin worker ForkPoolWorker-\d+ \(pid \d+\)\nnext map: \[5, 6\]\n',
                        stdout(code_cell(nb, "fn parse_number")))
    assert stdout(code_cell(nb, '("seven".to_string(),)')) == \
        "ready: true, successful: false\nget() returned Error::Task: not a number: \"seven\"\n"
    assert re.fullmatch(r"ForkPoolWorker-\d+ died with exit code 9\nthe pool still works: \[20, 50\]\n",
                        stdout(code_cell(nb, "fn hundred_over")))
    assert stdout(code_cell(nb, "fn slow_report")) == "task submitted; this cell ends without waiting for it\n"
    pending = code_cell(nb, "pending.get()?")
    assert stdout(pending) == "worker: step 1 of 3\nworker: step 2 of 3\nworker: step 3 of 3\n"
    assert [o["data"]["text/plain"] for o in pending.outputs if o["output_type"] == "execute_result"] == ["30"]
    assert re.fullmatch(r"started Process-\d+\n", stdout(code_cell(nb, "background process: tick")))
    assert stdout(code_cell(nb, "ticker.join()?")) == (
        "background process: tick 1\nbackground process: tick 2\nbackground process: tick 3\n"
        "joined, exit code Some(0)\n")
    table = [o for o in code_cell(nb, "fn cube(x: u64)").outputs if o["output_type"] == "display_data"]
    assert len(table) == 1
    html = table[0]["data"]["text/html"]
    for n, c in [(1, 1), (2, 8), (3, 27), (4, 64), (5, 125), (6, 216)]:
        assert f"<tr><td>{n}</td><td>{c}</td></tr>" in html
    racing = re.fullmatch(r"without holding the lock: (\d+) \(4 × 200000 = 800000 expected\)\n",
                          stdout(code_cell(nb, "fn add_many")))
    assert racing and int(racing.group(1)) <= 800000
    assert stdout(code_cell(nb, "race(true)?")) == "holding the lock:         800000\n"
    assert stdout(code_cell(nb, "Barrier::new(4)")) == (
        "is the event set before go.set()? false\nbarrier indexes handed out: [0, 1, 2, 3]\n")
    assert stdout(code_cell(nb, "Array::<u64>::new(8)")) == (
        "written by two children: [0, 1, 4, 9, 16, 25, 36, 49]\nsum under one lock:      140\n")
    assert re.fullmatch(r'"written by the child"\nattach after unlink: Err\(NotFound \{ name: "[^"]+" \}\)\n',
                        stdout(code_cell(nb, "SharedMemory::create(64)")))
    bar = [o for o in code_cell(nb, "fn bar(done: usize").outputs if o["output_type"] == "display_data"]
    assert bar[0]["data"]["text/html"] == '<progress value="8" max="8"></progress> 8/8 tasks'
    assert bar[-1]["data"]["text/markdown"] == "**All 8 tasks finished.**"


GAMMA = ("Gamma(0.5) = 1.7724538509055159\nGamma(1) = 1.0\nGamma(2) = 1.0\nGamma(3) = 2.0\nGamma(4) = 6.0\n"
         "Gamma(5) = 24.0\nGamma(6) = 120.0\nGamma(7) = 720.0\nGamma(8) = 5040.0\nGamma(9) = 40320.0\n"
         "Gamma(10) = 362880.0\n")


def check_cluster(nb, hosts):
    """notebooks/cluster.ipynb: run on `hosts` (the workers' hostnames), or on any one host (None:
    the committed run, every rank on the machine that ran it)."""
    no_errors(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "let hostfile: Option<String> = None;" in params[0].source
    where = stdout(code_cell(nb, "RUSTMP_MPI_HOSTFILE"))
    if hosts is None:
        assert re.fullmatch(r"every worker on this machine \(\S+\)\n", where), where
    else:
        assert re.fullmatch(r"workers on the hosts of \S+\n", where), where
    # Answer 5: what Python prints for math.gamma over the seed's list.
    assert stdout(code_cell(nb, "fn calc_gamma")) == GAMMA

    out = stdout(code_cell(nb, "fn work(x: u64) -> u64")).splitlines()
    # Each tenth task says where it ran: once by a worker (prefixed), once in the loop here.
    remote = [re.fullmatch(r"\((MpiPoolWorker-\d+)@(\S+) pid=\d+ host=(\S+)\) task (\d+)", line) for line in out]
    remote = [m for m in remote if m]
    assert sorted(int(m.group(4)) for m in remote) == list(range(0, 100, 10)), out
    assert all(m.group(2) == m.group(3) for m in remote), out
    assert [line for line in out if line.startswith("task ")] == [f"task {x}" for x in range(0, 100, 10)], out
    assert "pool.map(work, 0..100): 462627 primes in all, the first [2262, 2313, 2360]" in out, out
    assert "the same as a loop here: true" in out, out
    assert any(re.fullmatch(r"speedup over the loop: \d+\.\d", line) for line in out), out
    share = dict((m.group(1), int(m.group(2))) for m in
                 (re.fullmatch(r"(\S+): (\d+) tasks", line) for line in out) if m)
    assert sum(share.values()) == 100 and all(n > 0 for n in share.values()), out
    ran = {m.group(2) for m in remote}
    if hosts is None:
        assert len(share) == 1 and ran == set(share), out
    else:
        assert set(share) == set(hosts) and ran <= set(hosts), out
    assert len(out) == 10 + 1 + 10 + 2 + len(share), out


CHECKS = {"multiprocessing-qa.ipynb": check_qa, "tutorial.ipynb": check_tutorial}
