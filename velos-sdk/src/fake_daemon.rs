//! A scripted fake daemon for the SDK's unit tests (no real `velosd` is available to
//! this crate).
//!
//! It is a std `UnixListener` in a short temp dir (socket paths are capped near 104
//! bytes), with a std thread per connection: each reads request frames with
//! `velos_proto`, asks the test's script what to do, and does it. Every connection is
//! served at once, as velosd does, so a stream's own connection (`follow_logs`,
//! `events`) is served while the client's first one stays open. The script is shared
//! and called one request at a time. Every request it reads and every connection it
//! closes is reported on a channel, which tests wait on with a bound.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures_lite::future::block_on;
use futures_lite::io::AssertAsync;
use velos_proto::{
    ErrorCode, LogLine, LogLines, MetricsState, MetricsText, PingInfo, ProcessInfo, ProcessStatus,
    Request, Response, RpcError, Saved, Stream, frame, rpc,
};

/// How long a test waits for the fake daemon to report something before failing.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// One thing the fake daemon does after reading a request.
pub(crate) enum Answer {
    /// Send this payload in a well-formed frame.
    Frame(Vec<u8>),
    /// Send these bytes as they are.
    Bytes(Vec<u8>),
    /// Close the connection.
    Close,
}

/// A fake daemon listening on a socket in its own temp dir.
pub(crate) struct FakeDaemon {
    socket: PathBuf,
    requests: mpsc::Receiver<(u32, Request)>,
    closed: mpsc::Receiver<()>,
    // Dropped last: removing the directory removes the socket.
    _dir: tempfile::TempDir,
}

impl FakeDaemon {
    /// Serves every request with the answers `script` gives for it (none: stay silent).
    pub(crate) fn start(
        script: impl FnMut(u32, &Request) -> Vec<Answer> + Send + 'static,
    ) -> FakeDaemon {
        let dir = short_temp_dir();
        let socket = dir.path().join("velos.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake daemon's socket");
        let (requests_tx, requests) = mpsc::channel();
        let (closed_tx, closed) = mpsc::channel();
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        // Never joined: it blocks in accept until the test binary exits.
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(connection) = connection else { return };
                let (script, requests_tx, closed_tx) =
                    (script.clone(), requests_tx.clone(), closed_tx.clone());
                std::thread::spawn(move || {
                    serve(connection, &script, &requests_tx);
                    let _ = closed_tx.send(());
                });
            }
        });
        FakeDaemon {
            socket,
            requests,
            closed,
            _dir: dir,
        }
    }

    /// A fake daemon that answers every request the way velosd would.
    pub(crate) fn answering() -> FakeDaemon {
        FakeDaemon::start(|msgid, request| vec![answer_correctly(msgid, request)])
    }

    /// Where it listens.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The next request it read, with its msgid.
    #[track_caller]
    pub(crate) fn next_request(&self) -> (u32, Request) {
        self.requests
            .recv_timeout(REPORT_TIMEOUT)
            .expect("the fake daemon read no request")
    }

    /// Whether it has closed a connection since the last check, without waiting.
    pub(crate) fn has_closed(&self) -> bool {
        self.closed.try_recv().is_ok()
    }

    /// Waits until it has closed a connection.
    #[track_caller]
    pub(crate) fn wait_closed(&self) {
        self.closed
            .recv_timeout(REPORT_TIMEOUT)
            .expect("the fake daemon closed no connection");
    }
}

/// What a test scripts: the answers to one request.
type Script = Box<dyn FnMut(u32, &Request) -> Vec<Answer> + Send>;

fn serve(
    mut connection: UnixStream,
    script: &Mutex<Script>,
    requests: &mpsc::Sender<(u32, Request)>,
) {
    let Ok(reader) = connection.try_clone() else {
        return;
    };
    let mut reader = AssertAsync::new(reader);
    let mut frames = frame::FrameReader::new();
    while let Ok(true) = block_on(frames.next(&mut reader)) {
        let Ok((msgid, Ok(request))) = Request::decode(frames.payload()) else {
            return;
        };
        // A test that failed while holding the lock poisons it; its answers still do.
        let answers = (script.lock().unwrap_or_else(|e| e.into_inner()))(msgid, &request);
        let _ = requests.send((msgid, request));
        for answer in answers {
            // Write errors are ignored: a client that timed out may be gone already.
            let _ = match answer {
                Answer::Frame(payload) => {
                    connection.write_all(&frame::encode_frame(&payload).unwrap())
                }
                Answer::Bytes(bytes) => connection.write_all(&bytes),
                Answer::Close => return,
            };
        }
    }
}

/// A temp dir under `/tmp` with a short name, so the socket path stays well under the
/// limit whatever `TMPDIR` is.
pub(crate) fn short_temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vsdk")
        .tempdir_in("/tmp")
        .expect("create a temp dir in /tmp")
}

/// A successful response.
pub(crate) fn ok(msgid: u32, response: &Response) -> Answer {
    Answer::Frame(response.encode(msgid).unwrap())
}

/// An error response.
pub(crate) fn error(msgid: u32, code: ErrorCode, message: &str) -> Answer {
    let error = RpcError::new(code, message);
    Answer::Frame(rpc::encode_response::<()>(msgid, Err(&error)).unwrap())
}

/// What velosd would answer, near enough.
pub(crate) fn answer_correctly(msgid: u32, request: &Request) -> Answer {
    let response = match request {
        Request::Ping => Response::Ping(ping_info()),
        Request::Kill => Response::Kill,
        Request::Start(params) => Response::Start(process(params.name.as_deref().unwrap_or("app"))),
        Request::Stop(_) => Response::Stop(vec![process("api")]),
        Request::Restart(_) => Response::Restart(vec![process("api")]),
        Request::Delete(_) => Response::Delete(vec![process("api")]),
        Request::List => Response::List(vec![process("api")]),
        Request::LogFlush(_) => Response::LogFlush(vec![process("api")]),
        Request::Resurrect => Response::Resurrect(vec![process("api")]),
        Request::Scale(params) => Response::Scale(vec![process(&params.name)]),
        Request::Signal(_) => Response::Signal(vec![process("api")]),
        Request::Reload(_) => Response::Reload(Vec::new()),
        Request::MetricsEnable(params) => Response::MetricsEnable(MetricsState {
            enabled: true,
            listen: params.listen.clone(),
            address: Some("127.0.0.1:9615".into()),
            error: None,
        }),
        Request::MetricsDisable => Response::MetricsDisable(MetricsState::default()),
        Request::MetricsStatus => Response::MetricsStatus(MetricsState::default()),
        Request::Metrics => Response::Metrics(MetricsText {
            text: "# HELP velos_build_info x\n".into(),
        }),
        Request::Info(_) => Response::Info(process("api")),
        Request::Save(_) => Response::Save(Saved {
            path: "/h/dump.msgpack".into(),
            processes: 1,
        }),
        Request::LogRead(_) => Response::LogRead(LogLines {
            next: None,
            lines: vec![log_line("listening on 3000")],
            warnings: vec![],
        }),
        _ => return error(msgid, ErrorCode::UnknownMethod, "unknown method"),
    };
    ok(msgid, &response)
}

/// A stdout line of `api`.
pub(crate) fn log_line(text: &str) -> LogLine {
    LogLine {
        continued: false,
        id: 0,
        name: "api".into(),
        stream: Stream::Out,
        line: text.as_bytes().to_vec(),
        partial: false,
        time_ms: Some(1),
    }
}

/// A notification frame.
pub(crate) fn notification<P: serde::Serialize>(method: &str, params: &P) -> Answer {
    Answer::Frame(rpc::encode_notification(method, params).unwrap())
}

/// The fake daemon's ping answer.
pub(crate) fn ping_info() -> PingInfo {
    PingInfo {
        version: "0.1.0".into(),
        pid: 4242,
        protocol: frame::VERSION,
        uptime_ms: 5,
        processes: 1,
        ..PingInfo::default()
    }
}

/// A running process called `name`.
pub(crate) fn process(name: &str) -> ProcessInfo {
    ProcessInfo {
        name: name.into(),
        pid: Some(4343),
        status: ProcessStatus::Running,
        uptime_ms: Some(10),
        script: "/srv/app.js".into(),
        interpreter: Some("node".into()),
        cwd: "/srv".into(),
        kill_timeout_ms: 5000,
        out_log: "/h/logs/api-out.log".into(),
        err_log: "/h/logs/api-err.log".into(),
        autorestart: true,
        max_restarts: 16,
        min_uptime_ms: 1000,
        log_files: 5,
        ..ProcessInfo::default()
    }
}
