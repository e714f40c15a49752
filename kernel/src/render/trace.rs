//! Reading the library's Chrome trace-event JSON (`Timeline::to_chrome_trace`) back into rows
//! and spans. pid 1 = the pool (a thread per worker, `tid` = row + 1), pid 2 = processes (a
//! thread per process, `tid` = its pid). Other pids and other phases are ignored.

use super::RenderError;
use serde_json::Value;
use std::collections::BTreeMap;

const POOL: u64 = 1;
const PROCESSES: u64 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub row: usize,
    pub call: u64,
    pub function: String,
    pub first: u64,
    pub tasks: u64,
    /// Microseconds since the library's origin.
    pub ts: f64,
    pub dur: f64,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub name: String,
    pub pid: u64,
    pub ts: f64,
    pub dur: f64,
    pub exitcode: Option<i64>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Trace {
    /// Worker names, top to bottom.
    pub rows: Vec<String>,
    pub chunks: Vec<Chunk>,
    pub procs: Vec<Proc>,
    pub dropped: u64,
}

fn bad(i: usize, what: &str) -> RenderError {
    RenderError::Trace(format!("event {i}: {what}"))
}

/// The latest time a chart takes, in µs (about 31 years): beyond it (or where `ts + dur`
/// overflows to infinity) plotters' axis would never end its key points.
const LAST: f64 = 1e15;

fn time(e: &Value, key: &str, i: usize) -> Result<f64, RenderError> {
    match e.get(key).and_then(Value::as_f64) {
        Some(t) if t.is_finite() && (0.0..=LAST).contains(&t) => Ok(t),
        Some(t) if t > LAST => Err(bad(i, &format!("\"{key}\" is beyond {LAST} µs"))),
        Some(_) => Err(bad(i, &format!("\"{key}\" is negative"))),
        None => Err(bad(i, &format!("\"{key}\" is not a number"))),
    }
}

/// `s` without control characters (they would make the SVG ill-formed XML).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

fn id(e: &Value, key: &str, i: usize) -> Result<u64, RenderError> {
    e.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(i, &format!("\"{key}\" is not a non-negative integer")))
}

pub fn parse(trace: &Value) -> Result<Trace, RenderError> {
    let events = match trace {
        Value::Array(events) => events,
        Value::Object(o) => o
            .get("traceEvents")
            .and_then(Value::as_array)
            .ok_or_else(|| RenderError::Trace("no \"traceEvents\" array".into()))?,
        _ => {
            return Err(RenderError::Trace(
                "a trace is an object with \"traceEvents\" or an array of events".into(),
            ));
        }
    };
    let mut names: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut chunks: Vec<(u64, Chunk)> = Vec::new();
    let mut procs: Vec<Proc> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if !e.is_object() {
            return Err(bad(i, "not an object"));
        }
        let ph = e
            .get("ph")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(i, "no \"ph\""))?;
        match ph {
            "M" => {
                if e.get("name").and_then(Value::as_str) != Some("thread_name") {
                    continue;
                }
                let pid = id(e, "pid", i)?;
                let tid = id(e, "tid", i)?;
                let name = e["args"]["name"]
                    .as_str()
                    .ok_or_else(|| bad(i, "thread_name without args.name"))?;
                names.insert((pid, tid), printable(name));
            }
            "X" => {
                let pid = id(e, "pid", i)?;
                if pid != POOL && pid != PROCESSES {
                    continue;
                }
                let tid = id(e, "tid", i)?;
                let ts = time(e, "ts", i)?;
                let dur = time(e, "dur", i)?;
                let name = e.get("name").and_then(Value::as_str).unwrap_or("?");
                let args = e.get("args").unwrap_or(&Value::Null);
                if pid == POOL {
                    let call = args["call"]
                        .as_u64()
                        .or_else(|| e.get("cat")?.as_str()?.strip_prefix("call ")?.parse().ok())
                        .ok_or_else(|| bad(i, "a chunk without args.call"))?;
                    let first = args["first"].as_u64().unwrap_or(0);
                    let tasks = args["tasks"].as_u64().unwrap_or(0);
                    let ok = args["ok"].as_bool().unwrap_or(true);
                    chunks.push((
                        tid,
                        Chunk {
                            row: 0,
                            call,
                            function: printable(name),
                            first,
                            tasks,
                            ts,
                            dur,
                            ok,
                        },
                    ));
                } else {
                    procs.push(Proc {
                        name: printable(name),
                        pid: args["pid"].as_u64().unwrap_or(tid),
                        ts,
                        dur,
                        exitcode: args["exitcode"].as_i64(),
                    });
                }
            }
            _ => {}
        }
    }
    // Rows: every named pool thread and every thread with a chunk, in tid order.
    let mut tids: Vec<u64> = names
        .keys()
        .filter(|k| k.0 == POOL)
        .map(|k| k.1)
        .chain(chunks.iter().map(|c| c.0))
        .collect();
    tids.sort_unstable();
    tids.dedup();
    let rows = tids
        .iter()
        .map(|tid| {
            names
                .get(&(POOL, *tid))
                .cloned()
                .unwrap_or_else(|| format!("thread {tid}"))
        })
        .collect();
    let chunks = chunks
        .into_iter()
        .map(|(tid, mut c)| {
            c.row = tids.binary_search(&tid).unwrap_or(0);
            c
        })
        .collect();
    procs.sort_by(|a, b| a.ts.total_cmp(&b.ts).then(a.pid.cmp(&b.pid)));
    let dropped = trace
        .get("otherData")
        .and_then(|o| o.get("dropped"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(Trace {
        rows,
        chunks,
        procs,
        dropped,
    })
}
