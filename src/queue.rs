//! [`Queue`], [`SimpleQueue`] and [`JoinableQueue`]: many-producer, many-consumer FIFO queues
//! between processes.
//!
//! A queue is a ring buffer in shared memory (a sparse memfd whose descriptor every process forked
//! after the queue was created inherits), guarded by two robust process-shared locks: one for
//! producers, one for consumers. A producer writes a whole message and then publishes it; a
//! consumer reads a whole message and then releases it. So every message arrives exactly once and
//! whole, whatever its size, and a process killed inside `put` or `get` never corrupts the queue
//! (a half-written message was never published; a half-read one is read again by the next consumer).
//!
//! No process maps the whole ring: each maps its first window (8 MiB) for as long as it holds the
//! queue, and while a backlog lasts, one more window for its producers and one for its consumers;
//! a message larger than a window is mapped on its own for the time of its `put` and its `get`.
//! So a queue costs each process 8 MiB of address space (24 MiB at most, plus the large message
//! being copied), and queues work under an address-space limit (`ulimit -v`, as batch schedulers
//! set it): a hundred queues need less than a gigabyte.
//!
//! Deviation from Python (better): there is no feeder thread. `put` copies the message into shared
//! memory before it returns, so `put` reports serialization errors itself, `empty()` is accurate
//! right after `put`, and a child that put large data can exit at once: joining it before reading
//! the data does not deadlock (Python's classic hang). The queue holds up to 16 GiB of unread data
//! (memory is used as pages are written and given back as they are read, beyond the ring's first
//! 4 MiB, which is kept for reuse); `put` waits only when that is exceeded or when `maxsize`
//! messages are waiting. A single message can be up to 8 GiB.

use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sync::{Signal, lock_robust};
use crate::sys::RobustMutex;
use crate::sys::mapping::{Mapping, MemFile};

use crate::sys::Deadline;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release, Ordering::SeqCst,
};
use std::time::Duration;

/// The control block's share of the file (a multiple of any page size, so that the windows after
/// it can be mapped on their own).
const CTL_SIZE: u64 = 64 << 10;
/// Bytes of unread data a queue can hold: the ring's size (of a sparse file, never mapped whole).
const CAPACITY: u64 = 16 << 30;
/// Processes map the ring a window at a time. A frame of up to a window never straddles two: a
/// producer goes on at the next window instead.
const WINDOW: u64 = 8 << 20;
/// The start of the ring is kept warm (never returned to the system): while the consumers keep up,
/// producers wrap back to it instead of writing on into fresh pages.
const WARM: u64 = 4 << 20;
/// Consumed data beyond the warm zone is returned to the system in pieces of this size.
const GRANULE: u64 = 1 << 20;
/// A frame length that means "the data goes on at the start of the next lap".
const WRAP: u64 = u64::MAX;
/// A frame length that means "the data goes on at the start of the next window".
const SKIP: u64 = u64::MAX - 1;
/// The wrap position before producers first go back to the start of the ring.
const NO_WRAP: u64 = u64::MAX;
/// No window is mapped in a [`Roaming`] slot.
const NO_WINDOW: u64 = u64::MAX;
/// How long a consumer spins before sleeping on an empty queue.
const SPIN: Duration = Duration::from_micros(50);

const _: () = assert!(WARM <= WINDOW && CAPACITY.is_multiple_of(WINDOW));
const _: () = assert!(WINDOW.is_multiple_of(GRANULE) && WARM.is_multiple_of(GRANULE));

#[repr(C, align(64))]
struct Padded<T>(T);

#[repr(C)]
struct Ctl {
    write_lock: RobustMutex,
    read_lock: RobustMutex,
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
    /// The last time producers went back to the start of the ring before its end (the warm
    /// zone): data goes on at `.1` after position `.0` (`NO_WRAP`: never). Written by producers
    /// rarely and read by consumers at every message: a cache line of its own.
    wrap: Padded<(AtomicU64, AtomicU64)>,
    data: Padded<Signal>,
    space: Padded<Signal>,
    done: Padded<Signal>,
}

const _: () = assert!(std::mem::size_of::<Ctl>() as u64 <= CTL_SIZE);

/// The window (other than the first) that this process has mapped for one side of the queue. It
/// is used only under that side's lock; atomics keep it whole in a child forked meanwhile.
struct Roaming {
    index: AtomicU64,
    base: AtomicPtr<u8>,
}

impl Roaming {
    fn new() -> Roaming {
        Roaming {
            index: AtomicU64::new(NO_WINDOW),
            base: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

impl Drop for Roaming {
    fn drop(&mut self) {
        let base = *self.base.get_mut();
        if !base.is_null() {
            // SAFETY: `base` came from `Mapping::into_raw` of a window, taken back once.
            drop(unsafe { Mapping::from_raw(base, WINDOW as usize) });
        }
    }
}

struct Shared {
    file: MemFile,
    /// The control block and the ring's first window, mapped as long as the queue lives here.
    first: Mapping,
    /// The other windows this process's producers and consumers use.
    put_window: Roaming,
    get_window: Roaming,
    closed: AtomicBool,
    /// A lower bound of `released + CAPACITY` seen by this process's producers: while the tail
    /// stays below it, producers need not read the consumers' side (a cache miss per message).
    space_limit: AtomicU64,
}

/// Where a frame of `frame` bytes goes when the ring's end of data is at `tail`: there, or at the
/// start of the next window if it would straddle two (the next lap if it is larger than a window
/// and would run past the ring's end).
fn place(tail: u64, frame: u64) -> u64 {
    let unit = if frame <= WINDOW { WINDOW } else { CAPACITY };
    let boundary = (tail / unit + 1) * unit;
    if tail + frame <= boundary {
        tail
    } else {
        boundary
    }
}

impl Shared {
    fn new(maxsize: usize, joinable: bool) -> Result<Shared> {
        let file = MemFile::new(CTL_SIZE + CAPACITY)?;
        let first = file.map(0, (CTL_SIZE + WINDOW) as usize)?;
        let ctl = first.ptr() as *mut Ctl;
        // SAFETY: the file is fresh, zeroed and big enough for Ctl; nobody else sees it yet.
        unsafe {
            RobustMutex::init(std::ptr::addr_of_mut!((*ctl).write_lock), false)?;
            RobustMutex::init(std::ptr::addr_of_mut!((*ctl).read_lock), false)?;
            (*ctl).maxsize = maxsize as u64;
            (*ctl).joinable = joinable;
            (*ctl).wrap.0.0 = AtomicU64::new(NO_WRAP);
        }
        Ok(Shared {
            file,
            first,
            put_window: Roaming::new(),
            get_window: Roaming::new(),
            closed: AtomicBool::new(false),
            space_limit: AtomicU64::new(CAPACITY),
        })
    }

    fn ctl(&self) -> &Ctl {
        // SAFETY: initialized in `new`; shared fields are atomics or locks.
        unsafe { &*(self.first.ptr() as *const Ctl) }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Relaxed) {
            Err(Error::Closed("Queue"))
        } else {
            Ok(())
        }
    }

    /// The address of ring position `pos` in this process, mapping its window into `slot` (the
    /// caller's side's, used under that side's lock) if needed. The rest of the window follows it.
    #[inline]
    fn at(&self, slot: &Roaming, pos: u64) -> Result<*mut u8> {
        let off = pos % CAPACITY;
        let (window, within) = (off / WINDOW, (off % WINDOW) as usize);
        if window == 0 {
            // SAFETY: the first window follows the control block inside `first`.
            return Ok(unsafe { self.first.ptr().add(CTL_SIZE as usize + within) });
        }
        if slot.index.load(Relaxed) != window {
            self.remap(slot, window)?;
        }
        // SAFETY: the slot maps `window`; `within` is inside it.
        Ok(unsafe { slot.base.load(Relaxed).add(within) })
    }

    /// Maps `window` into `slot`, in place of the window it held.
    #[cold]
    #[inline(never)]
    fn remap(&self, slot: &Roaming, window: u64) -> Result<()> {
        let (base, _) = self
            .file
            .map(CTL_SIZE + window * WINDOW, WINDOW as usize)?
            .into_raw();
        slot.index.store(NO_WINDOW, Release);
        let old = slot.base.swap(base, AcqRel);
        if !old.is_null() {
            // SAFETY: `old` came from `into_raw` of a window and leaves the slot here.
            drop(unsafe { Mapping::from_raw(old, WINDOW as usize) });
        }
        slot.index.store(window, Release);
        Ok(())
    }

    fn write_u64(&self, slot: &Roaming, pos: u64, v: u64) -> Result<()> {
        let p = self.at(slot, pos)?;
        // SAFETY: 8 bytes inside a mapped window (positions are 8-aligned, windows too), owned by
        // the writer until it publishes them.
        unsafe { std::ptr::copy_nonoverlapping(v.to_le_bytes().as_ptr(), p, 8) };
        Ok(())
    }

    /// The ring position up to which producers may write: `CAPACITY` past what consumers are done
    /// with. When they have read everything up to where producers went back to the ring's start,
    /// and freed the granules they read (a consumer publishes its head first, then frees), that
    /// is all of the previous lap, even before a `get` has moved on past that point.
    fn free_limit(&self) -> u64 {
        let ctl = self.ctl();
        let released = ctl.released.load(Acquire);
        let wrap_from = ctl.wrap.0.0.load(Acquire);
        if wrap_from != NO_WRAP
            && ctl.head.0.load(Acquire) == wrap_from
            && released >= wrap_from - wrap_from % GRANULE
        {
            ctl.wrap.0.1.load(Acquire).max(released) + CAPACITY
        } else {
            released + CAPACITY
        }
    }

    fn qsize(&self) -> usize {
        let ctl = self.ctl();
        let gets = ctl.gets.load(SeqCst);
        ctl.puts.load(SeqCst).saturating_sub(gets) as usize
    }

    /// Puts one message of `len` bytes, written by `write` into the buffer it is given.
    fn put_with(
        &self,
        len: usize,
        deadline: Deadline,
        write: impl FnOnce(&mut [u8]) -> Result<()>,
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
        let Some(_locked) = lock_robust(&ctl.write_lock, deadline, &watch)? else {
            return Err(Error::Full);
        };
        let tail = ctl.tail.0.load(Relaxed);
        let puts = ctl.puts.load(Relaxed);
        let mut start = place(tail, frame);
        let fits = || {
            if ctl.maxsize != 0 && puts - ctl.gets.load(SeqCst) >= ctl.maxsize {
                return false;
            }
            if start + frame <= self.space_limit.load(Relaxed) {
                return true;
            }
            let limit = self.free_limit();
            self.space_limit.fetch_max(limit, Relaxed);
            start + frame <= limit
        };
        if !ctl
            .space
            .0
            .wait_until(fits, deadline, &watch, Duration::ZERO)?
        {
            return Err(Error::Full);
        }
        // Past the warm zone, go back to its start if the consumers are done with it. This is
        // recorded in the control block rather than in the ring: the rest of this lap is free as
        // soon as the consumers reach this point.
        let off = tail % CAPACITY;
        if off >= WARM && frame <= WARM && self.free_limit() >= tail - off + CAPACITY + frame {
            start = tail - off + CAPACITY;
            ctl.wrap.0.0.store(tail, Release);
            ctl.wrap.0.1.store(start, Release);
        } else if start != tail {
            let marker = if start.is_multiple_of(CAPACITY) {
                WRAP
            } else {
                SKIP
            };
            self.write_u64(&self.put_window, tail, marker)?;
        }
        // A frame of up to a window lies in one window; a larger one is mapped on its own.
        let own;
        let dst = if frame <= WINDOW {
            self.at(&self.put_window, start)?
        } else {
            own = self.file.map(CTL_SIZE + start % CAPACITY, frame as usize)?;
            own.ptr()
        };
        // SAFETY: `[start, start + frame)` is free ring space (inside `released + CAPACITY`, which
        // consumers do not read before it is published), owned by this producer under the write
        // lock, and mapped contiguously at `dst`.
        let buf = unsafe { std::slice::from_raw_parts_mut(dst, frame as usize) };
        buf[..8].copy_from_slice(&(len as u64).to_le_bytes());
        write(&mut buf[8..8 + len])?;
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
        let Some(_locked) = lock_robust(&ctl.read_lock, deadline, &watch)? else {
            return Err(Error::Empty);
        };
        let slot = &self.get_window;
        let mut head = ctl.head.0.load(Relaxed);
        let (len, header) = loop {
            let ready = || ctl.tail.0.load(Acquire) != head;
            if !ctl.data.0.wait_until(ready, deadline, &watch, SPIN)? {
                return Err(Error::Empty);
            }
            if head == ctl.wrap.0.0.load(Acquire) {
                // The producers went back to the start of the ring: go on there. What this lap
                // used past the warm zone was freed as it was read, except the granule before
                // this point, which producers may already be reusing: it is left alone. (Released
                // first: a consumer that dies in between leaves `head` here and does it again.)
                head = ctl.wrap.0.1.load(Acquire);
                ctl.released.store(head, Release);
                ctl.head.0.store(head, Release);
                continue;
            }
            let header = self.at(slot, head)?;
            let mut word = [0u8; 8];
            // SAFETY: 8 published bytes inside a mapped window.
            unsafe { std::ptr::copy_nonoverlapping(header, word.as_mut_ptr(), 8) };
            match u64::from_le_bytes(word) {
                WRAP => {
                    // A frame did not fit before the ring's end: free what this lap used past the
                    // warm zone (nothing after the marker was written in this lap).
                    let next_lap = head - head % CAPACITY + CAPACITY;
                    self.release(
                        ctl.released.load(Relaxed),
                        (head + 8).next_multiple_of(GRANULE),
                    );
                    head = next_lap;
                    ctl.head.0.store(head, Release);
                    ctl.released.store(head, Release);
                }
                SKIP => {
                    head = (head / WINDOW + 1) * WINDOW;
                    ctl.head.0.store(head, Release);
                    self.release_before(head);
                }
                len => break (len, header),
            }
        };
        let frame = 8 + len.next_multiple_of(8);
        if frame > CAPACITY / 2 {
            return Err(Error::Broken(format!(
                "queue is corrupted: a message header says {len} bytes"
            )));
        }
        // If the message cannot be mapped (no address space left), it stays for the next `get`.
        let value = if len == 0 {
            decode(&[])
        } else if frame <= WINDOW {
            // SAFETY: `len` published bytes after the header, in its window (a frame of up to a
            // window never straddles two), not overwritten before `head` moves past them.
            decode(unsafe { std::slice::from_raw_parts(header.add(8), len as usize) })
        } else {
            let own = self
                .file
                .map(CTL_SIZE + (head + 8) % CAPACITY, len as usize)?;
            // SAFETY: as above, mapped on its own.
            decode(unsafe { std::slice::from_raw_parts(own.ptr(), len as usize) })
        };
        let new_head = head + frame;
        ctl.head.0.store(new_head, Release);
        ctl.gets.store(ctl.gets.load(Relaxed) + 1, Release);
        #[cfg(test)]
        tests::pause_before_release(new_head == ctl.wrap.0.0.load(Acquire));
        self.release_before(new_head);
        ctl.space.0.notify_all();
        value
    }

    /// Frees the whole granules consumed before `head` (called under the read lock).
    fn release_before(&self, head: u64) {
        let ctl = self.ctl();
        let released = ctl.released.load(Relaxed);
        let floor = head - head % GRANULE;
        if floor > released {
            self.release(released, floor);
            ctl.released.store(floor, Release);
        }
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
                self.file.punch(CTL_SIZE + a, b - a);
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
        self.shared.put_with(len, deadline, |mut dst| {
            codec::encode_to(item, &mut dst)?;
            if !dst.is_empty() {
                return Err(codec::encode_failed::<T>(
                    "it serialized to a different size twice",
                ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByteBuf, Process};
    use std::cell::Cell;

    thread_local! {
        /// A consumer's pause between publishing its new head and freeing what it read, in
        /// microseconds: after every message, and (second) when the new head is where the
        /// producers went back to the start of the ring. Zero in every other test; per thread, so
        /// that only the test's own consumer pauses, not the other tests running meanwhile.
        static PAUSES: (Cell<u64>, Cell<u64>) = const { (Cell::new(0), Cell::new(0)) };
    }

    pub(super) fn pause_before_release(at_wrap: bool) {
        let us = PAUSES.with(|p| if at_wrap { p.1.get() } else { p.0.get() });
        if us > 0 {
            std::thread::sleep(Duration::from_micros(us));
        }
    }

    /// A consumer descheduled right after it read up to where the producer went back to the
    /// start of the ring (a loaded machine) used to free the last granule it read only after the
    /// producer had been told the whole next lap was free and had written there: the message
    /// written there read back as zeros (a codec error, and a producer stuck for ever behind a
    /// consumer that gave up). Seen in `cargo bench --bench vs_python` on a loaded VM.
    #[test]
    fn a_consumer_slow_to_free_what_it_read_loses_no_message() {
        const N: usize = 300;
        const SIZE: usize = 1 << 20;
        let q: Queue<ByteBuf> = Queue::new().unwrap();
        let tx = q.clone();
        let mut p = Process::new(move || {
            for i in 0..N {
                tx.put(ByteBuf::from(vec![i as u8; SIZE])).unwrap();
            }
        });
        // A slow consumer (the producer catches up with it in the next lap), slowest where the
        // producer went back to the start (longer than a sleeping producer's slice).
        PAUSES.with(|p| {
            p.0.set(1_000);
            p.1.set(50_000);
        });
        p.start().unwrap();
        let mut bad = None;
        for i in 0..N {
            match q.get_timeout(Duration::from_secs(20)) {
                Ok(m) if m.len() == SIZE && m.iter().all(|&b| b == i as u8) => {}
                Ok(m) => {
                    let wrong = m.iter().position(|&b| b != i as u8);
                    bad = Some(format!(
                        "message {i}: {} bytes, first wrong byte at {wrong:?}",
                        m.len()
                    ));
                    break;
                }
                Err(e) => {
                    bad = Some(format!("message {i}: {e}"));
                    break;
                }
            }
        }
        PAUSES.with(|p| {
            p.0.set(0);
            p.1.set(0);
        });
        if bad.is_some() {
            let _ = p.terminate();
        }
        let _ = p.join();
        assert_eq!(bad, None);
    }

    #[test]
    fn frames_never_straddle_a_window_nor_run_past_the_ring() {
        const MIB: u64 = 1 << 20;
        // Fits where it is.
        assert_eq!(place(0, WINDOW), 0);
        assert_eq!(place(WINDOW - 16, 16), WINDOW - 16);
        // Would straddle two windows: the next one (at the ring's end, that is the next lap).
        assert_eq!(place(WINDOW - 8, 16), WINDOW);
        assert_eq!(place(3 * MIB, WINDOW), WINDOW);
        assert_eq!(place(CAPACITY - 8, 16), CAPACITY);
        assert_eq!(place(2 * CAPACITY + WINDOW - 8, 16), 2 * CAPACITY + WINDOW);
        // Larger than a window: anywhere, but not past the ring's end.
        assert_eq!(place(3 * MIB, WINDOW + 8), 3 * MIB);
        assert_eq!(place(CAPACITY - WINDOW, WINDOW + 8), CAPACITY);
        assert_eq!(
            place(CAPACITY - 2 * WINDOW, WINDOW + 8),
            CAPACITY - 2 * WINDOW
        );
    }
}
