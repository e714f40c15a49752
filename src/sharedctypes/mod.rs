//! [`Value`] and [`Array`]: plain data in shared memory, behind a recursive lock (Python's
//! `multiprocessing.Value` and `multiprocessing.Array`, the "synchronized" wrappers of its
//! `multiprocessing.sharedctypes` module, whence the name).
//!
//! Not to be confused with `shared_memory` ([`SharedMemory`](crate::SharedMemory): named POSIX
//! segments, Python's `multiprocessing.shared_memory`) nor with `sys::mapping` (the library's own
//! memfd mappings, under queues, locks and these values). The pointer code on the values stays
//! here (`cells`): its soundness rests on this module's lock discipline (a reference to the
//! values exists only while the caller holds the lock, checked by `Cells::enter`), not on the
//! mapping.

mod array;
mod cells;
mod value;

pub use array::{Array, ArrayGuard};
pub use value::{Value, ValueGuard};

/// Types that can be stored in a [`Value`] or an [`Array`]: plain data, the same in every process.
///
/// Implemented for the integer types, `f32`, `f64`, `bool`, `char`, and arrays and tuples (up to
/// 6) of them.
///
/// # Safety
///
/// Implement it only for `Copy` types that hold no pointer, reference, file descriptor or other
/// handle whose meaning depends on the process (another process would read an address that means
/// nothing there), and for which every combination of valid field values is a valid value (a
/// process that dies in the middle of an update may leave some fields updated and others not).
///
/// ```
/// use multiprocessing::{Shareable, Value};
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Point {
///     x: f64,
///     y: f64,
/// }
/// // SAFETY: two floats: no pointers, every combination is valid.
/// unsafe impl Shareable for Point {}
/// let p = Value::new(Point { x: 1.0, y: 2.0 }).unwrap();
/// p.lock().unwrap().x = 5.0;
/// assert_eq!(p.get().unwrap(), Point { x: 5.0, y: 2.0 });
/// ```
pub unsafe trait Shareable: Copy + Send + Sync + 'static {}

macro_rules! shareable {
    ($($t:ty),*) => {
        $(
            // SAFETY: plain data without pointers.
            unsafe impl Shareable for $t {}
        )*
    };
}
shareable!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool, char
);

// SAFETY: an array of plain data is plain data.
unsafe impl<T: Shareable, const N: usize> Shareable for [T; N] {}

macro_rules! shareable_tuple {
    ($($t:ident),+) => {
        // SAFETY: a tuple of plain data is plain data.
        unsafe impl<$($t: Shareable),+> Shareable for ($($t,)+) {}
    };
}
shareable_tuple!(A);
shareable_tuple!(A, B);
shareable_tuple!(A, B, C);
shareable_tuple!(A, B, C, D);
shareable_tuple!(A, B, C, D, E);
shareable_tuple!(A, B, C, D, E, F);
