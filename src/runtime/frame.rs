//! Length-prefixed frames on QUIC streams: a 4-byte big-endian length, then the bytes.
//! A stream carries one or more frames; the reader refuses a length above its limit
//! before reading (or allocating for) the body.

use quinn::{RecvStream, SendStream};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Why a frame could not be read. The stream is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The announced length exceeds the limit; the body was not read.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The stream or its connection failed.
    #[error("stream failed: {0}")]
    Read(#[from] quinn::ReadError),
}

/// Writes one frame (does not finish the stream).
pub async fn write_frame(send: &mut SendStream, payload: &[u8]) -> Result<(), quinn::WriteError> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    send.write_all(&len.to_be_bytes()).await?;
    send.write_all(payload).await
}

/// Reads the next frame; `Ok(None)` when the stream finished cleanly between frames.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    limit: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    match read_len(recv, limit).await? {
        Some(len) => read_body(recv, len).await.map(Some),
        None => Ok(None),
    }
}

/// Reads the next length prefix, refusing one above `limit`; `Ok(None)` when the stream
/// finished cleanly between frames.
pub(crate) async fn read_len(
    recv: &mut RecvStream,
    limit: usize,
) -> Result<Option<usize>, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    while got < LEN_PREFIX {
        match recv.read(&mut prefix[got..]).await? {
            Some(n) => got += n,
            None if got == 0 => return Ok(None),
            None => return Err(FrameError::Truncated),
        }
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(Some(len))
}

/// Reads a frame body of `len` bytes.
pub(crate) async fn read_body(recv: &mut RecvStream, len: usize) -> Result<Vec<u8>, FrameError> {
    // Grow with the data actually received, so a false length costs nothing up front.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await? {
            Some(chunk) => body.extend_from_slice(&chunk.bytes),
            None => return Err(FrameError::Truncated),
        }
    }
    Ok(body)
}
