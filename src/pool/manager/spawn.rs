//! The manager's side of the spawn start method: naming each task's function to a worker by a
//! [`CodeRef`](crate::code::CodeRef) (a `DEFINE` frame before the first task that uses it, then
//! a small number), and a new worker's first frame.

use super::Manager;
use crate::code;
use crate::codec;
use crate::error::{Error, Result};
use crate::pool::spawn::{DEFINE, Define, SETUP, Setup, StartMethod};
use crate::pool::worker::CONTROL;
use std::collections::HashMap;

/// A function's number and its encoded `DEFINE` payload, or why it cannot be named: the
/// `(object, message)` of an [`Error::CodeLoad`].
type Named = std::result::Result<(u64, Vec<u8>), (String, String)>;

/// The functions of a spawn pool: by trampoline address, its number and its encoded `DEFINE`
/// payload, or why it cannot be named (`(object, message)` of [`Error::CodeLoad`]).
#[derive(Default)]
pub(in crate::pool) struct CodeTable {
    by_address: HashMap<usize, Named>,
}

impl Manager {
    /// The `func` word of a task of trampoline `func` for worker `wi`: the address itself for a
    /// forked worker; for a spawn worker, the function's number, defined to it first if new.
    pub(super) fn func_word(&mut self, wi: usize, func: usize) -> Result<u64> {
        if self.config.start == StartMethod::Fork {
            return Ok(func as u64);
        }
        let next = self.code.by_address.len() as u64 + 1;
        let entry = self.code.by_address.entry(func).or_insert_with(|| {
            let (code, _) = code::locate(func).map_err(|e| match e {
                Error::CodeLoad { object, message } => (object, message),
                other => (format!("address {func:#x}"), other.to_string()),
            })?;
            let mut payload = Vec::new();
            codec::encode_into(&Define { fnid: next, code }, &mut payload)
                .map_err(|e| (format!("address {func:#x}"), e.to_string()))?;
            Ok((next, payload))
        });
        let (fnid, payload) = match entry {
            Ok((fnid, payload)) => (*fnid, payload),
            Err((object, message)) => {
                return Err(Error::CodeLoad {
                    object: object.clone(),
                    message: message.clone(),
                });
            }
        };
        let w = &mut self.workers[wi];
        if w.defined.insert(fnid) {
            w.queue_frame(payload.len() as u64, CONTROL, DEFINE, 0, payload);
        }
        Ok(fnid)
    }

    /// Queues a new spawn worker's first frame: who it is, and its initializer.
    pub(super) fn queue_setup(&mut self, wi: usize, identity: Vec<u32>) -> Result<()> {
        let parent_name = crate::runtime::state().ctx.name();
        let w = &mut self.workers[wi];
        let setup = Setup {
            name: w.name.clone(),
            identity,
            parent_name,
            parent_pid: crate::sys::getpid(),
            init: self.config.init_code.clone(),
        };
        let mut payload = Vec::new();
        codec::encode_into(&setup, &mut payload)?;
        w.queue_frame(payload.len() as u64, CONTROL, SETUP, 0, &payload);
        w.flush();
        Ok(())
    }
}
