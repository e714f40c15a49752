"""Output capture, over ZeroMQ: every child's output in the cell that ran it, whole, before idle."""
import re
import time

from conftest import collect, execute, stream_text

SEED_CELL = r"""
{
    let mut processes = Vec::new();
    for i in 0..4 {
        let mut p = Process::new(move || {
            let r = 1 + (std::process::id() as u64 * 2654435761 % 100);
            println!("Process number {i}, random number generated : {r}");
        });
        p.start().unwrap();
        processes.push(p);
    }
    for p in &mut processes {
        p.join().unwrap();
    }
}
"""

LINE = re.compile(r"^Process number ([0-3]), random number generated : ([0-9]+)$")


def test_seed_four_process_cell_200_times_no_garbled_or_missing_line_and_nothing_after_idle(kernel):
    _, kc = kernel
    garbled = missing = late_total = 0
    for _ in range(200):
        reply, outputs, late = execute(kc, SEED_CELL, linger=0.05)
        assert reply["content"]["status"] == "ok", reply["content"]
        lines = stream_text(outputs).splitlines()
        numbers = set()
        for line in lines:
            m = LINE.match(line)
            if m is None:
                garbled += 1
            else:
                numbers.add(m.group(1))
        missing += 4 - len(numbers)
        late_total += len(late)
    assert (garbled, missing, late_total) == (0, 0, 0)


def test_partial_lines_carriage_returns_and_non_utf8(kernel):
    _, kc = kernel
    reply, outputs, _ = execute(kc, 'print!("no newline");')
    assert stream_text(outputs) == "no newline"
    code = r"""
let mut p = Process::new(|| {
    use std::io::Write;
    let mut out = std::io::stdout();
    for i in 0..3 { write!(out, "\rprogress {i}").unwrap(); out.flush().unwrap(); }
    out.write_all(b"\nbad \xff\xfe bytes and a split \xc3").unwrap();
    out.flush().unwrap();
    out.write_all(b"\xa9 char\n").unwrap();
});
p.start().unwrap();
p.join().unwrap();
"""
    reply, outputs, _ = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    text = stream_text(outputs)
    assert text == "\rprogress 0\rprogress 1\rprogress 2\nbad \ufffd\ufffd bytes and a split \u00e9 char\n", repr(text)
    # Capture still works afterwards, on both streams.
    reply, outputs, _ = execute(kc, 'println!("after"); eprintln!("err after");')
    assert stream_text(outputs) == "after\n"
    assert stream_text(outputs, "stderr") == "err after\n"


def test_long_lines_from_two_children_are_never_interleaved(kernel):
    _, kc = kernel
    code = r"""
let mut ps: Vec<Process> = "AB".chars().map(|c| Process::new(move || {
    for _ in 0..20 { println!("{}", c.to_string().repeat(100_000)); }
})).collect();
for p in &mut ps { p.start().unwrap(); }
for p in &mut ps { p.join().unwrap(); }
"""
    reply, outputs, _ = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    lines = stream_text(outputs).split("\n")[:-1]
    assert len(lines) == 40
    assert all(line in ("A" * 100_000, "B" * 100_000) for line in lines)


def test_a_pool_made_in_an_earlier_cell_prints_into_the_current_cell(kernel):
    _, kc = kernel
    reply, _, _ = execute(kc, 'fn shout(x: u32) -> u32 { println!("task {x}"); x }\nlet pool = Pool::new(2).unwrap();')
    assert reply["content"]["status"] == "ok", reply["content"]
    reply, outputs, late = execute(kc, "pool.map(shout, 0..6).unwrap();", linger=0.2)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert sorted(stream_text(outputs).splitlines()) == [f"task {i}" for i in range(6)]
    assert late == []


def test_output_of_a_background_child_appears_in_the_cell_running_then(kernel):
    _, kc = kernel
    code = r"""
let mut bg = Process::new(|| {
    std::thread::sleep(std::time::Duration::from_millis(1500));
    println!("background says hello");
});
bg.start().unwrap();
"""
    reply, outputs, _ = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    assert "background" not in stream_text(outputs)
    reply, outputs, _ = execute(kc, "std::thread::sleep(std::time::Duration::from_millis(3000));")
    assert stream_text(outputs) == "background says hello\n"
    execute(kc, "bg.join().unwrap();")


def test_output_while_idle_is_published_promptly(kernel):
    _, kc = kernel
    reply, _, _ = execute(kc, r"""
let mut idle_writer = Process::new(|| {
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!("written while idle");
});
idle_writer.start().unwrap();
""")
    msg_id = reply["parent_header"]["msg_id"]
    deadline = time.time() + 5
    got = None
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=5)
        if msg["msg_type"] == "stream" and "written while idle" in msg["content"]["text"]:
            got = msg
            break
    assert got is not None
    # It goes to the last cell (the one that started the writer).
    assert got["parent_header"]["msg_id"] == msg_id
    execute(kc, "idle_writer.join().unwrap();")


def test_rich_display_and_update(kernel):
    _, kc = kernel
    reply, outputs, _ = execute(kc, 'let d = rustmp_display::Display::html("<p>1</p>");\nd.update_html("<p>2</p>");')
    kinds = [m["msg_type"] for m in outputs if m["msg_type"] not in ("execute_input", "status")]
    assert kinds == ["display_data", "update_display_data"], kinds
    first, second = [m for m in outputs if m["msg_type"] in ("display_data", "update_display_data")]
    assert first["content"]["transient"]["display_id"] == second["content"]["transient"]["display_id"]
    assert second["content"]["data"]["text/html"] == "<p>2</p>"


ORDER_CELLS = {
    # The parent prints, a child prints, the parent prints after joining it.
    "join": ('println!("A"); let mut p = Process::new(|| println!("B")); p.start().unwrap(); '
             'p.join().unwrap(); println!("C");', ["A", "B", "C"]),
    # The same one generation deeper: the child joins a grandchild before it prints again.
    "nested": ('println!("P1"); let mut p = Process::new(|| { println!("C1"); '
               'let mut g = Process::new(|| println!("G")); g.start().unwrap(); g.join().unwrap(); '
               'println!("C2"); }); p.start().unwrap(); p.join().unwrap(); println!("P2");',
               ["P1", "C1", "G", "C2", "P2"]),
}


def test_output_keeps_the_order_that_fork_and_join_give_it(kernel):
    _, kc = kernel
    wrong = {}
    for name, (code, expected) in ORDER_CELLS.items():
        for _ in range(40):
            reply, outputs, _ = execute(kc, "{ " + code + " }")
            assert reply["content"]["status"] == "ok", reply["content"]
            lines = stream_text(outputs).splitlines()
            if lines != expected:
                wrong.setdefault(name, []).append(lines)
    assert wrong == {}


def test_pool_task_output_comes_before_what_the_cell_prints_after_the_result(kernel):
    _, kc = kernel
    execute(kc, 'fn shout_task(i: u32) -> u32 { println!("task {i}"); i * 2 }')
    reply, _, _ = execute(kc, "let order_pool = Pool::new(2).unwrap();")
    assert reply["content"]["status"] == "ok", reply["content"]
    wrong = []
    for _ in range(30):
        reply, outputs, _ = execute(
            kc, 'println!("before"); let r = order_pool.map(shout_task, 0..4).unwrap(); println!("after {r:?}");')
        assert reply["content"]["status"] == "ok", reply["content"]
        lines = stream_text(outputs).splitlines()
        if (lines[:1], lines[-1:], sorted(lines[1:-1])) != (
                ["before"], ["after [0, 2, 4, 6]"], [f"task {i}" for i in range(4)]):
            wrong.append(lines)
    assert wrong == []
