//! The socket: bind it, accept connections, and serve each in its own task.
//!
//! A connection is a loop of read frame -> decode -> ask the supervisor -> write the
//! response, in order; a client may send several requests without waiting. Anything that
//! is not a well-formed request gets an error response (msgid 0 when the msgid could not
//! be read) and the connection is closed; the other connections are not affected.
//!
//! Slow peers: a connection may sit idle between requests for as long as it likes (an SDK
//! user may keep one open), but once a frame has begun, the rest of it must arrive within
//! [`FRAME_TIMEOUT`], and a response must be taken within [`WRITE_TIMEOUT`]; otherwise the
//! connection is dropped. Both can be changed for one daemon with [`FRAME_TIMEOUT_ENV`] and
//! [`WRITE_TIMEOUT_ENV`] (tests shorten them; see [`Timeouts::from_env`]). Each connection
//! has its own task, so a stuck peer only ever holds up itself; the connections have a
//! thread of their own (see [`serve`]).

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use async_channel::Sender;
use async_io::Async;
use velos_proto::frame::{self, FrameReader};
use velos_proto::rpc::notification;
use velos_proto::{ErrorCode, Method, Refused, Request, Response, RpcError, rpc};

use std::sync::OnceLock;
use std::time::Duration;

use async_io::Timer;
use futures_lite::{AsyncReadExt, FutureExt};

use crate::follow::FollowStream;
use crate::memory;
use crate::metrics::Service;
use crate::platform::Peer;
use crate::refusals::Refusals;
use crate::socket_watch::SocketWatch;
use crate::supervisor::Command;

/// Time allowed for the rest of a frame once its first byte has arrived.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a peer to take a response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Room reserved per process for a list's answer: an entry takes about 600 bytes with
/// short paths; room never written to costs no memory.
const LIST_BYTES_PER_PROCESS: usize = 1024;

/// Milliseconds that replace [`FRAME_TIMEOUT`] for this daemon (a test and ops knob).
pub const FRAME_TIMEOUT_ENV: &str = "VELOSD_FRAME_TIMEOUT_MS";
/// Milliseconds that replace [`WRITE_TIMEOUT`] for this daemon (a test and ops knob).
pub const WRITE_TIMEOUT_ENV: &str = "VELOSD_WRITE_TIMEOUT_MS";
/// The largest value either knob takes: one hour.
const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// The slow-peer timeouts this daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The rest of a begun frame must arrive within it.
    pub frame: Duration,
    /// A peer must take a response within it.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            frame: FRAME_TIMEOUT,
            write: WRITE_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// Reads [`FRAME_TIMEOUT_ENV`] and [`WRITE_TIMEOUT_ENV`] (whole milliseconds, 1 to
    /// 3,600,000); an unset variable keeps the default. The error is one line for the log.
    pub fn from_env() -> Result<Timeouts, String> {
        Timeouts::parse(
            std::env::var_os(FRAME_TIMEOUT_ENV).as_deref(),
            std::env::var_os(WRITE_TIMEOUT_ENV).as_deref(),
        )
    }

    fn parse(
        frame: Option<&std::ffi::OsStr>,
        write: Option<&std::ffi::OsStr>,
    ) -> Result<Timeouts, String> {
        let one = |name: &str, value: Option<&std::ffi::OsStr>, default: Duration| {
            let Some(value) = value else {
                return Ok(default);
            };
            match value.to_str().and_then(|text| text.parse::<u64>().ok()) {
                Some(ms @ 1..=MAX_TIMEOUT_MS) => Ok(Duration::from_millis(ms)),
                _ => Err(format!(
                    "{name} must be whole milliseconds from 1 to {MAX_TIMEOUT_MS}, got {value:?}: fix or unset it"
                )),
            }
        };
        Ok(Timeouts {
            frame: one(FRAME_TIMEOUT_ENV, frame, FRAME_TIMEOUT)?,
            write: one(WRITE_TIMEOUT_ENV, write, WRITE_TIMEOUT)?,
        })
    }

    /// Makes these the daemon's timeouts; only the first call counts.
    pub fn install(self) {
        let _ = TIMEOUTS.set(self);
    }

    /// The daemon's timeouts: the installed ones, else the defaults.
    fn current() -> Timeouts {
        TIMEOUTS.get().copied().unwrap_or_default()
    }
}

static TIMEOUTS: OnceLock<Timeouts> = OnceLock::new();

/// How long [`answers`] waits for a daemon on an existing socket to answer a ping.
const ANSWER_WAIT: Duration = Duration::from_secs(1);

/// Binds the socket at `path` (mode 0600), replacing a stale one. The caller holds the
/// pid file lock, so a socket already there normally belongs to no live daemon; but a
/// daemon whose `velos.pid` was removed by hand still answers on it, and taking its
/// socket would make two daemons on one home: that is refused.
pub fn bind(path: &Path) -> std::io::Result<Async<UnixListener>> {
    if answers(path) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another velosd answers on this socket (was its velos.pid removed?): stop it with 'velos kill' first",
        ));
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    crate::paths::make_socket_private(path)?;
    Async::new(listener)
}

/// Whether a daemon answers a ping on the socket at `path` within [`ANSWER_WAIT`]. A
/// daemon killed a moment ago may still accept (its last threads hold the socket) but
/// closes unanswered: that is no answer. One that accepts and stays silent is taken for
/// a busy live daemon.
pub fn answers(path: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = UnixStream::connect(path) else {
        return false;
    };
    let ping = Request::Ping
        .encode(0)
        .and_then(|payload| frame::encode_frame(&payload));
    let (Ok(ping), Ok(()), Ok(())) = (
        ping,
        stream.set_read_timeout(Some(ANSWER_WAIT)),
        stream.set_write_timeout(Some(ANSWER_WAIT)),
    ) else {
        return true;
    };
    if stream.write_all(&ping).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(read) => read > 0,
        Err(error) => matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// The device and inode of the file at `path`, if any (not following a link).
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

/// Accepts connections for ever, a task each. If the socket file at `path` is deleted
/// or replaced, binds it again, unless another live daemon answers there now (see
/// `socket_watch`).
///
/// The connections run on an executor of their own, on the thread that awaits this (the
/// main thread); the supervisor and every log collector run on smol's global executor, on
/// another thread. So decoding, encoding and writing for one client never hold up a log
/// pipe or the process table, and large requests are decoded on the blocking pool, so
/// they do not hold up the other clients either.
pub async fn serve(
    listener: Async<UnixListener>,
    path: &Path,
    supervisor: Sender<Command>,
    exit: Sender<()>,
    metrics: Service,
) {
    let connections = smol::LocalExecutor::new();
    // The metrics' HTTP listener and its connections run on this thread too.
    connections.spawn(metrics.clone().run()).detach();
    connections
        .run(accept(
            listener,
            path,
            supervisor,
            exit,
            metrics,
            &connections,
        ))
        .await;
}

async fn accept(
    mut listener: Async<UnixListener>,
    path: &Path,
    supervisor: Sender<Command>,
    exit: Sender<()>,
    metrics: Service,
    connections: &smol::LocalExecutor<'_>,
) {
    let mut watch = Some(SocketWatch::new(path));
    // Refusals are logged at most once per interval each: a client retrying must not
    // flood the log.
    let (mut strangers, mut hidden) = (Refusals::default(), Refusals::default());
    // The socket file we listen on: a change to the name that leaves it there (our own
    // re-binding, reported by the watch too) needs nothing.
    let mut bound = identity(path);
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                match &mut watch {
                    Some(watch) => watch.changed().await,
                    None => std::future::pending().await,
                }
                None
            })
            .await;
        let Some(accepted) = accepted else {
            let now = identity(path);
            if now.is_some() && now == bound {
                continue;
            }
            // On the blocking pool: `bind` may wait up to a second for another daemon's
            // answer, and this thread serves the connections.
            let rebound = {
                let path = path.to_owned();
                smol::unblock(move || bind(&path)).await
            };
            match rebound {
                Ok(new) => {
                    listener = new;
                    bound = identity(path);
                    crate::log(format_args!(
                        "{} was deleted or replaced; listening on it again",
                        path.display()
                    ));
                }
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    // Two daemons taking the socket from each other would serve clients
                    // at random and end each other's processes: this one steps back.
                    watch = None;
                    crate::log(format_args!(
                        "another daemon now answers on {}; this one (pid {}) can no longer be reached and will not take the socket back: end it with SIGTERM",
                        path.display(),
                        std::process::id()
                    ));
                }
                Err(error) => crate::log(format_args!(
                    "{} was deleted or replaced and cannot be bound again: {error}",
                    path.display()
                )),
            }
            continue;
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: the listener itself is fine, so go on.
            Err(error) => {
                crate::log(format_args!("accept failed: {error}"));
                async_io::Timer::after(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // The socket is 0600 in a 0700 directory already; the peer's uid (where the
        // system tells it, see `platform`) is the second lock on the door.
        match crate::platform::peer(stream.get_ref()) {
            Peer::Us => {}
            Peer::OtherUser { uid } => {
                // Dropped without a word: a stranger learns nothing. The log says who.
                let who = uid.map_or_else(String::new, |uid| format!(" (uid {uid})"));
                let what = format!("refused a connection from another user{who}");
                if let Some(line) = strangers.note(&what, std::time::Instant::now()) {
                    crate::log(line);
                }
                continue;
            }
            Peer::HiddenPid => {
                let what = "refused a connection from another PID namespace (a velos outside \
                            the container?): it was told to run velos inside it";
                if let Some(line) = hidden.note(what, std::time::Instant::now()) {
                    crate::log(line);
                }
                connections.spawn(refuse_other_namespace(stream)).detach();
                continue;
            }
        }
        connections
            .spawn(connection(
                stream,
                supervisor.clone(),
                exit.clone(),
                metrics.clone(),
            ))
            .detach();
    }
}

/// Answers the first request of a client in another PID namespace with why it is refused
/// and what to do, then closes: it is one of ours (same uid), so it may know why, and an
/// answer at once saves it from waiting, retrying and auto-starting a daemon.
async fn refuse_other_namespace(mut stream: Async<UnixStream>) {
    let mut frames = FrameReader::new();
    if !matches!(read_request_frame(&mut stream, &mut frames).await, Ok(true)) {
        return;
    }
    let msgid = rpc::decode_request(frames.payload()).map_or(0, |head| head.msgid);
    let refusal = RpcError::new(
        ErrorCode::OtherNamespace,
        format!(
            "the velos daemon (pid {} in its namespace) runs in another PID namespace than \
             this velos (a container's velos-runtime sharing this VELOS_HOME?), so the pids \
             it speaks of mean nothing here: run velos inside it, e.g. 'docker exec \
             CONTAINER velos list'",
            std::process::id()
        ),
    );
    let _ = send(&stream, msgid, Err(&refusal)).await;
}

async fn connection(
    mut stream: Async<UnixStream>,
    supervisor: Sender<Command>,
    exit: Sender<()>,
    metrics: Service,
) {
    let mut frames = FrameReader::new();
    loop {
        match read_request_frame(&mut stream, &mut frames).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                let answer = RpcError::new(ErrorCode::BadRequest, bad_frame_message(&error));
                let _ = send(&stream, 0, Err(&answer)).await;
                return;
            }
        }
        let large = frames.payload().len() > memory::LARGE_REQUEST_BYTES;
        let decoded = decode(&mut frames).await;
        let flow = answer(&stream, decoded, &supervisor, &exit, &metrics).await;
        if large {
            // What the request was made of is free again: give it back.
            smol::unblock(memory::trim).detach();
        }
        match flow {
            Flow::Next => {}
            Flow::Stream(stream_kind) => {
                return match stream_kind {
                    StreamKind::Follow { msgid, params } => {
                        follow(&stream, msgid, params, &supervisor).await
                    }
                    StreamKind::Events { msgid } => subscribe(&stream, msgid, &supervisor).await,
                };
            }
            Flow::Close => return,
        }
    }
}

/// Decodes a request once, straight into its typed form, within the budget of values and
/// nesting (`velos_proto::budget`): nothing a client sends is built as a tree. A request
/// over [`memory::LARGE_REQUEST_BYTES`] is decoded on the blocking pool, taking its
/// payload along: an idle connection never keeps more than that.
async fn decode(
    frames: &mut FrameReader,
) -> Result<(u32, Result<Request, Refused>), velos_proto::Error> {
    if frames.payload().len() <= memory::LARGE_REQUEST_BYTES {
        return Request::decode(frames.payload());
    }
    let large = frames.take_payload();
    smol::unblock(move || Request::decode(&large)).await
}

/// What a connection does after a request.
enum Flow {
    /// Read the next request.
    Next,
    /// Become a stream of notifications.
    Stream(StreamKind),
    /// Close the connection.
    Close,
}

/// The requests that turn a connection into a stream.
enum StreamKind {
    Follow {
        msgid: u32,
        params: velos_proto::LogReadParams,
    },
    Events {
        msgid: u32,
    },
}

/// Answers one decoded request (or says why not), except the two that start a stream.
async fn answer(
    stream: &Async<UnixStream>,
    decoded: Result<(u32, Result<Request, Refused>), velos_proto::Error>,
    supervisor: &Sender<Command>,
    exit: &Sender<()>,
    metrics: &Service,
) -> Flow {
    let (msgid, request) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            let answer = RpcError::new(ErrorCode::BadRequest, error.to_string());
            let _ = send(stream, 0, Err(&answer)).await;
            return Flow::Close;
        }
    };
    let request = match request {
        Ok(request) => request,
        Err(refused) => {
            return match send(stream, msgid, Err(&refusal(refused))).await {
                Ok(()) => Flow::Next,
                Err(_) => Flow::Close,
            };
        }
    };
    match request {
        Request::LogFollow(params) => return Flow::Stream(StreamKind::Follow { msgid, params }),
        Request::Subscribe => return Flow::Stream(StreamKind::Events { msgid }),
        _ => {}
    }
    // `metrics.*` are answered on this thread, where the metrics listener lives.
    let request = match metrics.answer(request).await {
        Ok(answer) => {
            return match send(stream, msgid, answer.as_ref()).await {
                Ok(()) => Flow::Next,
                Err(_) => Flow::Close,
            };
        }
        Err(request) => request,
    };
    let is_kill = request == Request::Kill;
    let method = request.method();
    let (reply, answer) = async_channel::bounded(1);
    let answer = match supervisor
        .send(Command::Request {
            request: Box::new(request),
            reply,
        })
        .await
    {
        Ok(()) => answer.recv().await.unwrap_or_else(|_| {
            Err(RpcError::new(
                ErrorCode::ShuttingDown,
                "the daemon is shutting down",
            ))
        }),
        Err(_) => Err(RpcError::new(
            ErrorCode::ShuttingDown,
            "the daemon is shutting down",
        )),
    };
    let sent = send_answer(stream, msgid, Some(method), answer.as_ref()).await;
    if is_kill {
        // The answer is out (or the client left): now the daemon may exit.
        let _ = exit.try_send(());
        return Flow::Close;
    }
    match sent {
        Ok(()) => Flow::Next,
        Err(_) => Flow::Close,
    }
}

/// Waits as long as it takes for a frame to begin, then gives the rest of it the frame
/// timeout ([`FRAME_TIMEOUT`] unless changed).
async fn read_request_frame(
    stream: &mut Async<UnixStream>,
    frames: &mut FrameReader,
) -> Result<bool, velos_proto::Error> {
    if !frames.wait_for_data(stream).await? {
        return Ok(false);
    }
    let timeout = Timeouts::current().frame;
    frames
        .next(stream)
        .or(async {
            Timer::after(timeout).await;
            Err(velos_proto::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("frame not completed within {timeout:?}"),
            )))
        })
        .await
}

/// The answer to a well-formed request that cannot be carried out.
fn refusal(refused: Refused) -> RpcError {
    match refused {
        Refused::UnknownMethod(method) => RpcError::new(
            ErrorCode::UnknownMethod,
            format!(
                "velosd {} does not know the method '{method}'; if your client is newer, run 'velos kill' and retry",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        invalid @ Refused::InvalidParams { .. } => {
            RpcError::new(ErrorCode::InvalidParams, invalid.to_string())
        }
        other => RpcError::new(ErrorCode::BadRequest, other.to_string()),
    }
}

fn bad_frame_message(error: &velos_proto::Error) -> String {
    match error {
        velos_proto::Error::UnsupportedVersion { .. } => format!(
            "{error}: this velosd is {}; run 'velos kill' and retry with matching versions",
            env!("CARGO_PKG_VERSION")
        ),
        other => other.to_string(),
    }
}

/// `log.follow`: answers with the last lines, then sends a `log.line` notification per
/// new line (and `log.gap` when this client read too slowly and lines were skipped)
/// until the client closes the connection or the daemon exits.
async fn follow(
    stream: &Async<UnixStream>,
    msgid: u32,
    params: velos_proto::LogReadParams,
    supervisor: &Sender<Command>,
) {
    let (reply, answer) = async_channel::bounded(1);
    if supervisor
        .send(Command::Follow { params, reply })
        .await
        .is_err()
    {
        return;
    }
    let (lines, items) = match answer.recv().await {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => {
            let _ = send(stream, msgid, Err(&error)).await;
            return;
        }
        Err(_) => return,
    };
    if send(stream, msgid, Ok(&Response::LogFollow(lines)))
        .await
        .is_err()
    {
        return;
    }
    forward_lines(stream, items).await;
}

/// `events.subscribe`: answers nil, then sends a `process.event` notification per event
/// until the client closes the connection or the daemon exits.
async fn subscribe(stream: &Async<UnixStream>, msgid: u32, supervisor: &Sender<Command>) {
    let (reply, answer) = async_channel::bounded(1);
    if supervisor.send(Command::Subscribe { reply }).await.is_err() {
        return;
    }
    let Ok(events) = answer.recv().await else {
        return;
    };
    if send(stream, msgid, Ok(&Response::Subscribe)).await.is_err() {
        return;
    }
    forward(stream, events, |event| {
        rpc::encode_notification(notification::PROCESS_EVENT, &event)
    })
    .await;
}

/// Writes each item of `items` as a notification until the channel closes (the daemon
/// is exiting) or the client goes away. A streaming connection takes no more requests,
/// so anything the client sends, or its end of file, ends the stream.
async fn forward<T>(
    stream: &Async<UnixStream>,
    items: async_channel::Receiver<T>,
    encode: impl Fn(T) -> Result<Vec<u8>, velos_proto::Error>,
) {
    let mut probe = [0u8; 64];
    loop {
        let next = async { items.recv().await.ok() }
            .or(async {
                let mut reader = stream;
                let _ = reader.read(&mut probe).await;
                None
            })
            .await;
        let Some(item) = next else {
            return;
        };
        let Ok(payload) = encode(item) else {
            continue;
        };
        if write_payload(stream, &payload).await.is_err() {
            return;
        }
    }
}

/// Writes the batches of a follower's queue (see `follow`) until it ends (the processes
/// followed are gone, or the daemon is exiting) or the client goes away, which anything
/// it sends, or its end of file, means.
async fn forward_lines(stream: &Async<UnixStream>, mut items: FollowStream) {
    let mut probe = [0u8; 64];
    let mut batch = Vec::new();
    loop {
        let more = async { items.next_batch(&mut batch).await }
            .or(async {
                let mut reader = stream;
                let _ = reader.read(&mut probe).await;
                false
            })
            .await;
        if !more {
            return;
        }
        let mut writer = stream;
        let written = futures_lite::AsyncWriteExt::write_all(&mut writer, &batch)
            .or(async {
                Timer::after(Timeouts::current().write).await;
                Err(std::io::ErrorKind::TimedOut.into())
            })
            .await;
        if written.is_err() {
            return;
        }
        if batch.capacity() > 2 * crate::follow::BATCH_BYTES {
            batch = Vec::new();
        }
    }
}

async fn send(
    stream: &Async<UnixStream>,
    msgid: u32,
    answer: Result<&Response, &RpcError>,
) -> Result<(), velos_proto::Error> {
    send_answer(stream, msgid, None, answer).await
}

/// Sends the answer to a request for `method` (when known: it names what an answer too
/// large to send was about).
async fn send_answer(
    stream: &Async<UnixStream>,
    msgid: u32,
    method: Option<Method>,
    answer: Result<&Response, &RpcError>,
) -> Result<(), velos_proto::Error> {
    // The largest answer, framed in one buffer of about its size.
    if let Ok(Response::List(list)) = answer {
        let capacity = 64 + LIST_BYTES_PER_PROCESS * list.len();
        match rpc::encode_response_frame(msgid, list, capacity) {
            Ok(frame) => return write_bytes(stream, &frame).await,
            Err(velos_proto::Error::FrameTooLarge { len }) => {
                let error = too_large(method, len as usize);
                let payload = rpc::encode_response::<()>(msgid, Err(&error))?;
                return write_payload(stream, &payload).await;
            }
            // Said below as for any other answer.
            Err(_) => {}
        }
    }
    let payload = match answer {
        Ok(response) => response.encode(msgid),
        Err(error) => rpc::encode_response::<()>(msgid, Err(error)),
    };
    let payload = match payload {
        Ok(payload) if payload.len() > frame::MAX_PAYLOAD_BYTES as usize => {
            rpc::encode_response::<()>(msgid, Err(&too_large(method, payload.len())))?
        }
        Ok(payload) => payload,
        Err(error) => rpc::encode_response::<()>(
            msgid,
            Err(&RpcError::new(
                ErrorCode::Internal,
                format!("cannot encode the answer: {error}"),
            )),
        )?,
    };
    write_payload(stream, &payload).await
}

/// The error sent instead of an answer of `bytes` that no frame can carry: a list of
/// processes started with huge arguments. What the request does was done.
fn too_large(method: Option<Method>, bytes: usize) -> RpcError {
    let what = match method {
        Some(method @ (Method::List | Method::Info | Method::LogRead)) => {
            format!("the answer to {method} is")
        }
        Some(method) => format!("the request ({method}) was carried out, but its answer is"),
        None => "the answer is".to_owned(),
    };
    RpcError::new(
        ErrorCode::AnswerTooLarge,
        format!(
            "{what} {bytes} bytes, over the 16 MiB a frame can carry (processes started with huge arguments make a list that long): see them one at a time with 'velos info <name>', or delete some"
        ),
    )
}

/// Writes one frame, giving the peer the write timeout ([`WRITE_TIMEOUT`] unless changed) to
/// take it.
async fn write_payload(
    stream: &Async<UnixStream>,
    payload: &[u8],
) -> Result<(), velos_proto::Error> {
    write_bytes(stream, &frame::encode_frame(payload)?).await
}

/// Writes `bytes` (whole frames), giving the peer the write timeout to take them.
async fn write_bytes(stream: &Async<UnixStream>, bytes: &[u8]) -> Result<(), velos_proto::Error> {
    let mut writer = stream;
    async {
        futures_lite::AsyncWriteExt::write_all(&mut writer, bytes).await?;
        futures_lite::AsyncWriteExt::flush(&mut writer).await?;
        Ok(())
    }
    .or(async {
        Timer::after(Timeouts::current().write).await;
        Err(velos_proto::Error::Io(std::io::ErrorKind::TimedOut.into()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn unset_timeouts_keep_the_defaults() {
        assert_eq!(Timeouts::parse(None, None), Ok(Timeouts::default()));
        assert_eq!(Timeouts::default().frame, FRAME_TIMEOUT);
        assert_eq!(Timeouts::default().write, WRITE_TIMEOUT);
    }

    #[test]
    fn timeouts_are_whole_milliseconds_in_range() {
        let set = Timeouts::parse(Some(OsStr::new("1500")), Some(OsStr::new("3600000")));
        assert_eq!(
            set,
            Ok(Timeouts {
                frame: Duration::from_millis(1500),
                write: Duration::from_secs(3600),
            })
        );
        for bad in ["0", "3600001", "-1", "1.5", "2s", ""] {
            let error = Timeouts::parse(Some(OsStr::new(bad)), None).unwrap_err();
            assert!(error.contains(FRAME_TIMEOUT_ENV), "{error}");
            let error = Timeouts::parse(None, Some(OsStr::new(bad))).unwrap_err();
            assert!(error.contains(WRITE_TIMEOUT_ENV), "{error}");
        }
    }
}
