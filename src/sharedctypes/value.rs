//! [`Value`]: one `T` in shared memory with its lock.

use super::Shareable;
use super::cells::{Cells, Entered};
use crate::RLock;
use crate::error::Result;
use std::marker::PhantomData;

/// One value shared by processes, with a recursive lock: Python's `multiprocessing.Value`.
///
/// [`get`](Self::get) and [`set`](Self::set) take the lock for the access, like Python's
/// `v.value`. A read-modify-write (`v.value += 1`) needs the lock across both steps (in Python
/// too): hold a [`lock`](Self::lock) guard, which gives the value itself (`*guard += 1`), or hold
/// [`get_lock`](Self::get_lock) around `get` and `set` (the lock is recursive, as in Python).
///
/// `T` is plain data ([`Shareable`]): numbers, `bool`, `char`, arrays and tuples of them, or your
/// own `Copy` struct.
///
/// ```
/// use multiprocessing::{Process, Value};
/// let counter = Value::new(0i64).unwrap();
/// let mut children = Vec::new();
/// for _ in 0..4 {
///     let c = counter.clone();
///     let mut p = Process::new(move || {
///         for _ in 0..1000 {
///             *c.lock().unwrap() += 1;
///         }
///     });
///     p.start().unwrap();
///     children.push(p);
/// }
/// for mut p in children {
///     p.join().unwrap();
/// }
/// assert_eq!(counter.get().unwrap(), 4000);
/// ```
pub struct Value<T> {
    cells: Cells<T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            cells: self.cells.clone(),
        }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cells.lock().try_acquire() {
            Ok(true) => {
                let _ = self.cells.lock().release();
                match self.get() {
                    Ok(v) => write!(f, "<Synchronized wrapper for {v:?}>"),
                    Err(_) => write!(f, "<Synchronized wrapper (borrowed)>"),
                }
            }
            _ => write!(f, "<Synchronized wrapper (locked)>"),
        }
    }
}

impl<T: Shareable> Value<T> {
    /// A shared value, initially `value`.
    ///
    /// ```
    /// let v = multiprocessing::Value::new(1.5f64).unwrap();
    /// assert_eq!(v.get().unwrap(), 1.5);
    /// ```
    pub fn new(value: T) -> Result<Value<T>> {
        Ok(Value {
            cells: Cells::new(1, |_| value)?,
        })
    }

    /// Reads the value under the lock. [`Error::Borrowed`](crate::Error::Borrowed) if this
    /// thread holds a [`lock`](Self::lock) guard (read through the guard instead).
    ///
    /// ```
    /// let v = multiprocessing::Value::new(7u8).unwrap();
    /// assert_eq!(v.get().unwrap(), 7);
    /// ```
    pub fn get(&self) -> Result<T> {
        self.cells.read(|s| s[0])
    }

    /// Writes the value under the lock (same error as [`get`](Self::get)).
    ///
    /// ```
    /// let v = multiprocessing::Value::new(0i32).unwrap();
    /// v.set(-4).unwrap();
    /// assert_eq!(v.get().unwrap(), -4);
    /// ```
    pub fn set(&self, value: T) -> Result<()> {
        self.cells.write(|s| s[0] = value)
    }

    /// Acquires the lock and returns a guard that derefs to the value: a read-modify-write is
    /// then one step (`*guard += 1`). The lock is released when the guard is dropped.
    /// [`Error::Borrowed`](crate::Error::Borrowed) if this thread already holds a guard of it.
    ///
    /// ```
    /// let v = multiprocessing::Value::new(10u32).unwrap();
    /// {
    ///     let mut g = v.lock().unwrap();
    ///     *g += 1;
    ///     *g *= 2;
    /// }
    /// assert_eq!(v.get().unwrap(), 22);
    /// ```
    pub fn lock(&self) -> Result<ValueGuard<'_, T>> {
        Ok(ValueGuard {
            cells: &self.cells,
            _entered: self.cells.enter(true)?,
            _not_send: PhantomData,
        })
    }

    /// The value's recursive lock (Python's `get_lock()`): hold it around several accesses.
    ///
    /// ```
    /// let v = multiprocessing::Value::new(1u64).unwrap();
    /// {
    ///     let _held = v.get_lock().lock().unwrap();
    ///     v.set(v.get().unwrap() + 1).unwrap(); // get and set take it again: it is recursive
    /// }
    /// assert_eq!(v.get().unwrap(), 2);
    /// ```
    pub fn get_lock(&self) -> &RLock {
        self.cells.lock()
    }
}

/// The value of a [`Value`], with its lock held until dropped.
///
/// ```
/// let v = multiprocessing::Value::new((1u8, 'a')).unwrap();
/// let mut g = v.lock().unwrap();
/// g.1 = 'b';
/// assert_eq!(*g, (1, 'b'));
/// assert!(!g.owner_died());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Shareable> {
    cells: &'a Cells<T>,
    _entered: Entered<'a, T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Shareable> ValueGuard<'_, T> {
    /// True if the lock was taken over from a process that died holding it (the value may be
    /// half-updated).
    ///
    /// ```
    /// let v = multiprocessing::Value::new(0u8).unwrap();
    /// assert!(!v.lock().unwrap().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.cells.owner_died()
    }
}

impl<T: Shareable> std::ops::Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for the guard's life and the flag bars other accesses of
        // this thread; the value is initialized.
        unsafe { &self.cells.slice(&self._entered)[0] }
    }
}

impl<T: Shareable> std::ops::DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the reference unique.
        unsafe { &mut self.cells.slice_mut(&self._entered)[0] }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}
