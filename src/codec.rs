//! Serialization of values that cross process boundaries: MessagePack over serde (`rmp-serde`).
//!
//! The format is self-describing, so every serde shape works, as with serde_json: internally,
//! adjacently and un-tagged enums, `flatten`, `skip_serializing_if` (structs are encoded as maps
//! with their field names), and maps or sequences whose length is known only at their end. Byte
//! buffers ([`crate::ByteBuf`], `serde_bytes`) are one `bin` block (one copy); a `Vec<u8>` is a
//! sequence of integers (one to two bytes each). A value that cannot be encoded or decoded gives
//! [`Error::Codec`] naming its type and the reason.

#![deny(unsafe_code)]

use crate::error::{Error, Result};
use rmp_serde::{decode, encode};
use serde::{Serialize, de::DeserializeOwned};

/// Writes the encoding of `value` to `w`.
pub(crate) fn encode_to<T: Serialize + ?Sized, W: std::io::Write>(value: &T, w: W) -> Result<()> {
    let mut ser = rmp_serde::Serializer::new(w).with_struct_map();
    value.serialize(&mut ser).map_err(|e| encode_error::<T>(&e))
}

/// Appends the encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    encode_to(value, out)
}

/// The size of the encoding of `value`, in bytes (the value is serialized, nothing is stored).
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize> {
    let mut n = Counter(0);
    encode_to(value, &mut n)?;
    Ok(n.0)
}

/// Decodes a value from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| decode_error::<T>(&e))
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes `value` into a per-thread scratch buffer and gives its bytes to `f`.
pub(crate) fn with_encoded<T: Serialize + ?Sized, R>(
    value: &T,
    f: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            encode_into(value, &mut buf)?;
            let r = f(&buf);
            if buf.capacity() > (1 << 20) {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => {
            let mut buf = Vec::new();
            encode_into(value, &mut buf)?;
            f(&buf)
        }
    })
}

/// A writer that only counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0 += buf.len();
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cold]
fn encode_error<T: ?Sized>(e: &encode::Error) -> Error {
    let reason = match e {
        encode::Error::InvalidValueWrite(w) => format!("writing the message failed: {w}"),
        encode::Error::UnknownLength => "a sequence's length is unknown".to_string(),
        encode::Error::InvalidDataModel(m) => {
            format!("its Serialize implementation is invalid: {m}")
        }
        encode::Error::DepthLimitExceeded => "it is nested more than 1024 levels deep".to_string(),
        encode::Error::Syntax(m) => m.clone(),
    };
    encode_failed::<T>(&reason)
}

/// The error for a value of type `T` that could not be encoded, and why.
#[cold]
pub(crate) fn encode_failed<T: ?Sized>(reason: &str) -> Error {
    Error::Codec(format!(
        "cannot encode a value of type `{}`: {reason}",
        std::any::type_name::<T>()
    ))
}

#[cold]
fn decode_error<T>(e: &decode::Error) -> Error {
    let reason = match e {
        decode::Error::TypeMismatch(m) => format!(
            "the message holds {} where the type expects another kind of value",
            describe(*m)
        ),
        decode::Error::InvalidMarkerRead(_) | decode::Error::InvalidDataRead(_) => {
            "the message ends before the value does".to_string()
        }
        decode::Error::OutOfRange => "a number is out of the range of its type".to_string(),
        decode::Error::LengthMismatch(n) => format!(
            "a sequence, map or enum has another length than the type expects (it read {n})"
        ),
        decode::Error::Utf8Error(u) => format!("a string is not valid UTF-8 ({u})"),
        decode::Error::DepthLimitExceeded => "it is nested more than 1024 levels deep".to_string(),
        decode::Error::Uncategorized(m) | decode::Error::Syntax(m) => m.clone(),
    };
    Error::Codec(format!(
        "cannot decode a value of type `{}`: {reason}",
        std::any::type_name::<T>()
    ))
}

/// What a MessagePack marker stands for, in serde's terms.
fn describe(m: rmp::Marker) -> &'static str {
    use rmp::Marker as M;
    match m {
        M::Null => "nothing (a unit or None)",
        M::True | M::False => "a bool",
        M::FixPos(_) | M::U8 | M::U16 | M::U32 | M::U64 => "an unsigned integer",
        M::FixNeg(_) | M::I8 | M::I16 | M::I32 | M::I64 => "a negative integer",
        M::F32 | M::F64 => "a float",
        M::FixStr(_) | M::Str8 | M::Str16 | M::Str32 => "a string",
        M::Bin8 | M::Bin16 | M::Bin32 => "bytes",
        M::FixArray(_) | M::Array16 | M::Array32 => "a sequence (or tuple)",
        M::FixMap(_) | M::Map16 | M::Map32 => "a map (or struct)",
        M::FixExt1
        | M::FixExt2
        | M::FixExt4
        | M::FixExt8
        | M::FixExt16
        | M::Ext8
        | M::Ext16
        | M::Ext32 => "a MessagePack extension",
        M::Reserved => "an invalid byte",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_buffers_are_one_bin_block_and_vec_u8_is_a_sequence() {
        let blob = serde_bytes::ByteBuf::from(vec![7u8; 1000]);
        let mut out = Vec::new();
        encode_into(&blob, &mut out).unwrap();
        // bin16 marker, 2-byte length, the bytes.
        assert_eq!(out.len(), 3 + 1000);
        assert_eq!(out[0], 0xc5);
        assert_eq!(encoded_len(&blob).unwrap(), out.len());
        let back: serde_bytes::ByteBuf = decode(&out).unwrap();
        assert_eq!(back, blob);
        // A Vec<u8> is a sequence: it still decodes as a Vec<u8>, and not from a bin block.
        let v = vec![1u8, 200];
        let mut seq = Vec::new();
        encode_into(&v, &mut seq).unwrap();
        assert_eq!(seq, [0x92, 0x01, 0xcc, 200]);
        assert_eq!(decode::<Vec<u8>>(&seq).unwrap(), v);
    }

    #[test]
    fn errors_name_the_type_and_the_reason() {
        let mut out = Vec::new();
        encode_into("text", &mut out).unwrap();
        let e = decode::<u32>(&out).unwrap_err().to_string();
        assert!(e.contains("`u32`") && e.contains("a string"), "{e}");
        let e = decode::<(u8, u8)>(&out[..2]).unwrap_err().to_string();
        assert!(e.contains("(u8, u8)"), "{e}");
        let e = decode::<String>(&out[..2]).unwrap_err().to_string();
        assert!(e.contains("ends before"), "{e}");
    }
}
