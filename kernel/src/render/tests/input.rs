//! Odd input: empty, malformed, damaged and crafted traces, and names with control characters:
//! an error or a well-formed SVG, never a panic or a hang.

use super::*;

#[test]
fn empty_traces_render() {
    let only_rows = json!({"traceEvents": (1..=4).map(|i| json!(
        {"ph":"M","name":"thread_name","pid":1,"tid":i,"args":{"name":format!("W-{i}")}}
    )).collect::<Vec<_>>()});
    for t in [
        json!({"traceEvents": []}),
        json!([]),
        only_rows.clone(),
        tlproto_default_trace(),
    ] {
        let svg = timeline_svg(&t, 700).unwrap();
        let (shapes, texts, _) = parse(&svg);
        assert!(shapes.is_empty());
        assert!(texts.iter().any(|t| t.0 == "no chunks recorded"), "{svg}");
    }
    let (_, texts, _) = parse(&timeline_svg(&only_rows, 700).unwrap());
    assert_eq!(texts.iter().filter(|t| t.0.starts_with("W-")).count(), 4);
}

/// What `Timeline::default().to_chrome_trace()` writes.
fn tlproto_default_trace() -> Value {
    serde_json::from_str(
        r#"{"traceEvents":[{"ph":"M","name":"process_name","pid":1,"args":{"name":"Pool"}}],"displayTimeUnit":"ms","otherData":{"dropped":0}}"#,
    )
    .unwrap()
}

#[test]
fn malformed_traces_are_errors() {
    let x = |e: Value| json!({"traceEvents": [e]});
    let bad = [
        json!(3),
        json!("trace"),
        json!(null),
        json!({"events": []}),
        json!({"traceEvents": {}}),
        x(json!(7)),
        x(json!({"name": "no ph"})),
        x(json!({"ph":"X","pid":1,"tid":1,"dur":1,"args":{"call":1}})),
        x(json!({"ph":"X","pid":1,"tid":1,"ts":"0","dur":1,"args":{"call":1}})),
        x(json!({"ph":"X","pid":1,"tid":1,"ts":0,"dur":-1,"args":{"call":1}})),
        x(json!({"ph":"X","pid":1,"ts":0,"dur":1,"args":{"call":1}})),
        x(json!({"ph":"X","pid":1,"tid":1,"ts":0,"dur":1,"cat":"x","args":{}})),
        x(json!({"ph":"X","pid":"1","tid":1,"ts":0,"dur":1})),
        x(json!({"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{}})),
    ];
    for t in bad {
        match timeline_svg(&t, 600) {
            Err(RenderError::Trace(e)) => assert!(!e.is_empty()),
            other => panic!("{t}: {other:?}"),
        }
    }
}

/// Random damage to a real trace: never a panic; an Ok is well-formed with one bar per chunk.
#[test]
fn damaged_traces_never_panic() {
    let base = sample::uneven();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let junk = [
        json!(null),
        json!(-1),
        json!(1e300),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
        json!(u64::MAX),
        json!(-1e-9),
        json!(0),
    ];
    let keys = ["ph", "pid", "tid", "ts", "dur", "name", "cat", "args"];
    let (mut ok, mut err) = (0, 0);
    for _ in 0..400 {
        let mut t = base.clone();
        let evs = t["traceEvents"].as_array_mut().unwrap();
        for _ in 0..1 + rnd(3) {
            let i = rnd(evs.len() as u64) as usize;
            let k = keys[rnd(keys.len() as u64) as usize];
            match rnd(3) {
                0 => {
                    evs[i].as_object_mut().unwrap().remove(k);
                }
                1 => evs[i][k] = junk[rnd(junk.len() as u64) as usize].clone(),
                _ => {
                    let a = ["call", "first", "tasks", "ok", "pid", "exitcode", "name"];
                    if evs[i]["args"].is_object() {
                        evs[i]["args"][a[rnd(7) as usize]] = junk[rnd(10) as usize].clone();
                    }
                }
            }
        }
        let w = 300 + rnd(900) as u32;
        let r = std::panic::catch_unwind(|| timeline_svg(&t, w));
        match r.unwrap_or_else(|_| panic!("panicked on {t}")) {
            Ok(svg) => {
                ok += 1;
                let (shapes, _, _) = parse(&svg);
                let want = t["traceEvents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["ph"] == "X" && (e["pid"] == 1 || e["pid"] == 2))
                    .count();
                assert_eq!(shapes.iter().map(count).sum::<usize>(), want, "{t}");
            }
            Err(_) => err += 1,
        }
    }
    eprintln!("damaged traces: {ok} rendered, {err} errors");
    assert!(ok > 0 && err > 0);
}

/// Times whose sum overflows (each finite) would make plotters' axis loop for ever: an error.
#[test]
fn huge_times_are_errors_not_hangs() {
    let trace = json!({"traceEvents": [
        {"ph": "X", "pid": 1, "tid": 1, "ts": 1e308, "dur": 1e308, "name": "f", "args": {"call": 1}}
    ]});
    assert!(matches!(
        timeline_svg(&trace, 600),
        Err(RenderError::Trace(_))
    ));
}

/// A control character in a name (a `Process::with_name("a\u{1}")`) keeps the SVG well-formed.
#[test]
fn control_characters_in_names_keep_the_svg_well_formed() {
    let trace = json!({"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "w\u{1}1"}},
        {"ph": "X", "pid": 1, "tid": 1, "ts": 0.0, "dur": 1000.0, "name": "f\u{7}", "args": {"call": 1, "first": 0, "tasks": 1, "ok": true}},
        {"ph": "M", "name": "thread_name", "pid": 2, "tid": 9, "args": {"name": "p\u{2}"}},
        {"ph": "X", "pid": 2, "tid": 9, "ts": 0.0, "dur": 500.0, "name": "p\u{2}", "args": {"pid": 9, "exitcode": 0}}
    ]});
    let svg = timeline_svg(&trace, 600).unwrap();
    let (shapes, _, _) = parse(&svg);
    assert_eq!(shapes.iter().filter(|s| s.class == "chunk").count(), 1);
    assert!(!svg.contains('\u{1}') && !svg.contains('\u{7}') && !svg.contains('\u{2}'));
}
