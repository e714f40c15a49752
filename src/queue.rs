//! [`Queue`], [`SimpleQueue`] and [`JoinableQueue`]: many-producer, many-consumer FIFO queues
//! between processes.
//!
//! A queue is a ring buffer in shared memory (a sparse memfd mapping inherited by every process
//! forked after the queue was created), guarded by two robust process-shared locks: one for
//! producers, one for consumers. A producer writes a whole message and then publishes it; a
//! consumer reads a whole message and then releases it. So every message arrives exactly once and
//! whole, whatever its size, and a process killed inside `put` or `get` never corrupts the queue
//! (a half-written message was never published; a half-read one is read again by the next consumer).
//!
//! Deviation from Python (better): there is no feeder thread. `put` copies the message into shared
//! memory before it returns, so `put` reports serialization errors itself, `empty()` is accurate
//! right after `put`, and a child that put large data can exit at once: joining it before reading
//! the data does not deadlock (Python's classic hang). The queue holds up to 16 GiB of unread data
//! (pages are allocated as written and freed as read); `put` waits only when that is exceeded or
//! when `maxsize` messages are waiting.

use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::shm::{RawLock, Region, Signal};

use crate::sys::Deadline;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
    Ordering::SeqCst,
};
use std::time::Duration;

const CTL_SIZE: usize = 4096;
/// Bytes of unread data a queue can hold.
const CAPACITY: u64 = 16 << 30;
/// The start of the ring is kept warm (never returned to the system): while the consumers keep up,
/// producers wrap back to it instead of writing on into fresh pages.
const WARM: u64 = 4 << 20;
/// Consumed data beyond the warm zone is returned to the system in pieces of this size.
const GRANULE: u64 = 1 << 20;
/// A frame length that means "the data goes on at the start of the next lap".
const WRAP: u64 = u64::MAX;
/// How long a consumer spins before sleeping on an empty queue.
const SPIN: Duration = Duration::from_micros(50);

#[repr(C, align(64))]
struct Padded<T>(T);

#[repr(C)]
struct Ctl {
    write_lock: RawLock,
    read_lock: RawLock,
    maxsize: u64,
    joinable: bool,
    /// Producers' side: end of published data, and messages put (written under the write lock).
    tail: Padded<AtomicU64>,
    puts: AtomicU64,
    /// Consumers' side: start of unread data, messages taken, and the position before which
    /// everything is consumed and its memory dealt with (written under the read lock).
    head: Padded<AtomicU64>,
    gets: AtomicU64,
    released: AtomicU64,
    unfinished: Padded<AtomicU64>,
    data: Padded<Signal>,
    space: Padded<Signal>,
    done: Padded<Signal>,
}

const _: () = assert!(std::mem::size_of::<Ctl>() <= CTL_SIZE);

struct Shared {
    region: Region,
    closed: AtomicBool,
    /// A lower bound of `released + CAPACITY` seen by this process's producers: while the tail
    /// stays below it, producers need not read the consumers' side (a cache miss per message).
    space_limit: AtomicU64,
}

/// Writes an encoding straight into the ring (no intermediate buffer), within `[pos, end)`.
struct RingWriter<'a> {
    shared: &'a Shared,
    pos: u64,
    end: u64,
}

impl std::io::Write for RingWriter<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.pos + data.len() as u64 > self.end {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.shared.write_at(self.pos, data);
        self.pos += data.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn new(maxsize: usize, joinable: bool) -> Result<Shared> {
        let region = Region::new(CTL_SIZE + CAPACITY as usize)?;
        let ctl = region.ptr() as *mut Ctl;
        // SAFETY: the region is fresh, zeroed and big enough for Ctl; nobody else sees it yet.
        unsafe {
            RawLock::init(std::ptr::addr_of_mut!((*ctl).write_lock))?;
            RawLock::init(std::ptr::addr_of_mut!((*ctl).read_lock))?;
            (*ctl).maxsize = maxsize as u64;
            (*ctl).joinable = joinable;
        }
        Ok(Shared {
            region,
            closed: AtomicBool::new(false),
            space_limit: AtomicU64::new(CAPACITY),
        })
    }

    fn ctl(&self) -> &Ctl {
        // SAFETY: initialized in `new`; shared fields are atomics or locks.
        unsafe { &*(self.region.ptr() as *const Ctl) }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data area follows the control page inside the mapping.
        unsafe { self.region.ptr().add(CTL_SIZE) }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Relaxed) {
            Err(Error::Closed("Queue"))
        } else {
            Ok(())
        }
    }

    /// Copies `src` into the ring at position `pos` (wrapping).
    fn write_at(&self, pos: u64, src: &[u8]) {
        let off = (pos % CAPACITY) as usize;
        let first = src.len().min(CAPACITY as usize - off);
        // SAFETY: both ranges lie inside the data area; the writer owns [tail, tail+frame).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data().add(off), first);
            if first < src.len() {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr().add(first),
                    self.data(),
                    src.len() - first,
                );
            }
        }
    }

    /// Gives `f` the `len` bytes at ring position `pos`, copying only if they wrap.
    fn read_at<R>(&self, pos: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let off = (pos % CAPACITY) as usize;
        if off + len <= CAPACITY as usize {
            // SAFETY: published bytes inside the data area, owned by the reader until head moves.
            f(unsafe { std::slice::from_raw_parts(self.data().add(off), len) })
        } else {
            let first = CAPACITY as usize - off;
            let mut buf = Vec::with_capacity(len);
            // SAFETY: as above, in two pieces.
            unsafe {
                buf.extend_from_slice(std::slice::from_raw_parts(self.data().add(off), first));
                buf.extend_from_slice(std::slice::from_raw_parts(self.data(), len - first));
            }
            f(&buf)
        }
    }

    fn read_u64(&self, pos: u64) -> u64 {
        self.read_at(pos, 8, |b| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        })
    }

    fn qsize(&self) -> usize {
        let ctl = self.ctl();
        let gets = ctl.gets.load(SeqCst);
        ctl.puts.load(SeqCst).saturating_sub(gets) as usize
    }

    /// Puts one message of `len` bytes, written by `write` at the position it is given.
    fn put_with(
        &self,
        len: usize,
        deadline: Deadline,
        write: impl FnOnce(u64, u64) -> Result<()>,
    ) -> Result<()> {
        self.check_open()?;
        let frame = 8 + (len as u64).next_multiple_of(8);
        if frame > CAPACITY / 2 {
            return Err(Error::TooLarge {
                size: len as u64,
                limit: CAPACITY / 2 - 8,
            });
        }
        let ctl = self.ctl();
        let watch = Watch::new();
        let Some(_locked) = ctl.write_lock.guard(deadline, &watch)? else {
            return Err(Error::Full);
        };
        let tail = ctl.tail.0.load(Relaxed);
        let puts = ctl.puts.load(Relaxed);
        let fits = || {
            if ctl.maxsize != 0 && puts - ctl.gets.load(SeqCst) >= ctl.maxsize {
                return false;
            }
            if tail + frame <= self.space_limit.load(Relaxed) {
                return true;
            }
            let limit = ctl.released.load(Acquire) + CAPACITY;
            self.space_limit.fetch_max(limit, Relaxed);
            tail + frame <= limit
        };
        if !ctl
            .space
            .0
            .wait_until(fits, deadline, &watch, Duration::ZERO)?
        {
            return Err(Error::Full);
        }
        // Past the warm zone, go back to its start if the consumers are done with it.
        let off = tail % CAPACITY;
        let next_lap = tail - off + CAPACITY;
        let start = if off >= WARM
            && frame <= WARM
            && next_lap + frame <= ctl.released.load(Acquire) + CAPACITY
        {
            self.write_at(tail, &WRAP.to_le_bytes());
            next_lap
        } else {
            tail
        };
        self.write_at(start, &(len as u64).to_le_bytes());
        write(start + 8, start + 8 + len as u64)?;
        if ctl.joinable {
            ctl.unfinished.0.fetch_add(1, SeqCst);
        }
        ctl.puts.store(puts + 1, Release);
        ctl.tail.0.store(start + frame, Release);
        ctl.data.0.notify_all();
        Ok(())
    }

    fn get_with<T>(
        &self,
        deadline: Deadline,
        decode: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        self.check_open()?;
        let ctl = self.ctl();
        let watch = Watch::new();
        let Some(_locked) = ctl.read_lock.guard(deadline, &watch)? else {
            return Err(Error::Empty);
        };
        let mut head = ctl.head.0.load(Relaxed);
        let len = loop {
            let ready = || ctl.tail.0.load(Acquire) != head;
            if !ctl.data.0.wait_until(ready, deadline, &watch, SPIN)? {
                return Err(Error::Empty);
            }
            let len = self.read_u64(head);
            if len != WRAP {
                break len;
            }
            // The producer went back to the start: free what this lap used past the warm zone.
            let next_lap = head - head % CAPACITY + CAPACITY;
            self.release(
                ctl.released.load(Relaxed),
                (head + 8).next_multiple_of(GRANULE),
            );
            head = next_lap;
            ctl.head.0.store(head, Release);
            ctl.released.store(head, Release);
        };
        let frame = 8 + len.next_multiple_of(8);
        let value = self.read_at(head + 8, len as usize, decode);
        let new_head = head + frame;
        ctl.head.0.store(new_head, Release);
        ctl.gets.store(ctl.gets.load(Relaxed) + 1, Release);
        let released = ctl.released.load(Relaxed);
        let floor = new_head - new_head % GRANULE;
        if floor > released {
            self.release(released, floor);
            ctl.released.store(floor, Release);
        }
        ctl.space.0.notify_all();
        value
    }

    /// Frees the consumed range `[from, to)`, except the warm zone at the start of each lap.
    fn release(&self, from: u64, to: u64) {
        let mut pos = from;
        while pos < to {
            let lap = pos - pos % CAPACITY;
            let end = to.min(lap + CAPACITY);
            let a = (pos - lap).max(WARM);
            let b = end - lap;
            if a < b {
                self.region.release(CTL_SIZE + a as usize, (b - a) as usize);
            }
            pos = end;
        }
    }
}

/// A FIFO queue of `T` shared by processes: Python's `multiprocessing.Queue`.
///
/// Create it before forking; clones are handles to the same queue, usable in any process that
/// inherits them. Values are serialized with serde (MessagePack, a self-describing format), so `T`
/// is any `Serialize + DeserializeOwned` type, with every serde attribute serde_json supports
/// (tagged and untagged enums, `flatten`, `skip_serializing_if`). For raw bytes use
/// [`crate::ByteBuf`] (one block; a `Vec<u8>` works too, but is encoded byte by byte). A message
/// that cannot be decoded makes `get` return [`Error::Codec`] (naming the type and the reason);
/// that message is consumed and the next `get` returns the next one.
///
/// ```
/// use multiprocessing::{Process, Queue};
/// let q: Queue<String> = Queue::new().unwrap();
/// let producer = q.clone();
/// let mut p = Process::new(move || {
///     for i in 1..=3 {
///         producer.put(format!("ticket{i}")).unwrap();
///     }
/// });
/// p.start().unwrap();
/// let got: Vec<String> = (0..3).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, ["ticket1", "ticket2", "ticket3"]);
/// p.join().unwrap();
/// ```
pub struct Queue<T> {
    shared: Arc<Shared>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            shared: self.shared.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Queue qsize={} maxsize={}>",
            self.shared.qsize(),
            self.shared.ctl().maxsize
        )
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue.
    ///
    /// ```
    /// let q: multiprocessing::Queue<u32> = multiprocessing::Queue::new().unwrap();
    /// assert!(q.empty());
    /// ```
    pub fn new() -> Result<Queue<T>> {
        Self::with_maxsize(0)
    }

    /// A queue that holds at most `maxsize` messages (`0` means unbounded, as in Python).
    ///
    /// ```
    /// use multiprocessing::{Error, Queue};
    /// let q: Queue<u8> = Queue::with_maxsize(1).unwrap();
    /// q.put(1).unwrap();
    /// assert!(q.full());
    /// assert!(matches!(q.put_nowait(2), Err(Error::Full)));
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>> {
        Self::create(maxsize, false)
    }

    fn create(maxsize: usize, joinable: bool) -> Result<Queue<T>> {
        Ok(Queue {
            shared: Arc::new(Shared::new(maxsize, joinable)?),
            _t: PhantomData,
        })
    }

    fn put_deadline(&self, item: &T, deadline: Deadline) -> Result<()> {
        let len = codec::encoded_len(item)?;
        self.shared.put_with(len, deadline, |pos, end| {
            let mut w = RingWriter {
                shared: &self.shared,
                pos,
                end,
            };
            codec::encode_to(item, &mut w)?;
            if w.pos != end {
                return Err(Error::Codec(format!(
                    "cannot encode a value of type `{}`: it serialized to a different size twice",
                    std::any::type_name::<T>()
                )));
            }
            Ok(())
        })
    }

    /// Puts an item, waiting while the queue is full. Serialization errors are returned here.
    ///
    /// ```
    /// let q = multiprocessing::Queue::new().unwrap();
    /// q.put("hello".to_string()).unwrap();
    /// assert_eq!(q.get().unwrap(), "hello");
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        self.put_deadline(&item, Deadline::never())
    }

    /// Puts an item, waiting at most `timeout` for room ([`Error::Full`] after that).
    ///
    /// ```
    /// use multiprocessing::{Error, Queue};
    /// use std::time::Duration;
    /// let q: Queue<u8> = Queue::with_maxsize(1).unwrap();
    /// q.put(1).unwrap();
    /// assert!(matches!(q.put_timeout(2, Duration::from_millis(20)), Err(Error::Full)));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        self.put_deadline(&item, Deadline::after(timeout))
    }

    /// Puts an item only if there is room now ([`Error::Full`] otherwise).
    ///
    /// ```
    /// let q: multiprocessing::Queue<u8> = multiprocessing::Queue::with_maxsize(2).unwrap();
    /// q.put_nowait(1).unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<()> {
        self.put_deadline(&item, Deadline::after(Duration::ZERO))
    }

    fn get_deadline(&self, deadline: Deadline) -> Result<T> {
        self.shared.get_with(deadline, codec::decode)
    }

    /// Removes and returns the oldest item, waiting as long as it takes (or until an interrupt).
    ///
    /// ```
    /// let q = multiprocessing::Queue::new().unwrap();
    /// q.put(vec![1, 2]).unwrap();
    /// assert_eq!(q.get().unwrap(), vec![1, 2]);
    /// ```
    pub fn get(&self) -> Result<T> {
        self.get_deadline(Deadline::never())
    }

    /// Like [`get`](Self::get), but [`Error::Empty`] after `timeout`.
    ///
    /// ```
    /// use multiprocessing::{Error, Queue};
    /// let q: Queue<i32> = Queue::new().unwrap();
    /// assert!(matches!(q.get_timeout(std::time::Duration::from_millis(30)), Err(Error::Empty)));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_deadline(Deadline::after(timeout))
    }

    /// Returns an item if one is there now, [`Error::Empty`] otherwise.
    ///
    /// ```
    /// use multiprocessing::{Error, Queue};
    /// let q: Queue<i32> = Queue::new().unwrap();
    /// assert!(matches!(q.get_nowait(), Err(Error::Empty)));
    /// q.put(7).unwrap();
    /// assert_eq!(q.get_nowait().unwrap(), 7);
    /// ```
    pub fn get_nowait(&self) -> Result<T> {
        self.get_deadline(Deadline::after(Duration::ZERO))
    }

    /// The number of messages waiting.
    ///
    /// ```
    /// let q = multiprocessing::Queue::new().unwrap();
    /// q.put(1u8).unwrap();
    /// q.put(2u8).unwrap();
    /// assert_eq!(q.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.shared.qsize()
    }

    /// True if no message is waiting (accurate right after `put`, unlike Python's).
    ///
    /// ```
    /// let q = multiprocessing::Queue::new().unwrap();
    /// q.put(1u8).unwrap();
    /// assert!(!q.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// True if `maxsize` messages are waiting.
    ///
    /// ```
    /// let q: multiprocessing::Queue<u8> = multiprocessing::Queue::new().unwrap();
    /// assert!(!q.full());
    /// ```
    pub fn full(&self) -> bool {
        let max = self.shared.ctl().maxsize;
        max > 0 && self.qsize() as u64 >= max
    }

    /// Closes the queue for this process (and the clones of this handle in it): later calls return
    /// [`Error::Closed`]. Other processes are not affected.
    ///
    /// ```
    /// use multiprocessing::{Error, Queue};
    /// let q: Queue<u8> = Queue::new().unwrap();
    /// q.close();
    /// assert!(matches!(q.put(2), Err(Error::Closed(_))));
    /// ```
    pub fn close(&self) {
        self.shared.closed.store(true, SeqCst);
    }
}

/// Python's `SimpleQueue`: only `put`, `get`, `empty` and `close`.
///
/// ```
/// let q = multiprocessing::SimpleQueue::new().unwrap();
/// q.put(3.5f64).unwrap();
/// assert_eq!(q.get().unwrap(), 3.5);
/// assert!(q.empty());
/// ```
pub struct SimpleQueue<T>(Queue<T>);

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue(self.0.clone())
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// An unbounded simple queue.
    ///
    /// ```
    /// let q: multiprocessing::SimpleQueue<u8> = multiprocessing::SimpleQueue::new().unwrap();
    /// assert!(q.empty());
    /// ```
    pub fn new() -> Result<SimpleQueue<T>> {
        Ok(SimpleQueue(Queue::new()?))
    }
    /// Puts an item.
    ///
    /// ```
    /// let q = multiprocessing::SimpleQueue::new().unwrap();
    /// q.put('x').unwrap();
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        self.0.put(item)
    }
    /// Gets the oldest item, waiting for one.
    ///
    /// ```
    /// let q = multiprocessing::SimpleQueue::new().unwrap();
    /// q.put(1u16).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    pub fn get(&self) -> Result<T> {
        self.0.get()
    }
    /// True if nothing is waiting.
    ///
    /// ```
    /// let q: multiprocessing::SimpleQueue<u8> = multiprocessing::SimpleQueue::new().unwrap();
    /// assert!(q.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.0.empty()
    }
    /// Closes this handle (later calls give [`Error::Closed`]).
    ///
    /// ```
    /// let q: multiprocessing::SimpleQueue<u8> = multiprocessing::SimpleQueue::new().unwrap();
    /// q.close();
    /// assert!(q.get().is_err());
    /// ```
    pub fn close(&self) {
        self.0.close()
    }
}

/// Python's `JoinableQueue`: a [`Queue`] whose consumers call [`task_done`](Self::task_done) per
/// item, so that [`join`](Self::join) can wait for every item to be processed.
///
/// ```
/// use multiprocessing::{JoinableQueue, Process};
/// let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
/// let worker = q.clone();
/// let mut p = Process::new(move || loop {
///     let _item = worker.get().unwrap();
///     worker.task_done().unwrap();
/// })
/// .with_daemon(true);
/// p.start().unwrap();
/// for i in 0..5 {
///     q.put(i).unwrap();
/// }
/// q.join().unwrap();
/// p.terminate().unwrap();
/// ```
pub struct JoinableQueue<T>(Queue<T>);

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue(self.0.clone())
    }
}

impl<T: Serialize + DeserializeOwned> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// An unbounded joinable queue.
    ///
    /// ```
    /// let q: multiprocessing::JoinableQueue<u8> = multiprocessing::JoinableQueue::new().unwrap();
    /// q.join().unwrap(); // nothing put, nothing to wait for
    /// ```
    pub fn new() -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue(Queue::create(0, true)?))
    }

    /// A joinable queue holding at most `maxsize` messages.
    ///
    /// ```
    /// let q: multiprocessing::JoinableQueue<u8> = multiprocessing::JoinableQueue::with_maxsize(4).unwrap();
    /// assert!(!q.full());
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue(Queue::create(maxsize, true)?))
    }

    /// Marks one item as processed. [`Error::TaskDoneTooManyTimes`] if called more often than `put`.
    ///
    /// ```
    /// use multiprocessing::{Error, JoinableQueue};
    /// let q = JoinableQueue::new().unwrap();
    /// q.put(1u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(matches!(q.task_done(), Err(Error::TaskDoneTooManyTimes)));
    /// ```
    pub fn task_done(&self) -> Result<()> {
        let ctl = self.0.shared.ctl();
        let prev = ctl
            .unfinished
            .0
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .map_err(|_| Error::TaskDoneTooManyTimes)?;
        if prev == 1 {
            ctl.done.0.notify_all();
        }
        Ok(())
    }

    /// Waits until every item put has been marked with `task_done` (or an interrupt).
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new().unwrap();
    /// q.put(5u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// q.join().unwrap();
    /// ```
    pub fn join(&self) -> Result<()> {
        let ctl = self.0.shared.ctl();
        let watch = Watch::new();
        ctl.done.0.wait_until(
            || ctl.unfinished.0.load(SeqCst) == 0,
            Deadline::never(),
            &watch,
            Duration::ZERO,
        )?;
        Ok(())
    }
}
