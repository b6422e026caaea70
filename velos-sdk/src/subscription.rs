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
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_net::unix::UnixStream;
use futures_lite::AsyncRead;
use rmpv::Value;
use velos_proto::{Envelope, Request, Response, frame};

use crate::connection::connect;
use crate::{Error, Result};

/// The msgid of the one request a subscription sends.
const MSGID: u32 = 1;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A notification: its method and params.
pub(crate) type Notification = (String, Value);

/// A connection that streams notifications after one request.
pub(crate) struct Subscription {
    stream: UnixStream,
    /// Bytes received and not yet taken as frames, from `consumed` on.
    buffer: Vec<u8>,
    consumed: usize,
    /// Notifications that came before the response (the daemon sends none, but a
    /// stream must not lose them if one ever does).
    early: VecDeque<Notification>,
    /// Set once the stream has ended; every later poll gives `None`.
    done: bool,
}

impl Subscription {
    /// Connects to `socket`, sends `request` and reads its response, all within
    /// `timeout` (never giving up when `None`).
    pub(crate) async fn open(
        socket: &Path,
        request: &Request,
        timeout: Option<Duration>,
    ) -> Result<(Response, Subscription)> {
        crate::client::within(timeout, Subscription::open_now(socket, request)).await
    }

    async fn open_now(socket: &Path, request: &Request) -> Result<(Response, Subscription)> {
        let mut stream = connect(socket).await?;
        let payload = request.encode(MSGID).map_err(Error::Protocol)?;
        frame::write_frame(&mut stream, &payload)
            .await
            .map_err(Error::from_wire)?;
        let mut early = VecDeque::new();
        let mut payload = Vec::new();
        // `read_frame` reads exactly one frame, so nothing after the response is taken
        // from the socket here.
        let response = loop {
            if !frame::read_frame(&mut stream, &mut payload)
                .await
                .map_err(Error::from_wire)?
            {
                return Err(Error::Disconnected);
            }
            match Envelope::decode(&payload).map_err(Error::Protocol)? {
                Envelope::Notification { method, params } => early.push_back((method, params)),
                Envelope::Response { msgid, result } => {
                    let value = result.map_err(|error| Error::Daemon {
                        code: error.code,
                        message: error.message,
                    })?;
                    if msgid != MSGID {
                        return Err(malformed(format!(
                            "response to msgid {msgid} while waiting for msgid {MSGID}"
                        )));
                    }
                    break Response::from_parts(request.method(), value)
                        .map_err(Error::Protocol)?;
                }
                Envelope::Request { method, .. } => {
                    return Err(malformed(format!(
                        "the daemon sent a request ('{method}') instead of a response"
                    )));
                }
            }
        };
        Ok((
            response,
            Subscription {
                stream,
                buffer: Vec::new(),
                consumed: 0,
                early,
                done: false,
            },
        ))
    }

    /// The next notification that `decode` knows (it returns `None` for the names a
    /// newer daemon may send that this version does not), decoded; `None` once the
    /// daemon has closed the connection.
    pub(crate) fn poll_decoded<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut decode: impl FnMut(&str, rmpv::Value) -> Option<std::result::Result<T, velos_proto::Error>>,
    ) -> Poll<Option<Result<T>>> {
        loop {
            let (method, params) = match self.poll_notification(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(Some(Ok(notification))) => notification,
            };
            if let Some(decoded) = decode(&method, params) {
                return Poll::Ready(Some(decoded.map_err(Error::Protocol)));
            }
        }
    }

    /// The next notification; `None` once the daemon has closed the connection.
    pub(crate) fn poll_notification(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Notification>>> {
        if let Some(early) = self.early.pop_front() {
            return Poll::Ready(Some(Ok(early)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let payload = match self.poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Some(payload))) => payload,
            Poll::Ready(Ok(None)) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Err(error)) => {
                self.done = true;
                return Poll::Ready(Some(Err(error)));
            }
        };
        Poll::Ready(Some(match Envelope::decode(&payload) {
            Ok(Envelope::Notification { method, params }) => Ok((method, params)),
            // A payload that is not MessagePack still came in a whole frame: the next
            // frame can be read, so the stream goes on.
            Err(error) => Err(Error::Protocol(error)),
            Ok(Envelope::Response {
                result: Err(error), ..
            }) => {
                self.done = true;
                Err(Error::Daemon {
                    code: error.code,
                    message: error.message,
                })
            }
            Ok(Envelope::Response { .. } | Envelope::Request { .. }) => {
                self.done = true;
                Err(malformed(
                    "the daemon sent a response or request on a streaming connection".into(),
                ))
            }
        }))
    }

    /// The payload of the next whole frame; `None` at a clean end of the connection.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Vec<u8>>>> {
        loop {
            if let Some(payload) = self.take_frame()? {
                return Poll::Ready(Ok(Some(payload)));
            }
            // Move what is left of a partial frame to the front before reading more.
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
            let filled = self.buffer.len();
            self.buffer.resize(filled + READ_CHUNK_BYTES, 0);
            let read = Pin::new(&mut self.stream).poll_read(cx, &mut self.buffer[filled..]);
            let read = match read {
                Poll::Pending => {
                    self.buffer.truncate(filled);
                    return Poll::Pending;
                }
                Poll::Ready(read) => read,
            };
            match read {
                Ok(0) => {
                    self.buffer.truncate(filled);
                    return Poll::Ready(if filled == 0 {
                        Ok(None)
                    } else {
                        // Cut inside a frame: the daemon went away mid-message.
                        Err(Error::Disconnected)
                    });
                }
                Ok(n) => self.buffer.truncate(filled + n),
                Err(error) => {
                    self.buffer.truncate(filled);
                    match error.kind() {
                        ErrorKind::Interrupted => {}
                        // A reset between frames is a daemon that went away: the end.
                        ErrorKind::ConnectionReset if filled == 0 => return Poll::Ready(Ok(None)),
                        _ => return Poll::Ready(Err(Error::from_io(error))),
                    }
                }
            }
        }
    }

    /// Takes one whole frame off the buffer, if it holds one (the frame codec is proto's).
    fn take_frame(&mut self) -> Result<Option<Vec<u8>>> {
        match frame::decode_frame(&self.buffer[self.consumed..]) {
            Ok((payload, _)) => {
                let payload = payload.to_vec();
                self.consumed += frame::HEADER_LEN + payload.len();
                Ok(Some(payload))
            }
            Err(velos_proto::Error::Truncated) => Ok(None),
            Err(error) => Err(Error::from_wire(error)),
        }
    }
}

// Hand-written: the buffer says nothing useful.
impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("buffered_bytes", &(self.buffer.len() - self.consumed))
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn malformed(message: String) -> Error {
    Error::Protocol(velos_proto::Error::Malformed(message))
}
