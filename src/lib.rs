//! # multiprocessing
//!
//! Python's `multiprocessing` for Rust, fork-based: [`Process`], [`Queue`], [`SimpleQueue`],
//! [`JoinableQueue`], [`Pipe`]/[`Connection`] and [`Pool`]; the synchronization primitives
//! [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`] and
//! [`Barrier`]; shared data: [`Value`], [`Array`] and named [`SharedMemory`]. Python's names and
//! semantics, serde-typed messages, and typed errors ([`Error`]). Closures work, including code
//! compiled later (notebook cells): children are forked copies of the parent.
//!
//! Linux only (it relies on `fork`, `memfd`, `pidfd` and futexes).
//!
//! ```
//! use multiprocessing::{Pool, Process, Queue};
//!
//! // Process + Queue
//! let q: Queue<String> = Queue::new().unwrap();
//! let tx = q.clone();
//! let mut p = Process::new(move || tx.put("hello from a child".to_string()).unwrap());
//! p.start().unwrap();
//! assert_eq!(q.get().unwrap(), "hello from a child");
//! p.join().unwrap();
//!
//! // Pool
//! fn cube(x: u64) -> u64 { x * x * x }
//! let pool = Pool::new(4).unwrap();
//! assert_eq!(pool.map(cube, 1..=4).unwrap(), vec![1, 8, 27, 64]);
//! ```
//!
//! Deviations from Python (each where Rust or this design does better) are documented on the item
//! concerned; `docs/differences-from-python.md` lists them all.

#![warn(missing_docs)]

pub mod code;
mod codec;
mod error;
pub mod host;
pub mod interrupt;
mod panic;
mod pipe;
mod pool;
mod process;
mod queue;
mod runtime;
mod shared_memory;
mod sharedctypes;
mod sync;
mod sys;
pub mod timeline;

pub use error::{Error, Result, TaskError};
pub use pipe::{Connection, Pipe};
pub use pool::{
    AsyncResult, Callbacks, IMapIterator, Mpi, Pool, PoolBuilder, StarFn, StartMethod, TaskData,
};
pub use process::{
    Process, ProcessInfo, active_children, cpu_count, current_process, parent_process,
};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
/// A byte buffer that serializes as one block (fast), for raw data in queues and pipes.
pub use serde_bytes::ByteBuf;
pub use shared_memory::SharedMemory;
pub use sharedctypes::{Array, ArrayGuard, Shareable, Value, ValueGuard};
pub use sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, Lockable, RLock, Semaphore,
    SemaphoreGuard,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
