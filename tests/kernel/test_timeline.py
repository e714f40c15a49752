"""A pool's timeline in a notebook: the cell's value `pool.timeline()` shows as an SVG Gantt chart
drawn by the kernel (one row per worker, one titled bar per chunk), as inline HTML and as
image/svg+xml; `Speedup` shows as a chart with a point per measure; the Chrome trace export
loads as trace events with the same counts."""
import json
import re
import xml.etree.ElementTree as ET

from conftest import execute, stream_text

SVG = "{http://www.w3.org/2000/svg}"


def displays(outputs):
    return [m["content"]["data"] for m in outputs if m["msg_type"] in ("display_data", "execute_result")
            and "image/svg+xml" in m["content"]["data"]]


def shapes(svg, tag, cls):
    root = ET.fromstring(svg)
    found = []
    for e in root.iter(SVG + tag):
        if e.get("class") == cls:
            title = e.find(SVG + "title")
            found.append((e, title.text if title is not None else None))
    return found


def test_a_pools_timeline_is_a_gantt_chart_in_the_cell(kernel):
    _, kc = kernel
    reply, outputs, _ = execute(kc, r"""
fn nap(x: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(4)); x }
let pool = Pool::new(2).unwrap();
pool.map_chunked(nap, 0..24, 3).unwrap();
let timeline = pool.timeline();
println!("{}", timeline.to_chrome_trace());
timeline
""", timeout=300)
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = displays(outputs)
    assert len(shown) == 1, outputs
    data = shown[0]
    assert data["text/html"] == data["image/svg+xml"]
    assert data["text/plain"] == "Timeline: 8 chunks on 2 workers, 0 processes"
    bars = shapes(data["image/svg+xml"], "rect", "chunk")
    assert len(bars) == 8
    assert all(re.search(r"tasks \d+\.\.\d+ \(3 tasks\)", t) and "nap" in t for _, t in bars), bars
    rows = {float(e.get("y")) for e, _ in bars}
    assert len(rows) == 2
    # No two bars of one row overlap.
    for y in rows:
        spans = sorted((float(e.get("x")), float(e.get("x")) + float(e.get("width"))) for e, _ in bars
                       if float(e.get("y")) == y)
        assert all(a[1] <= b[0] + 0.5 for a, b in zip(spans, spans[1:])), spans
    # The same timeline, exported: as many complete events as bars, a thread per worker.
    trace = json.loads(stream_text(outputs).strip().splitlines()[-1])
    events = trace["traceEvents"]
    assert len([e for e in events if e["ph"] == "X" and e["pid"] == 1]) == 8
    assert len([e for e in events if e["name"] == "thread_name"]) == 2


def test_a_speedup_measure_is_a_chart_against_the_ideal_line(kernel):
    _, kc = kernel
    reply, outputs, _ = execute(kc, r"""
use std::time::Duration;
multiprocessing::timeline::Speedup::from_times(&[
    (1, Duration::from_millis(800)), (2, Duration::from_millis(420)), (4, Duration::from_millis(250)),
])
""", timeout=300)
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = displays(outputs)
    assert len(shown) == 1, outputs
    points = shapes(shown[0]["image/svg+xml"], "circle", "point")
    assert len(points) == 3, points
    assert shown[0]["text/plain"] == "Speedup: 1: 1.00×, 2: 1.90×, 4: 3.20×"
