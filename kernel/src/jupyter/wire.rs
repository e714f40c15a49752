//! The Jupyter wire protocol: frames, HMAC signatures, headers.
//!
//! A message is `[identities…, "<IDS|MSG>", signature, header, parent_header, metadata, content,
//! buffers…]`. The signature is the hex HMAC of the four JSON dict frames, in that order and
//! nothing else (buffers are not signed), keyed by the connection file's `key` with the hash of
//! its `signature_scheme`. An empty key turns authentication off.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashSet, VecDeque};

/// The frame between routing identities and the signature.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";

/// The protocol version this kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.5";

/// Why an incoming message was rejected.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// There is no `<IDS|MSG>` frame, or fewer than five frames after it.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A key is set but the message has no signature.
    #[error("unsigned message")]
    Unsigned,
    /// The signature does not match.
    #[error("invalid signature")]
    BadSignature,
    /// The same signature was seen before (a replay).
    #[error("duplicate signature (replayed message)")]
    Duplicate,
    /// A dict frame is not JSON (or the header lacks a field).
    #[error("invalid JSON in {frame}: {error}")]
    Json {
        /// Which frame.
        frame: &'static str,
        /// The parser's message.
        error: serde_json::Error,
    },
    /// The connection file names a hash we do not have.
    #[error(
        "unsupported signature_scheme {0:?} (supported: hmac-sha256, hmac-sha224, hmac-sha384, hmac-sha512)"
    )]
    UnsupportedScheme(String),
}

/// A message header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Unique id of this message.
    pub msg_id: String,
    /// The sender's session id.
    pub session: String,
    /// The sender's user name.
    #[serde(default)]
    pub username: String,
    /// ISO 8601 time of sending.
    #[serde(default)]
    pub date: String,
    /// The message type (`execute_request`, …).
    pub msg_type: String,
    /// The protocol version of the sender.
    #[serde(default)]
    pub version: String,
    /// Fields we do not interpret (`subshell_id`, …), kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A decoded message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Routing identities (ROUTER sockets) or the topic (IOPub).
    pub identities: Vec<Bytes>,
    /// The header.
    pub header: Header,
    /// The parent's header, or `{}`.
    pub parent_header: Value,
    /// Metadata dict.
    pub metadata: Value,
    /// Content dict.
    pub content: Value,
    /// Binary buffers (kept, not signed).
    pub buffers: Vec<Bytes>,
}

impl Message {
    /// The request's header as a JSON value (to use as a reply's parent).
    pub fn header_value(&self) -> Value {
        serde_json::to_value(&self.header).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

#[derive(Clone)]
enum Algorithm {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// Signs and verifies messages; remembers recent signatures to refuse replays.
pub struct Signer {
    key: Vec<u8>,
    algorithm: Algorithm,
    seen: HashSet<Vec<u8>>,
    order: VecDeque<Vec<u8>>,
}

/// How many recent signatures are remembered (jupyter_client keeps 2^16).
const HISTORY: usize = 1 << 16;

macro_rules! with_mac {
    ($alg:expr, $key:expr, |$mac:ident| $body:expr) => {
        match $alg {
            Algorithm::Sha224 => {
                let mut $mac = <Hmac<sha2::Sha224> as Mac>::new_from_slice($key)
                    .expect("HMAC takes any key length");
                $body
            }
            Algorithm::Sha256 => {
                let mut $mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice($key)
                    .expect("HMAC takes any key length");
                $body
            }
            Algorithm::Sha384 => {
                let mut $mac = <Hmac<sha2::Sha384> as Mac>::new_from_slice($key)
                    .expect("HMAC takes any key length");
                $body
            }
            Algorithm::Sha512 => {
                let mut $mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice($key)
                    .expect("HMAC takes any key length");
                $body
            }
        }
    };
}

impl Signer {
    /// A signer for `key` and `scheme` (`hmac-sha256` and friends).
    pub fn new(key: &str, scheme: &str) -> Result<Signer, WireError> {
        let algorithm = match scheme {
            "" | "hmac-sha256" => Algorithm::Sha256,
            "hmac-sha224" => Algorithm::Sha224,
            "hmac-sha384" => Algorithm::Sha384,
            "hmac-sha512" => Algorithm::Sha512,
            other => return Err(WireError::UnsupportedScheme(other.to_string())),
        };
        Ok(Signer {
            key: key.as_bytes().to_vec(),
            algorithm,
            seen: HashSet::new(),
            order: VecDeque::new(),
        })
    }

    fn enabled(&self) -> bool {
        !self.key.is_empty()
    }

    /// The hex signature of the four dict frames (empty when authentication is off).
    pub fn sign(&self, parts: [&[u8]; 4]) -> String {
        if !self.enabled() {
            return String::new();
        }
        with_mac!(self.algorithm, &self.key, |mac| {
            for p in parts {
                mac.update(p);
            }
            hex::encode(mac.finalize().into_bytes())
        })
    }

    /// Checks a signature in constant time, and that it was not seen before.
    fn verify(&mut self, signature: &[u8], parts: [&[u8]; 4]) -> Result<(), WireError> {
        if !self.enabled() {
            return Ok(());
        }
        if signature.is_empty() {
            return Err(WireError::Unsigned);
        }
        let raw = hex::decode(signature).map_err(|_| WireError::BadSignature)?;
        let ok = with_mac!(self.algorithm, &self.key, |mac| {
            for p in parts {
                mac.update(p);
            }
            mac.verify_slice(&raw).is_ok()
        });
        if !ok {
            return Err(WireError::BadSignature);
        }
        if !self.seen.insert(raw.clone()) {
            return Err(WireError::Duplicate);
        }
        self.order.push_back(raw);
        if self.order.len() > HISTORY
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        Ok(())
    }

    /// Decodes and authenticates the frames of one message.
    pub fn decode(&mut self, frames: Vec<Bytes>) -> Result<Message, WireError> {
        let split = frames
            .iter()
            .position(|f| f.as_ref() == DELIMITER)
            .ok_or_else(|| WireError::Malformed("no <IDS|MSG> delimiter".into()))?;
        if frames.len() < split + 6 {
            return Err(WireError::Malformed(format!(
                "{} frames after the delimiter, need at least 5",
                frames.len() - split - 1
            )));
        }
        let identities = frames[..split].to_vec();
        let signature = &frames[split + 1];
        let dicts = [
            frames[split + 2].as_ref(),
            frames[split + 3].as_ref(),
            frames[split + 4].as_ref(),
            frames[split + 5].as_ref(),
        ];
        self.verify(signature, dicts)?;
        let parse = |frame: &'static str, bytes: &[u8]| -> Result<Value, WireError> {
            serde_json::from_slice(bytes).map_err(|error| WireError::Json { frame, error })
        };
        let header: Header = serde_json::from_slice(dicts[0]).map_err(|error| WireError::Json {
            frame: "header",
            error,
        })?;
        let parent_header = parse("parent_header", dicts[1])?;
        let metadata = parse("metadata", dicts[2])?;
        let content = parse("content", dicts[3])?;
        if !content.is_object() {
            return Err(WireError::Malformed("content is not a dict".into()));
        }
        Ok(Message {
            identities,
            header,
            parent_header,
            metadata,
            content,
            buffers: frames[split + 6..].to_vec(),
        })
    }

    /// Encodes a message into frames, signed.
    pub fn encode(&self, msg: &Message) -> Vec<Bytes> {
        let header = serde_json::to_vec(&msg.header).unwrap_or_else(|_| b"{}".to_vec());
        let parent = serde_json::to_vec(&msg.parent_header).unwrap_or_else(|_| b"{}".to_vec());
        let metadata = serde_json::to_vec(&msg.metadata).unwrap_or_else(|_| b"{}".to_vec());
        let content = serde_json::to_vec(&msg.content).unwrap_or_else(|_| b"{}".to_vec());
        let signature = self.sign([&header, &parent, &metadata, &content]);
        let mut frames = msg.identities.clone();
        frames.push(Bytes::from_static(DELIMITER));
        frames.push(Bytes::from(signature.into_bytes()));
        frames.push(Bytes::from(header));
        frames.push(Bytes::from(parent));
        frames.push(Bytes::from(metadata));
        frames.push(Bytes::from(content));
        frames.extend(msg.buffers.iter().cloned());
        frames
    }
}

/// Builds the header of a message the kernel sends.
pub fn new_header(session: &str, msg_type: &str) -> Header {
    Header {
        msg_id: uuid::Uuid::new_v4().to_string(),
        session: session.to_string(),
        username: "kernel".to_string(),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        msg_type: msg_type.to_string(),
        version: PROTOCOL_VERSION.to_string(),
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message whose content is the JSON `content`.
    fn message(content: &str) -> Message {
        Message {
            identities: vec![Bytes::from_static(b"client-1")],
            header: new_header("s", "kernel_info_request"),
            parent_header: Value::Object(Map::new()),
            metadata: Value::Object(Map::new()),
            content: serde_json::from_str(content).unwrap(),
            buffers: vec![Bytes::from_static(b"\x00\x01binary")],
        }
    }

    #[test]
    fn round_trip_keeps_identities_content_and_buffers() {
        let signer = Signer::new("secret", "hmac-sha256").unwrap();
        let frames = signer.encode(&message(r#"{"a": 1}"#));
        let mut receiver = Signer::new("secret", "hmac-sha256").unwrap();
        let m = receiver.decode(frames).unwrap();
        assert_eq!(m.identities, vec![Bytes::from_static(b"client-1")]);
        assert_eq!(m.content.to_string(), r#"{"a":1}"#);
        assert_eq!(m.buffers, vec![Bytes::from_static(b"\x00\x01binary")]);
        assert_eq!(m.header.msg_type, "kernel_info_request");
    }

    #[test]
    fn signatures_match_pythons_hmac() {
        // hmac.new(b"key", b"{}" * 4, hashlib.sha256 / sha512).hexdigest()
        let s = Signer::new("key", "hmac-sha256").unwrap();
        assert_eq!(
            s.sign([b"{}", b"{}", b"{}", b"{}"]),
            "ca767b02c5bc061ed184a9a029e7f93a7f2f7ed4e8fe74120fc1212f0b008fa3"
        );
        let s = Signer::new("key", "hmac-sha512").unwrap();
        assert!(
            s.sign([b"{}", b"{}", b"{}", b"{}"])
                .starts_with("2f7411556710fc214f2814c82351b6da")
        );
    }

    #[test]
    fn bad_unsigned_replayed_and_malformed_messages_are_refused() {
        let signer = Signer::new("secret", "hmac-sha256").unwrap();
        let frames = signer.encode(&message("{}"));
        let mut receiver = Signer::new("secret", "hmac-sha256").unwrap();
        receiver.decode(frames.clone()).unwrap();
        assert!(matches!(
            receiver.decode(frames.clone()),
            Err(WireError::Duplicate)
        ));
        let mut tampered = frames.clone();
        let n = tampered.len();
        tampered[n - 2] = Bytes::from_static(b"{\"evil\": 1}");
        assert!(matches!(
            receiver.decode(tampered),
            Err(WireError::BadSignature)
        ));
        let mut unsigned = frames.clone();
        unsigned[2] = Bytes::new();
        assert!(matches!(
            receiver.decode(unsigned),
            Err(WireError::Unsigned)
        ));
        assert!(matches!(
            receiver.decode(vec![Bytes::from_static(b"x")]),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            Signer::new("k", "hmac-md5"),
            Err(WireError::UnsupportedScheme(_))
        ));
        // A key-less kernel accepts unsigned messages.
        let mut open = Signer::new("", "hmac-sha256").unwrap();
        let plain = Signer::new("", "hmac-sha256")
            .unwrap()
            .encode(&message("{}"));
        assert!(open.decode(plain).is_ok());
    }
}
