//! A pool's timeline (`Pool::timeline`): one row per worker, one span per chunk of a map of
//! known shape, covering every task once, inside the call's time, never two at once on a worker;
//! failed chunks marked; the processes started since the pool was made; its Chrome trace JSON
//! with the same counts.

use multiprocessing::{Error, Pool, Process};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn nap(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2 + x % 3));
    x
}

fn pid_of(_: u64) -> u32 {
    std::process::id()
}

fn fail_at_7(x: u64) -> u64 {
    assert!(x != 7, "seven");
    x
}

#[test]
fn a_map_of_known_shape_has_one_span_per_chunk_on_its_workers_rows() {
    let pool = Pool::new(3).unwrap();
    let pids: BTreeSet<u32> = pool
        .map_chunked(pid_of, 0..60, 1)
        .unwrap()
        .into_iter()
        .collect();
    pool.clear_timeline();
    let before = multiprocessing::timeline::origin().elapsed();
    assert_eq!(
        pool.map_chunked(nap, 0..30, 5).unwrap(),
        (0..30).collect::<Vec<_>>()
    );
    let after = multiprocessing::timeline::origin().elapsed();
    let t = pool.timeline();

    assert_eq!(t.rows.len(), 3, "{:?}", t.rows);
    assert!(
        t.rows
            .iter()
            .all(|r| r.name.starts_with("ForkPoolWorker-") && r.host.is_none())
    );
    let row_pids: BTreeSet<u32> = t.rows.iter().map(|r| r.pid).collect();
    assert_eq!(row_pids, pids);

    assert_eq!(t.spans.len(), 6);
    let mut tasks: Vec<usize> = t
        .spans
        .iter()
        .flat_map(|s| s.first..s.first + s.tasks)
        .collect();
    tasks.sort();
    assert_eq!(tasks, (0..30).collect::<Vec<_>>());
    let call = t.spans[0].call;
    for s in &t.spans {
        assert!(s.ok && s.tasks == 5 && s.call == call, "{s:?}");
        assert!(s.function.ends_with("nap"), "{}", s.function);
        assert!(
            before <= s.start && s.start < s.end && s.end <= after,
            "{s:?}"
        );
        assert!(
            s.end - s.start >= Duration::from_millis(10),
            "5 naps of 2 ms or more: {s:?}"
        );
    }
    let mut by_row: BTreeMap<usize, Vec<_>> = BTreeMap::new();
    for s in &t.spans {
        by_row.entry(s.row).or_default().push((s.start, s.end));
    }
    for spans in by_row.values_mut() {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlap on one worker: {pair:?}");
        }
    }
    assert_eq!(
        t.range().map(|r| r.0),
        t.spans.iter().map(|s| s.start).min()
    );
}

#[test]
fn failed_chunks_and_imap_chunks_are_recorded() {
    let pool = Pool::new(2).unwrap();
    assert!(matches!(
        pool.map_chunked(fail_at_7, 0..10, 2),
        Err(Error::Task(_))
    ));
    let mut sum = 0;
    for v in pool.imap_unordered_chunked(nap, 0..9u64, 4).unwrap() {
        sum += v.unwrap();
    }
    assert_eq!(sum, 36);
    let t = pool.timeline();
    let calls: BTreeSet<u64> = t.spans.iter().map(|s| s.call).collect();
    assert_eq!(calls.len(), 2);
    let first_call = *calls.iter().next().unwrap();
    let failed: Vec<_> = t.spans.iter().filter(|s| !s.ok).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].call, failed[0].first, failed[0].tasks),
        (first_call, 6, 2)
    );
    let mut imap: Vec<(usize, usize)> = t
        .spans
        .iter()
        .filter(|s| s.call != first_call)
        .map(|s| (s.first, s.tasks))
        .collect();
    imap.sort();
    assert_eq!(imap, [(0, 4), (4, 4), (8, 1)]);
}

fn die(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x
}

#[test]
fn a_dead_workers_chunk_is_a_failed_span_and_its_replacement_a_new_row() {
    let pool = Pool::new(1).unwrap();
    assert!(matches!(
        pool.map_chunked(die, 0..6, 2),
        Err(Error::WorkerDied { .. })
    ));
    assert_eq!(pool.map(nap, 0..2).unwrap(), [0, 1]);
    let t = pool.timeline();
    assert_eq!(
        t.rows.len(),
        2,
        "the replacement has its own row: {:?}",
        t.rows
    );
    let died: Vec<_> = t.spans.iter().filter(|s| !s.ok).collect();
    assert_eq!(died.len(), 1);
    assert_eq!((died[0].row, died[0].first), (0, 2));
    assert!(
        t.spans
            .iter()
            .filter(|s| s.ok && s.function.ends_with("nap"))
            .all(|s| s.row == 1)
    );
}

#[test]
fn processes_since_the_pool_and_the_chrome_trace_have_the_same_counts() {
    let pool = Pool::new(2).unwrap();
    let mut p = Process::new(|| std::process::exit(3));
    p.start().unwrap();
    p.join().unwrap();
    pool.map_chunked(nap, 0..8, 2).unwrap();
    let t = pool.timeline();
    let mine: Vec<_> = t
        .processes
        .iter()
        .filter(|s| Some(s.pid) == p.pid())
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].exitcode, Some(3));

    let trace: serde_json::Value = serde_json::from_str(&t.to_chrome_trace()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let complete = |pid: u64| {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == pid)
            .count()
    };
    assert_eq!(complete(1), t.spans.len());
    assert_eq!(complete(2), t.processes.len());
    let threads = events
        .iter()
        .filter(|e| e["name"] == "thread_name" && e["pid"] == 1)
        .count();
    assert_eq!(threads, t.rows.len());
    for e in events.iter().filter(|e| e["ph"] == "X") {
        assert!(
            e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0,
            "{e}"
        );
    }
}

/// An item that cannot be encoded (its `Serialize` fails) when it is odd and over 100.
#[derive(Clone, Copy)]
struct Picky(u64);

impl serde::Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 > 100 && self.0 % 2 == 1 {
            return Err(serde::ser::Error::custom("cannot encode it"));
        }
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Picky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Picky)
    }
}

fn unpick(p: Picky) -> u64 {
    p.0
}

#[test]
fn an_imap_chunk_that_cannot_be_encoded_leaves_the_later_chunks_indexes_right() {
    let pool = Pool::new(1).unwrap();
    // Chunks of 2: [0, 1], [2, 101] (cannot be encoded), [4, 5].
    let items = [0, 1, 2, 101, 4, 5].map(Picky);
    let got: Vec<_> = pool.imap_chunked(unpick, items, 2).unwrap().collect();
    // The chunk that cannot be encoded is one error in the results.
    let ok: Vec<Option<u64>> = got.into_iter().map(Result::ok).collect();
    assert_eq!(ok, [Some(0), Some(1), None, Some(4), Some(5)]);
    let mut firsts: Vec<usize> = pool.timeline().spans.iter().map(|s| s.first).collect();
    firsts.sort();
    assert_eq!(firsts, [0, 4]);
}
