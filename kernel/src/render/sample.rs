//! A made-up trace in exactly the library's shape (src/timeline/chrome.rs), for the example and
//! the tests: a pool's workers taking chunks greedily (the next free worker takes the next
//! chunk), with a small dispatch gap.

use serde_json::{Value, json};

/// One simulated call: `tasks` tasks in chunks of `chunksize`, task `i` costing `cost(i)` µs.
pub struct Call<'a> {
    pub function: &'a str,
    pub tasks: usize,
    pub chunksize: usize,
    pub cost: &'a dyn Fn(usize) -> f64,
    /// Chunks (by first task index) that fail.
    pub failing: &'a [usize],
}

/// The trace of `calls` run one after another on `workers` workers, plus `procs`
/// (name, pid, start µs, duration µs, exit code).
pub fn trace(
    workers: usize,
    calls: &[Call<'_>],
    procs: &[(&str, u64, f64, f64, Option<i64>)],
) -> Value {
    let mut events = vec![json!({"ph":"M","name":"process_name","pid":1,"args":{"name":"Pool"}})];
    for w in 0..workers {
        events.push(json!({"ph":"M","name":"thread_name","pid":1,"tid":w+1,
            "args":{"name":format!("ForkPoolWorker-{} pid={}", w + 1, 4200 + w)}}));
    }
    let mut free = vec![1000.0f64; workers];
    let mut call_start = 1000.0f64;
    for (k, c) in calls.iter().enumerate() {
        free.iter_mut().for_each(|f| *f = f.max(call_start));
        let mut first = 0;
        while first < c.tasks {
            let n = c.chunksize.min(c.tasks - first);
            let (w, _) = free
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            let ts = free[w] + 40.0;
            let dur: f64 = (first..first + n).map(|i| (c.cost)(i)).sum();
            events.push(
                json!({"ph":"X","name":c.function,"cat":format!("call {}", k + 1),
                "pid":1,"tid":w+1,"ts":ts,"dur":dur,
                "args":{"call":k+1,"first":first,"tasks":n,"ok":!c.failing.contains(&first)}}),
            );
            free[w] = ts + dur;
            first += n;
        }
        call_start = free.iter().copied().fold(0.0, f64::max) + 300.0;
    }
    if !procs.is_empty() {
        events.push(json!({"ph":"M","name":"process_name","pid":2,"args":{"name":"Processes"}}));
        for (name, pid, ts, dur, code) in procs {
            events.push(
                json!({"ph":"M","name":"thread_name","pid":2,"tid":pid,"args":{"name":name}}),
            );
            events.push(
                json!({"ph":"X","name":name,"cat":"process","pid":2,"tid":pid,
                "ts":ts,"dur":dur,"args":{"pid":pid,"exitcode":code}}),
            );
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"dropped": 0}})
}

/// 4 workers; call 1: 24 even-ish tasks, chunksize 1; call 2: 40 tasks whose cost grows with
/// the index, chunksize 10 (the last worker gets the heavy end: load imbalance), one chunk
/// failing; two processes (one killed).
pub fn uneven() -> Value {
    trace(
        4,
        &[
            Call {
                function: "demo::square",
                tasks: 24,
                chunksize: 1,
                cost: &|i| 2500.0 + 900.0 * ((i * 7) % 5) as f64,
                failing: &[],
            },
            Call {
                function: "demo::uneven_work",
                tasks: 40,
                chunksize: 10,
                cost: &|i| 300.0 + 120.0 * i as f64,
                failing: &[10],
            },
        ],
        &[
            ("Process-1", 5001, 2000.0, 30000.0, Some(0)),
            ("Process-2", 5002, 9000.0, 12000.0, Some(-9)),
        ],
    )
}
