//! The SVGs, parsed back with roxmltree.

use super::sample::{self, Call};
use super::{RenderError, speedup_svg, timeline_svg};
use serde_json::{Value, json};

mod input;

#[derive(Debug, Clone)]
struct Shape {
    class: String,
    title: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn num(n: roxmltree::Node<'_, '_>, a: &str) -> f64 {
    n.attribute(a).unwrap_or("0").parse().unwrap()
}

/// A text of the SVG and where it is.
type Text = (String, f64, f64);
/// The titled shapes, the texts, and the shapes without a title.
type Parsed<'a> = (Vec<Shape>, Vec<Text>, Vec<roxmltree::Node<'a, 'a>>);

/// The titled shapes (bars, points) and the texts of an SVG; it must be well-formed XML.
fn parse(svg: &str) -> Parsed<'_> {
    let doc = Box::leak(Box::new(
        roxmltree::Document::parse(svg).expect("well-formed SVG"),
    ));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut shapes = vec![];
    let mut texts = vec![];
    let mut untitled_rects = vec![];
    for n in doc.descendants().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "rect" | "circle" => {
                let title = n
                    .children()
                    .find(|c| c.tag_name().name() == "title")
                    .and_then(|t| t.text());
                match title {
                    Some(title) => shapes.push(Shape {
                        class: n.attribute("class").unwrap_or("").into(),
                        title: title.into(),
                        x: num(n, "x") + num(n, "cx"),
                        y: num(n, "y") + num(n, "cy"),
                        w: num(n, "width"),
                        h: num(n, "height"),
                    }),
                    None => untitled_rects.push(n),
                }
            }
            "text" => texts.push((
                n.text().unwrap_or("").trim().to_string(),
                num(n, "x"),
                num(n, "y"),
            )),
            _ => {}
        }
    }
    (shapes, texts, untitled_rects)
}

fn events(trace: &Value, pid: u64) -> Vec<&Value> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == pid)
        .collect()
}

/// How many chunks (or processes) a bar stands for: merged runs say "call N: K chunks, ...".
fn count(s: &Shape) -> usize {
    match s.class.as_str() {
        "chunk" | "process" => 1,
        "chunks" => s
            .title
            .lines()
            .nth(1)
            .unwrap()
            .split(' ')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap(),
        c => panic!("{c}"),
    }
}

fn worker_of(title: &str) -> &str {
    title.lines().nth(3).unwrap()
}

/// A map of known shape: 40 tasks, chunksize 5, 4 workers → 8 chunks.
fn known_shape() -> Value {
    sample::trace(
        4,
        &[Call {
            function: "demo::work",
            tasks: 40,
            chunksize: 5,
            cost: &|i| 1000.0 + 50.0 * i as f64,
            failing: &[],
        }],
        &[],
    )
}

#[test]
fn one_row_per_worker_and_one_titled_bar_per_chunk() {
    for trace in [known_shape(), sample::uneven()] {
        let svg = timeline_svg(&trace, 900).unwrap();
        let (shapes, texts, untitled) = parse(&svg);
        let chunks: Vec<_> = shapes.iter().filter(|s| s.class == "chunk").collect();
        let procs: Vec<_> = shapes.iter().filter(|s| s.class == "process").collect();
        assert_eq!(chunks.len(), events(&trace, 1).len());
        assert_eq!(procs.len(), events(&trace, 2).len());
        // Rows: each worker's bars share one y, distinct workers distinct ys, and its label
        // (a <text> with its thread name) sits at the row's centre.
        let names: Vec<&str> = trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "thread_name" && e["pid"] == 1)
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 4);
        let mut ys = vec![];
        for name in &names {
            let bars: Vec<_> = chunks
                .iter()
                .filter(|s| worker_of(&s.title) == *name)
                .collect();
            assert!(!bars.is_empty(), "{name} ran something");
            assert!(bars.iter().all(|b| b.y == bars[0].y && b.h == bars[0].h));
            let centre = bars[0].y + bars[0].h / 2.0;
            let label = texts.iter().find(|t| t.0 == *name).expect("a row label");
            assert!(
                (label.2 - centre).abs() <= 2.0,
                "{name}: label {label:?}, row {centre}"
            );
            ys.push(bars[0].y);
        }
        let mut distinct = ys.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert_eq!(distinct.len(), names.len());
        assert!(
            ys.windows(2).all(|w| w[0] < w[1]),
            "rows top to bottom in worker order"
        );

        // The plot area: the rows' background bands span it.
        let band = untitled
            .iter()
            .find(|n| n.attribute("fill") == Some("#F4F4F4"))
            .expect("a row band");
        let (left, right) = (num(*band, "x"), num(*band, "x") + num(*band, "width"));
        for s in chunks.iter().chain(&procs) {
            assert!(
                s.x >= left && s.x + s.w <= right,
                "{s:?} outside {left}..{right}"
            );
        }
        // The first start is at the left edge.
        let first = chunks
            .iter()
            .chain(&procs)
            .map(|s| s.x)
            .fold(f64::INFINITY, f64::min);
        assert!((first - left).abs() <= 1.0);

        // No two bars of one worker overlap, and their order is the chunks' order in time.
        for name in &names {
            let mut bars: Vec<_> = chunks
                .iter()
                .filter(|s| worker_of(&s.title) == *name)
                .collect();
            bars.sort_by(|a, b| a.x.total_cmp(&b.x));
            for w in bars.windows(2) {
                assert!(w[0].x + w[0].w <= w[1].x, "{:?} overlaps {:?}", w[0], w[1]);
            }
        }
        // Each chunk has a bar whose title names the function, the call, the task indexes,
        // the duration and the worker.
        for e in events(&trace, 1) {
            let first = e["args"]["first"].as_u64().unwrap();
            let end = first + e["args"]["tasks"].as_u64().unwrap();
            let call = e["args"]["call"].as_u64().unwrap();
            let key = format!("call {call}: tasks {first}..{end} ");
            let bars: Vec<_> = chunks.iter().filter(|c| c.title.contains(&key)).collect();
            assert_eq!(bars.len(), 1, "{key}");
            let title = &bars[0].title;
            assert!(title.starts_with(e["name"].as_str().unwrap()), "{title}");
            assert!(title.contains(" ms,"), "{title}");
            let tid = e["tid"].as_u64().unwrap() as usize;
            assert_eq!(worker_of(title), names[tid - 1]);
        }
    }
}

#[test]
fn widths_follow_durations_and_failures_are_marked() {
    let trace = sample::uneven();
    let svg = timeline_svg(&trace, 900).unwrap();
    let (shapes, _, _) = parse(&svg);
    let chunks: Vec<_> = shapes.iter().filter(|s| s.class == "chunk").collect();
    // px per µs from the widest bar; every bar within 2 px of proportional.
    let evs = events(&trace, 1);
    let widest = evs
        .iter()
        .zip(&chunks)
        .max_by(|a, b| {
            a.0["dur"]
                .as_f64()
                .unwrap()
                .total_cmp(&b.0["dur"].as_f64().unwrap())
        })
        .unwrap();
    let scale = (widest.1.w + 1.0) / widest.0["dur"].as_f64().unwrap();
    // Bars are sorted by worker then time in the SVG; match them by their task range.
    for e in &evs {
        let first = e["args"]["first"].as_u64().unwrap();
        let call = e["args"]["call"].as_u64().unwrap();
        let bar = chunks
            .iter()
            .find(|c| c.title.contains(&format!("call {call}: tasks {first}..")))
            .unwrap();
        let expect = e["dur"].as_f64().unwrap() * scale;
        assert!(
            (bar.w - expect).abs() <= 2.0,
            "{}: {} vs {expect}",
            bar.title,
            bar.w
        );
        assert_eq!(bar.title.contains("FAILED"), e["args"]["ok"] == false);
    }
    assert_eq!(
        chunks.iter().filter(|c| c.title.contains("FAILED")).count(),
        1
    );
    // The failed chunk and the killed process are outlined in red (+ the legend's swatch).
    assert_eq!(
        svg.matches("stroke=\"#D62728\" stroke-width=\"2\"").count(),
        3
    );
    let procs: Vec<_> = shapes.iter().filter(|s| s.class == "process").collect();
    assert!(procs[0].title.contains("exit code 0"));
    assert!(procs[1].title.contains("exit code -9"));
    // Legend: each call with its function.
    assert!(svg.contains("call 1: demo::square"));
    assert!(svg.contains("call 2: demo::uneven_work"));
}

#[test]
fn axis_unit_follows_the_range() {
    let at = |scale: f64| {
        let t = json!({"traceEvents": [
            {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"W-1"}},
            {"ph":"X","name":"f","cat":"call 1","pid":1,"tid":1,"ts":10.0,"dur":scale,
             "args":{"call":1,"first":0,"tasks":1,"ok":true}}]});
        timeline_svg(&t, 600).unwrap()
    };
    assert!(at(500.0).contains("(ms)"));
    assert!(at(1.5e6).contains("(ms)"));
    assert!(at(3e6).contains("(s)"));
    assert!(at(3e8).contains("(s)"));
}

#[test]
fn titles_are_escaped() {
    let t = json!({"traceEvents": [
        {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"W<1>&\"x\""}},
        {"ph":"X","name":"f::<Vec<u8>> & \"g\"","cat":"call 1","pid":1,"tid":1,"ts":0,"dur":5,
         "args":{"call":1,"first":0,"tasks":1,"ok":true}}]});
    let svg = timeline_svg(&t, 600).unwrap();
    let (shapes, texts, _) = parse(&svg);
    assert!(shapes[0].title.starts_with("f::<Vec<u8>> & \"g\""));
    assert!(texts.iter().any(|t| t.0 == "W<1>&\"x\""));
}

#[test]
fn width_is_honoured_and_clamped() {
    for (asked, got) in [(0, 320), (900, 900), (1_000_000, 10_000)] {
        let svg = timeline_svg(&known_shape(), asked).unwrap();
        assert!(
            svg.starts_with(&format!("<svg width=\"{got}\"")),
            "{}",
            &svg[..60]
        );
    }
}

#[test]
fn many_chunks() {
    let trace = sample::trace(
        8,
        &[Call {
            function: "f",
            tasks: 20_000,
            chunksize: 1,
            cost: &|i| 50.0 + (i % 13) as f64,
            failing: &[],
        }],
        &[],
    );
    let t = std::time::Instant::now();
    let svg = timeline_svg(&trace, 900).unwrap();
    let elapsed = t.elapsed();
    let (shapes, _, _) = parse(&svg);
    // Sub-pixel chunks are merged per worker: every chunk counted once, far fewer bars.
    assert_eq!(shapes.iter().map(count).sum::<usize>(), 20_000);
    assert!(shapes.len() < 2_000, "{} bars", shapes.len());
    for w in 1..=8 {
        let name = format!("ForkPoolWorker-{w} pid={}", 4199 + w);
        let mut bars: Vec<_> = shapes
            .iter()
            .filter(|s| worker_of(&s.title) == name)
            .collect();
        assert!(!bars.is_empty());
        bars.sort_by(|a, b| a.x.total_cmp(&b.x));
        assert!(bars.windows(2).all(|p| p[0].x + p[0].w <= p[1].x));
    }
    eprintln!(
        "20 000 chunks: {} bars, {} bytes of SVG in {elapsed:?}",
        shapes.len(),
        svg.len()
    );
}

#[test]
fn speedup_chart() {
    let pts = [(1, 1.0), (2, 1.9), (3, 2.6), (4, 3.1)];
    let svg = speedup_svg(&pts, 640).unwrap();
    let (shapes, texts, _) = parse(&svg);
    assert_eq!(shapes.len(), 4);
    assert!(shapes.iter().all(|s| s.class == "point"));
    assert!(shapes[3].title.starts_with("4 workers: speedup 3.10×"));
    // Points rise with the speedup, left to right with the workers.
    assert!(
        shapes
            .windows(2)
            .all(|w| w[0].x < w[1].x && w[0].y > w[1].y)
    );
    for label in ["workers", "ideal (y = x)", "measured", "1", "4"] {
        assert!(texts.iter().any(|t| t.0 == label), "no {label:?}");
    }
    assert!(texts.iter().any(|t| t.0.starts_with("speedup")));
    // The ideal line goes through (1, 1) and (4, 4): the point at 1 worker, speedup 1.0 is on it.
    assert!(svg.contains("<polyline"));
    assert!(matches!(speedup_svg(&[], 640), Err(RenderError::Data(_))));
    assert!(matches!(
        speedup_svg(&[(1, f64::NAN)], 640),
        Err(RenderError::Data(_))
    ));
    assert!(matches!(
        speedup_svg(&[(0, 1.0)], 640),
        Err(RenderError::Data(_))
    ));
    assert!(speedup_svg(&[(1, 1.0)], 640).is_ok());
    assert!(
        speedup_svg(
            &(1..=128)
                .map(|n| (n, (n as f64).sqrt()))
                .collect::<Vec<_>>(),
            640
        )
        .is_ok()
    );
}

fn nap(x: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(3));
    x
}

/// The library's own timeline of a real pool, through its Chrome trace, drawn: a row per worker,
/// a titled bar per chunk (chunks of 3 naps are at least 9 ms: never merged at this scale).
#[test]
fn a_real_pools_timeline_is_drawn_row_by_row() {
    let pool = multiprocessing::Pool::new(2).unwrap();
    pool.map_chunked(nap, 0..24, 3).unwrap();
    let timeline = pool.timeline();
    let trace: Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    let svg = timeline_svg(&trace, 900).unwrap();
    let (shapes, texts, _) = parse(&svg);
    let bars: Vec<_> = shapes.iter().filter(|s| s.class == "chunk").collect();
    assert_eq!(bars.len(), 8, "{svg}");
    let rows: std::collections::BTreeSet<i64> = bars.iter().map(|b| b.y as i64).collect();
    assert_eq!(rows.len(), 2);
    for row in &timeline.rows {
        assert!(
            texts.iter().any(|t| t.0.starts_with(&row.name)),
            "{:?}",
            row.name
        );
    }
    let bundle = super::timeline_bundle(&trace);
    assert_eq!(bundle["text/html"], bundle["image/svg+xml"]);
    assert_eq!(
        bundle["text/plain"],
        "Timeline: 8 chunks on 2 workers, 0 processes"
    );
}
