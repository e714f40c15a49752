//! The payloads of the frames that carry structure (length-prefixed, little-endian).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// A payload that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    /// It ends too soon or has bytes left over.
    #[error("malformed {0} payload")]
    Malformed(&'static str),
    /// A shipped program's name is not a plain file name.
    #[error("the program name {0:?} is not a plain file name")]
    BadName(String),
}

/// The program a rank runs as its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A path that exists on the rank's host.
    Path(PathBuf),
    /// Bytes the rank writes into its staging directory under `name` and runs.
    Bytes {
        /// A plain file name.
        name: String,
        /// The executable.
        bytes: Vec<u8>,
    },
}

/// `Start`: what to run. The worker inherits the rank's environment without Open MPI's
/// variables (`OMPI_*`, `PMIX_*`, `OPAL_*`), plus `env`; its socket is fd
/// [`crate::WORKER_FD`], its stdin is /dev/null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The program.
    pub program: Program,
    /// The arguments after argv\[0\].
    pub args: Vec<OsString>,
    /// Variables to set.
    pub env: Vec<(OsString, OsString)>,
}

struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self
    }
    fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.rest.len() < n {
            return Err(ProtoError::Malformed(self.what));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = usize::try_from(self.u64()?).map_err(|_| ProtoError::Malformed(self.what))?;
        self.take(n)
    }
    fn end(&self) -> Result<(), ProtoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Malformed(self.what))
        }
    }
}

impl Start {
    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match &self.program {
            Program::Path(path) => w.u32(0).bytes(path.as_os_str().as_bytes()),
            Program::Bytes { name, bytes } => w.u32(1).bytes(name.as_bytes()).bytes(bytes),
        };
        w.u32(self.args.len() as u32);
        for arg in &self.args {
            w.bytes(arg.as_bytes());
        }
        w.u32(self.env.len() as u32);
        for (key, value) in &self.env {
            w.bytes(key.as_bytes()).bytes(value.as_bytes());
        }
        w.0
    }

    /// Reads a payload.
    pub fn decode(payload: &[u8]) -> Result<Start, ProtoError> {
        let mut r = Reader {
            rest: payload,
            what: "start",
        };
        let os = |b: &[u8]| OsString::from_vec(b.to_vec());
        let program = match r.u32()? {
            0 => Program::Path(PathBuf::from(os(r.bytes()?))),
            1 => {
                let name = String::from_utf8_lossy(r.bytes()?).into_owned();
                if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                    return Err(ProtoError::BadName(name));
                }
                Program::Bytes {
                    name,
                    bytes: r.bytes()?.to_vec(),
                }
            }
            _ => return Err(ProtoError::Malformed("start")),
        };
        let mut args = Vec::new();
        for _ in 0..r.u32()? {
            args.push(os(r.bytes()?));
        }
        let mut env = Vec::new();
        for _ in 0..r.u32()? {
            env.push((os(r.bytes()?), os(r.bytes()?)));
        }
        r.end()?;
        Ok(Start { program, args, env })
    }
}

/// `Hello`: a rank's process and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The rank's pid.
    pub pid: u32,
    /// `MPI_Get_processor_name`.
    pub host: String,
}

/// `Started`: the worker's pid and the file it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The worker's pid (on the rank's host).
    pub pid: u32,
    /// The program file (for shipped bytes: in the rank's staging directory).
    pub program: PathBuf,
}

/// `Exited`: how the worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited {
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout (1).
    Stdout = 1,
    /// stderr (2).
    Stderr = 2,
}

/// `Output`: one line (with its `\n`; without it when flushed at the worker's exit or cut at
/// [`crate::lines::MAX_LINE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where the worker wrote it.
    pub stream: Stream,
    /// The bytes.
    pub line: Vec<u8>,
}

/// `PeerRaw`: bytes a rank sends to another rank as a bridge → rank message (tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRaw {
    /// The rank to send them to.
    pub dest: u32,
    /// The message.
    pub bytes: Vec<u8>,
}

macro_rules! codec {
    ($ty:ident, $what:literal, |$s:ident, $w:ident| $enc:expr, |$r:ident| $dec:expr) => {
        impl $ty {
            /// The payload.
            pub fn encode(&self) -> Vec<u8> {
                let $s = self;
                let mut $w = Writer(Vec::new());
                $enc;
                $w.0
            }
            /// Reads a payload.
            pub fn decode(payload: &[u8]) -> Result<$ty, ProtoError> {
                let mut $r = Reader {
                    rest: payload,
                    what: $what,
                };
                let value = $dec;
                $r.end()?;
                Ok(value)
            }
        }
    };
}

codec!(
    Hello,
    "hello",
    |s, w| w.u32(s.pid).bytes(s.host.as_bytes()),
    |r| Hello {
        pid: r.u32()?,
        host: String::from_utf8_lossy(r.bytes()?).into_owned(),
    }
);
codec!(
    Started,
    "started",
    |s, w| w.u32(s.pid).bytes(s.program.as_os_str().as_bytes()),
    |r| Started {
        pid: r.u32()?,
        program: PathBuf::from(OsString::from_vec(r.bytes()?.to_vec())),
    }
);
codec!(
    Exited,
    "exited",
    |s, w| w
        .u32(s.code.map_or(u32::MAX, |c| c as u32))
        .u32(s.signal.map_or(0, |c| c as u32)),
    |r| {
        let code = r.u32()?;
        let signal = r.u32()?;
        Exited {
            code: (code != u32::MAX).then_some(code as i32),
            signal: (signal != 0).then_some(signal as i32),
        }
    }
);
codec!(
    Output,
    "output",
    |s, w| w.u32(s.stream as u32).bytes(&s.line),
    |r| Output {
        stream: match r.u32()? {
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            _ => return Err(ProtoError::Malformed("output")),
        },
        line: r.bytes()?.to_vec(),
    }
);
codec!(
    PeerRaw,
    "peer-raw",
    |s, w| w.u32(s.dest).bytes(&s.bytes),
    |r| PeerRaw {
        dest: r.u32()?,
        bytes: r.bytes()?.to_vec(),
    }
);

/// A `u32` payload (`Ready`).
pub fn decode_u32(payload: &[u8]) -> Result<u32, ProtoError> {
    let mut r = Reader {
        rest: payload,
        what: "u32",
    };
    let value = r.u32()?;
    r.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let start = Start {
            program: Program::Bytes {
                name: "echo".into(),
                bytes: vec![0x7f, b'E', b'L', b'F'],
            },
            args: vec!["a b".into(), "".into()],
            env: vec![("K".into(), "v=1".into())],
        };
        assert_eq!(Start::decode(&start.encode()), Ok(start));
        let path = Start {
            program: Program::Path("/bin/true".into()),
            args: vec![],
            env: vec![],
        };
        assert_eq!(Start::decode(&path.encode()), Ok(path));
        let hello = Hello {
            pid: 9,
            host: "rmpnode1".into(),
        };
        assert_eq!(Hello::decode(&hello.encode()), Ok(hello));
        for exited in [
            Exited {
                code: Some(3),
                signal: None,
            },
            Exited {
                code: None,
                signal: Some(9),
            },
        ] {
            assert_eq!(Exited::decode(&exited.encode()), Ok(exited));
        }
        let output = Output {
            stream: Stream::Stderr,
            line: b"x\n".to_vec(),
        };
        assert_eq!(Output::decode(&output.encode()), Ok(output));
    }

    #[test]
    fn bad_payloads_are_refused() {
        let bad = Start {
            program: Program::Bytes {
                name: "../x".into(),
                bytes: vec![],
            },
            args: vec![],
            env: vec![],
        };
        assert_eq!(
            Start::decode(&bad.encode()),
            Err(ProtoError::BadName("../x".into()))
        );
        let mut long = Hello {
            pid: 1,
            host: "h".into(),
        }
        .encode();
        long.push(0);
        assert_eq!(Hello::decode(&long), Err(ProtoError::Malformed("hello")));
        assert_eq!(
            Start::decode(&[1, 0, 0]),
            Err(ProtoError::Malformed("start"))
        );
        assert_eq!(decode_u32(&4u32.to_le_bytes()), Ok(4));
    }
}
