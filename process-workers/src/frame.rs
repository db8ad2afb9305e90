//! Frames on an async pipe (the parent's side): tokio-util's
//! length-delimited codec with a maximum frame size, and postcard inside.

use std::io;

use futures_util::{SinkExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::bytes::Bytes;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::error::ProtocolError;
use crate::protocol::{from_bytes, to_bytes};

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max_frame)
        .new_codec()
}

/// Turns a codec error into the protocol's words.
fn from_io(error: io::Error, max: usize) -> ProtocolError {
    let oversized = error
        .get_ref()
        .is_some_and(|inner| inner.is::<tokio_util::codec::LengthDelimitedCodecError>());
    if oversized {
        ProtocolError::Oversized { max }
    } else if error.kind() == io::ErrorKind::UnexpectedEof {
        ProtocolError::Closed
    } else {
        ProtocolError::Io(error.to_string())
    }
}

/// Reads typed messages from frames.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: FramedRead<R, LengthDelimitedCodec>,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(reader: R, max_frame: usize) -> Self {
        Self {
            inner: FramedRead::new(reader, codec(max_frame)),
            max: max_frame,
        }
    }

    /// The next message; [`ProtocolError::Closed`] at the end of the stream.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Result<T, ProtocolError> {
        match self.inner.next().await {
            Some(Ok(frame)) => from_bytes(&frame),
            Some(Err(e)) => Err(from_io(e, self.max)),
            None => Err(ProtocolError::Closed),
        }
    }

    /// The remaining messages as a stream; it ends after the first error
    /// (a stream that carried a bad frame cannot be trusted).
    pub(crate) fn into_stream<T: DeserializeOwned>(
        self,
    ) -> impl Stream<Item = Result<T, ProtocolError>> {
        let max = self.max;
        self.inner
            .map(move |frame| match frame {
                Ok(bytes) => from_bytes(&bytes),
                Err(e) => Err(from_io(e, max)),
            })
            .scan(false, |failed, item| {
                let out = if *failed { None } else { Some(item) };
                if matches!(out, Some(Err(_))) {
                    *failed = true;
                }
                std::future::ready(out)
            })
    }
}

/// Writes typed messages as frames.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    inner: FramedWrite<W, LengthDelimitedCodec>,
    max: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(writer: W, max_frame: usize) -> Self {
        Self {
            inner: FramedWrite::new(writer, codec(max_frame)),
            max: max_frame,
        }
    }

    /// Encodes and sends one message, flushed.
    pub(crate) async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), ProtocolError> {
        let bytes = to_bytes(message)?;
        self.send_raw(Bytes::from(bytes)).await
    }

    /// Sends bytes as one frame, whatever they hold (tests send garbage).
    pub(crate) async fn send_raw(&mut self, frame: Bytes) -> Result<(), ProtocolError> {
        if frame.len() > self.max {
            return Err(ProtocolError::Oversized { max: self.max });
        }
        self.inner
            .send(frame)
            .await
            .map_err(|e| from_io(e, self.max))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, AsyncWriteExt};

    use super::*;
    use crate::protocol::{handshake, ToChild, ToParent, PROTOCOL_VERSION};

    #[tokio::test]
    async fn messages_round_trip_through_frames() {
        let (a, b) = duplex(1024);
        let mut writer = FrameWriter::new(a, 256);
        let mut reader = FrameReader::new(b, 256);
        let sent = ToChild::Call {
            id: 7,
            payload: vec![1, 2, 3],
        };
        writer.send(&sent).await.unwrap();
        writer
            .send(&ToChild::Call {
                id: 8,
                payload: vec![],
            })
            .await
            .unwrap();
        assert_eq!(reader.next::<ToChild>().await.unwrap(), sent);
        assert_eq!(
            reader.next::<ToChild>().await.unwrap(),
            ToChild::Call {
                id: 8,
                payload: vec![]
            }
        );
        drop(writer);
        assert_eq!(reader.next::<ToChild>().await, Err(ProtocolError::Closed));
    }

    #[tokio::test]
    async fn an_oversized_frame_is_a_typed_error_on_both_ends() {
        let (mut a, b) = duplex(1024);
        let mut reader = FrameReader::new(b, 16);
        // A length prefix of 1 MiB, far above the reader's 16 bytes.
        a.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        assert_eq!(
            reader.next::<ToParent>().await,
            Err(ProtocolError::Oversized { max: 16 })
        );
        let (a, _b) = duplex(1024);
        let mut writer = FrameWriter::new(a, 16);
        let big = ToChild::Call {
            id: 1,
            payload: vec![0; 64],
        };
        assert_eq!(
            writer.send(&big).await,
            Err(ProtocolError::Oversized { max: 16 })
        );
    }

    #[tokio::test]
    async fn garbage_is_a_typed_error_and_ends_the_stream() {
        let (a, b) = duplex(1024);
        let mut writer = FrameWriter::new(a, 64);
        writer
            .send_raw(Bytes::from_static(&[0xff; 9]))
            .await
            .unwrap();
        writer.send(&ToParent::Heartbeat).await.unwrap();
        let mut stream = Box::pin(FrameReader::new(b, 64).into_stream::<ToParent>());
        assert!(matches!(
            stream.next().await,
            Some(Err(ProtocolError::Garbled(_)))
        ));
        // The good frame after it is not trusted.
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn a_version_mismatch_is_a_typed_error() {
        let (parent_end, child_end) = duplex(1024);
        let (p_read, p_write) = tokio::io::split(parent_end);
        let (c_read, c_write) = tokio::io::split(child_end);
        let child = tokio::spawn(async move {
            let mut reader = FrameReader::new(c_read, 64);
            let mut writer = FrameWriter::new(c_write, 64);
            let hello = reader.next::<ToChild>().await.unwrap();
            assert!(matches!(
                hello,
                ToChild::Hello {
                    version: PROTOCOL_VERSION,
                    heartbeat_ms: 250,
                    max_frame: 64
                }
            ));
            writer
                .send(&ToParent::Ready {
                    version: 99,
                    pid: 5,
                })
                .await
                .unwrap();
        });
        let mut reader = FrameReader::new(p_read, 64);
        let mut writer = FrameWriter::new(p_write, 64);
        assert_eq!(
            handshake(&mut reader, &mut writer, 250, 64).await,
            Err(ProtocolError::VersionMismatch {
                parent: PROTOCOL_VERSION,
                child: 99
            })
        );
        child.await.unwrap();
    }

    #[tokio::test]
    async fn a_matching_handshake_yields_the_childs_pid() {
        let (parent_end, child_end) = duplex(1024);
        let (p_read, p_write) = tokio::io::split(parent_end);
        let (c_read, c_write) = tokio::io::split(child_end);
        tokio::spawn(async move {
            let mut reader = FrameReader::new(c_read, 64);
            let mut writer = FrameWriter::new(c_write, 64);
            reader.next::<ToChild>().await.unwrap();
            let ready = ToParent::Ready {
                version: PROTOCOL_VERSION,
                pid: 4242,
            };
            writer.send(&ready).await.unwrap();
        });
        let mut reader = FrameReader::new(p_read, 64);
        let mut writer = FrameWriter::new(p_write, 64);
        assert_eq!(handshake(&mut reader, &mut writer, 100, 64).await, Ok(4242));
    }
}
