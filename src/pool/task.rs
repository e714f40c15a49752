//! How a task travels: the function is named by the address of a monomorphized trampoline, which
//! is valid in a worker because workers are forked copies of the parent (same code, same addresses).

use crate::codec;
use crate::panic;
use serde::{Serialize, de::DeserializeOwned};

/// What a pool's tasks take and return: any type serde can encode and decode, owning its data
/// (`'static`, as it crosses to another process). Implemented for every such type; a bound of
/// [`crate::Pool`]'s methods (a result also needs `Send`: callbacks run on the pool's thread).
///
/// ```
/// fn sent<T: multiprocessing::TaskData>(_: &T) {}
/// sent(&(1u8, String::from("two"), vec![3.0f64]));
/// ```
pub trait TaskData: Serialize + DeserializeOwned + 'static {}

impl<T: Serialize + DeserializeOwned + 'static> TaskData for T {}

/// Calls a function with a tuple of arguments: what [`crate::Pool::starmap`] and
/// [`crate::Pool::apply`] need (Python's `f(*args)`). Implemented for every `Fn` of up to eight
/// arguments.
///
/// ```
/// use multiprocessing::StarFn;
/// fn add(a: i32, b: i32) -> i32 { a + b }
/// assert_eq!(add.call_star((2, 3)), 5);
/// ```
pub trait StarFn<Args, R> {
    /// Calls the function with the tuple's elements as arguments.
    fn call_star(&self, args: Args) -> R;
}

macro_rules! star_fn {
    ($($name:ident),*) => {
        impl<Func, Ret, $($name),*> StarFn<($($name,)*), Ret> for Func
        where
            Func: Fn($($name),*) -> Ret,
        {
            #[allow(non_snake_case)]
            fn call_star(&self, ($($name,)*): ($($name,)*)) -> Ret {
                self($($name),*)
            }
        }
    };
}

star_fn!();
star_fn!(A1);
star_fn!(A1, A2);
star_fn!(A1, A2, A3);
star_fn!(A1, A2, A3, A4);
star_fn!(A1, A2, A3, A4, A5);
star_fn!(A1, A2, A3, A4, A5, A6);
star_fn!(A1, A2, A3, A4, A5, A6, A7);
star_fn!(A1, A2, A3, A4, A5, A6, A7, A8);

/// A task's call shape: one argument (`map`) or a tuple spread into arguments (`starmap`).
pub(crate) trait Call<A, R> {
    fn invoke(&self, a: A) -> R;
    /// The function's Rust path (`my_crate::work`, `…::{{closure}}`), for timelines.
    fn function_name() -> &'static str;
}

/// `map`'s shape.
pub(crate) struct One<F>(pub(crate) F);
/// `starmap`'s and `apply`'s shape.
pub(crate) struct Star<F>(pub(crate) F);

impl<F: Fn(A) -> R, A, R> Call<A, R> for One<F> {
    fn invoke(&self, a: A) -> R {
        (self.0)(a)
    }
    fn function_name() -> &'static str {
        std::any::type_name::<F>()
    }
}

impl<F: StarFn<A, R>, A, R> Call<A, R> for Star<F> {
    fn invoke(&self, a: A) -> R {
        self.0.call_star(a)
    }
    fn function_name() -> &'static str {
        std::any::type_name::<F>()
    }
}

/// Result status of a chunk, sent back with its payload.
pub(crate) const STATUS_OK: u64 = 0;
/// The task panicked: the payload is a [`PanicWire`](crate::panic::PanicWire).
pub(crate) const STATUS_PANIC: u64 = 1;
/// Arguments or results could not be (de)serialized, or the function was not loaded: a `String`.
pub(crate) const STATUS_ERROR: u64 = 2;
/// The initializer panicked (sent once, before the worker exits): a
/// [`PanicWire`](crate::panic::PanicWire).
pub(crate) const STATUS_INIT_FAILED: u64 = 3;
/// The initializer succeeded: the worker takes work from now on (sent only by workers that have one).
pub(crate) const STATUS_READY: u64 = 4;

/// The task's code could not be found or loaded in a spawn worker: an encoded
/// `(object, message)` pair, which becomes [`crate::Error::CodeLoad`].
pub(crate) const STATUS_CODE_ERROR: u64 = 5;

/// A trampoline: decodes a chunk of arguments, runs the function on each, encodes the results.
pub(crate) type Trampoline = fn(&[u8], &mut Vec<u8>) -> u64;

fn run_chunk<C, A, R>(input: &[u8], out: &mut Vec<u8>) -> u64
where
    C: Call<A, R>,
    A: DeserializeOwned,
    R: Serialize,
{
    let items: Vec<A> = match codec::decode(input) {
        Ok(v) => v,
        Err(e) => {
            let _ = codec::encode_into(&format!("cannot decode the task's arguments: {e}"), out);
            return STATUS_ERROR;
        }
    };
    // SAFETY: `trampoline` only accepts zero-sized `C` (checked at compile time); a zero-sized
    // value has no bytes, so reading one from a dangling, aligned pointer is valid.
    let call: C = unsafe { std::ptr::NonNull::<C>::dangling().as_ptr().read() };
    match panic::catch(|| {
        items
            .into_iter()
            .map(|a| call.invoke(a))
            .collect::<Vec<R>>()
    }) {
        Ok(results) => match codec::encode_into(&results, out) {
            Ok(()) => STATUS_OK,
            Err(e) => {
                out.clear();
                let _ = codec::encode_into(&format!("cannot encode the task's result: {e}"), out);
                STATUS_ERROR
            }
        },
        Err(wire) => {
            let _ = codec::encode_into(&wire, out);
            STATUS_PANIC
        }
    }
}

/// Hands a task's function over to the workers: what travels is the address of its trampoline
/// ([`trampoline`]), never the value, and each worker makes its own copy of the value out of no
/// bytes (`run_chunk`; the function is zero-sized, which `trampoline` checks at compile time).
/// So the value given here is forgotten, not dropped: it now lives in the workers, as their
/// copies (a zero-sized function value owns nothing, so nothing leaks). The one place a task's
/// function is given up.
pub(crate) fn hand_over<F>(f: F) {
    std::mem::forget(f);
}

/// The address of the trampoline for call shape `C`. Rejects, at compile time, any `C` that is not
/// zero-sized: a capturing closure (its captures could not be rebuilt in the worker) or a fn pointer.
pub(crate) fn trampoline<C, A, R>() -> usize
where
    C: Call<A, R>,
    A: DeserializeOwned,
    R: Serialize,
{
    const {
        assert!(
            std::mem::size_of::<C>() == 0,
            "multiprocessing::Pool runs only fn items and closures that capture nothing: \
             a capturing closure or a fn pointer cannot be sent to worker processes. \
             Pass data as arguments (use starmap or apply with a tuple) or set it up in the initializer."
        )
    };
    let f: Trampoline = run_chunk::<C, A, R>;
    f as usize
}

/// Runs a zero-sized initializer `F` made out of no bytes: what a spawn worker calls, by a
/// [`CodeRef`](crate::code::CodeRef) (see [`init_trampoline`]).
fn run_init<F: Fn()>() {
    if std::mem::size_of::<F>() != 0 {
        return; // never taken: `init_trampoline` hands out only zero-sized `F`s
    }
    // SAFETY: `F` is zero-sized (checked above): reading one from a dangling, aligned pointer is
    // valid, as in `run_chunk`.
    let f: F = unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() };
    f()
}

/// The address of `run_init::<F>` if `F` captures nothing (is zero-sized): then a worker started
/// by exec can run it. `None` otherwise (only a forked worker can run that initializer).
pub(crate) fn init_trampoline<F: Fn()>() -> Option<usize> {
    let f: fn() = run_init::<F>;
    (std::mem::size_of::<F>() == 0).then_some(f as usize)
}

/// In a worker started by exec: the trampoline `code` names (`code` came from [`trampoline`]'s
/// address in the parent, by [`crate::code::locate`]).
pub(crate) fn trampoline_at(code: &crate::code::CodeRef) -> crate::Result<Trampoline> {
    let addr = crate::code::resolve(code)?;
    // SAFETY: `resolve` found the object with the very build-id the parent located the
    // trampoline in, and the address is in its code: the same compiled function, at this
    // process's load base.
    Ok(unsafe { std::mem::transmute::<usize, Trampoline>(addr) })
}

/// In a worker started by exec: the initializer trampoline `code` names (from
/// [`init_trampoline`] in the parent).
pub(crate) fn init_at(code: &crate::code::CodeRef) -> crate::Result<fn()> {
    let addr = crate::code::resolve(code)?;
    // SAFETY: as in `trampoline_at`: the same compiled `run_init::<F>`, found by build-id.
    Ok(unsafe { std::mem::transmute::<usize, fn()>(addr) })
}
