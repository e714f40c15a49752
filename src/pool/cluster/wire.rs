//! The front's side of the `rustmp-mpi` protocol (version 2, described in that crate's
//! documentation): frames `(rank: u32, kind: u32, len: u64)` + payload, little-endian, and the
//! payloads the front sends and reads. Written here again (a few dozen lines) so that the
//! library needs no dependency on the MPI crate.

/// The size of a frame header.
pub(super) const HEADER: usize = 16;
/// The largest payload the protocol allows.
const MAX_PAYLOAD: u64 = 1 << 30;

// Front → bridge.
pub(super) const START: u32 = 1;
pub(super) const DATA: u32 = 2;
pub(super) const STOP: u32 = 5;
pub(super) const RESTART: u32 = 6;
// Bridge → front.
pub(super) const HELLO: u32 = 16;
pub(super) const READY: u32 = 17;
pub(super) const STARTED: u32 = 18;
pub(super) const OUTPUT: u32 = 19;
pub(super) const EXITED: u32 = 20;
pub(super) const ERROR: u32 = 21;
pub(super) const DROPPED: u32 = 22;
pub(super) const BYE: u32 = 23;
/// A rank's answer to a `Start` or `Restart` that failed (an `Error` may be about anything).
pub(super) const START_FAILED: u32 = 24;

/// The bridge's proof: this and the secret.
pub(super) const MAGIC: &[u8; 8] = b"RUSTMPB2";

/// Whether `proof` is the bridge's proof of `secret`: [`MAGIC`] and the secret, compared in a
/// time that does not depend on where they differ.
pub(super) fn proof_matches(proof: &[u8], secret: &[u8]) -> bool {
    let expected = [&MAGIC[..], secret].concat();
    let differ = proof
        .iter()
        .zip(&expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    !secret.is_empty() && proof.len() == expected.len() && differ == 0
}

/// One frame read from the bridge.
pub(super) struct Frame {
    pub(super) rank: u32,
    pub(super) kind: u32,
    pub(super) payload: Vec<u8>,
}

impl Frame {
    /// The payload as text, for messages.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Appends a frame to `out`.
pub(super) fn encode_into(out: &mut Vec<u8>, rank: u32, kind: u32, payload: &[u8]) {
    out.extend_from_slice(&rank.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Cuts the bridge's byte stream into frames.
#[derive(Default)]
pub(super) struct Decoder {
    buffer: Vec<u8>,
    start: usize,
}

impl Decoder {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame; an error when the stream is not frames.
    pub(super) fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let rest = &self.buffer[self.start..];
        if rest.len() < HEADER {
            return Ok(None);
        }
        let rank = u32_at(rest, 0);
        let kind = u32_at(rest, 4);
        let len = u64::from_le_bytes(array(&rest[8..16]));
        if len > MAX_PAYLOAD {
            return Err(format!("a frame of {len} bytes"));
        }
        let end = HEADER + len as usize;
        if rest.len() < end {
            return Ok(None);
        }
        let payload = rest[HEADER..end].to_vec();
        self.start += end;
        Ok(Some(Frame {
            rank,
            kind,
            payload,
        }))
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&bytes[..N]);
    a
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(&bytes[at..at + 4]))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// What a rank runs as its worker.
pub(super) enum Program<'a> {
    /// Bytes the rank stages as `name` and runs (this program).
    Bytes { name: &'a str, bytes: &'a [u8] },
    /// A file at this path on the rank's host (`rustmp-mpi`, the spawn host of a library
    /// loaded at run time).
    Path(&'a std::path::Path),
}

/// The `Start` payload: run `program` with `env` added.
pub(super) fn start(program: Program<'_>, env: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match program {
        Program::Bytes { name, bytes } => {
            out.reserve(bytes.len());
            out.extend_from_slice(&1u32.to_le_bytes());
            put_bytes(&mut out, name.as_bytes());
            put_bytes(&mut out, bytes);
        }
        Program::Path(path) => {
            use std::os::unix::ffi::OsStrExt;
            out.extend_from_slice(&0u32.to_le_bytes());
            put_bytes(&mut out, path.as_os_str().as_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(env.len() as u32).to_le_bytes());
    for (key, value) in env {
        put_bytes(&mut out, key.as_bytes());
        put_bytes(&mut out, value.as_bytes());
    }
    out
}

/// Reads `u32, bytes` (the `Hello`, `Started` and `Output` payloads).
pub(super) fn number_and_bytes(payload: &[u8]) -> Option<(u32, &[u8])> {
    if payload.len() < 12 {
        return None;
    }
    let number = u32_at(payload, 0);
    let len = u64::from_le_bytes(array(&payload[4..12]));
    let rest = &payload[12..];
    (rest.len() as u64 == len).then_some((number, rest))
}

/// Reads `Exited`: the exit code in Python's convention (`-9` for SIGKILL).
pub(super) fn exit_code(payload: &[u8]) -> Option<i32> {
    if payload.len() != 8 {
        return None;
    }
    let (code, signal) = (u32_at(payload, 0), u32_at(payload, 4));
    Some(if signal != 0 {
        -(signal as i32)
    } else if code == u32::MAX {
        -1
    } else {
        code as i32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_itself_is_a_proof() {
        let secret = [7u8; 32];
        let proof = [&MAGIC[..], &secret].concat();
        assert!(proof_matches(&proof, &secret));
        let mut wrong = proof.clone();
        wrong[39] ^= 1;
        assert!(!proof_matches(&wrong, &secret));
        let mut old = proof.clone();
        old[7] = b'1';
        assert!(!proof_matches(&old, &secret));
        assert!(!proof_matches(&proof[..39], &secret));
        assert!(!proof_matches(&[0x5a; 40], &secret));
    }

    #[test]
    fn frames_come_back_whatever_the_cut() {
        let mut bytes = Vec::new();
        encode_into(&mut bytes, 3, DATA, b"hello");
        encode_into(&mut bytes, 0, STOP, b"");
        for cut in [1, 5, 16, 100] {
            let mut decoder = Decoder::default();
            let mut seen = Vec::new();
            for piece in bytes.chunks(cut) {
                decoder.push(piece);
                while let Some(f) = decoder.next_frame().unwrap() {
                    seen.push((f.rank, f.kind, f.payload));
                }
            }
            assert_eq!(seen, vec![(3, DATA, b"hello".to_vec()), (0, STOP, vec![])]);
        }
        let mut hello = 7u32.to_le_bytes().to_vec();
        put_bytes(&mut hello, b"rmpnode1");
        assert_eq!(number_and_bytes(&hello), Some((7, &b"rmpnode1"[..])));
        assert_eq!(number_and_bytes(&hello[..13]), None);
        let exited = |code: u32, signal: u32| [code.to_le_bytes(), signal.to_le_bytes()].concat();
        assert_eq!(exit_code(&exited(u32::MAX, 9)), Some(-9));
        assert_eq!(exit_code(&exited(3, 0)), Some(3));
    }
}
