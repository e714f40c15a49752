//! [`SharedMemory`]: named POSIX shared memory (Python's `multiprocessing.shared_memory`).
//!
//! Not to be confused with `sharedctypes` ([`Value`](crate::Value) and [`Array`](crate::Array),
//! Python's `multiprocessing.sharedctypes`) nor with `sys::mapping` (the library's own anonymous
//! memfd mappings, which also maps these segments). The only `unsafe` here is the public
//! `buf`/`buf_mut`, whose promise the caller makes.

#![deny(unsafe_code)]

use crate::error::{Error, Result};
use crate::sys::{self, mapping::Mapping};
use std::ffi::CString;
use std::sync::Arc;

/// Attempts at a fresh generated name before giving up.
const NAME_ATTEMPTS: usize = 100;

/// A segment mapped in this process, and its name.
struct Segment {
    name: String,
    map: Mapping,
}

/// A block of named shared memory: Python's `multiprocessing.shared_memory.SharedMemory`.
///
/// [`create`](Self::create) makes a zero-filled segment (with a generated name `psm_…`, or
/// [`create_named`](Self::create_named)); any process, forked or not (even another program, such
/// as Python's `SharedMemory(name=...)`), reaches it by name with [`attach`](Self::attach). The
/// segment exists until [`unlink`](Self::unlink)ed (like a file in `/dev/shm`), even after every
/// process has closed it; [`close`](Self::close) (or dropping the last clone) only unmaps it from
/// this process.
///
/// Access: [`read`](Self::read), [`write`](Self::write) and [`to_vec`](Self::to_vec) copy bytes
/// and are safe. [`buf`](Self::buf) and [`buf_mut`](Self::buf_mut) give the memory as a slice,
/// which is `unsafe`: other processes can change the bytes at any moment, which Rust's references
/// forbid; use them only while the other processes are known not to write (coordinate with a
/// [`Lock`](crate::Lock), an [`Event`](crate::Event) or a [`Barrier`](crate::Barrier)).
///
/// ```
/// use multiprocessing::{Process, SharedMemory};
/// let shm = SharedMemory::create(10).unwrap();
/// assert!(shm.name().starts_with("psm_"));
/// assert_eq!(shm.to_vec(), [0; 10]);
/// let name = shm.name().to_string();
/// let mut p = Process::new(move || {
///     let other = SharedMemory::attach(&name).unwrap();
///     other.write(0, b"HELLO").unwrap();
/// });
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(&shm.to_vec()[..5], b"HELLO");
/// shm.unlink().unwrap();
/// shm.close();
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    map: Arc<Segment>,
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedMemory({:?}, size={})", self.name(), self.size())
    }
}

/// The name as given (a leading `/` is dropped, as Python reports it) and as `shm_open` takes it.
fn names(name: &str) -> Result<(String, CString)> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > 250 || bare.contains(['/', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "invalid shared memory name {name:?}: 1 to 250 characters, no '/' (but a leading one)"
        )));
    }
    let c = CString::new(format!("/{bare}"))
        .map_err(|_| Error::InvalidArgument(format!("invalid shared memory name {name:?}")))?;
    Ok((bare.to_string(), c))
}

fn open_error(name: &str, call: &'static str, e: sys::Errno) -> Error {
    match e {
        sys::Errno::EEXIST => Error::Exists { name: name.into() },
        sys::Errno::ENOENT => Error::NotFound { name: name.into() },
        e => e.error(call),
    }
}

/// A name Python would generate: `psm_` and 8 random hex digits.
fn random_name() -> Result<String> {
    let mut bytes = [0u8; 4];
    sys::fill_random(&mut bytes)?;
    Ok(format!("psm_{:08x}", u32::from_be_bytes(bytes)))
}

/// Maps `size` bytes of the open segment `fd` (the descriptor is closed when this returns: the
/// mapping keeps the segment).
fn map(fd: std::os::fd::OwnedFd, name: String, size: usize) -> Result<SharedMemory> {
    let map = Mapping::of_file(&fd, size)?;
    Ok(SharedMemory {
        map: Arc::new(Segment { name, map }),
    })
}

impl SharedMemory {
    /// Creates a segment of `size` bytes (zero-filled) with a generated name (`psm_` and 8 hex
    /// digits, as in Python). `size` must not be 0.
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(16).unwrap();
    /// assert_eq!(shm.size(), 16);
    /// shm.unlink().unwrap();
    /// ```
    pub fn create(size: usize) -> Result<SharedMemory> {
        for _ in 0..NAME_ATTEMPTS {
            match Self::create_named(&random_name()?, size) {
                Err(Error::Exists { .. }) => continue,
                other => return other,
            }
        }
        Err(Error::Broken(
            "could not find a free shared memory name".into(),
        ))
    }

    /// Creates a segment of `size` bytes named `name` ([`Error::Exists`] if the name is taken:
    /// Python's `FileExistsError`). `size` must not be 0.
    ///
    /// ```
    /// use multiprocessing::{Error, SharedMemory};
    /// let name = format!("doc-create-{}", std::process::id());
    /// let shm = SharedMemory::create_named(&name, 4).unwrap();
    /// assert_eq!(shm.name(), name);
    /// assert!(matches!(SharedMemory::create_named(&name, 4), Err(Error::Exists { .. })));
    /// shm.unlink().unwrap();
    /// ```
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory> {
        if size == 0 {
            return Err(Error::InvalidArgument(
                "'size' must be a positive number different from zero".into(),
            ));
        }
        let (bare, cname) = names(name)?;
        let len = libc::off_t::try_from(size)
            .map_err(|_| Error::InvalidArgument(format!("size {size} is too large")))?;
        // O_EXCL makes this the creator.
        let fd = sys::fd::shm_open(cname.as_c_str(), true)
            .map_err(|e| open_error(&bare, "shm_open", e))?;
        let result = match sys::fd::ftruncate(&fd, len) {
            Ok(()) => map(fd, bare, size),
            Err(e) => Err(e.error("ftruncate")),
        };
        if result.is_err() {
            // Removes the segment we just created (nothing else can know it yet).
            let _ = sys::fd::shm_unlink(cname.as_c_str());
        }
        result
    }

    /// Attaches to the existing segment `name` ([`Error::NotFound`] if there is none: Python's
    /// `FileNotFoundError`). Its size is the segment's.
    ///
    /// ```
    /// use multiprocessing::{Error, SharedMemory};
    /// let shm = SharedMemory::create(8).unwrap();
    /// let again = SharedMemory::attach(shm.name()).unwrap();
    /// again.write(0, &[7]).unwrap();
    /// assert_eq!(shm.to_vec()[0], 7);
    /// shm.unlink().unwrap();
    /// assert!(matches!(SharedMemory::attach(shm.name()), Err(Error::NotFound { .. })));
    /// ```
    pub fn attach(name: &str) -> Result<SharedMemory> {
        let (bare, cname) = names(name)?;
        let fd = sys::fd::shm_open(cname.as_c_str(), false)
            .map_err(|e| open_error(&bare, "shm_open", e))?;
        let size = sys::fd::file_size(&fd).map_err(|e| e.error("fstat"))?;
        let size = usize::try_from(size).unwrap_or(0);
        if size == 0 {
            return Err(Error::InvalidArgument(format!(
                "shared memory {bare:?} is empty"
            )));
        }
        map(fd, bare, size)
    }

    /// The segment's name (without the leading `/`), to pass to other processes.
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(1).unwrap();
    /// assert_eq!(shm.name().len(), 12); // psm_ and 8 hex digits
    /// shm.unlink().unwrap();
    /// ```
    pub fn name(&self) -> &str {
        &self.map.name
    }

    /// The size in bytes.
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(100).unwrap();
    /// assert_eq!(shm.size(), 100);
    /// shm.unlink().unwrap();
    /// ```
    pub fn size(&self) -> usize {
        self.map.map.len()
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(Error::InvalidArgument(format!(
                "bytes {offset}..{} are outside the {} bytes of {:?}",
                offset.saturating_add(len),
                self.size(),
                self.name()
            ))),
        }
    }

    /// Copies `dst.len()` bytes from `offset` into `dst`.
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(4).unwrap();
    /// let mut two = [9u8; 2];
    /// shm.read(2, &mut two).unwrap();
    /// assert_eq!(two, [0, 0]);
    /// assert!(shm.read(3, &mut two).is_err()); // past the end
    /// shm.unlink().unwrap();
    /// ```
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.check(offset, dst.len())?;
        self.map.map.copy_out(offset, dst);
        Ok(())
    }

    /// Copies `src` into the segment at `offset`.
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(4).unwrap();
    /// shm.write(1, b"ab").unwrap();
    /// assert_eq!(shm.to_vec(), b"\0ab\0");
    /// shm.unlink().unwrap();
    /// ```
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<()> {
        self.check(offset, src.len())?;
        self.map.map.copy_in(offset, src);
        Ok(())
    }

    /// A copy of the whole segment.
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(3).unwrap();
    /// assert_eq!(shm.to_vec(), [0, 0, 0]);
    /// shm.unlink().unwrap();
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.size()];
        self.map.map.copy_out(0, &mut v);
        v
    }

    /// The start of the mapping in this process (valid while this handle or a clone lives).
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(8).unwrap();
    /// assert!(!shm.as_ptr().is_null());
    /// shm.unlink().unwrap();
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.map.ptr()
    }

    /// The memory as a byte slice (Python's `shm.buf`).
    ///
    /// # Safety
    ///
    /// While the slice is in use, no process (this one through another handle or mapping, or any
    /// other) may write the segment: Rust assumes that the bytes behind a shared reference do not
    /// change. Coordinate the writers with a lock, an event or a barrier, or use
    /// [`read`](Self::read).
    ///
    /// ```
    /// let shm = multiprocessing::SharedMemory::create(4).unwrap();
    /// shm.write(0, b"abcd").unwrap();
    /// // SAFETY: nobody else knows the segment.
    /// assert_eq!(unsafe { shm.buf() }, b"abcd");
    /// shm.unlink().unwrap();
    /// ```
    #[allow(unsafe_code)] // the public `unsafe fn`: the caller's promise is the one `bytes` needs
    pub unsafe fn buf(&self) -> &[u8] {
        // SAFETY: stability while the slice lives is the caller's promise, as `bytes` requires.
        unsafe { self.map.map.bytes() }
    }

    /// The memory as a mutable byte slice (Python's `shm.buf[...] = ...`).
    ///
    /// # Safety
    ///
    /// While the slice is in use, nothing else may read or write the segment (no other process,
    /// no other handle or clone in this one): Rust assumes a mutable reference is the only access.
    /// Coordinate with a lock, an event or a barrier, or use [`write`](Self::write).
    ///
    /// ```
    /// let mut shm = multiprocessing::SharedMemory::create(4).unwrap();
    /// // SAFETY: nobody else knows the segment.
    /// unsafe { shm.buf_mut()[..2].copy_from_slice(b"hi") };
    /// assert_eq!(&shm.to_vec()[..2], b"hi");
    /// shm.unlink().unwrap();
    /// ```
    #[allow(unsafe_code)] // as for `buf`
    pub unsafe fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: exclusivity while the slice lives is the caller's promise, as `bytes_mut`
        // requires.
        unsafe { self.map.map.bytes_mut() }
    }

    /// Unmaps the segment from this process once no clone of this handle remains (dropping does
    /// the same). The segment itself stays until [`unlink`](Self::unlink).
    ///
    /// ```
    /// use multiprocessing::SharedMemory;
    /// let shm = SharedMemory::create(4).unwrap();
    /// let name = shm.name().to_string();
    /// shm.close();
    /// let again = SharedMemory::attach(&name).unwrap(); // still there
    /// again.unlink().unwrap();
    /// ```
    pub fn close(self) {}

    /// Removes the segment's name: no process can attach any more; the memory is freed once
    /// every process has unmapped it. [`Error::NotFound`] if it was already removed.
    ///
    /// ```
    /// use multiprocessing::{Error, SharedMemory};
    /// let shm = SharedMemory::create(4).unwrap();
    /// shm.unlink().unwrap();
    /// shm.write(0, b"ok").unwrap(); // the mapping still works here
    /// assert!(matches!(shm.unlink(), Err(Error::NotFound { .. })));
    /// ```
    pub fn unlink(&self) -> Result<()> {
        let (bare, cname) = names(self.name())?;
        sys::fd::shm_unlink(cname.as_c_str()).map_err(|e| open_error(&bare, "shm_unlink", e))
    }
}
