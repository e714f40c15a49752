//! [`Array`]: a fixed number of `T` in shared memory with their lock.

use super::Shareable;
use super::cells::{Cells, Entered};
use crate::RLock;
use crate::error::{Error, Result};
use std::marker::PhantomData;

/// A fixed-length array shared by processes, with a recursive lock: Python's
/// `multiprocessing.Array`.
///
/// Single elements are read and written with [`get`](Self::get) and [`set`](Self::set) (each takes
/// the lock; an index out of range is [`Error::IndexOutOfRange`], Python's `IndexError`); the whole
/// array with [`to_vec`](Self::to_vec), or through a [`lock`](Self::lock) guard, which derefs to
/// a slice (`guard[1..3]`, `guard.iter_mut()`, `guard.copy_from_slice(..)`).
///
/// ```
/// use multiprocessing::{Array, Process};
/// let a = Array::from_slice(&[0i32, 1, 2, 3, 4]).unwrap();
/// let child = a.clone();
/// let mut p = Process::new(move || {
///     for x in child.lock().unwrap().iter_mut() {
///         *x *= 10;
///     }
/// });
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(a.to_vec().unwrap(), [0, 10, 20, 30, 40]);
/// assert_eq!(&a.lock().unwrap()[1..3], &[10, 20]);
/// ```
pub struct Array<T> {
    cells: Cells<T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            cells: self.cells.clone(),
        }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cells.lock().try_acquire() {
            Ok(true) => {
                let _ = self.cells.lock().release();
                match self.to_vec() {
                    Ok(v) => write!(f, "<SynchronizedArray wrapper for {v:?}>"),
                    Err(_) => write!(f, "<SynchronizedArray wrapper (borrowed)>"),
                }
            }
            _ => write!(f, "<SynchronizedArray wrapper (locked)>"),
        }
    }
}

impl<T: Shareable + Default> Array<T> {
    /// `len` elements, each `T::default()` (zero for numbers, as Python's `Array('i', len)`).
    ///
    /// ```
    /// let a: multiprocessing::Array<f64> = multiprocessing::Array::new(3).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), [0.0, 0.0, 0.0]);
    /// ```
    pub fn new(len: usize) -> Result<Array<T>> {
        Ok(Array {
            cells: Cells::new(len, |_| T::default())?,
        })
    }
}

impl<T: Shareable> Array<T> {
    /// An array holding a copy of `values`.
    ///
    /// ```
    /// let a = multiprocessing::Array::from_slice(b"hello").unwrap();
    /// assert_eq!(a.len(), 5);
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>> {
        Ok(Array {
            cells: Cells::new(values.len(), |i| values[i])?,
        })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(multiprocessing::Array::<u8>::new(4).unwrap().len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True for an array of no elements.
    ///
    /// ```
    /// assert!(multiprocessing::Array::<u8>::new(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self, index: usize) -> Result<()> {
        if index < self.len() {
            Ok(())
        } else {
            Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            })
        }
    }

    /// The element at `index`, read under the lock.
    ///
    /// ```
    /// use multiprocessing::{Array, Error};
    /// let a = Array::from_slice(&[1u16, 2]).unwrap();
    /// assert_eq!(a.get(1).unwrap(), 2);
    /// assert!(matches!(a.get(2), Err(Error::IndexOutOfRange { index: 2, len: 2 })));
    /// ```
    pub fn get(&self, index: usize) -> Result<T> {
        self.check(index)?;
        self.cells.read(|s| s[index])
    }

    /// Writes the element at `index` under the lock.
    ///
    /// ```
    /// let a = multiprocessing::Array::<i64>::new(2).unwrap();
    /// a.set(0, -1).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), [-1, 0]);
    /// assert!(a.set(5, 1).is_err());
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.check(index)?;
        self.cells.write(|s| s[index] = value)
    }

    /// A copy of every element, read under the lock (Python's `a[:]`).
    ///
    /// ```
    /// let a = multiprocessing::Array::from_slice(&[true, false]).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), [true, false]);
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.cells.read(|s| s.to_vec())
    }

    /// Acquires the lock and returns a guard that derefs to the elements as a slice.
    /// [`Error::Borrowed`] if this thread already holds a guard of it.
    ///
    /// ```
    /// let a = multiprocessing::Array::<u32>::new(3).unwrap();
    /// {
    ///     let mut g = a.lock().unwrap();
    ///     g.copy_from_slice(&[3, 2, 1]);
    ///     g.sort();
    /// }
    /// assert_eq!(a.to_vec().unwrap(), [1, 2, 3]);
    /// ```
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        Ok(ArrayGuard {
            cells: &self.cells,
            _entered: self.cells.enter(true)?,
            _not_send: PhantomData,
        })
    }

    /// The array's recursive lock (Python's `get_lock()`).
    ///
    /// ```
    /// let a = multiprocessing::Array::<u8>::new(2).unwrap();
    /// let _held = a.get_lock().lock().unwrap();
    /// a.set(0, 1).unwrap(); // recursive: allowed while held
    /// ```
    pub fn get_lock(&self) -> &RLock {
        self.cells.lock()
    }
}

/// The elements of an [`Array`] as a slice, with its lock held until dropped.
///
/// ```
/// let a = multiprocessing::Array::from_slice(&[1, 2, 3]).unwrap();
/// let g = a.lock().unwrap();
/// assert_eq!(g.iter().sum::<i32>(), 6);
/// assert!(!g.owner_died());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Shareable> {
    cells: &'a Cells<T>,
    _entered: Entered<'a, T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Shareable> ArrayGuard<'_, T> {
    /// True if the lock was taken over from a process that died holding it (the elements may be
    /// half-updated).
    ///
    /// ```
    /// let a = multiprocessing::Array::<u8>::new(1).unwrap();
    /// assert!(!a.lock().unwrap().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.cells.owner_died()
    }
}

impl<T: Shareable> std::ops::Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the lock is held for the guard's life and the flag bars other accesses of
        // this thread.
        unsafe { self.cells.slice(&self._entered) }
    }
}

impl<T: Shareable> std::ops::DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the reference unique.
        unsafe { self.cells.slice_mut(&self._entered) }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}
