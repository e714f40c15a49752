//! Every serde type that serde_json round-trips goes through every channel: `Queue`,
//! `SimpleQueue`, `JoinableQueue`, `Pipe`/`Connection`, and `Pool` arguments and results. A value
//! that cannot be decoded gives an error naming its type and the reason, and the message after it
//! still arrives.

mod common;

use common::{join_ok, spawn};
use multiprocessing::{Error, JoinableQueue, Pipe, Pool, Queue, SimpleQueue};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Internally tagged.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(tag = "type")]
enum Event {
    Click {
        x: i32,
        y: i32,
    },
    Key {
        code: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        modifier: Option<String>,
    },
    Quit,
}

/// Adjacently tagged.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(tag = "kind", content = "data")]
enum Reply {
    Done(u64),
    Failed { message: String },
    Pending,
    Pair(String, f64),
}

/// Untagged (recursive).
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(untagged)]
enum Json {
    Int(i64),
    Text(String),
    Point { x: f64, y: f64 },
    List(Vec<Json>),
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Meta {
    owner: String,
    version: u16,
}

/// `flatten`: a struct and a map of the remaining fields.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Record {
    id: u64,
    #[serde(flatten)]
    meta: Meta,
    #[serde(flatten)]
    extra: HashMap<String, i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `skip_serializing_if`.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Config {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    retries: u32,
}

/// A unit struct.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Marker;

/// A newtype struct.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Meters(f64);

/// All of the above, with options, nested maps, tuples and a boxed byte slice.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Message {
    events: Vec<Event>,
    replies: Vec<Reply>,
    values: Vec<Json>,
    record: Record,
    configs: Vec<Config>,
    present: Option<u8>,
    absent: Option<String>,
    index: HashMap<String, Vec<Record>>,
    by_id: BTreeMap<u64, (String, Marker)>,
    tuple: (u8, i64, char, bool, ()),
    marker: Marker,
    distance: Meters,
    blob: Box<[u8]>,
}

fn record(id: u64) -> Record {
    Record {
        id,
        meta: Meta {
            owner: format!("owner{id}"),
            version: 3,
        },
        extra: HashMap::from([("priority".to_string(), -(id as i64)), ("size".into(), 9)]),
    }
}

fn message(n: u64) -> Message {
    Message {
        events: vec![
            Event::Click { x: -1, y: n as i32 },
            Event::Key {
                code: 13,
                modifier: None,
            },
            Event::Key {
                code: 65,
                modifier: Some("shift".into()),
            },
            Event::Quit,
        ],
        replies: vec![
            Reply::Done(n),
            Reply::Failed {
                message: "disk full".into(),
            },
            Reply::Pending,
            Reply::Pair("ratio".into(), 0.25),
        ],
        values: vec![
            Json::Int(-7),
            Json::Text("seven".into()),
            Json::Point { x: 1.5, y: -2.0 },
            Json::List(vec![
                Json::Int(1),
                Json::List(vec![Json::Text("deep".into())]),
            ]),
        ],
        record: record(n),
        configs: vec![
            Config {
                name: "bare".into(),
                comment: None,
                tags: vec![],
                retries: 0,
            },
            Config {
                name: "full".into(),
                comment: Some("all set".into()),
                tags: vec!["a".into(), "b".into()],
                retries: 3,
            },
        ],
        present: Some(200),
        absent: None,
        index: HashMap::from([
            ("empty".to_string(), vec![]),
            ("two".to_string(), vec![record(1), record(2)]),
        ]),
        by_id: BTreeMap::from([
            (0, ("zero".to_string(), Marker)),
            (u64::MAX, ("max".to_string(), Marker)),
        ]),
        tuple: (255, i64::MIN, 'é', true, ()),
        marker: Marker,
        distance: Meters(12.5),
        blob: vec![0u8, 1, 127, 128, 255].into_boxed_slice(),
    }
}

/// The sample, checked against its premise: every message is one that serde_json round-trips.
fn messages() -> Vec<Message> {
    let all: Vec<Message> = (0..3).map(message).collect();
    for m in &all {
        let text = serde_json::to_string(m).unwrap();
        assert_eq!(
            &serde_json::from_str::<Message>(&text).unwrap(),
            m,
            "{text}"
        );
    }
    all
}

#[test]
fn queue_carries_every_serde_shape() {
    let q: Queue<Message> = Queue::new().unwrap();
    let tx = q.clone();
    let p = spawn(move || {
        for m in messages() {
            tx.put(m).unwrap();
        }
    });
    for m in messages() {
        assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), m);
    }
    join_ok(p);
    // And each shape on its own, as the queue's item type.
    let events: Queue<Event> = Queue::new().unwrap();
    for e in message(1).events {
        events.put(e.clone()).unwrap();
        assert_eq!(events.get().unwrap(), e);
    }
    let values: Queue<Json> = Queue::new().unwrap();
    for v in message(1).values {
        values.put(v.clone()).unwrap();
        assert_eq!(values.get().unwrap(), v);
    }
    let records: Queue<Record> = Queue::new().unwrap();
    records.put(record(4)).unwrap();
    assert_eq!(records.get().unwrap(), record(4));
    let units: Queue<Marker> = Queue::new().unwrap();
    units.put(Marker).unwrap();
    assert_eq!(units.get().unwrap(), Marker);
}

#[test]
fn simple_queue_carries_every_serde_shape() {
    // SimpleQueue has no get with a timeout: the child checks what it gets, so that a failure
    // ends the test instead of leaving a get waiting.
    let q: SimpleQueue<Message> = SimpleQueue::new().unwrap();
    for m in messages() {
        q.put(m).unwrap();
    }
    let rx = q.clone();
    join_ok(spawn(move || {
        for m in messages() {
            assert_eq!(rx.get().unwrap(), m);
        }
    }));
    assert!(q.empty());
}

#[test]
fn joinable_queue_carries_every_serde_shape() {
    let q: JoinableQueue<Message> = JoinableQueue::new().unwrap();
    let back: Queue<Message> = Queue::new().unwrap();
    for m in messages() {
        q.put(m).unwrap();
    }
    let (rx, tx) = (q.clone(), back.clone());
    join_ok(spawn(move || {
        for _ in 0..3 {
            let m = rx.get_timeout(Duration::from_secs(30)).unwrap();
            tx.put(m).unwrap();
            rx.task_done().unwrap();
        }
    }));
    q.join().unwrap();
    for m in messages() {
        assert_eq!(back.get_timeout(Duration::from_secs(30)).unwrap(), m);
    }
}

#[test]
fn pipe_carries_every_serde_shape_both_ways() {
    let (a, b) = Pipe::new::<Message>().unwrap();
    let p = spawn(move || {
        for _ in 0..3 {
            let m = b.recv().unwrap();
            b.send(&m).unwrap();
        }
    });
    for m in messages() {
        a.send(&m).unwrap();
        assert_eq!(a.recv().unwrap(), m);
    }
    join_ok(p);
}

fn stamp(mut m: Message, e: Event) -> Message {
    m.events.push(e);
    m
}

fn echo(m: Message) -> Message {
    m
}

fn describe(e: Event) -> (Event, Reply, Json) {
    let reply = match &e {
        Event::Quit => Reply::Pending,
        _ => Reply::Done(1),
    };
    (e, reply, Json::Text("seen".into()))
}

#[test]
fn pool_arguments_and_results_carry_every_serde_shape() {
    let pool = Pool::new(2).unwrap();
    let mut expected = message(5);
    expected.events.push(Event::Quit);
    assert_eq!(
        pool.apply(stamp, (message(5), Event::Quit)).unwrap(),
        expected
    );
    assert_eq!(pool.map(echo, messages()).unwrap(), messages());
    let events = message(0).events;
    let described = pool.map(describe, events.clone()).unwrap();
    assert_eq!(described.len(), events.len());
    for ((e, reply, json), sent) in described.into_iter().zip(events) {
        assert_eq!(e, sent);
        assert_eq!(json, Json::Text("seen".into()));
        assert!(matches!(reply, Reply::Done(1) | Reply::Pending));
    }
}

/// A reading whose hand-written serializer writes large values as text while its deserializer
/// expects a number: such a value is sent fine and cannot be decoded (serde_json fails the same).
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Reading {
    #[serde(serialize_with = "large_as_text")]
    value: u32,
}

fn large_as_text<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *v > 1000 {
        s.serialize_str(&v.to_string())
    } else {
        s.serialize_u32(*v)
    }
}

/// The error names the type and what was wrong.
fn check_decode_error<T: std::fmt::Debug>(what: &str, r: multiprocessing::Result<T>) {
    match r {
        Err(Error::Codec(msg)) => {
            assert!(
                msg.contains("Reading"),
                "{what}: the type is not named: {msg}"
            );
            assert!(
                msg.contains("string"),
                "{what}: the reason is not given: {msg}"
            );
        }
        other => panic!("{what}: expected a codec error, got {other:?}"),
    }
}

#[test]
fn an_undecodable_value_gives_a_clear_error_and_the_next_message_arrives() {
    let bad = Reading { value: 5000 };
    let good = Reading { value: 7 };

    let q: Queue<Reading> = Queue::new().unwrap();
    q.put(bad.clone()).unwrap();
    q.put(good.clone()).unwrap();
    check_decode_error("Queue", q.get());
    assert_eq!(q.get().unwrap(), good);
    assert!(q.empty());

    let sq: SimpleQueue<Reading> = SimpleQueue::new().unwrap();
    sq.put(bad.clone()).unwrap();
    sq.put(good.clone()).unwrap();
    check_decode_error("SimpleQueue", sq.get());
    assert_eq!(sq.get().unwrap(), good);

    let jq: JoinableQueue<Reading> = JoinableQueue::new().unwrap();
    jq.put(bad.clone()).unwrap();
    jq.put(good.clone()).unwrap();
    check_decode_error("JoinableQueue", jq.get());
    assert_eq!(jq.get().unwrap(), good);

    let (a, b) = Pipe::new::<Reading>().unwrap();
    a.send(&bad).unwrap();
    a.send(&good).unwrap();
    check_decode_error("Pipe", b.recv());
    assert_eq!(b.recv().unwrap(), good);
}

fn read(value: u32) -> Reading {
    Reading { value }
}

#[test]
fn an_undecodable_pool_result_gives_a_clear_error_and_the_pool_goes_on() {
    let pool = Pool::new(1).unwrap();
    check_decode_error("Pool::apply", pool.apply(read, (5000,)));
    assert_eq!(pool.apply(read, (7,)).unwrap(), read(7));
    assert_eq!(
        pool.map(read, [1, 2, 3]).unwrap(),
        vec![read(1), read(2), read(3)]
    );
}
