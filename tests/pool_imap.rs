//! `imap` and `imap_unordered` read their input lazily, with a bounded read-ahead: work starts on
//! the first item, an endless input works, a slow source gives its first result at once.

use multiprocessing::Pool;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn double(x: u64) -> u64 {
    2 * x
}

fn shout(line: String) -> String {
    line.to_uppercase()
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn imap_over_an_endless_range_returns_the_first_ten_at_once() {
    let pool = Pool::new(2).unwrap();
    let before = rss();
    let start = Instant::now();
    let first: Vec<u64> = pool
        .imap(double, 0u64..)
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    let took = start.elapsed();
    assert_eq!(first, (0..10).map(|x| 2 * x).collect::<Vec<_>>());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "the read-ahead is bounded: RSS grew by {grown} bytes"
    );

    let start = Instant::now();
    let mut got: Vec<u64> = pool
        .imap_unordered(double, 0u64..)
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert_eq!(got.len(), 10);
    assert!(start.elapsed() < Duration::from_secs(1));
    // The pool goes on working after the abandoned iterators.
    assert_eq!(pool.map(double, 0..4).unwrap(), vec![0, 2, 4, 6]);
}

#[test]
fn imap_over_a_million_items_starts_before_the_input_is_read() {
    let pool = Pool::new(2).unwrap();
    let start = Instant::now();
    let mut it = pool.imap_chunked(double, 0..1_000_000u64, 100).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    let first = start.elapsed();
    assert!(
        first < Duration::from_millis(500),
        "first result after {first:?}"
    );
    // And the whole iteration still gives every result in order.
    let mut expected = 1;
    for r in it {
        assert_eq!(r.unwrap(), 2 * expected);
        expected += 1;
    }
    assert_eq!(expected, 1_000_000);
}

/// Lines that a child process writes to a pipe, one every 100 ms.
fn slow_lines(n: usize) -> (std::process::Child, impl Iterator<Item = String>) {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "i=0; while [ $i -lt {n} ]; do echo line$i; i=$((i+1)); sleep 0.1; done"
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    (child, BufReader::new(out).lines().map(Result::unwrap))
}

#[test]
fn a_slow_source_gives_its_first_result_as_soon_as_its_first_item_is_processed() {
    let pool = Pool::new(2).unwrap();
    for ordered in [true, false] {
        let (mut child, lines) = slow_lines(8);
        let start = Instant::now();
        let mut it = if ordered {
            pool.imap(shout, lines).unwrap()
        } else {
            pool.imap_unordered(shout, lines).unwrap()
        };
        let first = it.next().unwrap().unwrap();
        let took = start.elapsed();
        assert_eq!(first, "LINE0");
        assert!(
            took < Duration::from_millis(300),
            "ordered={ordered}: first result after {took:?}"
        );
        let mut rest: Vec<String> = it.map(Result::unwrap).collect();
        if !ordered {
            rest.sort();
        }
        assert_eq!(rest, (1..8).map(|i| format!("LINE{i}")).collect::<Vec<_>>());
        child.wait().unwrap();
    }
}

/// A generator that waits on a channel: nothing is read before the consumer asks.
#[test]
fn a_borrowed_input_and_a_bounded_read_ahead() {
    let pool = Pool::builder().processes(2).readahead(4).build().unwrap();
    let data: Vec<u64> = (0..100).collect();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let got: Vec<u64> = pool
        .imap(
            double,
            data.iter().map(|&x| {
                tx.send(x).unwrap();
                x
            }),
        )
        .unwrap()
        .take(3)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, vec![0, 2, 4]);
    let read: Vec<u64> = rx.try_iter().collect();
    // Three results taken, at most four more chunks read ahead.
    assert!(
        read.len() <= 3 + 4,
        "read {} items for 3 results with a read-ahead of 4",
        read.len()
    );
}

/// An input that ends, then yields again (not fused): the pool reads it to its first end.
struct Flaky(u64);

impl Iterator for Flaky {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.0 += 1;
        if self.0.is_multiple_of(4) {
            None
        } else {
            Some(self.0)
        }
    }
}

fn fail_on_2(x: u64) -> u64 {
    assert!(x != 2, "two");
    x
}

#[test]
fn an_input_that_is_not_fused_is_read_to_its_first_end() {
    let pool = Pool::new(2).unwrap();
    let got: Vec<String> = pool
        .imap_chunked(fail_on_2, Flaky(0), 2)
        .unwrap()
        .map(|r| match r {
            Ok(v) => v.to_string(),
            Err(_) => "error".to_string(),
        })
        .collect();
    assert_eq!(got, vec!["error", "3"]);
}
