//! Memory shared by every process forked after it was created, and the locks that live in it.

use crate::error::{Error, Result};
use crate::interrupt::Watch;
use crate::sys::{self, Deadline};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed, Ordering::SeqCst, fence};
use std::time::Duration;

/// An anonymous shared mapping (a sparse memfd): pages cost memory only once written, and
/// [`Region::release`] gives them back.
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
        // SAFETY: memfd_create with a static name; the fd is closed below once mapped.
        let fd = unsafe { libc::memfd_create(c"multiprocessing".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os("memfd_create"));
        }
        let close = |e: Error| {
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
            e
        };
        // SAFETY: fd is a valid memfd.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
            return Err(close(Error::last_os("ftruncate")));
        }
        // SAFETY: mapping a file we own; NORESERVE because the region is sparse.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(close(Error::last_os("mmap")));
        }
        // SAFETY: the mapping keeps the memfd alive.
        unsafe { libc::close(fd) };
        Ok(Region {
            ptr: ptr.cast(),
            len,
        })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Frees the pages of `[offset, offset+len)` (they read back as zeros).
    pub(crate) fn release(&self, offset: usize, len: usize) {
        debug_assert!(offset + len <= self.len);
        // SAFETY: the range lies inside our mapping; MADV_REMOVE punches a hole in the memfd.
        unsafe {
            libc::madvise(self.ptr.add(offset).cast(), len, libc::MADV_REMOVE);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; other processes keep theirs.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
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
