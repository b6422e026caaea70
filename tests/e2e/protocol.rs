//! The socket under malformed and hostile traffic, spoken byte by byte with a raw client:
//! bad frames and payloads get one `bad-request` answer and a closed connection, unknown
//! methods and bad params an answer on a connection that stays open; truncated frames are
//! dropped; what a client merely claims it will send costs the daemon no memory; a half
//! frame times out, an idle connection does not; a client that never reads only blocks
//! itself. Throughout, other clients are served and the daemon's pid stays the same.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use velos_proto::frame::{self, HEADER_LEN, MAGIC, MAX_PAYLOAD_BYTES, VERSION};
use velos_proto::{Envelope, ErrorCode, Method, PingInfo, Request, Response, RpcError, rpc};

use crate::harness::{TestHome, WAIT, ping_socket, wait_until};

/// How long a raw client waits for an answer that should come at once.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The frame timeout the slow-peer tests give their daemon (`VELOSD_FRAME_TIMEOUT_MS`; the
/// default is 10 s): the rest of a begun frame must arrive within it.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);

/// The write timeout the slow-peer tests give their daemon (`VELOSD_WRITE_TIMEOUT_MS`; the
/// default is 10 s): a peer must take its answer within it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// How fast another client's ping must be answered while someone misbehaves.
const PROMPT: Duration = Duration::from_secs(1);

/// A client that writes whatever bytes a test gives it and reads frames back by hand.
pub(crate) struct Raw {
    pub(crate) stream: UnixStream,
}

/// What came back on a raw connection.
#[derive(Debug)]
pub(crate) enum Reply {
    /// One frame: the version byte of its header and the message it carried.
    Frame { version: u8, message: Envelope },
    /// The daemon closed the connection (end of stream, or a reset after it had left
    /// unread bytes behind).
    Closed,
}

impl Raw {
    /// Connects to the home's socket, with reads and writes bounded by [`ANSWER_TIMEOUT`].
    #[track_caller]
    pub(crate) fn connect(home: &TestHome) -> Raw {
        let path = home.home().socket_path();
        let stream = UnixStream::connect(&path)
            .unwrap_or_else(|error| panic!("connect {}: {error}", path.display()));
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
            .expect("set socket timeouts");
        Raw { stream }
    }

    #[track_caller]
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        if let Err(error) = self.stream.write_all(bytes) {
            panic!("writing {} bytes: {error}", bytes.len());
        }
    }

    /// Reads one frame or the end of the connection, waiting at most the read timeout.
    #[track_caller]
    pub(crate) fn read(&mut self) -> Reply {
        let mut header = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            match self.stream.read(&mut header[filled..]) {
                Ok(0) if filled == 0 => return Reply::Closed,
                Ok(0) => panic!("connection closed inside a frame header: {header:02x?}"),
                Ok(n) => filled += n,
                Err(error) if error.kind() == ErrorKind::ConnectionReset && filled == 0 => {
                    return Reply::Closed;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    let timeout = self.stream.read_timeout().ok().flatten();
                    panic!("no answer and no close within {timeout:?} ({filled} header bytes)")
                }
                Err(error) => panic!("reading a frame header ({filled} bytes so far): {error}"),
            }
        }
        assert_eq!(
            header[..4],
            MAGIC,
            "the daemon sent a bad magic: {header:02x?}"
        );
        let len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        assert!(
            len <= MAX_PAYLOAD_BYTES,
            "the daemon sent a frame of {len} bytes"
        );
        let mut payload = vec![0; len as usize];
        if let Err(error) = self.stream.read_exact(&mut payload) {
            panic!("reading a {len}-byte payload: {error}");
        }
        match Envelope::decode(&payload) {
            Ok(message) => Reply::Frame {
                version: header[4],
                message,
            },
            Err(error) => {
                panic!("the daemon sent an undecodable payload ({error}): {payload:02x?}")
            }
        }
    }

    /// Expects an error answer with `msgid` and `code` in a version-1 frame.
    #[track_caller]
    pub(crate) fn expect_error(&mut self, msgid: u32, code: ErrorCode, what: &str) -> RpcError {
        match self.read() {
            Reply::Frame {
                version: VERSION,
                message:
                    Envelope::Response {
                        msgid: got,
                        result: Err(error),
                    },
            } if got == msgid && error.code == code => error,
            other => panic!(
                "{what}: expected an error response with msgid {msgid} and code {code:?} in a \
                 version-{VERSION} frame, got {other:?}"
            ),
        }
    }

    /// Expects the daemon to have closed the connection.
    #[track_caller]
    pub(crate) fn expect_closed(&mut self, what: &str) {
        match self.read() {
            Reply::Closed => {}
            other => panic!("{what}: expected the daemon to close the connection, got {other:?}"),
        }
    }

    /// Expects the answer to a ping with `msgid`.
    #[track_caller]
    pub(crate) fn expect_pong(&mut self, msgid: u32, what: &str) -> PingInfo {
        match self.read() {
            Reply::Frame {
                version: VERSION,
                message:
                    Envelope::Response {
                        msgid: got,
                        result: Ok(result),
                    },
            } if got == msgid => match Response::from_parts(Method::Ping, result) {
                Ok(Response::Ping(info)) => info,
                other => panic!("{what}: not a ping answer: {other:?}"),
            },
            other => panic!("{what}: expected the answer to ping {msgid}, got {other:?}"),
        }
    }

    /// Sends a ping with `msgid` and returns its answer.
    #[track_caller]
    pub(crate) fn ping(&mut self, msgid: u32, what: &str) -> PingInfo {
        self.send(&ping_frame(msgid));
        self.expect_pong(msgid, what)
    }
}

/// A whole `daemon.ping` frame with `msgid`.
pub(crate) fn ping_frame(msgid: u32) -> Vec<u8> {
    frame(&Request::Ping.encode(msgid).expect("encode ping"))
}

/// A whole frame around `payload`.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    frame::encode_frame(payload).expect("encode frame")
}

/// A header with any magic, version and length.
fn header(magic: &[u8; 4], version: u8, len: u32) -> Vec<u8> {
    let mut header = magic.to_vec();
    header.push(version);
    header.extend_from_slice(&len.to_be_bytes());
    header
}

/// A request frame with any method and any params, as JSON made MessagePack.
pub(crate) fn request_frame(msgid: u32, method: &str, params: &serde_json::Value) -> Vec<u8> {
    frame(&rpc::encode_request(msgid, method, params).expect("encode request"))
}

/// Pings on a fresh connection, failing unless the answer comes within [`PROMPT`] from the
/// daemon `pid`.
#[track_caller]
fn assert_prompt_ping(home: &TestHome, pid: u32, what: &str) {
    let start = Instant::now();
    let info = ping_socket(&home.home().socket_path())
        .unwrap_or_else(|error| panic!("{what}: another client's ping failed: {error}"));
    let took = start.elapsed();
    assert!(
        took < PROMPT,
        "{what}: another client's ping took {took:?}, expected under {PROMPT:?}"
    );
    assert_eq!(info.pid, pid, "{what}: the daemon's pid changed");
}

/// Starts the daemon of `home` and returns its pid.
#[track_caller]
pub(crate) fn start_daemon(home: &TestHome) -> u32 {
    home.velos(&["ping"]).success();
    home.ping().pid
}

/// Starts the daemon with [`FRAME_TIMEOUT`] and [`WRITE_TIMEOUT`] instead of its 10 s.
fn start_daemon_with_short_timeouts(home: &TestHome) -> u32 {
    let ms = |timeout: Duration| timeout.as_millis().to_string();
    home.cmd(&["ping"])
        .env("VELOSD_FRAME_TIMEOUT_MS", &ms(FRAME_TIMEOUT))
        .env("VELOSD_WRITE_TIMEOUT_MS", &ms(WRITE_TIMEOUT))
        .run()
        .success();
    home.ping().pid
}

/// Open file descriptors of process `pid`, each as its `/proc/PID/fd` link target.
pub fn open_fds(pid: u32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let link = fs::read_link(entry.ok()?.path()).ok()?;
            Some(link.to_string_lossy().into_owned())
        })
        .collect()
}

/// The daemon's fd count once it has stayed the same for 200 ms: connections that were
/// just closed by clients have been closed by the daemon too.
#[track_caller]
pub fn settled_fd_count(pid: u32) -> usize {
    let (mut last, mut same) = (None, 0);
    wait_until(WAIT, "the daemon's fd count to settle", || {
        let now = open_fds(pid).len();
        if last == Some(now) {
            same += 1;
        } else {
            (last, same) = (Some(now), 0);
        }
        if same >= 10 {
            Ok(now)
        } else {
            Err(format!("{now} open fds"))
        }
    })
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmSize`), in KiB.
#[track_caller]
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
}

#[test]
fn malformed_frames_get_one_bad_request_answer_and_a_closed_connection() {
    let home = TestHome::new();
    let pid = start_daemon(&home);
    // A well-behaved client that stays connected the whole time.
    let mut bystander = Raw::connect(&home);
    bystander.ping(1, "the bystander before anything");

    let ping = Request::Ping.encode(7).expect("encode ping");
    let with_payload = |payload: &[u8]| {
        let mut bytes = header(&MAGIC, VERSION, payload.len() as u32);
        bytes.extend_from_slice(payload);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: velos\r\n\r\n".to_vec(),
        ),
        ("a bad magic", header(b"VELX", VERSION, 0)),
        ("protocol version 2", {
            let mut bytes = header(&MAGIC, 2, ping.len() as u32);
            bytes.extend_from_slice(&ping);
            bytes
        }),
        ("protocol version 0", header(&MAGIC, 0, 0)),
        (
            "a length one over 16 MiB",
            header(&MAGIC, VERSION, MAX_PAYLOAD_BYTES + 1),
        ),
        ("a length of 4 GiB", header(&MAGIC, VERSION, u32::MAX)),
        ("an empty payload", with_payload(&[])),
        ("garbage MessagePack (0xc1)", with_payload(&[0xc1])),
        (
            "MessagePack that ends early",
            with_payload(&[0x94, 0x00, 0x07]),
        ),
        ("a string, not an array", with_payload(b"\xa5hello")),
        (
            "a request of three elements",
            with_payload(b"\x93\x00\x07\xabdaemon.ping"),
        ),
        (
            "a negative msgid",
            with_payload(b"\x94\x00\xff\xabdaemon.ping\x80"),
        ),
        (
            "a msgid over 32 bits",
            with_payload(b"\x94\x00\xcf\x00\x00\x01\x00\x00\x00\x00\x00\xabdaemon.ping\x80"),
        ),
        (
            "a method that is not a string",
            with_payload(b"\x94\x00\x07\x2a\x80"),
        ),
        (
            "params that are not a map",
            with_payload(b"\x94\x00\x07\xabdaemon.ping\x91\x01"),
        ),
        (
            "message type 3",
            with_payload(b"\x94\x03\x07\xabdaemon.ping\x80"),
        ),
        ("bytes after the request", {
            let mut payload = ping.clone();
            payload.push(0xc0);
            with_payload(&payload)
        }),
        (
            "a response sent by the client",
            frame(&rpc::encode_response(7, Ok(&serde_json::Value::Null)).expect("encode response")),
        ),
        (
            "a notification sent by the client",
            frame(&rpc::encode_notification("log.line", &json!({})).expect("encode notification")),
        ),
    ];

    for (round, (what, bytes)) in cases.iter().enumerate() {
        let mut raw = Raw::connect(&home);
        raw.send(bytes);
        let error = raw.expect_error(0, ErrorCode::BadRequest, what);
        assert!(
            !error.message.is_empty() && !error.message.contains('\n'),
            "{what}: expected a one-line message, got {:?}",
            error.message
        );
        raw.expect_closed(what);

        let info = bystander.ping(100 + round as u32, &format!("the bystander after {what}"));
        assert_eq!(info.pid, pid, "the daemon's pid changed after {what}");
    }
    assert_prompt_ping(&home, pid, "after every malformed frame");
    assert_eq!(home.daemon_pid(), Some(pid as i32), "velos.pid changed");
}

#[test]
fn unknown_methods_and_bad_params_are_answered_and_the_connection_stays_open() {
    let home = TestHome::new();
    let pid = start_daemon(&home);
    let mut raw = Raw::connect(&home);

    // All at once: the answers come back in request order on the same connection.
    let mut bytes = request_frame(41, "process.explode", &json!({}));
    bytes.extend(request_frame(42, "process.stop", &json!({"target": true})));
    bytes.extend(request_frame(
        43,
        "log.read",
        &json!({"target": "web", "lines": "many"}),
    ));
    bytes.extend(request_frame(44, "process.start", &json!({})));
    bytes.extend(ping_frame(45));
    raw.send(&bytes);

    let unknown = raw.expect_error(41, ErrorCode::UnknownMethod, "process.explode");
    assert!(
        unknown.message.contains("process.explode"),
        "expected the message to name the method, got {:?}",
        unknown.message
    );
    raw.expect_error(42, ErrorCode::InvalidParams, "process.stop {target: true}");
    raw.expect_error(43, ErrorCode::InvalidParams, "log.read {lines: \"many\"}");
    raw.expect_error(
        44,
        ErrorCode::InvalidParams,
        "process.start without a script",
    );
    let info = raw.expect_pong(45, "a ping after the errors, same connection");
    assert_eq!(info.pid, pid, "the daemon's pid changed");

    // And one at a time, waiting for each answer.
    raw.send(&request_frame(46, "no.such.method", &json!({"x": 1})));
    raw.expect_error(46, ErrorCode::UnknownMethod, "no.such.method");
    raw.ping(47, "a ping after a lone unknown method");
    let list = home.list();
    assert!(
        list.is_empty(),
        "a refused request added a process: {list:#?}"
    );
}

#[test]
fn truncated_frames_followed_by_a_close_are_dropped_and_leak_nothing() {
    let home = TestHome::new();
    let pid = start_daemon(&home);
    let baseline = settled_fd_count(pid);

    let ping = ping_frame(9);
    let cuts: [(&str, &[u8]); 4] = [
        ("one byte of a header", &ping[..1]),
        ("half a header", &ping[..5]),
        ("a whole header and no payload", &ping[..HEADER_LEN]),
        ("all but the last byte", &ping[..ping.len() - 1]),
    ];
    for (what, bytes) in cuts {
        for _ in 0..10 {
            let mut raw = Raw::connect(&home);
            raw.send(bytes);
            drop(raw);
        }
        assert_prompt_ping(&home, pid, &format!("after closing on {what}"));
    }
    // A large claimed payload, a little of it sent, then a close.
    for _ in 0..10 {
        let mut raw = Raw::connect(&home);
        let mut bytes = header(&MAGIC, VERSION, 1 << 20);
        bytes.extend_from_slice(&[0x94; 1000]);
        raw.send(&bytes);
        raw.stream
            .shutdown(Shutdown::Both)
            .expect("shut the connection down");
    }
    assert_prompt_ping(&home, pid, "after closing in the middle of a 1 MiB payload");

    wait_until(
        WAIT,
        "the daemon's fd count to return to its baseline",
        || {
            let fds = open_fds(pid);
            if fds.len() <= baseline {
                Ok(())
            } else {
                Err(format!("{} open, baseline {baseline}: {fds:#?}", fds.len()))
            }
        },
    );
    assert_eq!(home.daemon_pid(), Some(pid as i32), "velos.pid changed");
}

#[test]
fn a_claimed_16_mib_payload_is_not_allocated() {
    const CLAIMERS: usize = 50;
    /// RSS may grow this much with 50 connections open; one claim honoured is 16 MiB.
    const RSS_SLACK_KIB: u64 = 8 * 1024;
    /// Address space may grow this much; all claims reserved up front would be 800 MiB.
    const VM_SLACK_KIB: u64 = 400 * 1024;

    let home = TestHome::new();
    let pid = start_daemon(&home);
    for _ in 0..20 {
        home.ping();
    }
    let rss_before = status_kib(pid, "VmRSS");
    let vm_before = status_kib(pid, "VmSize");

    let mut claimers: Vec<Raw> = (0..CLAIMERS)
        .map(|_| {
            let mut raw = Raw::connect(&home);
            let mut bytes = header(&MAGIC, VERSION, MAX_PAYLOAD_BYTES);
            bytes.extend_from_slice(b"\x94\x00\x01");
            raw.send(&bytes);
            raw
        })
        .collect();
    // A ping on a newer connection is answered once the daemon has accepted every claimer
    // before it and started each one's task.
    home.ping();
    // A deliberate short pause so the claimers' tasks certainly read what was sent: this
    // proves an allocation does NOT happen, so there is nothing to wait for.
    thread::sleep(Duration::from_millis(300));
    let rss_after = status_kib(pid, "VmRSS");
    let vm_after = status_kib(pid, "VmSize");
    println!(
        "daemon VmRSS {rss_before} -> {rss_after} KiB, VmSize {vm_before} -> {vm_after} KiB \
         with {CLAIMERS} clients claiming {MAX_PAYLOAD_BYTES} bytes each"
    );
    assert!(
        rss_after <= rss_before + RSS_SLACK_KIB,
        "the daemon's VmRSS grew from {rss_before} KiB to {rss_after} KiB with {CLAIMERS} \
         clients claiming 16 MiB and sending 3 bytes"
    );
    assert!(
        vm_after <= vm_before + VM_SLACK_KIB,
        "the daemon's VmSize grew from {vm_before} KiB to {vm_after} KiB with {CLAIMERS} \
         clients claiming 16 MiB and sending 3 bytes: the claims are reserved up front"
    );

    // The claimers are still connected, waiting; the daemon serves everyone else.
    assert_prompt_ping(&home, pid, "with 50 clients claiming 16 MiB each");
    home.velos(&["list"]).success();
    for (index, raw) in claimers.iter_mut().enumerate() {
        raw.stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("set read timeout");
        let mut byte = [0u8; 1];
        match raw.stream.read(&mut byte) {
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("claimer {index} was answered or closed early: {other:?}"),
        }
    }
    drop(claimers);
    assert_prompt_ping(&home, pid, "after the claimers left");
}

#[test]
fn a_half_frame_times_out_an_idle_connection_does_not_and_neither_delays_anyone() {
    let home = TestHome::new();
    let pid = start_daemon_with_short_timeouts(&home);

    let mut idle = Raw::connect(&home);
    let mut one_byte = Raw::connect(&home);
    one_byte.send(b"V");
    let mut half = Raw::connect(&home);
    let mut bytes = header(&MAGIC, VERSION, 100);
    bytes.extend_from_slice(&[0x94; 50]);
    half.send(&bytes);
    let sent = Instant::now();

    // Meanwhile everyone else is served at once, over new connections and the CLI.
    for _ in 0..20 {
        assert_prompt_ping(&home, pid, "while two clients sit on half a frame");
    }
    home.velos(&["list"]).success();

    // The stalled ones are dropped after the frame timeout: perhaps with a bad-request
    // answer, then closed.
    for (what, raw) in [("one byte", &mut one_byte), ("half a frame", &mut half)] {
        raw.stream
            .set_read_timeout(Some(FRAME_TIMEOUT + Duration::from_secs(5)))
            .expect("set read timeout");
        match raw.read() {
            Reply::Closed => {}
            Reply::Frame {
                message:
                    Envelope::Response {
                        msgid: 0,
                        result:
                            Err(RpcError {
                                code: ErrorCode::BadRequest,
                                ..
                            }),
                    },
                ..
            } => raw.expect_closed(what),
            other => panic!("{what}: expected a bad-request answer or a close, got {other:?}"),
        }
        let after = sent.elapsed();
        assert!(
            after >= FRAME_TIMEOUT - Duration::from_secs(1)
                && after <= FRAME_TIMEOUT + Duration::from_secs(4),
            "{what}: closed {after:?} after it was sent, expected about {FRAME_TIMEOUT:?}"
        );
    }

    // The idle connection, older than the frame timeout, is still open and served.
    assert!(sent.elapsed() >= FRAME_TIMEOUT - Duration::from_secs(1));
    let info = idle.ping(1, "the idle connection after the frame timeout");
    assert_eq!(info.pid, pid, "the daemon's pid changed");
}

#[test]
fn a_client_that_never_reads_only_blocks_itself() {
    let home = TestHome::new();
    let pid = start_daemon_with_short_timeouts(&home);

    // Pings, a thousand per write, never reading the answers, until a write stalls for a
    // second: the daemon's answers fill the socket, so it has stopped reading from us.
    let mut flood = Raw::connect(&home);
    flood
        .stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .expect("set write timeout");
    let batch: Vec<u8> = (0..1000).flat_map(ping_frame).collect();
    let mut batches = 0;
    wait_until(
        WAIT,
        "the flooding client's writes to stall",
        || match flood.stream.write_all(&batch) {
            Ok(()) => {
                batches += 1;
                Err(format!("{batches} batches of 1000 pings written"))
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ok(())
            }
            Err(error) => panic!("the flooding client's write failed early: {error}"),
        },
    );
    let stalled = Instant::now();
    println!("the flooder stalled after {batches} batches of 1000 pings");

    // Everyone else is served at once while the flooder is stuck.
    for _ in 0..20 {
        assert_prompt_ping(&home, pid, "while a client never reads its answers");
    }
    home.velos(&["list"]).success();

    // The daemon gives up on the flooder after its write timeout: writes then fail.
    flood
        .stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .expect("set write timeout");
    wait_until(
        WRITE_TIMEOUT + Duration::from_secs(10),
        "the daemon to drop the client that never reads",
        || match flood.stream.write(&ping_frame(1)) {
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            other => Err(format!(
                "{:?} after the stall, write gave {other:?}",
                stalled.elapsed()
            )),
        },
    );
    println!(
        "the flooder was dropped {:?} after it stalled",
        stalled.elapsed()
    );
    assert_prompt_ping(&home, pid, "after the flooder was dropped");
    assert_eq!(home.daemon_pid(), Some(pid as i32), "velos.pid changed");
}
