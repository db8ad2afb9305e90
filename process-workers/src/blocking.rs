//! Frames on blocking pipes (the worker's side): the same layout as the
//! parent's codec (a 4-byte big-endian length, then postcard), with plain
//! `std::io`, so a worker needs no async runtime.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ProtocolError;
use crate::protocol::{from_bytes, to_bytes};

fn io_error(error: io::Error) -> ProtocolError {
    match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => ProtocolError::Closed,
        _ => ProtocolError::Io(error.to_string()),
    }
}

/// Reads one message; [`ProtocolError::Closed`] at the end of the stream.
pub(crate) fn read_frame<T: DeserializeOwned>(
    reader: &mut impl Read,
    max_frame: usize,
) -> Result<T, ProtocolError> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).map_err(io_error)?;
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > max_frame {
        return Err(ProtocolError::Oversized { max: max_frame });
    }
    let mut frame = vec![0; len];
    reader.read_exact(&mut frame).map_err(io_error)?;
    from_bytes(&frame)
}

/// Encodes a message into one frame, length prefix included.
pub(crate) fn encode_frame<T: Serialize>(
    message: &T,
    max_frame: usize,
) -> Result<Vec<u8>, ProtocolError> {
    let body = to_bytes(message)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|_| body.len() <= max_frame)
        .ok_or(ProtocolError::Oversized { max: max_frame })?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes a whole frame (in one `write_all`, so frames written under one
/// lock never interleave) and flushes.
pub(crate) fn write_frame(writer: &mut impl Write, frame: &[u8]) -> Result<(), ProtocolError> {
    writer.write_all(frame).map_err(io_error)?;
    writer.flush().map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameReader, FrameWriter};
    use crate::protocol::{ToChild, ToParent};

    #[tokio::test]
    async fn blocking_frames_and_the_async_codec_agree() {
        let frame = encode_frame(&ToParent::Progress { id: 3 }, 64).unwrap();
        let mut reader = FrameReader::new(&frame[..], 64);
        assert_eq!(
            reader.next::<ToParent>().await.unwrap(),
            ToParent::Progress { id: 3 }
        );

        let mut bytes = Vec::new();
        let call = ToChild::Call {
            id: 9,
            payload: b"hi".to_vec(),
        };
        FrameWriter::new(&mut bytes, 64).send(&call).await.unwrap();
        assert_eq!(read_frame::<ToChild>(&mut &bytes[..], 64).unwrap(), call);
    }

    #[test]
    fn oversized_garbled_and_closed_are_typed() {
        let big = encode_frame(
            &ToChild::Call {
                id: 1,
                payload: vec![0; 100],
            },
            1024,
        )
        .unwrap();
        assert_eq!(
            read_frame::<ToChild>(&mut &big[..], 32),
            Err(ProtocolError::Oversized { max: 32 })
        );
        assert_eq!(
            encode_frame(
                &ToChild::Call {
                    id: 1,
                    payload: vec![0; 100]
                },
                32
            ),
            Err(ProtocolError::Oversized { max: 32 })
        );
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame::<ToChild>(&mut &garbage[..], 32),
            Err(ProtocolError::Garbled(_))
        ));
        assert_eq!(
            read_frame::<ToChild>(&mut &[0u8, 0][..], 32),
            Err(ProtocolError::Closed)
        );
    }
}
