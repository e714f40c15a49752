//! Locks and shared values against Python's `multiprocessing`, on the same machine, in one command:
//!
//! ```text
//! cargo bench --bench sync_vs_python            # full counts
//! cargo bench --bench sync_vs_python -- --quick # counts divided by 10, for both languages
//! ```
//!
//! It measures the six figures of `benches/python_sync_baseline.py` (override the path with the
//! `PYTHON_SYNC_BASELINE` environment variable) with the same workloads written the idiomatic
//! Rust way, runs that script for Python's figures, and prints a table with the ratio (how many
//! times faster Rust is) against the target (5x for each), then one JSON line with the Rust
//! figures. A missed target is reported, not hidden; the exit status is 0 either way.

mod common;

use multiprocessing::{Condition, Event, Lock, Process, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Environment variable that overrides the path of the Python baseline script.
const BASELINE_ENV: &str = "PYTHON_SYNC_BASELINE";

/// Every figure is a time (lower is better); Rust should be this many times faster.
const TARGET: f64 = 5.0;

/// The figures in the order the Python script prints them, with what each measures.
const FIGURES: [(&str, &str); 6] = [
    (
        "lock_acquire_release_ns",
        "uncontended acquire(); release()",
    ),
    ("lock_with_ns", "uncontended guard (Python: with lock)"),
    (
        "condition_pingpong_us",
        "turn handed between 2 processes, Condition",
    ),
    (
        "event_pingpong_us",
        "turn handed between 2 processes, 2 Events",
    ),
    ("value_inc_ns", "Value += 1 under its lock, 1 process"),
    (
        "value_inc_2proc_ns",
        "Value += 1 under its lock, 2 processes",
    ),
];

fn main() {
    let (quick, scale) = common::start("Rust multiprocessing locks and values vs Python");
    let rust = measure_rust(scale);
    let python = common::python_figures(BASELINE_ENV, "benches/python_sync_baseline.py", quick);
    print_table(&rust, python.as_ref());
    println!(
        "{}",
        common::json_line(FIGURES.iter().map(|&(key, _)| key), &rust)
    );
}

/// Measures every Rust figure; a failed one is reported on stderr and left out.
fn measure_rust(scale: u64) -> HashMap<&'static str, f64> {
    let mut out = HashMap::new();
    let mut record = |key: &'static str, r: multiprocessing::Result<f64>| match r {
        Ok(v) => {
            out.insert(key, v);
        }
        Err(e) => eprintln!("{key}: measurement failed: {e}"),
    };
    record(
        "lock_acquire_release_ns",
        lock_acquire_release_ns(1_000_000 / scale),
    );
    record("lock_with_ns", lock_with_ns(1_000_000 / scale));
    record(
        "condition_pingpong_us",
        condition_pingpong_us(10_000 / scale),
    );
    record("event_pingpong_us", event_pingpong_us(10_000 / scale));
    record("value_inc_ns", value_inc_ns(500_000 / scale));
    record("value_inc_2proc_ns", value_inc_2proc_ns(200_000 / scale));
    out
}

/// `acquire()` then `release()` of a free lock; nanoseconds per pair.
fn lock_acquire_release_ns(n: u64) -> multiprocessing::Result<f64> {
    let lock = Lock::new()?;
    let t = Instant::now();
    for _ in 0..n {
        lock.acquire()?;
        lock.release()?;
    }
    Ok(t.elapsed().as_secs_f64() / n as f64 * 1e9)
}

/// A guard taken and dropped (Python's `with lock: pass`); nanoseconds each.
fn lock_with_ns(n: u64) -> multiprocessing::Result<f64> {
    let lock = Lock::new()?;
    let t = Instant::now();
    for _ in 0..n {
        drop(lock.lock()?);
    }
    Ok(t.elapsed().as_secs_f64() / n as f64 * 1e9)
}

/// Two processes hand a turn back and forth through a Condition and a shared Value, as the
/// Python script does; microseconds per round trip (two hand-overs).
fn condition_pingpong_us(n: u64) -> multiprocessing::Result<f64> {
    let cond = Condition::new()?;
    let turn = Value::new(0i32)?;
    let (c, t) = (cond.clone(), turn.clone());
    let mut p = Process::new(move || {
        for _ in 0..n {
            let _g = c.lock().expect("ponger: lock");
            c.wait_for(|| t.get().expect("ponger: get") == 1)
                .expect("ponger: wait_for");
            t.set(0).expect("ponger: set");
            c.notify().expect("ponger: notify");
        }
    });
    p.start()?;
    let start = Instant::now();
    for _ in 0..n {
        let _g = cond.lock()?;
        turn.set(1)?;
        cond.notify()?;
        cond.wait_for(|| turn.get().is_ok_and(|v| v == 0))?;
    }
    let us = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    p.join()?;
    Ok(us)
}

/// The same hand-over with two Events; microseconds per round trip.
fn event_pingpong_us(n: u64) -> multiprocessing::Result<f64> {
    let (ping, pong) = (Event::new()?, Event::new()?);
    let (pi, po) = (ping.clone(), pong.clone());
    let mut p = Process::new(move || {
        for _ in 0..n {
            pi.wait().expect("ponger: wait");
            pi.clear();
            po.set();
        }
    });
    p.start()?;
    let start = Instant::now();
    for _ in 0..n {
        ping.set();
        pong.wait()?;
        pong.clear();
    }
    let us = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    p.join()?;
    Ok(us)
}

/// `*value.lock()? += 1` in one process; nanoseconds per increment.
fn value_inc_ns(n: u64) -> multiprocessing::Result<f64> {
    let v = Value::new(0i64)?;
    let t = Instant::now();
    for _ in 0..n {
        *v.lock()? += 1;
    }
    let ns = t.elapsed().as_secs_f64() / n as f64 * 1e9;
    assert_eq!(v.get()?, n as i64);
    Ok(ns)
}

/// The same in two processes at once; wall-clock nanoseconds per increment (start to joins).
fn value_inc_2proc_ns(n: u64) -> multiprocessing::Result<f64> {
    let v = Value::new(0i64)?;
    let mut children: Vec<Process> = (0..2)
        .map(|_| {
            let v = v.clone();
            Process::new(move || {
                for _ in 0..n {
                    *v.lock().expect("incrementer: lock") += 1;
                }
            })
        })
        .collect();
    let t = Instant::now();
    for p in &mut children {
        p.start()?;
    }
    for p in &mut children {
        p.join()?;
    }
    let ns = t.elapsed().as_secs_f64() / (2 * n) as f64 * 1e9;
    assert_eq!(v.get()?, 2 * n as i64);
    Ok(ns)
}

fn print_table(rust: &HashMap<&'static str, f64>, python: Option<&HashMap<String, f64>>) {
    let header = [
        "figure", "what", "Rust", "Python", "ratio", "target", "met?",
    ];
    let rows: Vec<[String; 7]> = FIGURES
        .iter()
        .map(|&(key, what)| {
            let r = rust.get(key).copied();
            let py = python.and_then(|p| p.get(key).copied());
            let x = r.zip(py).map(|(r, py)| py / r);
            let met = match x {
                Some(x) if x >= TARGET => "yes",
                Some(_) => "NO (missed)",
                None => "unknown",
            };
            [
                key.to_string(),
                what.to_string(),
                common::fmt_value(r),
                common::fmt_value(py),
                x.map_or("-".to_string(), |x| format!("{x:.1}x")),
                format!(">= {TARGET}x"),
                met.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 2 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("{}", parts.join(" | ").trim_end());
    };
    println!();
    line(&header.map(String::from));
    println!("{}", widths.map(|w| "-".repeat(w)).join("-|-"));
    for row in &rows {
        line(row);
    }
    println!("(all figures are times, lower is better; ratio = Python / Rust)");
    println!();
}
