//! The manager's side of the spawn start method: naming each task's function to a worker by a
//! [`CodeRef`](crate::code::CodeRef) (a `DEFINE` frame before the first task that uses it, then
//! a small number), and a new worker's first frames. When the pool runs in this library loaded
//! at run time (a notebook's), the workers lack the code: each is sent, as `OBJECT` frames, the
//! bytes of every object it needs and has not been sent (by build-id): first the library's
//! closure and `ENTER`, then, before a function's first `DEFINE`, its object's closure.

use super::Manager;
use crate::code::{self, BuildId, LoadedObject};
use crate::codec;
use crate::error::{Error, Result};
use crate::pool::spawn::{DEFINE, Define, ENTER, Enter, OBJECT, Object, SETUP, Setup, StartMethod};
use crate::pool::worker::CONTROL;
use std::collections::HashMap;

/// A function's number, its encoded `DEFINE` payload and the objects a worker needs for it, or
/// why it cannot be named: the `(object, message)` of an [`Error::CodeLoad`].
type Named = std::result::Result<(u64, Vec<u8>, Vec<BuildId>), (String, String)>;

/// The functions of a spawn pool: by trampoline address, its number and its encoded `DEFINE`
/// payload, or why it cannot be named (`(object, message)` of [`Error::CodeLoad`]); and the
/// objects its workers may be sent.
#[derive(Default)]
pub(in crate::pool) struct CodeTable {
    by_address: HashMap<usize, Named>,
    /// Encoded `OBJECT` payloads, by build-id (read once, kept for the pool's life).
    objects: HashMap<BuildId, Vec<u8>>,
    /// The library's objects and the encoded `ENTER` (a pool of a library loaded at run time).
    library: Option<(Vec<BuildId>, Vec<u8>)>,
}

fn pair(e: Error) -> (String, String) {
    match e {
        Error::CodeLoad { object, message } => (object, message),
        other => ("the pool's code".into(), other.to_string()),
    }
}

impl CodeTable {
    /// Reads and encodes the objects a worker needs to run `object`'s code (not the system's),
    /// each checked to be what is loaded here; returns their build-ids. None for a program's own
    /// code (its workers run the program).
    fn ship(&mut self, object: &LoadedObject) -> Result<Vec<BuildId>> {
        let mut ids = Vec::new();
        for o in code::to_ship(object)? {
            let Some(id) = o.build_id().cloned() else {
                continue;
            };
            if !self.objects.contains_key(&id) {
                let (build_id, bytes) = code::bytes_as_loaded(&o)?;
                let name = code::staged_name(&o, o.path() == object.path());
                let mut payload = Vec::new();
                codec::encode_into(
                    &Object {
                        build_id,
                        name,
                        bytes,
                    },
                    &mut payload,
                )?;
                self.objects.insert(id.clone(), payload);
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Prepares what every worker of a pool of this library loaded at run time is sent first.
    pub(super) fn prepare_library(&mut self, library: &LoadedObject) -> Result<()> {
        let ids = self.ship(library)?;
        let build_id = library.build_id().cloned().ok_or_else(|| Error::CodeLoad {
            object: library.path().display().to_string(),
            message: "the library has no GNU build-id".into(),
        })?;
        let mut enter = Vec::new();
        codec::encode_into(
            &Enter {
                build_id,
                name: code::staged_name(library, true),
            },
            &mut enter,
        )?;
        self.library = Some((ids, enter));
        Ok(())
    }

    /// Names the trampoline at `func` as number `fnid`.
    fn name(&mut self, func: usize, fnid: u64, ship: bool) -> Named {
        let (code, object) = code::locate(func).map_err(pair)?;
        let needs = if ship {
            self.ship(&object).map_err(pair)?
        } else {
            Vec::new()
        };
        let mut payload = Vec::new();
        codec::encode_into(&Define { fnid, code }, &mut payload)
            .map_err(|e| (format!("address {func:#x}"), e.to_string()))?;
        Ok((fnid, payload, needs))
    }
}

impl Manager {
    /// The `func` word of a task of trampoline `func` for worker `wi`: the address itself for a
    /// forked worker; for a spawn worker, the function's number, defined to it first if new
    /// (after the objects it needs that it was not sent).
    pub(super) fn func_word(&mut self, wi: usize, func: usize) -> Result<u64> {
        if self.config.start == StartMethod::Fork {
            return Ok(func as u64);
        }
        if !self.code.by_address.contains_key(&func) {
            let next = self.code.by_address.len() as u64 + 1;
            let named = self.code.name(func, next, self.config.library.is_some());
            self.code.by_address.insert(func, named);
        }
        let (fnid, payload, needs) = match &self.code.by_address[&func] {
            Ok(named) => named,
            Err((object, message)) => {
                return Err(Error::CodeLoad {
                    object: object.clone(),
                    message: message.clone(),
                });
            }
        };
        let w = &mut self.workers[wi];
        if w.defined.insert(*fnid) {
            send_objects(w, needs, &self.code.objects);
            w.queue_frame(payload.len() as u64, CONTROL, DEFINE, 0, payload);
        }
        Ok(*fnid)
    }

    /// Queues a new spawn worker's first frames: the library's objects and `ENTER` (a library
    /// loaded at run time), then who it is and its initializer (after the objects it needs).
    pub(super) fn queue_setup(&mut self, wi: usize, identity: Vec<u32>) -> Result<()> {
        let parent_name = crate::runtime::state().ctx.name();
        let init = self.config.init_code.clone();
        let mut init_needs = Vec::new();
        if let (Some(code), Some(_)) = (&init, &self.config.library) {
            let object = code::loaded_objects()
                .into_iter()
                .find(|o| o.build_id() == Some(&code.build_id));
            if let Some(object) = object {
                init_needs = self.code.ship(&object)?;
            }
        }
        let w = &mut self.workers[wi];
        if let Some((ids, enter)) = &self.code.library {
            send_objects(w, ids, &self.code.objects);
            w.queue_frame(enter.len() as u64, CONTROL, ENTER, 0, enter);
        }
        send_objects(w, &init_needs, &self.code.objects);
        let setup = Setup {
            name: w.name.clone(),
            identity,
            parent_name,
            parent_pid: crate::sys::getpid(),
            init,
        };
        let mut payload = Vec::new();
        codec::encode_into(&setup, &mut payload)?;
        w.queue_frame(payload.len() as u64, CONTROL, SETUP, 0, &payload);
        w.flush();
        Ok(())
    }
}

/// Queues to `w` the objects among `ids` it was not sent yet.
fn send_objects(
    w: &mut crate::pool::link::Worker,
    ids: &[BuildId],
    objects: &HashMap<BuildId, Vec<u8>>,
) {
    for id in ids {
        if let Some(payload) = objects.get(id)
            && w.sent.insert(id.clone())
        {
            w.queue_frame(payload.len() as u64, CONTROL, OBJECT, 0, payload);
        }
    }
}
