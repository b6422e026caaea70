//! Hostile but legal traffic: a 16 MiB request of eight million nested values (issue 9's
//! repro) and requests at the decoding budget. The daemon's memory comes back to where it
//! was.

use std::time::Instant;

use serde_json::json;
use velos_proto::ErrorCode;
use velos_proto::frame::MAX_PAYLOAD_BYTES;

use crate::harness::{TestHome, WAIT, wait_until};
use crate::protocol::{Raw, frame, request_frame, start_daemon, status_kib};

/// The head of `[0, msgid, "daemon.ping", {"x": …}]`, up to the marker of `x`'s value.
fn ping_head(msgid: u8) -> Vec<u8> {
    assert!(msgid < 0x80, "a positive fixint msgid");
    let mut payload = vec![0x94, 0x00, msgid, 0xab];
    payload.extend_from_slice(b"daemon.ping");
    payload.extend_from_slice(&[0x81, 0xa1, b'x']);
    payload
}

/// `[0, msgid, "daemon.ping", {"x": [[nil], [nil], …]}]` with as many `[nil]` as fill a
/// 16 MiB payload: a valid ping whose one ignored parameter holds 8 million values.
fn nested_nils_ping(msgid: u8) -> Vec<u8> {
    let mut payload = ping_head(msgid);
    let count = (MAX_PAYLOAD_BYTES as usize - payload.len() - 5) / 2;
    payload.push(0xdd);
    payload.extend_from_slice(&(count as u32).to_be_bytes());
    for _ in 0..count {
        payload.extend_from_slice(&[0x91, 0xc0]);
    }
    frame(&payload)
}

/// `[0, msgid, "daemon.ping", {"x": "aaaa…"}]` filling a 16 MiB payload: one large
/// ignored value.
fn long_string_ping(msgid: u8) -> Vec<u8> {
    let mut payload = ping_head(msgid);
    let len = MAX_PAYLOAD_BYTES as usize - payload.len() - 5;
    payload.push(0xdb);
    payload.extend_from_slice(&(len as u32).to_be_bytes());
    payload.resize(MAX_PAYLOAD_BYTES as usize, b'a');
    frame(&payload)
}

/// A `process.start` of a script that does not exist, with 60,000 arguments of 270 bytes
/// (16 MiB): about as much typed decoding as one request may ask for.
fn many_args_start(msgid: u32) -> Vec<u8> {
    let args = vec!["a".repeat(270); 60_000];
    request_frame(
        msgid,
        "process.start",
        &json!({"script": "/nonexistent/app.sh", "args": args}),
    )
}

/// Waits until the daemon's VmRSS is at most `ceiling_kib` and returns it.
#[track_caller]
fn rss_back_under(pid: u32, ceiling_kib: u64, what: &str) -> u64 {
    wait_until(WAIT, what, || {
        let now = status_kib(pid, "VmRSS");
        if now <= ceiling_kib {
            Ok(now)
        } else {
            Err(format!("VmRSS {now} KiB, ceiling {ceiling_kib} KiB"))
        }
    })
}

/// Warms the daemon up (a few requests) and returns its VmRSS in KiB.
fn settled_rss(home: &TestHome, pid: u32) -> u64 {
    for _ in 0..20 {
        home.ping();
    }
    status_kib(pid, "VmRSS")
}

#[test]
fn a_16_mib_request_costs_the_daemon_no_lasting_memory() {
    /// The payload itself is 16 MiB and must be read; a value tree of it was 1.8 GB.
    const PEAK_SLACK_KIB: u64 = 48 * 1024;
    /// "Within a few MiB of before".
    const AFTER_SLACK_KIB: u64 = 4 * 1024;

    let home = TestHome::new();
    let pid = start_daemon(&home);
    let before = settled_rss(&home, pid);

    // Eight million nested values: over the budget, refused without building them.
    let mut raw = Raw::connect(&home);
    let sent = Instant::now();
    raw.send(&nested_nils_ping(7));
    let error = raw.expect_error(0, ErrorCode::BadRequest, "8 million nested values");
    let took = sent.elapsed();
    assert!(
        error.message.contains("values") && !error.message.contains('\n'),
        "expected a one-line message about the value budget, got {:?}",
        error.message
    );
    raw.expect_closed("8 million nested values");
    let peak = status_kib(pid, "VmHWM");
    let after = rss_back_under(
        pid,
        before + AFTER_SLACK_KIB,
        "the daemon's RSS to come back after 8 million nested values",
    );
    println!(
        "8 million nested values: answered in {took:?}; VmRSS {before} KiB before, \
         peak {peak} KiB, {after} KiB after"
    );

    // One 16 MiB string the ping ignores: skipped, and the ping answered.
    let mut raw = Raw::connect(&home);
    raw.send(&long_string_ping(8));
    raw.expect_pong(8, "a ping with a 16 MiB ignored string");
    drop(raw);
    let after = rss_back_under(
        pid,
        before + AFTER_SLACK_KIB,
        "the daemon's RSS to come back after a 16 MiB ignored string",
    );
    println!("16 MiB ignored string: VmRSS {after} KiB after");

    // 60,000 typed arguments: decoded, refused (no such script), the connection kept.
    let mut raw = Raw::connect(&home);
    raw.send(&many_args_start(9));
    match raw.read() {
        crate::protocol::Reply::Frame {
            message:
                velos_proto::Envelope::Response {
                    msgid: 9,
                    result: Err(_),
                },
            ..
        } => {}
        other => panic!("expected an error answer to the start of 60,000 arguments, got {other:?}"),
    }
    raw.ping(10, "the same connection after the refused start");
    drop(raw);
    let after = rss_back_under(
        pid,
        before + AFTER_SLACK_KIB,
        "the daemon's RSS to come back after 60,000 arguments",
    );
    let peak = status_kib(pid, "VmHWM");
    println!("60,000 arguments: VmRSS {after} KiB after; peak over the test {peak} KiB");
    assert!(
        peak <= before + PEAK_SLACK_KIB,
        "the daemon's peak RSS reached {peak} KiB (from {before} KiB) on one 16 MiB request"
    );
    assert!(home.list().is_empty(), "a refused request added a process");
}
