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
//! This module owns the header codec and reading ([`FrameReader`]) and writing whole
//! frames on any `futures-io` stream. It does not look inside the payload; that is [`crate::rpc`].

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

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

/// Bytes asked of the stream at least per read: small frames that arrive together (a
/// stream of notifications) are read with one call.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Buffer capacity a reader keeps between frames; after a larger frame it gives the
/// memory back, so an idle connection holds little.
const KEPT_BYTES: usize = 64 * 1024;

/// Reads frames off a stream, one at a time: the one frame reader of both the daemon and
/// the clients.
///
/// It keeps one buffer per stream: frames that arrive together are read with one call
/// and handed out one by one, and a frame's payload is a slice of that buffer
/// ([`FrameReader::payload`]), decoded from there with no copy. A peer's claimed length
/// is never allocated up front: the buffer grows with the bytes that arrive, at most one
/// step of 64 KiB ahead. After a frame larger than 64 KiB it is given back.
///
/// Works as a future ([`FrameReader::next`]) or by polling ([`FrameReader::poll_next`]),
/// on any `futures-io` stream. Dropping a `next` half way loses nothing: what was read is
/// in the buffer.
///
/// # Examples
///
/// ```
/// use velos_proto::frame::{FrameReader, encode_frame};
///
/// let mut bytes = encode_frame(b"one").unwrap();
/// bytes.extend(encode_frame(b"two").unwrap());
/// let mut stream = futures_lite::io::Cursor::new(bytes);
/// let mut frames = FrameReader::new();
/// futures_lite::future::block_on(async {
///     assert!(frames.next(&mut stream).await.unwrap());
///     assert_eq!(frames.payload(), b"one");
///     assert!(frames.next(&mut stream).await.unwrap());
///     assert_eq!(frames.payload(), b"two");
///     assert!(!frames.next(&mut stream).await.unwrap(), "the end");
/// });
/// ```
#[derive(Default)]
pub struct FrameReader {
    /// Bytes received; those before `start` were handed out.
    buffer: Vec<u8>,
    start: usize,
    /// The payload handed out last, as a range of `buffer`.
    payload: std::ops::Range<usize>,
}

impl FrameReader {
    /// A reader with an empty buffer.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// The payload of the frame read last (empty before the first). Valid until the
    /// next read.
    pub fn payload(&self) -> &[u8] {
        &self.buffer[self.payload.clone()]
    }

    /// Takes the payload of the frame read last out of the reader, without copying it
    /// when nothing else is buffered (then the reader's memory goes with it).
    pub fn take_payload(&mut self) -> Vec<u8> {
        if self.start == self.buffer.len() {
            let mut payload = std::mem::take(&mut self.buffer);
            payload.truncate(self.payload.end);
            payload.drain(..self.payload.start);
            self.start = 0;
            self.payload = 0..0;
            payload
        } else {
            let payload = self.payload().to_vec();
            self.payload = 0..0;
            payload
        }
    }

    /// [`FrameReader::take_payload`] without the payload's first `skip` bytes (a
    /// response's envelope, say): moved to the front in the same step.
    pub fn take_payload_from(&mut self, skip: usize) -> Vec<u8> {
        self.payload.start += skip.min(self.payload.len());
        self.take_payload()
    }

    /// Whether bytes of a frame not handed out yet are buffered: a frame has begun.
    pub fn has_partial(&self) -> bool {
        self.start < self.buffer.len()
    }

    /// Reads the next frame: `Ok(true)` when one was read (see
    /// [`FrameReader::payload`]), `Ok(false)` on a clean end of stream before its first
    /// byte. A stream that ends inside a frame gives [`Error::Truncated`]; a bad header
    /// gives its error, and the stream cannot be read on after it.
    pub async fn next<R>(&mut self, reader: &mut R) -> Result<bool, Error>
    where
        R: AsyncRead + Unpin,
    {
        std::future::poll_fn(|cx| self.poll_next(cx, reader)).await
    }

    /// Waits until bytes of a next frame are at hand (buffered already, or read now):
    /// `Ok(false)` on a clean end of stream instead. For a reader that waits for a frame
    /// to begin as long as it takes, then bounds the rest.
    pub async fn wait_for_data<R>(&mut self, reader: &mut R) -> Result<bool, Error>
    where
        R: AsyncRead + Unpin,
    {
        std::future::poll_fn(|cx| {
            if self.has_partial() {
                return Poll::Ready(Ok(true));
            }
            self.poll_fill(cx, reader, 1).map_ok(|read| read > 0)
        })
        .await
    }

    /// [`FrameReader::next`] by polling, for hand-written streams.
    pub fn poll_next<R>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
    ) -> Poll<Result<bool, Error>>
    where
        R: AsyncRead + Unpin,
    {
        self.payload = 0..0;
        self.give_back();
        loop {
            let pending = &self.buffer[self.start..];
            let missing = match pending.first_chunk::<HEADER_LEN>() {
                None => HEADER_LEN - pending.len(),
                Some(header) => {
                    let len = decode_header(header)? as usize;
                    let end = HEADER_LEN + len;
                    if pending.len() >= end {
                        self.payload = self.start + HEADER_LEN..self.start + end;
                        self.start += end;
                        return Poll::Ready(Ok(true));
                    }
                    end - pending.len()
                }
            };
            let read = match self.poll_fill(cx, reader, missing) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(read) => read?,
            };
            if read == 0 {
                return Poll::Ready(if self.has_partial() {
                    Err(Error::Truncated)
                } else {
                    Ok(false)
                });
            }
            // A peer that keeps the stream full would otherwise keep this task busy for
            // a whole large frame: let the executor run others between steps.
            if read >= READ_STEP_BYTES && missing > read {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Gives back a buffer grown by a large frame once that frame was handed out and
    /// little is left (what is left moves to a buffer of its size).
    fn give_back(&mut self) {
        let rest = self.buffer.len() - self.start;
        if self.start > 0 && self.buffer.capacity() > KEPT_BYTES && rest <= KEPT_BYTES / 2 {
            self.buffer = self.buffer[self.start..].to_vec();
            self.start = 0;
        }
    }

    /// Reads once from `reader` into the buffer, asking for at least `missing` bytes
    /// (at least one chunk, at most one step): the bytes read, 0 at the end of stream.
    fn poll_fill<R>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        missing: usize,
    ) -> Poll<Result<usize, Error>>
    where
        R: AsyncRead + Unpin,
    {
        // What was handed out goes: the rest moves to the front.
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
            self.payload = 0..0;
        }
        let filled = self.buffer.len();
        let step = missing.clamp(READ_CHUNK_BYTES, READ_STEP_BYTES);
        if self.buffer.capacity() < filled + step {
            // Doubling keeps a large frame's reads linear; the frame's announced end
            // bounds it, so the buffer never grows past what the frame needs plus a step.
            let target =
                (self.buffer.capacity() * 2).clamp(filled + step, filled + missing.max(step));
            self.buffer.reserve_exact(target - filled);
        }
        // Only this step is zeroed (zeroing the whole spare capacity on every read would
        // be quadratic in a large frame's size).
        self.buffer.resize(filled + step, 0);
        loop {
            let read = Pin::new(&mut *reader).poll_read(cx, &mut self.buffer[filled..]);
            match read {
                Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Poll::Pending => {
                    self.buffer.truncate(filled);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(n)) => {
                    self.buffer.truncate(filled + n);
                    return Poll::Ready(Ok(n));
                }
                Poll::Ready(Err(e)) => {
                    self.buffer.truncate(filled);
                    return Poll::Ready(Err(Error::Io(e)));
                }
            }
        }
    }
}

// Hand-written: the buffer can be large and says nothing useful.
impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("buffered", &(self.buffer.len() - self.start))
            .field("payload", &self.payload.len())
            .finish()
    }
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
            let mut frame_reader = FrameReader::new();
            while frame_reader.next(&mut reader).await? {
                frames.push(frame_reader.payload().to_vec());
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
        let mut frames = FrameReader::new();
        let result =
            futures_lite::future::block_on(frames.next(&mut futures_lite::io::Cursor::new(bytes)));
        assert!(matches!(result, Err(Error::Truncated)));
        assert!(
            frames.buffer.capacity() < 1024 * 1024,
            "{}",
            frames.buffer.capacity()
        );
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
        let mut frames = FrameReader::new();
        assert!(futures_lite::future::block_on(frames.next(&mut reader)).unwrap());
        assert_eq!(frames.payload(), body);
        assert!(
            frames.buffer.capacity() <= HEADER_LEN + body.len() + READ_STEP_BYTES,
            "no more than the frame's size and one step: {}",
            frames.buffer.capacity()
        );
        // Taken out without a copy, the buffer goes with it.
        let payload = frames.take_payload();
        assert_eq!(payload, body);
        assert_eq!(frames.buffer.capacity(), 0);
    }

    #[test]
    fn a_payload_is_taken_from_an_offset_with_or_without_bytes_after_it() {
        let mut bytes = encode_frame(b"envelope:result").unwrap();
        let mut frames = FrameReader::new();
        let mut reader = futures_lite::io::Cursor::new(bytes.clone());
        assert!(futures_lite::future::block_on(frames.next(&mut reader)).unwrap());
        assert_eq!(frames.take_payload_from(9), b"result");
        // A second frame already buffered behind it stays for the next read.
        bytes.extend(encode_frame(b"next").unwrap());
        let mut reader = futures_lite::io::Cursor::new(bytes);
        assert!(futures_lite::future::block_on(frames.next(&mut reader)).unwrap());
        assert_eq!(frames.take_payload_from(100), b"");
        assert!(futures_lite::future::block_on(frames.next(&mut reader)).unwrap());
        assert_eq!(frames.payload(), b"next");
    }

    /// Counts the reads asked of it.
    struct Counting(futures_lite::io::Cursor<Vec<u8>>, usize);
    impl AsyncRead for Counting {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.1 += 1;
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    #[test]
    fn small_frames_that_arrive_together_take_one_read() {
        let bytes: Vec<u8> = (0..100u8)
            .flat_map(|i| encode_frame(&[i; 20]).unwrap())
            .collect();
        let mut stream = Counting(futures_lite::io::Cursor::new(bytes), 0);
        let mut frames = FrameReader::new();
        futures_lite::future::block_on(async {
            for i in 0..100u8 {
                assert!(frames.next(&mut stream).await.unwrap());
                assert_eq!(frames.payload(), [i; 20]);
                assert!(i == 99 || frames.has_partial());
            }
            assert!(!frames.next(&mut stream).await.unwrap());
        });
        assert_eq!(stream.1, 2, "one read for the frames, one for the end");
    }

    #[test]
    fn a_large_frames_memory_is_given_back_before_the_next() {
        // The last read of the large frame (16 KiB, then 64 KiB steps) asks for a chunk of
        // 16 KiB with 100 bytes of it left: the small frame comes with it.
        const LARGE: usize = (1 << 20) + 16 * 1024 - HEADER_LEN + 100;
        let mut bytes = encode_frame(&vec![7; LARGE]).unwrap();
        bytes.extend(encode_frame(b"small").unwrap());
        let mut stream = futures_lite::io::Cursor::new(bytes);
        let mut frames = FrameReader::new();
        futures_lite::future::block_on(async {
            assert!(frames.next(&mut stream).await.unwrap());
            assert_eq!(frames.payload().len(), LARGE);
            assert!(frames.has_partial(), "read ahead");
            assert!(frames.wait_for_data(&mut stream).await.unwrap());
            assert!(frames.next(&mut stream).await.unwrap());
            assert_eq!(frames.payload(), b"small");
            assert!(
                frames.buffer.capacity() <= KEPT_BYTES,
                "{}",
                frames.buffer.capacity()
            );
            assert!(!frames.wait_for_data(&mut stream).await.unwrap());
        });
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
