//! [`Timeline::to_chrome_trace`]: the Chrome trace-event format (JSON Object Format), as
//! Perfetto and `chrome://tracing` read it.
//!
//! - pid 1 is the pool; each worker is a thread (`tid` = its row + 1) named by a `thread_name`
//!   metadata event (`ForkPoolWorker-3 pid=4242`, with `host=…` for a cluster worker);
//! - each chunk is a complete event: `name` = the function, `cat` = `call N`, `ts`/`dur` in
//!   microseconds, `args` = `{call, first, tasks, ok}`;
//! - pid 2 is "Processes": each [`crate::Process`] is a thread (`tid` = its pid) with one
//!   complete event from its start to its end (or to the timeline's end while it runs), `args`
//!   = `{pid, exitcode}`.

use super::Timeline;
use super::json::{micros, string};
use std::fmt::Write;

const POOL: u32 = 1;
const PROCESSES: u32 = 2;

pub(super) fn write(t: &Timeline) -> String {
    let mut out = String::from("{\"traceEvents\":[");
    let mut first = true;
    let mut event = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
    };
    event(&mut out);
    metadata(&mut out, "process_name", POOL, None, "Pool");
    for (i, row) in t.rows.iter().enumerate() {
        event(&mut out);
        let mut name = format!("{} pid={}", row.name, row.pid);
        if let Some(host) = &row.host {
            let _ = write!(name, " host={host}");
        }
        metadata(&mut out, "thread_name", POOL, Some(i as u64 + 1), &name);
    }
    for s in &t.spans {
        event(&mut out);
        out.push_str("{\"ph\":\"X\",\"name\":");
        string(&mut out, s.function);
        let _ = write!(
            out,
            ",\"cat\":\"call {}\",\"pid\":{POOL},\"tid\":{},\"ts\":",
            s.call,
            s.row + 1
        );
        micros(&mut out, s.start);
        out.push_str(",\"dur\":");
        micros(&mut out, s.end.saturating_sub(s.start));
        let _ = write!(
            out,
            ",\"args\":{{\"call\":{},\"first\":{},\"tasks\":{},\"ok\":{}}}}}",
            s.call, s.first, s.tasks, s.ok
        );
    }
    if !t.processes.is_empty() {
        event(&mut out);
        metadata(&mut out, "process_name", PROCESSES, None, "Processes");
        let last = t.range().map_or(std::time::Duration::ZERO, |r| r.1);
        for p in &t.processes {
            event(&mut out);
            metadata(
                &mut out,
                "thread_name",
                PROCESSES,
                Some(p.pid.into()),
                &p.name,
            );
            event(&mut out);
            out.push_str("{\"ph\":\"X\",\"name\":");
            string(&mut out, &p.name);
            let _ = write!(
                out,
                ",\"cat\":\"process\",\"pid\":{PROCESSES},\"tid\":{},\"ts\":",
                p.pid
            );
            micros(&mut out, p.start);
            out.push_str(",\"dur\":");
            micros(&mut out, p.end.unwrap_or(last).saturating_sub(p.start));
            let code = p
                .exitcode
                .map_or_else(|| "null".to_string(), |c| c.to_string());
            let _ = write!(out, ",\"args\":{{\"pid\":{},\"exitcode\":{code}}}}}", p.pid);
        }
    }
    let _ = write!(
        out,
        "],\"displayTimeUnit\":\"ms\",\"otherData\":{{\"dropped\":{}}}}}",
        t.dropped
    );
    out
}

fn metadata(out: &mut String, what: &str, pid: u32, tid: Option<u64>, name: &str) {
    let _ = write!(out, "{{\"ph\":\"M\",\"name\":\"{what}\",\"pid\":{pid}");
    if let Some(tid) = tid {
        let _ = write!(out, ",\"tid\":{tid}");
    }
    out.push_str(",\"args\":{\"name\":");
    string(out, name);
    out.push_str("}}");
}

#[cfg(test)]
mod tests {
    use super::super::{ProcessSpan, Row, Span, Timeline};
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_span_and_process_is_an_event_perfetto_can_read() {
        let row = |name: &str, pid, host: Option<&str>| Row {
            name: name.into(),
            pid,
            host: host.map(Into::into),
        };
        let span = |row, call, first, start, end| Span {
            row,
            call,
            function: "demo::work \"quoted\"",
            first,
            tasks: 5,
            start: ms(start),
            end: ms(end),
            ok: first != 5,
        };
        let t = Timeline {
            rows: vec![
                row("ForkPoolWorker-1", 10, None),
                row("MpiPoolWorker-2@n1", 11, Some("n1")),
            ],
            spans: vec![
                span(0, 1, 0, 1, 3),
                span(1, 1, 5, 1, 4),
                span(0, 2, 0, 3, 7),
            ],
            processes: vec![
                ProcessSpan {
                    name: "Process-1".into(),
                    pid: 99,
                    start: ms(0),
                    end: Some(ms(2)),
                    exitcode: Some(-9),
                },
                ProcessSpan {
                    name: "Process-2".into(),
                    pid: 98,
                    start: ms(2),
                    end: None,
                    exitcode: None,
                },
            ],
            dropped: 3,
        };
        let v: serde_json::Value = serde_json::from_str(&t.to_chrome_trace()).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let complete: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(complete.len(), 3 + 2);
        let chunks: Vec<_> = complete.iter().filter(|e| e["pid"] == 1).collect();
        assert_eq!(chunks[1]["tid"], 2);
        assert_eq!(chunks[1]["ts"], 1000.0);
        assert_eq!(chunks[1]["dur"], 3000.0);
        assert_eq!(chunks[1]["args"]["first"], 5);
        assert_eq!(chunks[1]["args"]["ok"], false);
        assert_eq!(chunks[2]["cat"], "call 2");
        assert_eq!(chunks[0]["name"], "demo::work \"quoted\"");
        let names: Vec<_> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ForkPoolWorker-1 pid=10",
                "MpiPoolWorker-2@n1 pid=11 host=n1",
                "Process-1",
                "Process-2"
            ]
        );
        let procs: Vec<_> = complete.iter().filter(|e| e["pid"] == 2).collect();
        assert_eq!(procs[0]["args"]["exitcode"], -9);
        // A process still running lasts to the timeline's end.
        assert_eq!(procs[1]["dur"], 5000.0);
        assert!(procs[1]["args"]["exitcode"].is_null());
        assert_eq!(v["otherData"]["dropped"], 3);
    }
}
