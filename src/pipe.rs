//! [`Pipe`] and [`Connection`]: two connected ends that send serde values (or raw bytes).

#![deny(unsafe_code)]

use crate::codec;
use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::{self, Deadline, Io, Spin};
use serde::{Serialize, de::DeserializeOwned};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// How long `recv` keeps trying without sleeping before it blocks (a reply from a process running on
/// another core usually arrives within that time, and sleeping would add a wake-up to each message).
/// Every probe is a `read`; it never yields (the read is a system call already).
const SPIN: Spin = Spin::new(Duration::from_micros(60)).yield_every(0);

/// Creates connected pairs of [`Connection`]s: Python's `multiprocessing.Pipe`.
///
/// ```
/// use multiprocessing::{Pipe, Process};
/// let (parent, child) = Pipe::new().unwrap();
/// let mut p = Process::new(move || {
///     let x: i64 = child.recv().unwrap();
///     child.send(&(x * 2)).unwrap();
/// });
/// p.start().unwrap(); // the parent's copy of `child` is dropped here
/// parent.send(&21).unwrap();
/// assert_eq!(parent.recv().unwrap(), 42);
/// p.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// A duplex pair: both ends send and receive (Python's `Pipe()`).
    ///
    /// ```
    /// use multiprocessing::Pipe;
    /// let (a, b) = Pipe::new().unwrap();
    /// a.send(&"ping".to_string()).unwrap();
    /// assert_eq!(b.recv().unwrap(), "ping");
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T>() -> Result<(Connection<T>, Connection<T>)> {
        let (r1, w1) = sys::pipe()?;
        let (r2, w2) = sys::pipe()?;
        Ok((
            Connection::new(Some(r1), Some(w2)),
            Connection::new(Some(r2), Some(w1)),
        ))
    }

    /// A one-way pair `(reader, writer)` (Python's `Pipe(duplex=False)`).
    ///
    /// ```
    /// use multiprocessing::{Error, Pipe};
    /// let (r, w) = Pipe::oneway().unwrap();
    /// w.send(&1u8).unwrap();
    /// assert_eq!(r.recv().unwrap(), 1);
    /// assert!(matches!(r.send(&2), Err(Error::WrongDirection("read-only"))));
    /// ```
    pub fn oneway<T>() -> Result<(Connection<T>, Connection<T>)> {
        let (r, w) = sys::pipe()?;
        Ok((
            Connection::new(Some(r), None),
            Connection::new(None, Some(w)),
        ))
    }
}

/// One end of a [`Pipe`]: Python's `multiprocessing.connection.Connection`.
///
/// Messages are length-prefixed frames on OS pipes (two for a duplex pair: pipes are several times
/// faster than Unix sockets for small messages); [`recv`](Self::recv) returns
/// [`Error::Eof`] once every other copy of the peer end is closed (in every process) and the data
/// sent before is read. Connections are `Send` but not `Sync`: one thread uses an end at a time.
///
/// ```
/// use multiprocessing::{Error, Pipe};
/// let (a, b) = Pipe::new().unwrap();
/// a.send(&vec![1, 2, 3]).unwrap();
/// drop(a);
/// assert_eq!(b.recv().unwrap(), vec![1, 2, 3]);
/// assert!(matches!(b.recv(), Err(Error::Eof)));
/// ```
pub struct Connection<T> {
    rfd: Option<OwnedFd>,
    wfd: Option<OwnedFd>,
    readable: bool,
    writable: bool,
    /// SIGPIPE was ignored when the pipe was made: writes need no signal guard.
    sigpipe_ignored: bool,
    /// A read stopped by an interrupt in the middle of a frame leaves the stream unusable.
    broken: Cell<bool>,
    buf: RefCell<Vec<u8>>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Connection read_fd={:?} write_fd={:?}>",
            self.rfd.as_ref().map(|f| f.as_raw_fd()),
            self.wfd.as_ref().map(|f| f.as_raw_fd()),
        )
    }
}

impl<T> Connection<T> {
    fn new(rfd: Option<OwnedFd>, wfd: Option<OwnedFd>) -> Self {
        Connection {
            readable: rfd.is_some(),
            writable: wfd.is_some(),
            rfd,
            wfd,
            sigpipe_ignored: sys::sigpipe_ignored(),
            broken: Cell::new(false),
            buf: RefCell::new(Vec::new()),
            _t: PhantomData,
        }
    }

    fn raw<'a>(&self, fd: &'a Option<OwnedFd>) -> Result<BorrowedFd<'a>> {
        if self.broken.get() {
            return Err(Error::Broken(
                "connection is unusable: a receive was interrupted in the middle of a message"
                    .into(),
            ));
        }
        fd.as_ref()
            .map(|f| f.as_fd())
            .ok_or(Error::Closed("connection"))
    }

    /// Closes this end (dropping it does the same).
    ///
    /// ```
    /// use multiprocessing::{Error, Pipe};
    /// let (mut a, _b) = Pipe::new::<u8>().unwrap();
    /// a.close();
    /// assert!(matches!(a.send(&1), Err(Error::Closed(_))));
    /// ```
    pub fn close(&mut self) {
        self.rfd = None;
        self.wfd = None;
    }

    /// True for an end that can receive.
    ///
    /// ```
    /// let (r, w) = multiprocessing::Pipe::oneway::<u8>().unwrap();
    /// assert!(r.readable() && !w.readable());
    /// ```
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// True for an end that can send.
    ///
    /// ```
    /// let (r, w) = multiprocessing::Pipe::oneway::<u8>().unwrap();
    /// assert!(w.writable() && !r.writable());
    /// ```
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Sends raw bytes as one message (Python's `send_bytes`).
    ///
    /// ```
    /// let (a, b) = multiprocessing::Pipe::new::<()>().unwrap();
    /// a.send_bytes(b"raw").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"raw");
    /// ```
    pub fn send_bytes(&self, payload: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::WrongDirection("read-only"));
        }
        let fd = self.raw(&self.wfd)?;
        let header = (payload.len() as u64).to_le_bytes();
        let watch = Watch::new();
        let ign = self.sigpipe_ignored;
        if payload.len() <= 4096 {
            let mut frame = [0u8; 4104];
            frame[..8].copy_from_slice(&header);
            frame[8..8 + payload.len()].copy_from_slice(payload);
            return write_all(fd, &frame[..8 + payload.len()], &watch, ign);
        }
        write_all(fd, &header, &watch, ign)?;
        write_all(fd, payload, &watch, ign)
    }

    /// Receives one raw message (Python's `recv_bytes`).
    ///
    /// ```
    /// let (a, b) = multiprocessing::Pipe::new::<()>().unwrap();
    /// a.send_bytes(&[0, 255]).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), vec![0, 255]);
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.recv_frame(|b| Ok(b.to_vec()))
    }

    fn recv_frame<R>(&self, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        if !self.readable {
            return Err(Error::WrongDirection("write-only"));
        }
        let fd = self.raw(&self.rfd)?;
        let watch = Watch::new();
        let mut header = [0u8; 8];
        if !read_exact(fd, &mut header, &watch, true)? {
            return Err(Error::Eof);
        }
        let len = u64::from_le_bytes(header) as usize;
        let mut buf = self.buf.borrow_mut();
        buf.clear();
        buf.resize(len, 0);
        match read_exact(fd, &mut buf, &watch, false) {
            Ok(true) => {}
            Ok(false) => {
                self.broken.set(true);
                return Err(Error::Eof);
            }
            Err(e) => {
                self.broken.set(true);
                return Err(e);
            }
        }
        let r = f(&buf);
        if buf.capacity() > (1 << 20) {
            *buf = Vec::new();
        }
        r
    }

    /// True if a message (or end of file) is ready within `timeout` (`None`: wait as long as it takes).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = multiprocessing::Pipe::new::<u8>().unwrap();
    /// assert!(!b.poll(Some(Duration::from_millis(10))).unwrap());
    /// a.send(&1).unwrap();
    /// assert!(b.poll(Some(Duration::ZERO)).unwrap());
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        if !self.readable {
            return Err(Error::WrongDirection("write-only"));
        }
        let fd = self.raw(&self.rfd)?;
        let deadline = Deadline::from_timeout(timeout);
        let watch = Watch::new();
        let ready = |wait| Ok(!sys::poll_fd(fd, sys::Events::IN, wait)?.is_empty());
        if ready(Duration::ZERO)? {
            return Ok(true);
        }
        let ready = deadline.wait(|| watch.check(), |slice| Ok(ready(slice)?.then_some(())))?;
        Ok(ready.is_some())
    }
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends a value.
    ///
    /// ```
    /// let (a, b) = multiprocessing::Pipe::new().unwrap();
    /// a.send(&(1, "one".to_string())).unwrap();
    /// assert_eq!(b.recv().unwrap(), (1, "one".to_string()));
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        codec::with_encoded(value, |bytes| self.send_bytes(bytes))
    }

    /// Receives a value, waiting for one; [`Error::Eof`] when every other end is closed. A
    /// message that cannot be decoded as a `T` gives [`Error::Codec`] (naming the type and the
    /// reason); it is consumed, and the next `recv` returns the next message.
    ///
    /// ```
    /// let (a, b) = multiprocessing::Pipe::new().unwrap();
    /// a.send(&2.5f32).unwrap();
    /// assert_eq!(b.recv().unwrap(), 2.5);
    /// ```
    pub fn recv(&self) -> Result<T> {
        self.recv_frame(codec::decode)
    }
}

fn write_all(
    fd: BorrowedFd<'_>,
    mut buf: &[u8],
    watch: &Watch,
    sigpipe_ignored: bool,
) -> Result<()> {
    while !buf.is_empty() {
        match sys::write_nb(fd, buf, sigpipe_ignored)? {
            Io::Done(n) => buf = &buf[n..],
            Io::Closed => return Err(Error::Eof),
            Io::WouldBlock => {
                watch.check()?;
                sys::poll_fd(fd, sys::Events::OUT, sys::SLICE)?;
            }
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes. `Ok(false)` on end of file before the first byte. With
/// `spin`, the first read spins (see [`SPIN`]) while there is nothing to read yet.
fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8], watch: &Watch, spin: bool) -> Result<bool> {
    let mut got = 0;
    let mut spin = spin;
    while got < buf.len() {
        let io = if std::mem::take(&mut spin) {
            let mut io = Ok(Io::WouldBlock);
            SPIN.until(|| {
                io = sys::read_nb(fd, &mut buf[got..]);
                !matches!(io, Ok(Io::WouldBlock))
            });
            io?
        } else {
            sys::read_nb(fd, &mut buf[got..])?
        };
        match io {
            Io::Done(n) => got += n,
            Io::Closed => {
                if got == 0 {
                    return Ok(false);
                }
                return Err(Error::Eof);
            }
            Io::WouldBlock => {
                watch.check()?;
                sys::poll_fd(fd, sys::Events::IN, sys::SLICE)?;
            }
        }
    }
    Ok(true)
}
