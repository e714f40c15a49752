//! The connection file Jupyter writes for a kernel.

use serde::Deserialize;
use std::path::Path;

/// What a connection file holds.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionInfo {
    /// `tcp` or `ipc`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// The address to bind.
    pub ip: String,
    /// Shell port.
    pub shell_port: u16,
    /// IOPub port.
    pub iopub_port: u16,
    /// Stdin port.
    pub stdin_port: u16,
    /// Control port.
    pub control_port: u16,
    /// Heartbeat port.
    pub hb_port: u16,
    /// The HMAC key (empty: no authentication).
    #[serde(default)]
    pub key: String,
    /// `hmac-sha256` and friends.
    #[serde(default = "default_scheme")]
    pub signature_scheme: String,
}

fn default_transport() -> String {
    "tcp".into()
}

fn default_scheme() -> String {
    "hmac-sha256".into()
}

/// Why a connection file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The file could not be read.
    #[error("cannot read the connection file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid connection file.
    #[error("invalid connection file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The transport is not supported by the ZeroMQ implementation.
    #[error("transport {0:?} is not supported (only tcp and ipc)")]
    Transport(String),
}

impl ConnectionInfo {
    /// Reads and checks a connection file.
    pub fn load(path: &Path) -> Result<ConnectionInfo, ConnectionError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConnectionError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let info: ConnectionInfo =
            serde_json::from_str(&text).map_err(|source| ConnectionError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        if info.transport != "tcp" && info.transport != "ipc" {
            return Err(ConnectionError::Transport(info.transport));
        }
        Ok(info)
    }

    /// The endpoint of one port, as jupyter_client writes it: `tcp://ip:port`, or for `ipc`
    /// (Unix sockets) `ipc://ip-port`, where `ip` is a path prefix.
    pub fn endpoint(&self, port: u16) -> String {
        match self.transport.as_str() {
            "ipc" => format!("ipc://{}-{}", self.ip, port),
            t => format!("{t}://{}:{}", self.ip, port),
        }
    }
}
