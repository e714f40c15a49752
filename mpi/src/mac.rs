//! HMAC-SHA256: the bridge's proof to the front, the key of bridge → rank frames, and the
//! secret's file.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// The length of the pool's secret.
pub const SECRET_LEN: usize = 32;
/// The length of a MAC.
pub const MAC_LEN: usize = 32;
/// The length of the front's challenge.
pub const NONCE_LEN: usize = 32;
/// The first bytes of the challenge and of the answer (protocol version 1).
pub const MAGIC: &[u8; 8] = b"RUSTMPB1";

const PROOF_LABEL: &[u8] = b"rustmp-mpi bridge proof v1";
const LINK_LABEL: &[u8] = b"rustmp-mpi link key v1";

/// A failed handshake or secret file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer does not speak this protocol.
    #[error("the peer does not speak rustmp-mpi protocol 1")]
    Protocol,
    /// The peer's proof is wrong: it does not know the secret.
    #[error("the peer's proof is wrong (it does not know the pool's secret)")]
    WrongProof,
    /// The secret file is not this user's private file of [`SECRET_LEN`] bytes.
    #[error("the secret file {path}: {why}")]
    SecretFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

fn mac_of(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac
}

/// `HMAC(secret, label || nonce)`: what the bridge answers to the front's challenge.
pub fn proof(secret: &[u8], nonce: &[u8]) -> [u8; MAC_LEN] {
    mac_of(secret, &[PROOF_LABEL, nonce])
        .finalize()
        .into_bytes()
        .into()
}

/// The key of bridge → rank MACs, derived from the secret (rank 0 broadcasts it after MPI
/// init; the secret itself never leaves the bridge's host).
pub fn link_key(secret: &[u8]) -> [u8; MAC_LEN] {
    mac_of(secret, &[LINK_LABEL]).finalize().into_bytes().into()
}

/// The MAC of a bridge → rank frame: `HMAC(key, seq || dest || frame)`, `seq` counting the
/// frames sent to `dest` from 0.
pub fn frame_mac(key: &[u8], seq: u64, dest: u32, frame: &[u8]) -> [u8; MAC_LEN] {
    mac_of(key, &[&seq.to_le_bytes(), &dest.to_le_bytes(), frame])
        .finalize()
        .into_bytes()
        .into()
}

/// Whether `mac` is the MAC of this frame (constant time).
pub fn frame_mac_ok(key: &[u8], seq: u64, dest: u32, frame: &[u8], mac: &[u8]) -> bool {
    mac_of(key, &[&seq.to_le_bytes(), &dest.to_le_bytes(), frame])
        .verify_slice(mac)
        .is_ok()
}

/// `N` bytes from the kernel's random source.
pub fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The front's side of the handshake: challenge the peer and check its proof.
pub fn challenge(stream: &mut (impl Read + Write), secret: &[u8]) -> Result<(), AuthError> {
    let nonce = random::<NONCE_LEN>()?;
    stream.write_all(&[&MAGIC[..], &nonce].concat())?;
    let mut answer = [0u8; 8 + MAC_LEN];
    stream.read_exact(&mut answer)?;
    if &answer[..8] != MAGIC {
        return Err(AuthError::Protocol);
    }
    mac_of(secret, &[PROOF_LABEL, &nonce])
        .verify_slice(&answer[8..])
        .map_err(|_| AuthError::WrongProof)
}

/// The bridge's side of the handshake: answer the front's challenge.
pub fn answer(stream: &mut (impl Read + Write), secret: &[u8]) -> Result<(), AuthError> {
    let mut challenge = [0u8; 8 + NONCE_LEN];
    stream.read_exact(&mut challenge)?;
    if &challenge[..8] != MAGIC {
        return Err(AuthError::Protocol);
    }
    let proof = proof(secret, &challenge[8..]);
    stream.write_all(&[&MAGIC[..], &proof].concat())?;
    Ok(())
}

/// Reads the secret from `path` and unlinks the file. It must be a regular file of this user
/// with no permission for group or others, holding exactly [`SECRET_LEN`] bytes.
pub fn take_secret(path: &Path) -> Result<[u8; SECRET_LEN], AuthError> {
    let fail = |why: String| AuthError::SecretFile {
        path: path.display().to_string(),
        why,
    };
    let mut file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let result = if !meta.is_file() {
        Err(fail("not a regular file".into()))
    } else if meta.uid() != uid {
        Err(fail(format!("owned by uid {}, not {uid}", meta.uid())))
    } else if meta.mode() & 0o077 != 0 {
        Err(fail(format!(
            "mode {:o} lets others read it (0600 expected)",
            meta.mode() & 0o777
        )))
    } else {
        let mut secret = [0u8; SECRET_LEN];
        let mut rest = Vec::new();
        file.read_exact(&mut secret)
            .and_then(|()| file.read_to_end(&mut rest))
            .map_err(|e| fail(e.to_string()))
            .and_then(|extra| {
                if extra == 0 {
                    Ok(secret)
                } else {
                    Err(fail(format!("longer than {SECRET_LEN} bytes")))
                }
            })
    };
    let _ = std::fs::remove_file(path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_bridge_with_the_secret_passes_and_one_without_does_not() {
        let secret = [7u8; SECRET_LEN];
        for (bridge_secret, ok) in [([7u8; SECRET_LEN], true), ([8u8; SECRET_LEN], false)] {
            let (mut front, mut bridge) = UnixStream::pair().expect("pair");
            let answering = std::thread::spawn(move || answer(&mut bridge, &bridge_secret));
            let checked = challenge(&mut front, &secret);
            assert!(answering.join().expect("thread").is_ok());
            assert_eq!(checked.is_ok(), ok, "{checked:?}");
        }
    }

    #[test]
    fn frame_macs_bind_key_sequence_and_destination() {
        let key = link_key(&[1u8; SECRET_LEN]);
        let mac = frame_mac(&key, 4, 2, b"frame");
        assert!(frame_mac_ok(&key, 4, 2, b"frame", &mac));
        assert!(!frame_mac_ok(&key, 5, 2, b"frame", &mac));
        assert!(!frame_mac_ok(&key, 4, 3, b"frame", &mac));
        assert!(!frame_mac_ok(&key, 4, 2, b"frame!", &mac));
        assert!(!frame_mac_ok(
            &link_key(&[2u8; SECRET_LEN]),
            4,
            2,
            b"frame",
            &mac
        ));
    }
}
