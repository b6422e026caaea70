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
//! This module knows nothing of timeouts or typed methods; [`crate::Client`] adds them.

use std::path::{Path, PathBuf};

use async_net::unix::UnixStream;
use velos_proto::frame::{self, FrameReader};
use velos_proto::{Call, Method, rpc};

use crate::{Error, Result};

/// One connection to the daemon's socket, opened again on demand.
pub(crate) struct Connection {
    socket: PathBuf,
    /// `None` after a failure that may have left the stream out of step.
    stream: Option<(UnixStream, FrameReader)>,
    next_msgid: u32,
}

impl Connection {
    /// Connects to `socket`.
    pub(crate) async fn open(socket: PathBuf) -> Result<Connection> {
        let stream = connect(&socket).await?;
        Ok(Connection {
            socket,
            stream: Some((stream, FrameReader::new())),
            next_msgid: 1,
        })
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
        let msgid = self.next_msgid;
        self.next_msgid = self.next_msgid.wrapping_add(1);
        let payload = rpc::encode_request(msgid, M::NAME, params).map_err(Error::Protocol)?;

        let (mut stream, mut frames, reused) = match self.stream.take() {
            Some((stream, frames)) => (stream, frames, true),
            None => (connect(&self.socket).await?, FrameReader::new(), false),
        };
        if let Err(error) = frame::write_frame(&mut stream, &payload).await {
            match Error::from_wire(error) {
                // The daemon closed an idle connection (it restarted, say): the request
                // went nowhere, so it is safe to send it again on a new connection.
                Error::Disconnected if reused => {
                    stream = connect(&self.socket).await?;
                    frames = FrameReader::new();
                    frame::write_frame(&mut stream, &payload)
                        .await
                        .map_err(Error::from_wire)?;
                }
                error => return Err(error),
            }
        }

        let result = read_response::<M>(&mut stream, &mut frames, msgid).await;
        match result {
            // A daemon that is shutting down closes this connection anyway; and one that
            // took the kill may go before (or instead of) answering: its answer is nil.
            _ if M::METHOD == Method::Kill => match result {
                Err(Error::Disconnected) => {
                    rpc::decode_value::<M::Result>(&[0xc0]).map_err(Error::Protocol)
                }
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

// Hand-written: the read buffer can be large and says nothing useful.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("socket", &self.socket)
            .field("open", &self.stream.is_some())
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
    let ours = rustix::process::geteuid().as_raw();
    let daemon = peer_uid(&stream, socket).map_err(Error::Io)?;
    if daemon != ours {
        return Err(Error::ForeignDaemon {
            socket: socket.to_path_buf(),
            daemon,
            ours,
        });
    }
    Ok(stream)
}

/// The uid of the process that listens on the other end, as the kernel recorded it when
/// that process called `listen` (`SO_PEERCRED`): a home owned by another user, or a
/// socket another user put there, cannot make us talk to that user's process.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &UnixStream, _socket: &Path) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

/// The uid owning the socket file: `getpeereid` is not reachable without `unsafe` here,
/// and only the daemon's uid can create the socket in its 0700 home.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(_stream: &UnixStream, socket: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::symlink_metadata(socket)?.uid())
}

/// Reads frames until the response to `msgid`, and decodes its result straight into
/// `M`'s result type.
/// Notifications that come before it are skipped.
async fn read_response<M: Call>(
    stream: &mut UnixStream,
    frames: &mut FrameReader,
    msgid: u32,
) -> Result<M::Result> {
    loop {
        if !frames.next(stream).await.map_err(Error::from_wire)? {
            return Err(Error::Disconnected);
        }
        let payload = frames.payload();
        let Some(decoded) = rpc::decode_response::<M::Result>(payload) else {
            // Not a response: a notification is skipped, anything else is an error.
            rpc::decode_notification(payload).map_err(Error::Protocol)?;
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
