//! The Jupyter side of `rustmp kernel`: the wire protocol, the five ZeroMQ sockets and the
//! handlers of the shell, control and stdin channels. Cells run in [`crate::engine`].
//!
//! - `server`: loads the connection file, binds the sockets, starts the tasks and threads below.
//! - `sockets`: signs, sends, receives and authenticates the messages of one socket.
//! - `shared`: the state the kernel's threads share (publishing on IOPub, building replies).
//! - `iopub`: the task that publishes in order; an engine output as an IOPub message.
//! - `control`: the control channel (kernel info, usage, interrupt, shutdown), never queued.
//! - `shell`: the executor thread that handles shell requests in order, cells among them.
//! - `stdin`: asking the frontend for input.
//! - `content`: the content of every message the kernel receives and sends, typed.
//! - `history`, `is_complete`, `kernel_info`: what those replies say.
//! - `cursor`: code points and byte offsets.
//! - `wire`, `connection`: the message format and signatures; the connection file.
//!
//! Each channel has one dispatch function (`control::dispatch`, `Executor::dispatch`, as
//! ipykernel's `kernelbase.py` has): it looks the handler up by message type, publishes busy and
//! idle once around it, and answers a request whose content does not decode with an error reply.

#![deny(unsafe_code)]

mod connection;
mod content;
mod control;
mod cursor;
mod history;
mod iopub;
mod is_complete;
mod kernel_info;
mod server;
mod shared;
mod shell;
mod sockets;
mod stdin;
mod wire;

pub use server::run;
pub use wire::PROTOCOL_VERSION;
