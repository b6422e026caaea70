//! Readiness: how a process says it is ready (`--ready MODE`), shared by the CLI (which
//! refuses a bad mode before anything is sent) and the daemon.
//!
//! With a mode, a process is `starting` until it is ready; one that is not ready within
//! its ready timeout has failed. Without a mode it is `running` from its spawn.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The ready timeout when a start request names none.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How a process says it is ready.
///
/// # Examples
/// ```
/// use velos_proto::ReadyMode;
///
/// let mode: ReadyMode = "log:listening on \\d+".parse().unwrap();
/// assert_eq!(mode, ReadyMode::Log("listening on \\d+".into()));
/// assert_eq!(mode.to_string(), "log:listening on \\d+");
/// assert!("tcp:80".parse::<ReadyMode>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyMode {
    /// `notify`: it (or any process of its tree) sends `READY=1` to `$NOTIFY_SOCKET`, as
    /// systemd's `sd_notify` does.
    Notify,
    /// `message`: a Node.js program calls `process.send('ready')` on the IPC channel
    /// velos gives it (PM2's `wait_ready`).
    Message,
    /// `log:REGEX`: the first line of stdout or stderr that matches REGEX.
    Log(String),
    /// `http:URL`: a `GET` of URL (on this machine's loopback) answers 2xx.
    Http(String),
}

/// A `--ready` value that is not a mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{}' is not a ready mode: use notify, message, log:REGEX or http://127.0.0.1:PORT/PATH as http:URL",
    crate::echo(.0)
)]
pub struct BadReadyMode(pub String);

impl FromStr for ReadyMode {
    type Err = BadReadyMode;

    fn from_str(text: &str) -> Result<ReadyMode, BadReadyMode> {
        let bad = || BadReadyMode(text.to_owned());
        match text {
            "notify" => Ok(ReadyMode::Notify),
            "message" => Ok(ReadyMode::Message),
            _ => match text.split_once(':') {
                Some(("log", regex)) if !regex.is_empty() => Ok(ReadyMode::Log(regex.to_owned())),
                Some(("http", url)) if url.starts_with("http://") && url.len() > 7 => {
                    Ok(ReadyMode::Http(url.to_owned()))
                }
                _ => Err(bad()),
            },
        }
    }
}

impl fmt::Display for ReadyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyMode::Notify => f.write_str("notify"),
            ReadyMode::Message => f.write_str("message"),
            ReadyMode::Log(regex) => write!(f, "log:{regex}"),
            ReadyMode::Http(url) => write!(f, "http:{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_bad_ones_are_named() {
        for text in [
            "notify",
            "message",
            "log:Listening on port",
            "log:a:b",
            "http:http://127.0.0.1:8080/health",
        ] {
            let mode: ReadyMode = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
        for text in ["", "log:", "http:", "http:localhost:80", "tcp:80", "Notify"] {
            assert!(text.parse::<ReadyMode>().is_err(), "{text}");
        }
        assert_eq!(
            "tcp".parse::<ReadyMode>().unwrap_err().to_string(),
            "'tcp' is not a ready mode: use notify, message, log:REGEX or \
             http://127.0.0.1:PORT/PATH as http:URL"
        );
    }
}
