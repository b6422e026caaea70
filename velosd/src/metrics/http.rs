//! A small HTTP/1.1 server for the metrics: `GET` (or `HEAD`) `/metrics`, `/healthz`,
//! `/readyz`, one request per connection (`Connection: close`).
//!
//! Nothing a client does holds up the daemon or another client: each connection is a
//! task of its own on the connections' thread; the request head must arrive within
//! [`HEAD_TIMEOUT`] (else 408 and close) and be at most [`MAX_HEAD_BYTES`] (else 431 and
//! close); the answer must be taken within [`WRITE_TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] are open at once, and a connection over that is closed at once. A
//! body is never read. The figures come from the supervisor as a snapshot (see
//! `metrics/mod.rs`), awaited, never locked.

use std::cell::Cell;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use async_channel::Sender;
use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use velos_proto::{Request, Response};

use super::render::{CONTENT_TYPE, not_ready, render};
use super::{Daemon, snapshot};
use crate::supervisor::Command;

/// The largest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time allowed for the whole request head, from the connection's accept.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a client to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long `/healthz` waits for the supervisor to answer a ping.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` for ever, each in a task of this future's own
/// executor: dropping the future closes the port and ends every connection.
pub async fn serve(listener: Async<TcpListener>, supervisor: Sender<Command>) {
    let connections = smol::LocalExecutor::new();
    let open = Rc::new(Cell::new(0usize));
    connections
        .run(async {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of descriptors and the like: the listener itself is fine.
                        crate::log(format_args!("metrics: accept failed: {error}"));
                        Timer::after(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if open.get() >= MAX_CONNECTIONS {
                    continue; // Dropped: closed at once.
                }
                let guard = Open::new(&open);
                let supervisor = supervisor.clone();
                connections
                    .spawn(async move {
                        let _guard = guard;
                        connection(stream, &supervisor).await;
                    })
                    .detach();
            }
        })
        .await;
}

/// Counts a connection while it is open.
struct Open(Rc<Cell<usize>>);

impl Open {
    fn new(open: &Rc<Cell<usize>>) -> Open {
        open.set(open.get() + 1);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Why a request head was not read.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    TimedOut,
    /// The client closed (or reset) before the head was complete.
    Closed,
}

async fn connection(mut stream: Async<TcpStream>, supervisor: &Sender<Command>) {
    let head = async { read_head(&mut stream).await }
        .or(async {
            Timer::after(HEAD_TIMEOUT).await;
            Err(HeadError::TimedOut)
        })
        .await;
    let answer = match head {
        Ok(head) => route(&head, supervisor).await,
        Err(HeadError::TooLarge) => {
            Answer::text(431, format!("request head over {MAX_HEAD_BYTES} bytes\n"))
        }
        Err(HeadError::TimedOut) => Answer::text(
            408,
            format!("no request within {} s\n", HEAD_TIMEOUT.as_secs()),
        ),
        Err(HeadError::Closed) => return,
    };
    let bytes = answer.encode();
    let _ = async { stream.write_all(&bytes).await.and(stream.flush().await) }
        .or(async {
            Timer::after(WRITE_TIMEOUT).await;
            Err(std::io::ErrorKind::TimedOut.into())
        })
        .await;
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
}

/// Reads until the blank line that ends the head; at most [`MAX_HEAD_BYTES`].
async fn read_head(stream: &mut Async<TcpStream>) -> Result<Vec<u8>, HeadError> {
    let mut head = vec![0u8; MAX_HEAD_BYTES];
    let mut filled = 0;
    loop {
        if filled == head.len() {
            return Err(HeadError::TooLarge);
        }
        let read = stream
            .read(&mut head[filled..])
            .await
            .map_err(|_| HeadError::Closed)?;
        if read == 0 {
            return Err(HeadError::Closed);
        }
        // The end may straddle two reads: look from a little before the new bytes.
        let from = filled.saturating_sub(3);
        filled += read;
        if let Some(end) = head_end(&head[from..filled]) {
            head.truncate(from + end);
            return Ok(head);
        }
    }
}

/// Where the head ends in `bytes` (after `\r\n\r\n`, or a bare `\n\n`).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(bytes, b"\r\n\r\n").map(|at| at + 4);
    let lf = memchr::memmem::find(bytes, b"\n\n").map(|at| at + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What to send back.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    /// `HEAD`: the headers only.
    head_only: bool,
    allow: bool,
}

impl Answer {
    fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
            head_only: false,
            allow: false,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// The answer to a request head.
async fn route(head: &[u8], supervisor: &Sender<Command>) -> Answer {
    let Some((method, path)) = request_line(head) else {
        return Answer::text(400, "not an HTTP/1 request line\n".to_owned());
    };
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut answer = Answer::text(405, "only GET and HEAD\n".to_owned());
            answer.allow = true;
            return answer;
        }
    };
    let mut answer = match path {
        "/metrics" => match snapshot(supervisor, true).await {
            Some(snapshot) => Answer {
                content_type: CONTENT_TYPE,
                ..Answer::text(200, render(&snapshot, &Daemon::now()))
            },
            None => unavailable(),
        },
        "/healthz" => {
            if healthy(supervisor).await {
                Answer::text(200, "ok\n".to_owned())
            } else {
                unavailable()
            }
        }
        "/readyz" => match snapshot(supervisor, false).await {
            Some(snapshot) => {
                let waiting = not_ready(&snapshot);
                if waiting.is_empty() {
                    Answer::text(200, "ready\n".to_owned())
                } else {
                    Answer::text(503, format!("not ready: {}\n", waiting.join(", ")))
                }
            }
            None => unavailable(),
        },
        _ => Answer::text(
            404,
            "not found: velos serves /metrics, /healthz and /readyz\n".to_owned(),
        ),
    };
    answer.head_only = head_only;
    answer
}

fn unavailable() -> Answer {
    Answer::text(503, "the daemon did not answer in time\n".to_owned())
}

/// Whether the supervisor answers a ping within [`HEALTH_TIMEOUT`].
async fn healthy(supervisor: &Sender<Command>) -> bool {
    let (reply, answer) = async_channel::bounded(1);
    let request = Command::Request {
        request: Box::new(Request::Ping),
        reply,
    };
    if supervisor.send(request).await.is_err() {
        return false;
    }
    async { matches!(answer.recv().await, Ok(Ok(Response::Ping(_)))) }
        .or(async {
            Timer::after(HEALTH_TIMEOUT).await;
            false
        })
        .await
}

/// The method and the path (without its query) of the request line, if it is one.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Some((method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_give_the_method_and_path() {
        assert_eq!(
            request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"HEAD /readyz HTTP/1.0\n\n"),
            Some(("HEAD", "/readyz"))
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\xff /x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn answers_say_their_length_and_close() {
        let text = String::from_utf8(Answer::text(503, "no\n".into()).encode()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nno\n"), "{text}");
    }
}
