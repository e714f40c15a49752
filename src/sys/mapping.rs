//! Memory mappings and the pointer code on them: the library's own shared memory.
//!
//! Not to be confused with the two public shared-memory modules above it: `shared_memory`
//! ([`SharedMemory`](crate::SharedMemory), Python's named POSIX segments, which maps its
//! segments with [`Mapping::of_file`]) and `sharedctypes` ([`Value`](crate::Value) and
//! [`Array`](crate::Array), which live in a [`Shm`]). Here: [`MemFile`] (a sparse memfd, the
//! ring of a queue), [`Mapping`] (a mapped part of a file), [`Region`] (an anonymous shared
//! mapping) and [`Shm`] (a `T` at the start of a region: the state of every lock, event and
//! value). Processes forked after a mapping was made share it.

use super::errno::Errno;
use super::fd;
use crate::error::{Error, Result};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

/// The errors of the calls below, as the library's.
fn os(call: &'static str, e: Errno) -> Error {
    e.error(call)
}

/// An anonymous shared mapping (a sparse memfd), zero-filled.
pub(crate) struct Region {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the region is plain shared memory; all access goes through atomics or is guarded by locks.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes (rounded to pages), zero-filled.
    pub(crate) fn new(len: usize) -> Result<Region> {
        let file = MemFile::new(len as u64)?;
        let mapping = file.map(0, len)?;
        // The mapping keeps the memfd alive once its descriptor is closed (`file` dropped here).
        let (ptr, len) = mapping.into_raw();
        Ok(Region { ptr, len })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the whole of a mapping this region owns.
        drop(unsafe { Mapping::from_raw(self.ptr, self.len) });
    }
}

/// A sparse memfd whose descriptor stays open, so that any part of it can be mapped when needed,
/// by this process or by a child forked later (which inherits the descriptor; it is closed on
/// exec). Pages cost memory only once written, and [`MemFile::punch`] gives them back; mapping
/// only the parts in use keeps the address space small whatever the file's size.
pub(crate) struct MemFile {
    fd: OwnedFd,
}

impl MemFile {
    /// A zero-filled file of `len` bytes (no memory is used until pages are written).
    pub(crate) fn new(len: u64) -> Result<MemFile> {
        let fd = fd::memfd(c"multiprocessing").map_err(|e| os("memfd_create", e))?;
        let len = libc::off_t::try_from(len)
            .map_err(|_| Error::InvalidArgument(format!("a shared file of {len} bytes")))?;
        fd::ftruncate(&fd, len).map_err(|e| os("ftruncate", e))?;
        Ok(MemFile { fd })
    }

    /// Maps the `len` bytes at `offset` (any offset: the mapping is widened to whole pages),
    /// shared and read-write; NORESERVE, because the file is sparse.
    pub(crate) fn map(&self, offset: u64, len: usize) -> Result<Mapping> {
        Mapping::map(&self.fd, offset, len, libc::MAP_NORESERVE)
    }

    /// Frees the pages wholly inside `[offset, offset+len)` (they read back as zeros), whether
    /// or not they are mapped anywhere.
    pub(crate) fn punch(&self, offset: u64, len: u64) {
        // Best effort: a hole that cannot be punched only keeps memory in use.
        let _ = fd::punch_hole(&self.fd, offset, len);
    }
}

/// The system's page size.
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// A mapping of part of a file (a [`MemFile`], a named segment, or all of a [`Region`]),
/// unmapped when dropped.
pub(crate) struct Mapping {
    base: *mut u8,
    total: usize,
    inner: usize,
    len: usize,
}

// SAFETY: plain shared memory; its users synchronize their accesses.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the `len` bytes of `fd` at `offset`, widened to whole pages, shared and read-write.
    fn map(fd: impl AsFd, offset: u64, len: usize, extra: libc::c_int) -> Result<Mapping> {
        let page = page_size();
        let start = offset - offset % page;
        let inner = (offset - start) as usize;
        let total = (inner + len.max(1)).next_multiple_of(page as usize);
        let start = libc::off_t::try_from(start)
            .map_err(|_| Error::InvalidArgument(format!("a mapping at offset {offset}")))?;
        // SAFETY: a new mapping at an address the kernel chooses (no existing memory is
        // replaced) of a file we hold open; it stays valid after the descriptor is closed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | extra,
                fd.as_fd().as_raw_fd(),
                start,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(os("mmap", Errno::last()));
        }
        Ok(Mapping {
            base: ptr.cast(),
            total,
            inner,
            len,
        })
    }

    /// Maps the first `len` bytes of an open file (a named segment), shared and read-write.
    pub(crate) fn of_file(fd: impl AsFd, len: usize) -> Result<Mapping> {
        Mapping::map(fd, 0, len, 0)
    }

    /// The address of the offset asked for when mapping.
    pub(crate) fn ptr(&self) -> *mut u8 {
        // SAFETY: `inner` is inside the mapping.
        unsafe { self.base.add(self.inner) }
    }

    /// The length asked for when mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True if `len` bytes at `offset` lie inside the length asked for.
    fn holds(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// Copies `dst.len()` bytes at `offset` into `dst`; `false` (nothing copied) if the range is
    /// outside the mapping. A raw copy: no reference to the shared bytes is made, so other
    /// processes may write them at the same time (the copy may then mix old and new bytes).
    pub(crate) fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        if !self.holds(offset, dst.len()) {
            return false;
        }
        // SAFETY: the range is inside the mapping (checked), which lives as long as `self`; a
        // raw copy into a buffer that cannot overlap a shared mapping we own.
        unsafe { std::ptr::copy(self.ptr().add(offset), dst.as_mut_ptr(), dst.len()) };
        true
    }

    /// Copies `src` to `offset`; `false` (nothing copied) if the range is outside the mapping.
    pub(crate) fn copy_in(&self, offset: usize, src: &[u8]) -> bool {
        if !self.holds(offset, src.len()) {
            return false;
        }
        // SAFETY: as in `copy_out`, the other way; the mapping is writable.
        unsafe { std::ptr::copy(src.as_ptr(), self.ptr().add(offset), src.len()) };
        true
    }

    /// The mapped bytes as a slice.
    ///
    /// # Safety
    /// While the slice lives, nothing (no process, no other handle) may write the bytes.
    pub(crate) unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes from `ptr()` are mapped while `self` lives; stability is the
        // caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }

    /// The mapped bytes as a mutable slice.
    ///
    /// # Safety
    /// While the slice lives, nothing else (no process, no other handle) may read or write them.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn bytes_mut(&self) -> &mut [u8] {
        // SAFETY: as in `bytes`; exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }

    /// Gives up ownership: the pointer and length of the whole mapping, for
    /// [`from_raw`](Self::from_raw). Only for mappings asked for at a page-aligned offset.
    pub(crate) fn into_raw(self) -> (*mut u8, usize) {
        debug_assert_eq!(self.inner, 0);
        let parts = (self.base, self.total);
        std::mem::forget(self);
        parts
    }

    /// Takes back a mapping given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `base` and `total` must come from `into_raw`, and be taken back only once.
    pub(crate) unsafe fn from_raw(base: *mut u8, total: usize) -> Mapping {
        Mapping {
            base,
            total,
            inner: 0,
            len: total,
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let Some(base) = NonNull::new(self.base) else {
            return;
        };
        // SAFETY: unmapping our own mapping, which nothing in this process uses any more (the
        // borrows of it end with `self`); other processes keep theirs.
        let _ = unsafe { libc::munmap(base.as_ptr().cast(), self.total) };
    }
}

/// A `T` in a shared [`Region`] of its own (possibly followed by more data); clones share the
/// mapping, which lives as long as the last clone in this process.
pub(crate) struct Shm<T> {
    region: Arc<Region>,
    ptr: NonNull<T>,
}

// SAFETY: the `T` is shared memory reached only through `&T`; it is as thread-safe as `T` is.
unsafe impl<T: Sync> Send for Shm<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Shm<T> {}

impl<T> Clone for Shm<T> {
    fn clone(&self) -> Self {
        Shm {
            region: self.region.clone(),
            ptr: self.ptr,
        }
    }
}

impl<T> Shm<T> {
    /// Maps `len` zeroed bytes (at least a `T`) with a `T` at the start.
    ///
    /// # Safety
    /// All-zero bytes must be a valid `T` (atomics, integers; a pthread mutex must still be
    /// initialized before it is shared).
    pub(crate) unsafe fn zeroed(len: usize) -> Result<Shm<T>> {
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let region = Region::new(len.max(std::mem::size_of::<T>()).max(1))?;
        let ptr = NonNull::new(region.ptr().cast::<T>())
            .ok_or_else(|| Error::Broken("mmap returned a null mapping".into()))?;
        Ok(Shm {
            region: Arc::new(region),
            ptr,
        })
    }

    /// The address `offset` bytes from the start of the `T` (inside the same mapping).
    pub(crate) fn byte_ptr(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.region.len);
        // SAFETY: the offset stays inside the mapping (checked by the callers' layouts).
        unsafe { self.ptr.as_ptr().cast::<u8>().add(offset) }
    }
}

impl<T> std::ops::Deref for Shm<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mapping lives as long as `self`; `T` is valid (see `zeroed`).
        unsafe { self.ptr.as_ref() }
    }
}
