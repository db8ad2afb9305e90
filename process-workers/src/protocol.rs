//! The messages parent and worker exchange, and the handshake.
//!
//! Every message is one frame: a 4-byte big-endian length, then the message
//! encoded with postcard. The parent speaks first ([`ToChild::Hello`]); the
//! child answers [`ToParent::Ready`] with its version and pid. Then the
//! parent sends calls and the child sends heartbeats, progress and replies.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::ProtocolError;
use crate::frame::{FrameReader, FrameWriter};

/// The protocol version both sides must speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// The default maximum frame size: 8 MiB. A larger frame is
/// [`ProtocolError::Oversized`].
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

/// A message from the parent to its worker process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// The first message: the parent's version and how often to heartbeat.
    Hello {
        /// The parent's [`PROTOCOL_VERSION`].
        version: u32,
        /// The heartbeat period, in milliseconds.
        heartbeat_ms: u64,
        /// The largest frame either side may send, in bytes.
        max_frame: u64,
    },
    /// A request for the handler.
    Call {
        /// Echoed in the reply.
        id: u64,
        /// The request's bytes.
        payload: Vec<u8>,
    },
}

/// A message from a worker process to its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToParent {
    /// The answer to `Hello`: the child's version and process id.
    Ready {
        /// The child's [`PROTOCOL_VERSION`].
        version: u32,
        /// The child's pid.
        pid: u32,
    },
    /// Sent from a thread of its own: the process is not frozen.
    Heartbeat,
    /// The handler reports progress on call `id`: it is not stuck.
    Progress {
        /// The call in progress.
        id: u64,
    },
    /// The handler's answer to call `id`.
    Reply {
        /// The call answered.
        id: u64,
        /// The handler's output, or its error message.
        result: Result<Vec<u8>, String>,
    },
}

/// Encodes a value with postcard, the protocol's format: for typed calls.
///
/// ```
/// let bytes = candado_process::to_bytes(&(7u32, "seven")).unwrap();
/// let back: (u32, String) = candado_process::from_bytes(&bytes).unwrap();
/// assert_eq!(back, (7, "seven".to_owned()));
/// ```
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ProtocolError> {
    postcard::to_stdvec(value).map_err(|e| ProtocolError::Garbled(e.to_string()))
}

/// Decodes a value encoded with [`to_bytes`]; bad bytes are
/// [`ProtocolError::Garbled`], never a panic. The value must use every
/// byte: bytes left over are garbled too. (Postcard alone ignores them, and
/// then a `cat` that echoes the parent's `Hello` would read as `Ready`.)
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| ProtocolError::Garbled(e.to_string()))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(ProtocolError::Garbled(format!(
            "{} bytes left over after the message",
            rest.len()
        )))
    }
}

/// The parent's half of the handshake: says hello, waits for `Ready`, checks
/// the version. Returns the child's pid.
pub(crate) async fn handshake<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    heartbeat_ms: u64,
    max_frame: usize,
) -> Result<u32, ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    writer
        .send(&ToChild::Hello {
            version: PROTOCOL_VERSION,
            heartbeat_ms,
            max_frame: u64::try_from(max_frame).unwrap_or(u64::MAX),
        })
        .await?;
    check_ready(reader.next::<ToParent>().await?)
}

/// Checks the child's first message.
pub(crate) fn check_ready(first: ToParent) -> Result<u32, ProtocolError> {
    match first {
        ToParent::Ready { version, pid } if version == PROTOCOL_VERSION => Ok(pid),
        ToParent::Ready { version, .. } => Err(ProtocolError::VersionMismatch {
            parent: PROTOCOL_VERSION,
            child: version,
        }),
        other => Err(ProtocolError::Unexpected {
            expected: "Ready",
            got: format!("{other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_hello_is_no_ready_and_bytes_left_over_are_garbled() {
        let hello = to_bytes(&ToChild::Hello {
            version: PROTOCOL_VERSION,
            heartbeat_ms: 100,
            max_frame: 1 << 20,
        })
        .unwrap();
        // Postcard alone would read `Ready { version: 1, pid: 100 }`.
        assert!(matches!(
            from_bytes::<ToParent>(&hello),
            Err(ProtocolError::Garbled(_))
        ));
        let call = to_bytes(&ToChild::Call {
            id: 1,
            payload: vec![1, 2],
        })
        .unwrap();
        assert!(matches!(
            from_bytes::<ToParent>(&call),
            Err(ProtocolError::Garbled(_))
        ));
        let ready = ToParent::Ready { version: 1, pid: 7 };
        assert_eq!(
            from_bytes::<ToParent>(&to_bytes(&ready).unwrap()),
            Ok(ready)
        );
    }
}
