//! Frames: the 9-byte header and the payload that follows it.
//!
//! ```text
//! 0      4    5                 9
//! +------+----+-----------------+----------------------+
//! | VELO | v1 | payload length  | MessagePack payload  |
//! +------+----+-----------------+----------------------+
//!          u8   u32 big-endian    at most 16 MiB
//! ```
//!
//! This module owns the header codec and reading and writing whole frames on any
//! `futures-io` stream. It does not look inside the payload; that is [`crate::rpc`].

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"VELO";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 9;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD_BYTES: u32 = 16 * 1024 * 1024;

/// Bytes of payload read per step: a peer's claimed length is never allocated up front,
/// so memory grows only with what actually arrives.
const READ_STEP_BYTES: usize = 64 * 1024;

/// Encodes the header for a payload of `len` bytes.
///
/// # Examples
/// ```
/// let header = velos_proto::frame::encode_header(5);
/// assert_eq!(&header, b"VELO\x01\x00\x00\x00\x05");
/// ```
pub fn encode_header(len: u32) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    header[5..].copy_from_slice(&len.to_be_bytes());
    header
}

/// Checks a header and returns the payload length it announces.
pub fn decode_header(header: &[u8; HEADER_LEN]) -> Result<u32, Error> {
    if header[..4] != MAGIC {
        return Err(Error::BadMagic {
            found: [header[0], header[1], header[2], header[3]],
        });
    }
    if header[4] != VERSION {
        return Err(Error::UnsupportedVersion { version: header[4] });
    }
    let len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
    if len > MAX_PAYLOAD_BYTES {
        return Err(Error::FrameTooLarge { len });
    }
    Ok(len)
}

/// Encodes a whole frame (header and payload) into one buffer.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= MAX_PAYLOAD_BYTES)
        .ok_or(Error::FrameTooLarge {
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
        })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&encode_header(len));
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Decodes one frame held whole in `bytes`, returning its payload and the bytes after it.
///
/// Returns [`Error::Truncated`] when `bytes` ends before the frame does.
pub fn decode_frame(bytes: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(Error::Truncated)?;
    let len = decode_header(header)? as usize;
    let rest = &bytes[HEADER_LEN..];
    if rest.len() < len {
        return Err(Error::Truncated);
    }
    Ok(rest.split_at(len))
}

/// Reads one frame's payload into `payload` (cleared first).
///
/// Returns `Ok(false)` on a clean end of stream before the first header byte, `Ok(true)`
/// when a frame was read. A stream that ends inside a frame gives [`Error::Truncated`].
pub async fn read_frame<R>(reader: &mut R, payload: &mut Vec<u8>) -> Result<bool, Error>
where
    R: AsyncRead + Unpin,
{
    payload.clear();
    let mut header = [0; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match reader.read(&mut header[filled..]).await {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(Error::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    let len = decode_header(&header)? as usize;
    // Grow with the bytes that arrive, never with the bytes that were promised: at most
    // one step ahead of what was received, and never past the announced length.
    while payload.len() < len {
        let start = payload.len();
        let step = (len - start).min(READ_STEP_BYTES);
        if payload.capacity() < start + step {
            let target = (payload.capacity() * 2).clamp(start + step, len);
            payload.reserve_exact(target - start);
        }
        // Only this step is zeroed (`read_to_end` would zero the whole spare capacity on
        // every call, quadratic in the frame's size).
        payload.resize(start + step, 0);
        let read = loop {
            match reader.read(&mut payload[start..]).await {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match read {
            Ok(0) => {
                payload.truncate(start);
                return Err(Error::Truncated);
            }
            Ok(n) => {
                payload.truncate(start + n);
                // A peer that keeps the stream full would otherwise keep this task busy
                // for the whole frame: let the executor run others between steps.
                if n == step && payload.len() < len {
                    futures_lite::future::yield_now().await;
                }
            }
            Err(e) => {
                payload.truncate(start);
                return Err(Error::Io(e));
            }
        }
    }
    Ok(true)
}

/// Writes one frame carrying `payload` and flushes.
pub async fn write_frame<W>(writer: &mut W, payload: &[u8]) -> Result<(), Error>
where
    W: AsyncWrite + Unpin,
{
    let frame = encode_frame(payload)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        futures_lite::future::block_on(async {
            let mut reader = futures_lite::io::Cursor::new(bytes.to_vec());
            let mut frames = Vec::new();
            let mut payload = Vec::new();
            while read_frame(&mut reader, &mut payload).await? {
                frames.push(payload.clone());
            }
            Ok(frames)
        })
    }

    #[test]
    fn header_round_trips() {
        let header = encode_header(1234);
        assert_eq!(decode_header(&header).unwrap(), 1234);
    }

    #[test]
    fn bad_magic_is_refused() {
        let mut header = encode_header(1);
        header[0] = b'X';
        assert!(matches!(
            decode_header(&header),
            Err(Error::BadMagic { found }) if &found == b"XELO"
        ));
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut header = encode_header(1);
        header[4] = 2;
        assert!(matches!(
            decode_header(&header),
            Err(Error::UnsupportedVersion { version: 2 })
        ));
    }

    #[test]
    fn length_over_the_cap_is_refused() {
        let mut header = encode_header(0);
        header[5..].copy_from_slice(&(MAX_PAYLOAD_BYTES + 1).to_be_bytes());
        assert!(matches!(
            decode_header(&header),
            Err(Error::FrameTooLarge { len }) if len == MAX_PAYLOAD_BYTES + 1
        ));
    }

    #[test]
    fn frames_stream_back_to_back() {
        let mut bytes = encode_frame(b"one").unwrap();
        bytes.extend(encode_frame(b"").unwrap());
        bytes.extend(encode_frame(b"three").unwrap());
        assert_eq!(
            read_all(&bytes).unwrap(),
            vec![b"one".to_vec(), vec![], b"three".to_vec()]
        );
    }

    #[test]
    fn stream_ending_inside_a_header_is_truncated() {
        assert!(matches!(read_all(b"VEL"), Err(Error::Truncated)));
    }

    #[test]
    fn stream_ending_inside_a_payload_is_truncated() {
        let frame = encode_frame(b"hello").unwrap();
        assert!(matches!(
            read_all(&frame[..frame.len() - 1]),
            Err(Error::Truncated)
        ));
    }

    #[test]
    fn claimed_length_is_not_allocated_up_front() {
        // A header promising 16 MiB followed by 3 bytes: the reader fails as truncated
        // without having reserved the promised size.
        let mut bytes = encode_header(MAX_PAYLOAD_BYTES).to_vec();
        bytes.extend_from_slice(b"abc");
        let mut payload = Vec::new();
        let result = futures_lite::future::block_on(read_frame(
            &mut futures_lite::io::Cursor::new(bytes),
            &mut payload,
        ));
        assert!(matches!(result, Err(Error::Truncated)));
        assert!(payload.capacity() < 1024 * 1024, "{}", payload.capacity());
    }

    #[test]
    fn a_large_frame_arriving_in_pieces_is_read_whole_into_a_buffer_of_its_size() {
        /// Hands out at most 1000 bytes per read, as a socket does.
        struct Trickle(futures_lite::io::Cursor<Vec<u8>>);
        impl AsyncRead for Trickle {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = buf.len().min(1000);
                std::pin::Pin::new(&mut self.0).poll_read(cx, &mut buf[..len])
            }
        }
        let body: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
        let mut reader = Trickle(futures_lite::io::Cursor::new(encode_frame(&body).unwrap()));
        let mut payload = Vec::new();
        assert!(futures_lite::future::block_on(read_frame(&mut reader, &mut payload)).unwrap());
        assert_eq!(payload, body);
        assert_eq!(
            payload.capacity(),
            body.len(),
            "no more than the frame's size"
        );
    }

    #[test]
    fn decode_frame_splits_off_the_rest() {
        let mut bytes = encode_frame(b"ab").unwrap();
        bytes.extend_from_slice(b"tail");
        let (payload, rest) = decode_frame(&bytes).unwrap();
        assert_eq!((payload, rest), (&b"ab"[..], &b"tail"[..]));
        assert!(matches!(decode_frame(&bytes[..10]), Err(Error::Truncated)));
    }
}
