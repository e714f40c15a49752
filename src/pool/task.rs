//! How a task travels: the function is named by the address of a monomorphized trampoline, which
//! is valid in a worker because workers are forked copies of the parent (same code, same addresses).

use crate::codec;
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;

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
}

/// `map`'s shape.
pub(crate) struct One<F>(pub(crate) F);
/// `starmap`'s and `apply`'s shape.
pub(crate) struct Star<F>(pub(crate) F);

impl<F: Fn(A) -> R, A, R> Call<A, R> for One<F> {
    fn invoke(&self, a: A) -> R {
        (self.0)(a)
    }
}

impl<F: StarFn<A, R>, A, R> Call<A, R> for Star<F> {
    fn invoke(&self, a: A) -> R {
        self.0.call_star(a)
    }
}

/// Result status of a chunk, sent back with its payload.
pub(crate) const STATUS_OK: u64 = 0;
/// The task panicked: the payload is a [`PanicWire`].
pub(crate) const STATUS_PANIC: u64 = 1;
/// Arguments or results could not be (de)serialized, or the function was not loaded: a `String`.
pub(crate) const STATUS_ERROR: u64 = 2;
/// The initializer panicked (sent once, before the worker exits): a [`PanicWire`].
pub(crate) const STATUS_INIT_FAILED: u64 = 3;
/// The initializer succeeded: the worker takes work from now on (sent only by workers that have one).
pub(crate) const STATUS_READY: u64 = 4;

/// A trampoline: decodes a chunk of arguments, runs the function on each, encodes the results.
pub(crate) type Trampoline = fn(&[u8], &mut Vec<u8>) -> u64;

/// A panic as it crosses from a worker to the parent.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub(crate) struct PanicWire {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    pub(crate) backtrace: String,
}

thread_local! {
    /// Filled by the worker's panic hook, read after `catch_unwind`.
    pub(crate) static LAST_PANIC: RefCell<Option<PanicWire>> = const { RefCell::new(None) };
}

/// Runs `f` catching a panic; the panic's message and backtrace come from the worker's hook.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, PanicWire> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| PanicWire {
                message: payload_message(payload.as_ref()),
                location: None,
                backtrace: String::new(),
            })
    })
}

pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

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
    match catch(|| {
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
