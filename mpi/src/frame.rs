//! Frames: `(rank, kind, len, bytes)` with a 16-byte little-endian header.

use std::io::Read;

/// The size of a frame header.
pub const HEADER: usize = 16;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// What a frame is. Front → bridge kinds are below 16, bridge → front kinds 16 and up
/// ([`Kind::Data`] goes both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Kind {
    /// Front → rank: start the worker ([`crate::proto::Start`]).
    Start = 1,
    /// Both ways: bytes for / from the worker's socket.
    Data = 2,
    /// Front → rank: shut the write side of the worker's socket (the worker reads EOF).
    Eof = 3,
    /// Front → rank: send the worker a signal (payload: `i32`).
    Signal = 4,
    /// Front → rank: stop the worker and leave the job; to rank 0: end the whole job.
    Stop = 5,
    /// Front → rank: start the worker again with the last `Start`.
    Restart = 6,
    /// Front → bridge (tests): send the payload to the rank as an MPI message, untouched (no
    /// MAC added), to check that the rank drops it.
    Raw = 7,
    /// Front → rank (tests): the rank sends [`crate::proto::PeerRaw::bytes`] to another rank as
    /// if it were the bridge, to check that ranks drop frames not from rank 0.
    PeerRaw = 8,
    /// Rank → front: the rank is up ([`crate::proto::Hello`]); rank 0 sends one for itself.
    Hello = 16,
    /// Bridge → front: every rank said hello (payload: `u32`, the number of worker ranks).
    Ready = 17,
    /// Rank → front: the worker started ([`crate::proto::Started`]).
    Started = 18,
    /// Rank → front: one whole line of the worker's output ([`crate::proto::Output`]).
    Output = 19,
    /// Rank → front: the worker ended ([`crate::proto::Exited`]).
    Exited = 20,
    /// Rank or bridge → front: something failed (payload: UTF-8 text).
    Error = 21,
    /// Rank → front: the rank dropped a message it must not run (payload: UTF-8 reason).
    Dropped = 22,
    /// Rank → front: the rank leaves the job (after `Stop`).
    Bye = 23,
    /// Rank → front: a `Start` or `Restart` failed (payload: UTF-8 text); unlike `Error`, it
    /// always answers a start, so the front never takes a late error for one.
    StartFailed = 24,
}

impl Kind {
    /// The kind with this number.
    pub fn from_u32(value: u32) -> Option<Kind> {
        use Kind::*;
        Some(match value {
            1 => Start,
            2 => Data,
            3 => Eof,
            4 => Signal,
            5 => Stop,
            6 => Restart,
            7 => Raw,
            8 => PeerRaw,
            16 => Hello,
            17 => Ready,
            18 => Started,
            19 => Output,
            20 => Exited,
            21 => Error,
            22 => Dropped,
            23 => Bye,
            24 => StartFailed,
            _ => return None,
        })
    }

    /// Whether the front may send this kind.
    pub fn from_front(self) -> bool {
        (self as u32) < 16
    }

    /// Whether a rank may send this kind to the bridge.
    pub fn from_rank(self) -> bool {
        self == Kind::Data || ((self as u32) >= 16 && self != Kind::Ready)
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The worker rank it goes to or comes from (0: the bridge).
    pub rank: u32,
    /// What it is.
    pub kind: Kind,
    /// Its bytes.
    pub payload: Vec<u8>,
}

/// A byte stream that is not a sequence of frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// An unknown kind number.
    #[error("unknown frame kind {0}")]
    UnknownKind(u32),
    /// A length over [`MAX_PAYLOAD`].
    #[error("frame of {0} bytes is over the limit of {MAX_PAYLOAD}")]
    TooLong(u64),
    /// Bytes that end inside a frame, or more bytes than one frame where one is expected.
    #[error("{0} bytes are not one whole frame")]
    NotOneFrame(usize),
}

impl Frame {
    /// A frame.
    pub fn new(rank: u32, kind: Kind, payload: Vec<u8>) -> Frame {
        Frame {
            rank,
            kind,
            payload,
        }
    }

    /// Header and payload, ready to send.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.extend_from_slice(&self.rank.to_le_bytes());
        out.extend_from_slice(&(self.kind as u32).to_le_bytes());
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Exactly one encoded frame.
    pub fn decode_one(bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut decoder = Decoder::default();
        decoder.push(bytes);
        match decoder.next_frame()? {
            Some(frame) if decoder.buffered() == 0 => Ok(frame),
            _ => Err(FrameError::NotOneFrame(bytes.len())),
        }
    }

    /// The payload as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Parses header fields; `Ok(None)` when fewer than [`HEADER`] bytes.
fn header(bytes: &[u8]) -> Result<Option<(u32, Kind, u64)>, FrameError> {
    if bytes.len() < HEADER {
        return Ok(None);
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let len = u64::from_le_bytes(len);
    let kind = Kind::from_u32(word(4)).ok_or(FrameError::UnknownKind(word(4)))?;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong(len));
    }
    Ok(Some((word(0), kind, len)))
}

/// Cuts a byte stream into frames, whatever pieces it arrives in.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    start: usize,
}

impl Decoder {
    /// Adds bytes that arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// How many bytes wait for the rest of their frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The next whole frame, if one is there.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buffer[self.start..];
        let Some((rank, kind, len)) = header(rest)? else {
            return Ok(None);
        };
        let end = HEADER + len as usize;
        if rest.len() < end {
            return Ok(None);
        }
        let payload = rest[HEADER..end].to_vec();
        self.start += end;
        Ok(Some(Frame::new(rank, kind, payload)))
    }
}

/// Reads one frame from a blocking stream; `Ok(None)` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> std::io::Result<Option<Frame>> {
    let mut head = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match input.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (rank, kind, len) = header(&head)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let mut payload = vec![0u8; len as usize];
    input.read_exact(&mut payload)?;
    Ok(Some(Frame::new(rank, kind, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_cut() {
        let frames = [
            Frame::new(3, Kind::Data, b"hello".to_vec()),
            Frame::new(0, Kind::Stop, Vec::new()),
            Frame::new(7, Kind::Output, vec![1; 5000]),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for cut in [1, 3, 16, 17, 4000] {
            let mut decoder = Decoder::default();
            let mut seen = Vec::new();
            for piece in bytes.chunks(cut) {
                decoder.push(piece);
                while let Some(frame) = decoder.next_frame().expect("valid") {
                    seen.push(frame);
                }
            }
            assert_eq!(seen, frames, "cut {cut}");
            assert_eq!(decoder.buffered(), 0);
        }
        let mut reader = &bytes[..];
        assert_eq!(
            read_frame(&mut reader).expect("read"),
            Some(frames[0].clone())
        );
    }

    #[test]
    fn bad_streams_are_named() {
        let mut bytes = Frame::new(1, Kind::Data, vec![]).encode();
        bytes[4] = 99;
        assert_eq!(Frame::decode_one(&bytes), Err(FrameError::UnknownKind(99)));
        let mut long = Frame::new(1, Kind::Data, vec![]).encode();
        long[8..16].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert_eq!(
            Frame::decode_one(&long),
            Err(FrameError::TooLong(MAX_PAYLOAD + 1))
        );
        let one = Frame::new(1, Kind::Eof, vec![]).encode();
        let two: Vec<u8> = [one.clone(), one].concat();
        assert_eq!(Frame::decode_one(&two), Err(FrameError::NotOneFrame(32)));
        assert!(Kind::Start.from_front() && !Kind::Start.from_rank());
        assert!(Kind::Output.from_rank() && !Kind::Ready.from_rank() && Kind::Data.from_rank());
    }
}
