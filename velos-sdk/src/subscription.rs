//! [`Subscription`]: a connection of its own that became a stream of notifications.
//!
//! `log.follow` and `events.subscribe` turn their connection into a one-way stream: the
//! daemon answers the request once, then sends `[2, method, params]` notifications until
//! either side closes, and takes no more requests on it. So each stream opens a new
//! connection to the same socket, and the [`crate::Client`] that asked stays free for
//! ordinary requests.
//!
//! Order on the wire: request (msgid 1) → its response → notifications. Opening is bounded
//! by the client's timeout; after that the stream may stay idle as long as it likes.
//! Reading is poll-based (no boxed futures), so the streams built on this are `Unpin`,
//! `Send` and `Sync`, and run under any executor.
//!
//! Endings: the daemon closing the connection (or resetting it) between frames is the
//! normal end, `None`. A connection cut inside a frame, or a frame that breaks the
//! framing, yields one error and then ends: the stream cannot find the next frame.
//! A frame whose payload cannot be read yields an error and the stream goes on.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use async_net::unix::UnixStream;
use velos_proto::frame::{self, FrameReader};
use velos_proto::rpc::{self, Params};
use velos_proto::{Call, Error as WireError};

use crate::connection::connect;
use crate::{Error, Result};

/// The msgid of the one request a subscription sends.
const MSGID: u32 = 1;

/// A connection that streams notifications after one request.
pub(crate) struct Subscription {
    stream: UnixStream,
    /// The frames as they arrive, each decoded from its place in the reader's buffer.
    frames: FrameReader,
    /// Notifications that came before the response (the daemon sends none, but a
    /// stream must not lose them if one ever does), as their payloads.
    early: VecDeque<Vec<u8>>,
    /// Set once the stream has ended; every later poll gives `None`.
    done: bool,
}

impl Subscription {
    /// Connects to `socket`, sends a request for `M` and reads its response, all within
    /// `timeout` (never giving up when `None`).
    pub(crate) async fn open<M: Call>(
        socket: &Path,
        params: &M::Params,
        timeout: Option<Duration>,
    ) -> Result<(M::Result, Subscription)> {
        crate::client::within(timeout, Subscription::open_now::<M>(socket, params)).await
    }

    async fn open_now<M: Call>(
        socket: &Path,
        params: &M::Params,
    ) -> Result<(M::Result, Subscription)> {
        let mut stream = connect(socket).await?;
        let payload = rpc::encode_request(MSGID, M::NAME, params).map_err(Error::Protocol)?;
        frame::write_frame(&mut stream, &payload)
            .await
            .map_err(Error::from_wire)?;
        let mut early = VecDeque::new();
        let mut frames = FrameReader::new();
        // Frames read along with the response stay in the reader for the stream.
        let response = loop {
            if !frames.next(&mut stream).await.map_err(Error::from_wire)? {
                return Err(Error::Disconnected);
            }
            let Some(decoded) = rpc::decode_response::<M::Result>(frames.payload()) else {
                rpc::decode_notification(frames.payload()).map_err(Error::Protocol)?;
                early.push_back(frames.payload().to_vec());
                continue;
            };
            let (msgid, result) = decoded.map_err(Error::Protocol)?;
            let value = result.map_err(|error| Error::Daemon {
                code: error.code,
                message: error.message,
            })?;
            if msgid != MSGID {
                return Err(malformed(format!(
                    "response to msgid {msgid} while waiting for msgid {MSGID}"
                )));
            }
            break value;
        };
        Ok((
            response,
            Subscription {
                stream,
                frames,
                early,
                done: false,
            },
        ))
    }

    /// The next notification that `decode` knows (it returns `None` for the names a
    /// newer daemon may send that this version does not), decoded straight from the
    /// frame into its type; `None` once the daemon has closed the connection.
    pub(crate) fn poll_decoded<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut decode: impl FnMut(&str, Params<'_>) -> Option<std::result::Result<T, WireError>>,
    ) -> Poll<Option<Result<T>>> {
        loop {
            if let Some(payload) = self.early.pop_front() {
                if let Some(decoded) = decode_with(&payload, &mut decode) {
                    return Poll::Ready(Some(decoded));
                }
                continue;
            }
            if self.done {
                return Poll::Ready(None);
            }
            match self.frames.poll_next(cx, &mut self.stream) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                // A reset between frames is a daemon that went away: the end.
                Poll::Ready(Err(WireError::Io(error)))
                    if error.kind() == ErrorKind::ConnectionReset && !self.frames.has_partial() =>
                {
                    self.done = true;
                    return Poll::Ready(None);
                }
                // Cut inside a frame, or a frame that breaks the framing: the next frame
                // cannot be found.
                Poll::Ready(Err(error)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(match error {
                        WireError::Truncated => Error::Disconnected,
                        error => Error::from_wire(error),
                    })));
                }
            }
            let payload = self.frames.payload();
            // A response here (the result is skipped, whatever it is) ends the stream.
            if let Some(response) = rpc::decode_response::<()>(payload) {
                self.done = true;
                return Poll::Ready(Some(Err(match response {
                    Ok((_, Err(error))) => Error::Daemon {
                        code: error.code,
                        message: error.message,
                    },
                    _ => malformed("the daemon sent a response on a streaming connection".into()),
                })));
            }
            if let Some(decoded) = decode_with(payload, &mut decode) {
                return Poll::Ready(Some(decoded));
            }
        }
    }
}

/// Decodes one notification payload with `decode`: `None` when it is one `decode` does not
/// know. A payload that is not a notification is an error, and the stream goes on: it
/// came in a whole frame, so the next frame can be read.
fn decode_with<T>(
    payload: &[u8],
    decode: &mut impl FnMut(&str, Params<'_>) -> Option<std::result::Result<T, WireError>>,
) -> Option<Result<T>> {
    match rpc::decode_notification(payload) {
        Ok(head) => {
            decode(head.method, head.params).map(|decoded| decoded.map_err(Error::Protocol))
        }
        Err(error) => Some(Err(Error::Protocol(error))),
    }
}

// Hand-written: the buffer says nothing useful.
impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("frames", &self.frames)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn malformed(message: String) -> Error {
    Error::Protocol(velos_proto::Error::Malformed(message))
}
