//! Errors of the protocol layer, and the codes the daemon puts in error responses.
//!
//! [`Error`] is what decoding or I/O on a frame can fail with. [`ErrorCode`] is the
//! `code` of an error response's `{code, message}` map: the daemon picks one, clients
//! match on it. Codes are stable numbers; an unknown one decodes as
//! [`ErrorCode::Unknown`] so an older client can read a newer daemon.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A failure to read, write or decode a protocol message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame did not start with `VELO`.
    #[error(
        "bad frame magic {found:02x?} (expected \"VELO\"): the peer is not speaking the velos protocol"
    )]
    BadMagic {
        /// The four bytes that came instead.
        found: [u8; 4],
    },
    /// The frame's protocol version is not the one this crate speaks.
    #[error(
        "protocol version {version} is not supported (this side speaks version {})",
        crate::frame::VERSION
    )]
    UnsupportedVersion {
        /// The version byte of the frame.
        version: u8,
    },
    /// The frame announced a payload over [`crate::frame::MAX_PAYLOAD_BYTES`].
    #[error(
        "frame of {len} bytes is over the {} byte limit",
        crate::frame::MAX_PAYLOAD_BYTES
    )]
    FrameTooLarge {
        /// The announced payload length.
        len: u32,
    },
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The payload was not well-formed MessagePack.
    #[error("payload is not valid MessagePack: {0}")]
    Decode(String),
    /// The payload was MessagePack but not a request, response or notification.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A request held more values than one request may (see [`crate::budget`]).
    #[error("request holds more than {limit} values, the limit of one request")]
    TooManyValues {
        /// The budget, [`crate::budget::MAX_REQUEST_VALUES`].
        limit: usize,
    },
    /// A request nested maps and arrays deeper than one request may.
    #[error("request nests maps and arrays more than {limit} levels deep")]
    TooDeep {
        /// The budget, [`crate::budget::MAX_REQUEST_DEPTH`].
        limit: usize,
    },
    /// A start (or a restart's new environment) carries more bytes of arguments and
    /// environment than [`crate::MAX_START_BYTES`].
    #[error(
        "the arguments and environment are {bytes} bytes, over the 1 MiB a start may carry (Linux refuses 2 MiB at exec): pass large data in a file instead"
    )]
    StartTooLarge {
        /// Bytes of arguments and environment, counted as exec counts them.
        bytes: usize,
    },
    /// A value could not be encoded as MessagePack.
    #[error("could not encode message: {0}")]
    Encode(String),
    /// Reading or writing the underlying stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The code of an error response: what kind of failure the daemon reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame or message could not be understood.
    BadRequest,
    /// The method name is not one the daemon knows (it may be older than the client).
    UnknownMethod,
    /// The params did not fit the method (missing or mistyped field).
    InvalidParams,
    /// No process has that name or id.
    NotFound,
    /// A process with that name already exists.
    AlreadyExists,
    /// The name breaks the naming rules.
    InvalidName,
    /// The script does not exist, or velos cannot tell how to run it.
    InvalidScript,
    /// The process could not be spawned.
    SpawnFailed,
    /// The daemon is shutting down and takes no new work.
    ShuttingDown,
    /// Something went wrong inside the daemon.
    Internal,
    /// The answer is over the 16 MiB a frame can carry, so it was not sent; what the
    /// request does (a stop, say) was done.
    AnswerTooLarge,
    /// The client runs in another PID namespace than the daemon (a `velos` on the host
    /// against a container's daemon): the pids they speak of differ, so the daemon
    /// answers nothing else; the connection is closed.
    OtherNamespace,
    /// A code this version does not know.
    Unknown(i64),
}

impl ErrorCode {
    /// The number sent on the wire.
    pub fn as_i64(self) -> i64 {
        match self {
            ErrorCode::BadRequest => 1,
            ErrorCode::UnknownMethod => 2,
            ErrorCode::InvalidParams => 3,
            ErrorCode::NotFound => 4,
            ErrorCode::AlreadyExists => 5,
            ErrorCode::InvalidName => 6,
            ErrorCode::InvalidScript => 7,
            ErrorCode::SpawnFailed => 8,
            ErrorCode::ShuttingDown => 9,
            ErrorCode::Internal => 10,
            ErrorCode::AnswerTooLarge => 11,
            ErrorCode::OtherNamespace => 12,
            ErrorCode::Unknown(code) => code,
        }
    }

    /// The code for a number read from the wire.
    pub fn from_i64(code: i64) -> ErrorCode {
        match code {
            1 => ErrorCode::BadRequest,
            2 => ErrorCode::UnknownMethod,
            3 => ErrorCode::InvalidParams,
            4 => ErrorCode::NotFound,
            5 => ErrorCode::AlreadyExists,
            6 => ErrorCode::InvalidName,
            7 => ErrorCode::InvalidScript,
            8 => ErrorCode::SpawnFailed,
            9 => ErrorCode::ShuttingDown,
            10 => ErrorCode::Internal,
            11 => ErrorCode::AnswerTooLarge,
            12 => ErrorCode::OtherNamespace,
            other => ErrorCode::Unknown(other),
        }
    }

    /// A short kebab-case name, for messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::UnknownMethod => "unknown-method",
            ErrorCode::InvalidParams => "invalid-params",
            ErrorCode::NotFound => "not-found",
            ErrorCode::AlreadyExists => "already-exists",
            ErrorCode::InvalidName => "invalid-name",
            ErrorCode::InvalidScript => "invalid-script",
            ErrorCode::SpawnFailed => "spawn-failed",
            ErrorCode::ShuttingDown => "shutting-down",
            ErrorCode::Internal => "internal",
            ErrorCode::AnswerTooLarge => "answer-too-large",
            ErrorCode::OtherNamespace => "other-namespace",
            ErrorCode::Unknown(_) => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::Unknown(code) => write!(f, "unknown ({code})"),
            known => f.write_str(known.name()),
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(ErrorCode::from_i64)
    }
}

/// The `error` field of a response: `{"code": int, "message": str}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// One line for a person: what went wrong and what to do next.
    pub message: String,
}

impl RpcError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_number() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::UnknownMethod,
            ErrorCode::InvalidParams,
            ErrorCode::NotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::InvalidName,
            ErrorCode::InvalidScript,
            ErrorCode::SpawnFailed,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
            ErrorCode::AnswerTooLarge,
            ErrorCode::OtherNamespace,
            ErrorCode::Unknown(99),
        ] {
            assert_eq!(ErrorCode::from_i64(code.as_i64()), code);
        }
    }
}
