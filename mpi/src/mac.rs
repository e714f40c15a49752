//! The secret: its file, the bridge's proof to the front (the secret itself, over the
//! front's owner-only Unix socket), and HMAC-SHA256 for the key of bridge → rank frames.

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
/// The first bytes of the bridge's proof (protocol version 2).
pub const MAGIC: &[u8; 8] = b"RUSTMPB2";
/// The length of the bridge's proof: [`MAGIC`] and the secret.
pub const PROOF_LEN: usize = 8 + SECRET_LEN;

const LINK_LABEL: &[u8] = b"rustmp-mpi link key v1";

/// A failed handshake or secret file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer does not speak this protocol.
    #[error("the peer does not speak rustmp-mpi protocol 2")]
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

/// Whether two byte strings are equal, in a time that depends only on their lengths.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The front's side of the handshake: reads the bridge's proof and checks it (the secret,
/// compared in constant time). The front's socket is owner-only and its peer checked by
/// `SO_PEERCRED`, so a peer that sends the secret has read the 0600 secret file: no
/// challenge is needed, and the front needs no cryptography.
pub fn check(stream: &mut impl Read, secret: &[u8]) -> Result<(), AuthError> {
    let mut proof = [0u8; PROOF_LEN];
    stream.read_exact(&mut proof)?;
    if &proof[..8] != MAGIC {
        return Err(AuthError::Protocol);
    }
    if same_bytes(&proof[8..], secret) {
        Ok(())
    } else {
        Err(AuthError::WrongProof)
    }
}

/// The bridge's side of the handshake: sends its proof, [`MAGIC`] and the secret.
pub fn present(stream: &mut impl Write, secret: &[u8]) -> Result<(), AuthError> {
    stream.write_all(&[&MAGIC[..], secret].concat())?;
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
            present(&mut bridge, &bridge_secret).expect("present");
            let checked = check(&mut front, &secret);
            assert_eq!(checked.is_ok(), ok, "{checked:?}");
        }
        let (mut front, mut other) = UnixStream::pair().expect("pair");
        other.write_all(&[0x5a; PROOF_LEN]).expect("write");
        assert!(matches!(
            check(&mut front, &secret),
            Err(AuthError::Protocol)
        ));
        assert!(same_bytes(b"abc", b"abc") && !same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
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
