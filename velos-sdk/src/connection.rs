//! [`Connection`]: the socket under a [`crate::Client`], kept in step with the daemon.
//!
//! An exchange writes one request frame, then reads frames until the response carrying
//! the request's msgid (msgids increase per request). Notifications that arrive in
//! between are skipped: streams (`log.follow`, `events.subscribe`) never share this
//! connection, they open their own (see `subscription`).
//!
//! The stream is dropped after any failure that may leave it out of step (an exchange
//! cut short by a timeout, a closed connection, an unreadable reply), and the next
//! exchange connects again. A daemon error response leaves it in step, so it is kept.
//!
//! The socket is async-net's (woken by async-io's reactor), or a plain blocking one
//! ([`Connection::open_blocking`]): its reads and writes finish in their first poll, so a
//! request's future completes without a reactor, and async-io (which starts a thread of
//! its own for its reactor) is never touched. That is what a command line wants: one
//! request, then exit.
//!
//! This module knows nothing of timeouts or typed methods; [`crate::Client`] adds them
//! (a blocking socket is bounded by the deadline [`Connection::set_deadline`] sets).

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_net::unix::UnixStream;
use futures_lite::{AsyncRead, AsyncWrite};
use velos_proto::frame::{self, FrameReader};
use velos_proto::{Call, Method, NoParams, PingInfo, methods, rpc};

use crate::{Error, Result};

/// What a response decoder gives: `None` for a payload that is not a response.
pub(crate) type Decoded<T> = Option<std::result::Result<rpc::Answer<T>, velos_proto::Error>>;

/// One connection to the daemon's socket, opened again on demand.
pub(crate) struct Connection {
    socket: PathBuf,
    /// `None` after a failure that may have left the stream out of step.
    stream: Option<(Stream, FrameReader)>,
    next_msgid: u32,
    /// Whether its socket is a blocking one (see [`Connection::open_blocking`]).
    blocking: bool,
    /// For a blocking socket: when the current exchange gives up.
    deadline: Option<Instant>,
}

impl Connection {
    /// Connects to `socket`.
    pub(crate) async fn open(socket: PathBuf) -> Result<Connection> {
        let stream = connect(&socket).await?;
        Ok(Connection {
            socket,
            stream: Some((Stream::Async(stream), FrameReader::new())),
            next_msgid: 1,
            blocking: false,
            deadline: None,
        })
    }

    /// Connects to `socket` with a blocking socket, within `timeout`: every exchange
    /// does its I/O in the first poll of its future, bounded by the deadline of
    /// [`Connection::set_deadline`], and never needs async-io's reactor.
    pub(crate) fn open_blocking(socket: PathBuf, timeout: Option<Duration>) -> Result<Connection> {
        let deadline = timeout.map(|after| Instant::now() + after);
        let stream = connect_blocking(&socket, deadline)?;
        Ok(Connection {
            socket,
            stream: Some((Stream::Blocking(stream), FrameReader::new())),
            next_msgid: 1,
            blocking: true,
            deadline: None,
        })
    }

    /// Whether its socket is a blocking one.
    pub(crate) fn is_blocking(&self) -> bool {
        self.blocking
    }

    /// For a blocking socket: the next exchange gives up `timeout` from now (`None`:
    /// never), with an I/O error of kind `TimedOut`.
    pub(crate) fn set_deadline(&mut self, timeout: Option<Duration>) {
        self.deadline = timeout.map(|after| Instant::now() + after);
    }

    /// A new stream of this connection's kind.
    async fn reconnect(&self) -> Result<Stream> {
        if self.blocking {
            connect_blocking(&self.socket, self.deadline).map(Stream::Blocking)
        } else {
            connect(&self.socket).await.map(Stream::Async)
        }
    }

    /// The socket it connects to.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Writes a request for `M` and reads its response, typed as `M`'s result.
    ///
    /// The stream is taken out of `self` for the exchange and put back only when the
    /// exchange ends in step, so a timeout (which drops this future half way) or any
    /// failure leaves the next exchange to connect again.
    pub(crate) async fn exchange<M: Call>(&mut self, params: &M::Params) -> Result<M::Result> {
        self.exchange_as::<M, M::Result>(
            params,
            |frames| rpc::decode_response::<M::Result>(frames.payload()),
            || rpc::decode_value::<M::Result>(&[0xc0]),
        )
        .await
    }

    /// [`Connection::exchange`] with the response read by `decode` from the frame reader
    /// holding it (`None` for a payload that is not a response; it may take the payload),
    /// for a result read another way; `nil` is the result of a kill the daemon did not
    /// answer.
    pub(crate) async fn exchange_as<M: Call, T>(
        &mut self,
        params: &M::Params,
        decode: impl Fn(&mut FrameReader) -> Decoded<T>,
        nil: impl FnOnce() -> std::result::Result<T, velos_proto::Error>,
    ) -> Result<T> {
        let msgid = self.next_msgid;
        self.next_msgid = self.next_msgid.wrapping_add(1);
        let payload = rpc::encode_request(msgid, M::NAME, params).map_err(Error::Protocol)?;

        let (mut stream, mut frames, reused) = match self.stream.take() {
            Some((mut stream, frames)) => {
                stream.set_deadline(self.deadline);
                (stream, frames, true)
            }
            None => (self.reconnect().await?, FrameReader::new(), false),
        };
        if let Err(error) = frame::write_frame(&mut stream, &payload).await {
            match Error::from_wire(error) {
                // The daemon closed an idle connection (it restarted, say): the request
                // went nowhere, so it is safe to send it again on a new connection.
                Error::Disconnected if reused => {
                    stream = self.reconnect().await?;
                    frames = FrameReader::new();
                    frame::write_frame(&mut stream, &payload)
                        .await
                        .map_err(Error::from_wire)?;
                }
                error => return Err(error),
            }
        }

        let result = read_response(&mut stream, &mut frames, msgid, &decode).await;
        match result {
            // A daemon that is shutting down closes this connection anyway; and one that
            // took the kill may go before (or instead of) answering: its answer is nil.
            _ if M::METHOD == Method::Kill => match result {
                Err(Error::Disconnected) => nil().map_err(Error::Protocol),
                other => other,
            },
            Ok(_) | Err(Error::Daemon { .. }) => {
                self.stream = Some((stream, frames));
                result
            }
            Err(_) => result,
        }
    }
}

impl Connection {
    /// A `daemon.ping` and a request for `M`, written together, then both answers read:
    /// one round trip for the two. The ping's answer goes to `pinged` as soon as it is
    /// read. The daemon reads a connection's next request only once it has answered the
    /// one before, so while `pinged` is empty the request has not been read: an error
    /// then (the daemon was dying, and closed the connection) leaves it safe to send
    /// again. Once `pinged` is set, the result (or error) is the request's.
    pub(crate) async fn exchange_after_ping<M: Call>(
        &mut self,
        params: &M::Params,
        pinged: &std::cell::RefCell<Option<PingInfo>>,
    ) -> Result<M::Result> {
        let ping_id = self.next_msgid;
        let msgid = ping_id.wrapping_add(1);
        self.next_msgid = msgid.wrapping_add(1);
        let ping = rpc::encode_request(ping_id, methods::Ping::NAME, &NoParams {})
            .map_err(Error::Protocol)?;
        let request = rpc::encode_request(msgid, M::NAME, params).map_err(Error::Protocol)?;
        let mut bytes = frame::encode_frame(&ping).map_err(Error::Protocol)?;
        bytes.extend(frame::encode_frame(&request).map_err(Error::Protocol)?);

        let (mut stream, mut frames) = match self.stream.take() {
            Some((mut stream, frames)) => {
                stream.set_deadline(self.deadline);
                (stream, frames)
            }
            None => (self.reconnect().await?, FrameReader::new()),
        };
        let written = async {
            futures_lite::AsyncWriteExt::write_all(&mut stream, &bytes).await?;
            futures_lite::AsyncWriteExt::flush(&mut stream).await
        };
        written
            .await
            .map_err(|error| Error::from_wire(error.into()))?;
        let answer = read_response(
            &mut stream,
            &mut frames,
            ping_id,
            |frames: &mut FrameReader| rpc::decode_response::<PingInfo>(frames.payload()),
        )
        .await?;
        *pinged.borrow_mut() = Some(answer);
        let result = read_response(
            &mut stream,
            &mut frames,
            msgid,
            |frames: &mut FrameReader| rpc::decode_response::<M::Result>(frames.payload()),
        )
        .await;
        if let Ok(_) | Err(Error::Daemon { .. }) = result {
            self.stream = Some((stream, frames));
        }
        result
    }
}

// Hand-written: the read buffer can be large and says nothing useful.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("socket", &self.socket)
            .field("open", &self.stream.is_some())
            .field("blocking", &self.blocking)
            .field("next_msgid", &self.next_msgid)
            .finish()
    }
}

/// Connects to `socket`, telling a missing socket from a stale one, and makes sure the
/// peer is a daemon of our own uid before anything is sent (see [`peer_uid`]).
pub(crate) async fn connect(socket: &Path) -> Result<UnixStream> {
    velos_proto::home::check_socket_path(socket)?;
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => Error::NotRunning {
                socket: socket.to_path_buf(),
            },
            std::io::ErrorKind::ConnectionRefused => Error::Refused {
                socket: socket.to_path_buf(),
            },
            _ => Error::Io(error),
        })?;
    check_peer(&stream, socket)?;
    Ok(stream)
}

/// [`connect`] with a blocking socket: connecting, and every read and write after it,
/// gives up at `deadline` (`SO_SNDTIMEO` bounds a connect to a Unix socket whose
/// backlog is full).
fn connect_blocking(socket: &Path, deadline: Option<Instant>) -> Result<BlockingStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};
    velos_proto::home::check_socket_path(socket)?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|error| Error::Io(error.into()))?;
    if let Some(deadline) = deadline {
        let left = time_left(deadline).map_err(Error::Io)?;
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(left))
            .map_err(|error| Error::Io(error.into()))?;
    }
    let address = SocketAddrUnix::new(socket).map_err(|error| Error::Io(error.into()))?;
    rustix::net::connect(&fd, &address).map_err(|error| match io::Error::from(error).kind() {
        io::ErrorKind::NotFound => Error::NotRunning {
            socket: socket.to_path_buf(),
        },
        io::ErrorKind::ConnectionRefused => Error::Refused {
            socket: socket.to_path_buf(),
        },
        io::ErrorKind::WouldBlock => Error::Io(io::ErrorKind::TimedOut.into()),
        _ => Error::Io(error.into()),
    })?;
    check_peer(&fd, socket)?;
    Ok(BlockingStream {
        socket: std::os::unix::net::UnixStream::from(fd),
        deadline,
        // connect set the send timeout.
        armed: [false, deadline.is_some()],
    })
}

/// Fails with [`Error::ForeignDaemon`] unless the peer runs as our uid.
fn check_peer(stream: &impl AsFd, socket: &Path) -> Result<()> {
    let ours = rustix::process::geteuid().as_raw();
    let daemon = peer_uid(stream, socket).map_err(Error::Io)?;
    if daemon != ours {
        return Err(Error::ForeignDaemon {
            socket: socket.to_path_buf(),
            daemon,
            ours,
        });
    }
    Ok(())
}

/// The time until `deadline`, at least a microsecond (a zero socket timeout would mean
/// none); an error of kind `TimedOut` once it has passed.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left.max(Duration::from_micros(1)))
}

/// The socket under a [`Connection`].
enum Stream {
    Async(UnixStream),
    Blocking(BlockingStream),
}

impl Stream {
    fn set_deadline(&mut self, deadline: Option<Instant>) {
        if let Stream::Blocking(stream) = self {
            stream.deadline = deadline;
        }
    }
}

/// A blocking Unix socket behind the async traits: each poll reads or writes (or fails)
/// before it returns, so it is never pending. Each read and write is bounded by the time
/// left until the deadline (`SO_RCVTIMEO`, `SO_SNDTIMEO`), and fails with `TimedOut` once
/// it has passed.
struct BlockingStream {
    socket: std::os::unix::net::UnixStream,
    deadline: Option<Instant>,
    /// Whether a timeout is set on the socket: receive, send.
    armed: [bool; 2],
}

impl BlockingStream {
    /// Bounds the next operation in `direction` (0: receive, 1: send) by the deadline.
    fn arm(&mut self, direction: usize) -> io::Result<()> {
        use rustix::net::sockopt::{Timeout, set_socket_timeout};
        let id = if direction == 0 {
            Timeout::Recv
        } else {
            Timeout::Send
        };
        let left = self.deadline.map(time_left).transpose()?;
        if left.is_some() || self.armed[direction] {
            set_socket_timeout(&self.socket, id, left)?;
            self.armed[direction] = left.is_some();
        }
        Ok(())
    }

    /// A blocking call's timeout (`EAGAIN`) as `TimedOut`.
    fn timed_out(error: io::Error) -> io::Error {
        if error.kind() == io::ErrorKind::WouldBlock {
            io::ErrorKind::TimedOut.into()
        } else {
            error
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Async(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Blocking(stream) => Poll::Ready(stream.arm(0).and_then(|()| {
                io::Read::read(&mut stream.socket, buf).map_err(BlockingStream::timed_out)
            })),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Async(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Blocking(stream) => Poll::Ready(stream.arm(1).and_then(|()| {
                io::Write::write(&mut stream.socket, buf).map_err(BlockingStream::timed_out)
            })),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Async(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Blocking(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Async(stream) => Pin::new(stream).poll_close(cx),
            Stream::Blocking(stream) => {
                Poll::Ready(stream.socket.shutdown(std::net::Shutdown::Write))
            }
        }
    }
}

/// The uid of the process that listens on the other end, as the kernel recorded it when
/// that process called `listen` (`SO_PEERCRED`): a home owned by another user, or a
/// socket another user put there, cannot make us talk to that user's process.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &impl AsFd, _socket: &Path) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

/// The uid owning the socket file: `getpeereid` is not reachable without `unsafe` here,
/// and only the daemon's uid can create the socket in its 0700 home.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(_stream: &impl AsFd, socket: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::symlink_metadata(socket)?.uid())
}

/// Reads frames until the response to `msgid`, and decodes its result with `decode`
/// (straight into the method's result type, for [`Connection::exchange`]).
/// Notifications that come before it are skipped.
async fn read_response<T>(
    stream: &mut Stream,
    frames: &mut FrameReader,
    msgid: u32,
    decode: impl Fn(&mut FrameReader) -> Decoded<T>,
) -> Result<T> {
    loop {
        if !frames.next(stream).await.map_err(Error::from_wire)? {
            return Err(Error::Disconnected);
        }
        let Some(decoded) = decode(frames) else {
            // Not a response: a notification is skipped, anything else is an error.
            rpc::decode_notification(frames.payload()).map_err(Error::Protocol)?;
            continue;
        };
        let (answered, result) = decoded.map_err(Error::Protocol)?;
        return match result {
            Ok(response) if answered == msgid => Ok(response),
            Ok(_) => Err(Error::Protocol(velos_proto::Error::Malformed(format!(
                "response to msgid {answered} while waiting for msgid {msgid}"
            )))),
            // An error for another msgid is still the daemon's word, for example when it
            // could not read this request's msgid: show it.
            Err(error) => Err(Error::Daemon {
                code: error.code,
                message: error.message,
            }),
        };
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use velos_proto::{
        ErrorCode, LogReadParams, NoParams, PingInfo, Request, Response, Target, TargetParams,
        methods,
    };

    use super::*;
    use crate::fake_daemon::{self, Answer, FakeDaemon};

    fn open(daemon: &FakeDaemon) -> Connection {
        block_on(Connection::open(daemon.socket().to_path_buf()))
            .expect("connect to the fake daemon")
    }

    fn ping(connection: &mut Connection) -> Result<PingInfo> {
        block_on(connection.exchange::<methods::Ping>(&NoParams {}))
    }

    fn pong() -> PingInfo {
        fake_daemon::ping_info()
    }

    #[test]
    fn a_daemon_answering_garbage_is_a_protocol_error() {
        let daemon = FakeDaemon::start(|_, _| {
            vec![Answer::Bytes(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec())]
        });
        let result = ping(&mut open(&daemon));
        assert!(
            matches!(
                result,
                Err(Error::Protocol(velos_proto::Error::BadMagic { .. }))
            ),
            "{result:?}"
        );
    }

    #[test]
    fn a_frame_that_is_not_messagepack_is_a_protocol_error() {
        // A string header promising five bytes, followed by one.
        let daemon = FakeDaemon::start(|_, _| vec![Answer::Frame(vec![0xa5, b'a'])]);
        let result = ping(&mut open(&daemon));
        assert!(
            matches!(result, Err(Error::Protocol(velos_proto::Error::Decode(_)))),
            "{result:?}"
        );
    }

    #[test]
    fn a_daemon_speaking_protocol_2_is_a_version_mismatch() {
        let daemon = FakeDaemon::start(|msgid, _| {
            let pong = Response::Ping(pong()).encode(msgid).unwrap();
            let mut bytes = frame::encode_frame(&pong).unwrap();
            bytes[4] = 2;
            vec![Answer::Bytes(bytes)]
        });
        let result = ping(&mut open(&daemon));
        assert!(
            matches!(
                result,
                Err(Error::VersionMismatch {
                    daemon: 2,
                    client: 1
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn a_daemon_error_keeps_its_code_and_message_and_the_connection() {
        let daemon = FakeDaemon::start(|msgid, request| match request {
            Request::Stop(_) => vec![fake_daemon::error(
                msgid,
                ErrorCode::NotFound,
                "no process named 'api' (see 'velos list')",
            )],
            request => vec![fake_daemon::answer_correctly(msgid, request)],
        });
        let mut connection = open(&daemon);
        let stop = TargetParams {
            target: "api".into(),
        };
        match block_on(connection.exchange::<methods::Stop>(&stop)) {
            Err(Error::Daemon { code, message }) => {
                assert_eq!(code, ErrorCode::NotFound);
                assert_eq!(message, "no process named 'api' (see 'velos list')");
            }
            other => panic!("expected a daemon error, got {other:?}"),
        }
        assert_eq!(ping(&mut connection).unwrap(), pong());
        assert_eq!(daemon.next_request().1, Request::Stop(stop));
        assert_eq!(daemon.next_request().1, Request::Ping);
        // Both went over the first connection: the fake serves one connection at a time,
        // so a second one would have closed the first before the ping was answered.
        assert!(!daemon.has_closed());
    }

    #[test]
    fn an_answer_of_the_wrong_shape_is_a_protocol_error() {
        // A ping answered with a process list, as a confused daemon might.
        let daemon = FakeDaemon::start(|msgid, _| {
            vec![fake_daemon::ok(
                msgid,
                &Response::List(vec![fake_daemon::process("api")]),
            )]
        });
        let result = ping(&mut open(&daemon));
        assert!(
            matches!(
                result,
                Err(Error::Protocol(velos_proto::Error::Malformed(_)))
            ),
            "{result:?}"
        );
    }

    #[test]
    fn a_response_to_another_msgid_is_a_protocol_error() {
        let daemon = FakeDaemon::start(|msgid, request| {
            vec![fake_daemon::answer_correctly(msgid + 1, request)]
        });
        let result = ping(&mut open(&daemon));
        assert!(
            matches!(
                result,
                Err(Error::Protocol(velos_proto::Error::Malformed(_)))
            ),
            "{result:?}"
        );
    }

    #[test]
    fn notifications_before_the_response_are_skipped() {
        let daemon = FakeDaemon::start(|msgid, request| {
            let params = LogReadParams {
                cursor: None,
                target: Target::All,
                lines: 1,
            };
            let notification = rpc::encode_notification("log.line", &params).unwrap();
            vec![
                Answer::Frame(notification),
                fake_daemon::answer_correctly(msgid, request),
            ]
        });
        assert_eq!(ping(&mut open(&daemon)).unwrap(), pong());
    }

    #[test]
    fn msgids_increase_per_request() {
        let daemon = FakeDaemon::answering();
        let mut connection = open(&daemon);
        for _ in 0..3 {
            ping(&mut connection).unwrap();
        }
        let msgids: Vec<u32> = (0..3).map(|_| daemon.next_request().0).collect();
        assert!(msgids.windows(2).all(|w| w[0] < w[1]), "{msgids:?}");
    }

    #[test]
    fn a_daemon_closing_before_answering_is_disconnected() {
        let daemon = FakeDaemon::start(|_, _| vec![Answer::Close]);
        let result = ping(&mut open(&daemon));
        assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
    }

    #[test]
    fn kill_is_done_when_the_daemon_closes_without_answering() {
        let daemon = FakeDaemon::start(|_, _| vec![Answer::Close]);
        let result = block_on(open(&daemon).exchange::<methods::Kill>(&NoParams {}));
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn an_idle_connection_the_daemon_closed_is_opened_again() {
        let daemon = FakeDaemon::start(|msgid, request| {
            vec![fake_daemon::answer_correctly(msgid, request), Answer::Close]
        });
        let mut connection = open(&daemon);
        ping(&mut connection).unwrap();
        daemon.wait_closed();
        assert_eq!(
            ping(&mut connection).expect("ping on a new connection"),
            pong()
        );
    }
}
