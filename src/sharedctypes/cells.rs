//! The storage under [`Value`](crate::Value) and [`Array`](crate::Array): a recursive lock, a
//! "borrowed by a guard" flag and `len` values of `T`, in one shared mapping.

use super::Shareable;
use crate::RLock;
use crate::error::{Error, Result};
use crate::sync::mutex::MutexCore;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Where the flag lives: right after the lock.
const FLAG_OFFSET: usize = std::mem::size_of::<MutexCore>();

pub(crate) struct Cells<T> {
    lock: RLock,
    data: NonNull<T>,
    len: usize,
    _t: PhantomData<T>,
}

// SAFETY: the values are plain data (`Shareable`) reached only under the lock.
unsafe impl<T: Shareable> Send for Cells<T> {}
// SAFETY: as above.
unsafe impl<T: Shareable> Sync for Cells<T> {}

impl<T> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Cells {
            lock: self.lock.clone(),
            data: self.data,
            len: self.len,
            _t: PhantomData,
        }
    }
}

/// Releases the lock when dropped (also on a panic), clearing the guard flag first if asked.
pub(crate) struct Entered<'a, T: Shareable> {
    cells: &'a Cells<T>,
    guard: bool,
}

impl<T: Shareable> Drop for Entered<'_, T> {
    fn drop(&mut self) {
        if self.guard {
            self.cells.flag().store(false, Relaxed);
        }
        let _ = self.cells.lock.release();
    }
}

impl<T: Shareable> Cells<T> {
    /// `len` values, the `i`-th initialized to `init(i)`.
    pub(crate) fn new(len: usize, mut init: impl FnMut(usize) -> T) -> Result<Cells<T>> {
        let data_offset = (FLAG_OFFSET + 1).next_multiple_of(std::mem::align_of::<T>().max(16));
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|b| b.checked_add(data_offset))
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("{len} values do not fit in memory")))?;
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let lock = RLock::with_room(bytes)?;
        let data = NonNull::new(lock.core.byte_ptr(data_offset).cast::<T>())
            .ok_or_else(|| Error::Broken("null shared mapping".into()))?;
        for i in 0..len {
            // SAFETY: inside the fresh mapping, aligned (page-aligned start, aligned offset).
            unsafe { data.as_ptr().add(i).write(init(i)) };
        }
        Ok(Cells {
            lock,
            data,
            len,
            _t: PhantomData,
        })
    }

    pub(crate) fn lock(&self) -> &RLock {
        &self.lock
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn flag(&self) -> &AtomicBool {
        // SAFETY: the flag's byte follows the lock inside the mapping (see `new`), zero-initialized.
        unsafe { &*self.lock.core.byte_ptr(FLAG_OFFSET).cast::<AtomicBool>() }
    }

    /// Acquires the lock for an access (`guard`: for a guard that hands out references).
    /// [`Error::Borrowed`] if this thread holds a guard already.
    pub(crate) fn enter(&self, guard: bool) -> Result<Entered<'_, T>> {
        self.lock.acquire()?;
        if self.lock.core.depth() == 1 {
            // A fresh holding (perhaps taken over from a dead holder): no guard of ours exists.
            self.flag().store(false, Relaxed);
        } else if self.flag().load(Relaxed) {
            let _ = self.lock.release();
            return Err(Error::Borrowed);
        }
        if guard {
            self.flag().store(true, Relaxed);
        }
        Ok(Entered { cells: self, guard })
    }

    /// True while the current holding was taken over from a holder that died.
    pub(crate) fn owner_died(&self) -> bool {
        self.lock.core.owner_died()
    }

    /// The values, for the holder of an [`Entered`].
    ///
    /// # Safety
    /// The caller holds the lock through `entered`, and no other reference to the values exists.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, _entered: &Entered<'_, T>) -> &mut [T] {
        // SAFETY: `len` initialized values; exclusive while the lock is held (caller).
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }

    /// The values, shared, for the holder of an [`Entered`].
    ///
    /// # Safety
    /// The caller holds the lock through `entered`, and no `&mut` to the values exists.
    pub(crate) unsafe fn slice(&self, _entered: &Entered<'_, T>) -> &[T] {
        // SAFETY: `len` initialized values; nobody writes them while the lock is held (caller).
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }

    /// Copies the values out, under the lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        let entered = self.enter(false)?;
        // SAFETY: the lock is held and no guard of ours exists (checked by `enter`).
        Ok(f(unsafe { self.slice(&entered) }))
    }

    /// Changes the values, under the lock.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R> {
        let entered = self.enter(false)?;
        // SAFETY: as in `read`.
        Ok(f(unsafe { self.slice_mut(&entered) }))
    }
}
