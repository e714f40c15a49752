//! Memory shared by every process forked after it was created, and the locks that live in it.

use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::{self, Deadline};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed, Ordering::SeqCst, fence};
use std::time::Duration;

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
    fd: std::os::fd::OwnedFd,
}

impl MemFile {
    /// A zero-filled file of `len` bytes (no memory is used until pages are written).
    pub(crate) fn new(len: u64) -> Result<MemFile> {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"multiprocessing".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os("memfd_create"));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let file = MemFile {
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
        };
        // SAFETY: fd is a valid memfd.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
            return Err(Error::last_os("ftruncate"));
        }
        Ok(file)
    }

    fn raw(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    /// Maps the `len` bytes at `offset` (any offset: the mapping is widened to whole pages),
    /// shared and read-write.
    pub(crate) fn map(&self, offset: u64, len: usize) -> Result<Mapping> {
        let page = page_size();
        let start = offset - offset % page;
        let inner = (offset - start) as usize;
        let total = (inner + len.max(1)).next_multiple_of(page as usize);
        // SAFETY: mapping a file we own; NORESERVE because the file is sparse.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                self.raw(),
                start as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::last_os("mmap"));
        }
        Ok(Mapping {
            base: ptr.cast(),
            total,
            inner,
        })
    }

    /// Frees the pages wholly inside `[offset, offset+len)` (they read back as zeros), whether
    /// or not they are mapped anywhere.
    pub(crate) fn punch(&self, offset: u64, len: u64) {
        // SAFETY: a hole punched in our own file; FALLOC_FL_KEEP_SIZE keeps its size.
        unsafe {
            libc::fallocate(
                self.raw(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                len as libc::off_t,
            );
        }
    }
}

/// The system's page size.
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// A mapping of part of a [`MemFile`] (or of all of a [`Region`]), unmapped when dropped.
pub(crate) struct Mapping {
    base: *mut u8,
    total: usize,
    inner: usize,
}

// SAFETY: plain shared memory; its users synchronize their accesses.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The address of the offset asked for in [`MemFile::map`].
    pub(crate) fn ptr(&self) -> *mut u8 {
        // SAFETY: `inner` is inside the mapping.
        unsafe { self.base.add(self.inner) }
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
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; other processes keep theirs.
        unsafe {
            libc::munmap(self.base.cast(), self.total);
        }
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

/// A process-shared, robust mutex living in a [`Region`]. If its owner dies, the next
/// locker takes it over (the data it guards must stay consistent at every instant).
#[repr(C)]
pub(crate) struct RawLock(libc::pthread_mutex_t);

impl RawLock {
    /// Initializes the lock in place.
    ///
    /// # Safety
    /// `this` must point to zeroed shared memory that no other process uses yet.
    pub(crate) unsafe fn init(this: *mut RawLock) -> Result<()> {
        // SAFETY: attr is initialized before use and destroyed after.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            let r = libc::pthread_mutex_init(&mut (*this).0, &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            if r != 0 {
                return Err(Error::os("pthread_mutex_init", r));
            }
        }
        Ok(())
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        (&self.0 as *const libc::pthread_mutex_t).cast_mut()
    }

    fn handle(&self, r: libc::c_int) -> Result<bool> {
        match r {
            0 => Ok(true),
            libc::EOWNERDEAD => {
                // SAFETY: we hold the lock; mark it usable again.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                Ok(true)
            }
            libc::EBUSY | libc::ETIMEDOUT => Ok(false),
            e => Err(Error::os("pthread_mutex_lock", e)),
        }
    }

    /// Locks, waiting until `deadline` (`Ok(false)` if it passed) or an interrupt.
    pub(crate) fn lock(&self, deadline: Deadline, watch: &Watch) -> Result<bool> {
        // SAFETY: the mutex was initialized by `init`.
        if self.handle(unsafe { libc::pthread_mutex_trylock(self.raw()) })? {
            return Ok(true);
        }
        loop {
            watch.check()?;
            let Some(slice) = deadline.slice() else {
                return Ok(false);
            };
            let mut now: libc::timespec = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid out pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
            let nsec = now.tv_nsec + slice.subsec_nanos() as libc::c_long;
            let abs = libc::timespec {
                tv_sec: now.tv_sec + slice.as_secs() as libc::time_t + nsec / 1_000_000_000,
                tv_nsec: nsec % 1_000_000_000,
            };
            // SAFETY: initialized mutex, valid timespec.
            if self.handle(unsafe { libc::pthread_mutex_timedlock(self.raw(), &abs) })? {
                return Ok(true);
            }
        }
    }

    /// Unlocks (the caller holds the lock).
    pub(crate) fn unlock(&self) {
        // SAFETY: called only by the holder.
        unsafe {
            libc::pthread_mutex_unlock(self.raw());
        }
    }

    /// Locks like [`lock`](Self::lock); the guard unlocks when dropped (also on panic).
    pub(crate) fn guard(&self, deadline: Deadline, watch: &Watch) -> Result<Option<LockGuard<'_>>> {
        Ok(if self.lock(deadline, watch)? {
            Some(LockGuard(self))
        } else {
            None
        })
    }
}

/// Holds a [`RawLock`] until dropped.
pub(crate) struct LockGuard<'a>(&'a RawLock);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// A condition in shared memory: waiters sleep on a sequence number that notifiers bump.
#[repr(C)]
pub(crate) struct Signal {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl Signal {
    /// Waits until `ready()` is true, the deadline passes (`Ok(false)`) or an interrupt arrives.
    /// Spins for `spin` first: cheap when the other side is running on another core.
    pub(crate) fn wait_until(
        &self,
        mut ready: impl FnMut() -> bool,
        deadline: Deadline,
        watch: &Watch,
        spin: Duration,
    ) -> Result<bool> {
        if ready() {
            return Ok(true);
        }
        if !spin.is_zero() {
            let start = std::time::Instant::now();
            let mut i = 0u32;
            while start.elapsed() < spin {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
                if ready() {
                    return Ok(true);
                }
                i += 1;
                if i.is_multiple_of(16) {
                    std::thread::yield_now();
                }
            }
        }
        loop {
            watch.check()?;
            let Some(slice) = deadline.slice() else {
                return Ok(ready());
            };
            let seq = self.seq.load(SeqCst);
            self.waiters.fetch_add(1, SeqCst);
            fence(SeqCst);
            if ready() {
                self.waiters.fetch_sub(1, SeqCst);
                return Ok(true);
            }
            sys::futex_wait(&self.seq, seq, slice);
            self.waiters.fetch_sub(1, SeqCst);
            if ready() {
                return Ok(true);
            }
        }
    }

    /// Wakes the waiters after a change their condition depends on.
    pub(crate) fn notify_all(&self) {
        // Pairs with the waiter's increment-fence-check: either it sees the change, or we see it.
        fence(SeqCst);
        if self.waiters.load(Relaxed) > 0 {
            self.seq.fetch_add(1, SeqCst);
            sys::futex_wake(&self.seq, i32::MAX);
        }
    }
}
