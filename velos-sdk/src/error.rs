//! [`Error`]: every way a request to the daemon can fail, typed so callers can match on it.
//!
//! Connection failures come first (no socket, a stale socket, a timeout, a closed
//! connection), then replies this client cannot read, then the daemon's own answer
//! ([`Error::Daemon`]). Messages are one lowercase line; the CLI adds its own hints.

use std::path::PathBuf;
use std::time::Duration;

use velos_proto::ErrorCode;
use velos_proto::home::NoHomeError;

/// A failed connection or request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no socket file: no daemon has been started for this home.
    #[error("the velos daemon is not running (no socket at {})", socket.display())]
    NotRunning {
        /// Where the socket was looked for.
        socket: PathBuf,
    },
    /// The socket file exists but nothing accepts on it, usually left behind by a
    /// daemon that died.
    #[error(
        "the velos daemon refused the connection at {} (a stale socket: the daemon is not running)",
        socket.display()
    )]
    Refused {
        /// The socket that refused.
        socket: PathBuf,
    },
    /// Connecting, or waiting for an answer, took longer than the client's timeout.
    #[error("the velos daemon did not answer within {after:?}; it may be busy or stuck")]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// The daemon closed the connection before answering.
    #[error(
        "the velos daemon closed the connection before answering (it may have crashed or be shutting down)"
    )]
    Disconnected,
    /// The daemon speaks another protocol version, usually because it was started by an
    /// older or newer velos.
    #[error(
        "the velos daemon speaks protocol {daemon}, this client {client}: run 'velos kill' and retry"
    )]
    VersionMismatch {
        /// The version in the daemon's frame header.
        daemon: u8,
        /// The version this client speaks ([`velos_proto::frame::VERSION`]).
        client: u8,
    },
    /// The daemon's reply could not be read (not a frame, not MessagePack, or not the
    /// answer to the request that was sent), or the request could not be encoded.
    ///
    /// The cause is the error's `source()` (shown after a colon by `{:#}` in anyhow, or
    /// by walking the chain), not repeated in its own message.
    #[error("protocol error talking to the velos daemon")]
    Protocol(#[source] velos_proto::Error),
    /// The daemon answered with an error. Its message is meant for people; match on `code`.
    #[error("{message}")]
    Daemon {
        /// What kind of failure.
        code: ErrorCode,
        /// What went wrong and what to do next, as the daemon put it.
        message: String,
    },
    /// The process listening on the socket runs as another user. Nothing is sent to it:
    /// a request (a start carries its environment) would hand that user whatever it asks.
    #[error(
        "the velos daemon at {} runs as uid {daemon}, not as your uid {ours}: refusing to talk to another user's daemon; use a home of your own (set VELOS_HOME), or run velos as that user",
        socket.display()
    )]
    ForeignDaemon {
        /// The socket.
        socket: PathBuf,
        /// The uid of the process listening on it.
        daemon: u32,
        /// This process's effective uid.
        ours: u32,
    },
    /// The socket's path is longer than a Unix socket address can hold.
    #[error("{0}")]
    SocketPathTooLong(#[from] velos_proto::home::SocketPathTooLong),
    /// Neither `$VELOS_HOME` nor a home directory is set, so there is no default socket.
    #[error(transparent)]
    NoHome(#[from] NoHomeError),
    /// Another I/O error on the socket (permission denied, a path too long, ...). The
    /// cause is the error's `source()`, as for [`Error::Protocol`].
    #[error("cannot talk to the velos daemon")]
    Io(#[source] std::io::Error),
}

impl Error {
    /// Maps a failure to read or write a frame: a frame of another protocol version is
    /// a [`Error::VersionMismatch`], a connection closed under us is
    /// [`Error::Disconnected`], anything else malformed is [`Error::Protocol`].
    pub(crate) fn from_wire(error: velos_proto::Error) -> Error {
        match error {
            velos_proto::Error::UnsupportedVersion { version } => Error::VersionMismatch {
                daemon: version,
                client: velos_proto::frame::VERSION,
            },
            velos_proto::Error::Io(error) => Error::from_io(error),
            other => Error::Protocol(other),
        }
    }

    /// Maps an I/O error on an open connection. A reset or broken pipe means the daemon
    /// went away, which callers care about more than the errno.
    pub(crate) fn from_io(error: std::io::Error) -> Error {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
                Error::Disconnected
            }
            _ => Error::Io(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_lowercase_line() {
        let errors = [
            Error::NotRunning {
                socket: "/x/velos.sock".into(),
            },
            Error::Refused {
                socket: "/x/velos.sock".into(),
            },
            Error::Timeout {
                after: Duration::from_millis(250),
            },
            Error::Disconnected,
            Error::VersionMismatch {
                daemon: 2,
                client: 1,
            },
            Error::Protocol(velos_proto::Error::Truncated),
            Error::NoHome(NoHomeError),
            Error::ForeignDaemon {
                socket: "/x/velos.sock".into(),
                daemon: 1000,
                ours: 0,
            },
            Error::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        ];
        for error in errors {
            let message = error.to_string();
            assert!(!message.contains('\n'), "{message}");
            assert!(!message.ends_with('.'), "{message}");
            assert!(
                message.starts_with(|c: char| !c.is_uppercase()),
                "{message}"
            );
        }
    }

    #[test]
    fn protocol_and_io_errors_keep_their_cause_as_the_source() {
        use std::error::Error as _;
        let protocol = Error::Protocol(velos_proto::Error::Truncated);
        let cause = protocol.source().expect("a protocol error's source");
        assert_eq!(cause.to_string(), velos_proto::Error::Truncated.to_string());
        let io = Error::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let cause = io.source().expect("an I/O error's source");
        assert!(
            cause.downcast_ref::<std::io::Error>().is_some(),
            "{cause:?}"
        );
        // Shown with its chain, as the CLI does (anyhow's `{:#}`), the cause appears once.
        let shown = format!("{io}: {cause}");
        assert_eq!(shown, "cannot talk to the velos daemon: permission denied");
    }

    #[test]
    fn not_running_names_the_socket() {
        let error = Error::NotRunning {
            socket: "/x/velos.sock".into(),
        };
        assert_eq!(
            error.to_string(),
            "the velos daemon is not running (no socket at /x/velos.sock)"
        );
    }

    #[test]
    fn daemon_errors_show_the_daemon_message_alone() {
        let error = Error::Daemon {
            code: ErrorCode::NotFound,
            message: "no process named 'api' (see 'velos list')".into(),
        };
        assert_eq!(
            error.to_string(),
            "no process named 'api' (see 'velos list')"
        );
    }

    #[test]
    fn a_frame_of_another_version_is_a_version_mismatch() {
        assert!(matches!(
            Error::from_wire(velos_proto::Error::UnsupportedVersion { version: 2 }),
            Error::VersionMismatch {
                daemon: 2,
                client: 1
            }
        ));
    }

    #[test]
    fn a_reset_connection_is_a_disconnect() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(
            Error::from_wire(velos_proto::Error::Io(reset)),
            Error::Disconnected
        ));
    }
}
