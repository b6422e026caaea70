//! The ready modes: how velos watches a run until it says it is ready.
//!
//! A run with one of these modes gets a probe: a task that watches for the signal and
//! sends [`Command::Ready`] once, then ends. The run's watcher (`launch.rs`) owns the
//! task, so a probe never outlives its run; it also gives up by itself at the ready
//! timeout (the lifecycle's deadline decides what that means).
//!
//! - `notify`: the run's own datagram socket (`notify.rs`): `READY=1` is the signal, and
//!   each `STATUS=` goes to the supervisor ([`Command::Status`]) for `info`. Read for the
//!   whole run, not bounded by the timeout.
//! - `message`: the child gets one end of a socket pair as Node's IPC channel
//!   (`NODE_CHANNEL_FD`, `NODE_CHANNEL_SERIALIZATION_MODE=json`, as `child_process.fork`
//!   and PM2 set it up); Node writes each `process.send(value)` as one JSON line, and
//!   `"ready"` is the signal (PM2's `wait_ready`). Other messages are read and ignored.
//! - `log:REGEX`: a follower of the run's log ring, like `velos logs -f`; the first line
//!   of stdout or stderr that matches is the signal.
//! - `http:URL`: a `GET` of URL every [`HTTP_PAUSE`], each bounded by
//!   [`HTTP_ATTEMPT_TIMEOUT`]; the first 2xx status is the signal. Only loopback hosts
//!   are probed (checked when the process is started).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use async_channel::Sender;
use async_io::{Async, Timer};
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, FutureExt};
use regex_lite::Regex;
use smol::Task;
use velos_proto::{LogLine, ReadyMode};

use crate::logs::{self, Logs};
use crate::notify::{self, Notice, RunSocket};
use crate::supervisor::Command;

/// The pause between two HTTP probes.
pub const HTTP_PAUSE: Duration = Duration::from_millis(100);
/// How long one HTTP probe may take.
pub const HTTP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest IPC line read before it is skipped (a message is JSON on one line).
const MAX_MESSAGE: usize = 64 * 1024;

/// A ready mode's setting that cannot work, said when the process is started.
pub fn check(mode: &ReadyMode) -> Result<(), String> {
    match mode {
        ReadyMode::Log(pattern) => Regex::new(pattern)
            .map(drop)
            .map_err(|err| format!("ready mode log:{pattern}: {err}")),
        ReadyMode::Http(url) => HttpTarget::parse(url).map(drop),
        ReadyMode::Notify | ReadyMode::Message => Ok(()),
    }
}

/// The lowest descriptor number the child's end of the IPC channel gets: above the
/// listening sockets a run may be handed from descriptor 3 on (`handoff.rs`), which
/// would otherwise land on it.
const MIN_CHANNEL_FD: rustix::fd::RawFd = 64;

/// The two ends of a run's Node IPC channel: the daemon's, and the child's (handed to it
/// at spawn, then closed here; both close-on-exec).
pub fn ipc_channel() -> std::io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair()?;
    let theirs = rustix::io::fcntl_dupfd_cloexec(&theirs, MIN_CHANNEL_FD)?;
    Ok((ours, theirs))
}

/// What a run was given to say it is ready on, made before it is spawned.
pub struct Channels {
    /// The daemon's end of the Node IPC channel (`message`).
    pub ipc: Option<UnixStream>,
    /// The run's notify socket (`notify`).
    pub notify: Option<RunSocket>,
}

/// Starts the probe of run `run` of process `id` for `mode`: it sends
/// [`Command::Ready`] when the run says it is ready; the `log:` and `http:` probes end
/// by `timeout`.
pub fn probe(
    mode: &ReadyMode,
    (id, run): (u32, u64),
    timeout: Duration,
    ring: &Logs,
    Channels { ipc, notify }: Channels,
    commands: &Sender<Command>,
) -> Option<Task<()>> {
    let to_supervisor = commands.clone();
    let ready = async move {
        let _ = to_supervisor.send(Command::Ready { id, run }).await;
    };
    let deadline = Instant::now() + timeout;
    let watch = match mode {
        ReadyMode::Notify => {
            let notify = notify?;
            let commands = commands.clone();
            return Some(smol::spawn(read_notices(notify, (id, run), commands)));
        }
        ReadyMode::Message => {
            // Not bounded by the timeout: the channel stays open for the whole run, as
            // under PM2 (a Node program whose channel closes gets an error on its next
            // `process.send`).
            let ipc = Async::new(ipc?).ok()?;
            return Some(smol::spawn(read_messages(ipc, ready)));
        }
        ReadyMode::Log(pattern) => {
            let regex = Regex::new(pattern).ok()?;
            let (follower, mut stream) = crate::follow::channel();
            logs::lock(ring).follow(follower);
            smol::spawn(async move {
                let mut batch = Vec::new();
                while stream.next_batch(&mut batch).await {
                    if lines(&batch).any(|line| line.id == id && matches(&regex, &line.line)) {
                        ready.await;
                        return;
                    }
                }
            })
        }
        ReadyMode::Http(url) => {
            let target = HttpTarget::parse(url).ok()?;
            smol::spawn(async move {
                while Instant::now() < deadline {
                    if target.get_is_2xx().await {
                        ready.await;
                        return;
                    }
                    Timer::after(HTTP_PAUSE).await;
                }
            })
        }
    };
    Some(smol::spawn(async move {
        watch
            .or(async {
                Timer::at(deadline).await;
            })
            .await;
    }))
}

/// Reads the notices of a run's notify socket until the run's probe is dropped.
async fn read_notices(notify: RunSocket, (id, run): (u32, u64), commands: Sender<Command>) {
    let mut buf = vec![0; notify::MAX_DATAGRAM];
    let mut ready = false;
    loop {
        let Ok(len) = notify.socket.recv(&mut buf).await else {
            return;
        };
        let notice = Notice::parse(&buf[..len.min(buf.len())]);
        if let Some(text) = notice.status {
            let _ = commands.send(Command::Status { id, run, text }).await;
        }
        if notice.ready && !ready {
            ready = true;
            let _ = commands.send(Command::Ready { id, run }).await;
        }
    }
}

/// Reads Node IPC messages (one JSON value per line) until the channel closes; the first
/// `"ready"` runs `ready`.
async fn read_messages(ipc: Async<UnixStream>, ready: impl Future<Output = ()>) {
    let mut reader = futures_lite::io::BufReader::new(ipc);
    let mut line = Vec::new();
    let mut ready = Some(ready);
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_MESSAGE as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim_ascii() == b"\"ready\""
            && let Some(ready) = ready.take()
        {
            ready.await;
        }
    }
}

/// The `log.line` notifications in a batch of frames, decoded.
fn lines(mut batch: &[u8]) -> impl Iterator<Item = LogLine> + '_ {
    std::iter::from_fn(move || {
        loop {
            let (payload, rest) = velos_proto::frame::decode_frame(batch).ok()?;
            batch = rest;
            // Notices (`log.end`, `log.gap`) have other params: skipped.
            if let Ok((_, _, line)) = rmp_serde::from_slice::<(u8, String, LogLine)>(payload) {
                return Some(line);
            }
        }
    })
}

/// Whether a line (any bytes; matched as UTF-8, invalid bytes replaced) matches.
fn matches(regex: &Regex, line: &[u8]) -> bool {
    regex.is_match(&String::from_utf8_lossy(line))
}

/// Where an `http:` probe goes: a loopback address, and the request's host and path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpTarget {
    address: SocketAddr,
    host: String,
    path: String,
}

impl HttpTarget {
    /// Reads `http://HOST[:PORT][/PATH]`; the host must be a loopback address or
    /// `localhost`.
    fn parse(url: &str) -> Result<HttpTarget, String> {
        let bad = |why: &str| format!("ready mode http:{url}: {why}");
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are probed"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("the URL needs a host such as 127.0.0.1:8080"));
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_owned()
        };
        let address = if let Some(port) = with_port.strip_prefix("localhost:") {
            let port = port.parse().map_err(|_| bad("the port is not a number"))?;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else {
            // An IP address, never a name to look up: a lookup could block the supervisor.
            with_port.parse::<SocketAddr>().map_err(|_| {
                bad("the host must be an IP address or localhost, with a numeric port")
            })?
        };
        if !address.ip().is_loopback() {
            return Err(bad(
                "only loopback addresses (127.0.0.1, [::1], localhost) are probed",
            ));
        }
        Ok(HttpTarget {
            address,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// One `GET`, bounded by [`HTTP_ATTEMPT_TIMEOUT`]: whether it answered 2xx.
    async fn get_is_2xx(&self) -> bool {
        let attempt = async {
            let mut stream = Async::<std::net::TcpStream>::connect(self.address)
                .await
                .ok()?;
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: velos\r\nConnection: close\r\n\r\n",
                self.path, self.host
            );
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut head = [0; 12];
            stream.read_exact(&mut head).await.ok()?;
            Some(status_is_2xx(&head))
        };
        attempt
            .or(async {
                Timer::after(HTTP_ATTEMPT_TIMEOUT).await;
                None
            })
            .await
            .unwrap_or(false)
    }
}

/// Whether a response's first bytes (`HTTP/1.1 200`) say 2xx.
fn status_is_2xx(head: &[u8; 12]) -> bool {
    head.starts_with(b"HTTP/1.") && head[8] == b' ' && head[9] == b'2'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_targets_are_loopback_only() {
        let target = HttpTarget::parse("http://127.0.0.1:8080/health").unwrap();
        assert_eq!(target.address, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (target.host.as_str(), target.path.as_str()),
            ("127.0.0.1:8080", "/health")
        );
        let target = HttpTarget::parse("http://localhost:3000").unwrap();
        assert_eq!(target.address, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(target.path, "/");
        let target = HttpTarget::parse("http://[::1]/x").unwrap();
        assert_eq!(target.address, "[::1]:80".parse().unwrap());
        for url in [
            "http://10.1.2.3:80/",
            "http://",
            "https://127.0.0.1/",
            "http://u@127.0.0.1/",
        ] {
            assert!(HttpTarget::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn only_2xx_statuses_count() {
        assert!(status_is_2xx(b"HTTP/1.1 204"));
        assert!(status_is_2xx(b"HTTP/1.0 200"));
        assert!(!status_is_2xx(b"HTTP/1.1 302"));
        assert!(!status_is_2xx(b"HTTP/1.1 500"));
        assert!(!status_is_2xx(b"SSH-2.0-Open"));
    }

    #[test]
    fn a_bad_regex_is_refused_at_start() {
        assert!(check(&ReadyMode::Log("listening on \\d+".into())).is_ok());
        assert!(check(&ReadyMode::Log("(unclosed".into())).is_err());
        assert!(check(&ReadyMode::Http("http://8.8.8.8/".into())).is_err());
    }
}
