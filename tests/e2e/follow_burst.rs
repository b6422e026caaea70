//! Followers under bursts: `velos logs -f` and the SDK's `follow_logs` get every line of a
//! burst, or a gap notice at once followed by the newest lines, always ending with the
//! burst's last line; a slow reader is told what it missed; a reader that never reads
//! costs the daemon a bounded amount of memory, given back when it leaves, and never
//! holds up anyone else.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use velos_proto::{LogReadParams, Request, Target, frame};
use velos_sdk::{FollowEvent, Stream};

use crate::harness::{Background, TestHome, WAIT, wait_until};

/// Starts `sh` as `name`: it prints `ready`, waits for the file `go` in the home, prints
/// `1`..`lines` in one burst and `DONE`, then sleeps.
fn start_burst(home: &TestHome, name: &str, lines: u64) {
    let go = home.path().join(format!("go-{name}"));
    let script = format!(
        "echo ready; while [ ! -e '{}' ]; do sleep 0.02; done; seq 1 {lines}; echo DONE; exec sleep 1000",
        go.display()
    );
    home.velos(&["start", "/bin/sh", "--name", name, "--", "-c", &script])
        .success();
}

fn go(home: &TestHome, name: &str) {
    std::fs::write(home.path().join(format!("go-{name}")), b"").expect("write the go file");
}

#[test]
fn logs_follow_gets_a_burst_whole_or_a_gap_then_the_newest_lines_at_once() {
    let home = TestHome::new();
    for lines in [1_000u64, 10_000, 100_000] {
        let name = format!("burst{lines}");
        start_burst(&home, &name, lines);
        let mut follow = home.spawn(&["logs", &name, "-f", "-n", "1"]);
        let prefix = format!("{name} | ");
        follow.wait_line("the ready line", |line| line == format!("{prefix}ready"));
        go(&home, &name);
        follow.wait_line("DONE, the burst's last line", |line| {
            line == format!("{prefix}DONE")
        });
        let numbers: Vec<u64> = follow
            .seen()
            .iter()
            .filter_map(|line| line.strip_prefix(&prefix)?.parse().ok())
            .collect();
        assert!(!numbers.is_empty(), "{lines}: no numbered line arrived");
        assert!(
            numbers.windows(2).all(|pair| pair[0] < pair[1]),
            "{lines}: lines out of order or repeated"
        );
        assert_eq!(
            numbers.last(),
            Some(&lines),
            "{lines}: the line before DONE is not the burst's newest"
        );
        if lines == 1_000 {
            assert_eq!(numbers.len(), 1_000, "a 1,000-line burst arrives whole");
        }
    }
}

/// Reads a follow until `DONE` (within [`WAIT`]), checking that every line is the one
/// after the last or what a gap said was skipped; returns the gaps seen. `pause` runs
/// after each event (a slow reader).
fn read_burst(events: &mut Background<FollowEvent>, name: &str, lines: u64) -> u64 {
    let mut expected = 1;
    let mut gaps = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "{name}: no DONE within {WAIT:?}");
        let Some(event) = events.next() else {
            panic!("{name}: the stream ended before DONE")
        };
        match event {
            FollowEvent::Gap(skipped) => {
                assert!(skipped > 0);
                gaps += 1;
                expected += skipped;
            }
            FollowEvent::Line(line) if line.name == name && line.stream == Stream::Out => {
                let text = String::from_utf8_lossy(&line.line).into_owned();
                if text == "DONE" {
                    assert_eq!(
                        expected,
                        lines + 1,
                        "{name}: DONE came after line {} (counting gaps)",
                        expected - 1
                    );
                    return gaps;
                }
                if text == "ready" {
                    continue;
                }
                assert_eq!(
                    text,
                    expected.to_string(),
                    "{name}: a line lost or repeated without a gap saying so"
                );
                expected += 1;
            }
            FollowEvent::Line(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn sdk_follow_logs_gets_bursts_whole_or_gaps_counted_exactly_then_the_newest_lines() {
    let home = TestHome::new();
    let client = home.sdk();
    for lines in [1_000u64, 10_000, 100_000] {
        let name = format!("burst{lines}");
        start_burst(&home, &name, lines);
        home.wait_log(&name, Stream::Out, "ready");
        let follow = client.follow_logs(name.as_str(), 0).expect("log.follow");
        let mut events = Background::new(
            "follow_logs",
            follow.map(|event| event.expect("a follow event the SDK can read")),
        );
        go(&home, &name);
        let gaps = read_burst(&mut events, &name, lines);
        if lines == 1_000 {
            assert_eq!(gaps, 0, "a 1,000-line burst arrives whole");
        }
    }
}

#[test]
fn a_slow_reader_is_told_what_it_missed_and_still_ends_with_the_newest_lines() {
    let home = TestHome::new();
    let client = home.sdk();
    let name = "slow";
    start_burst(&home, name, 100_000);
    home.wait_log(name, Stream::Out, "ready");
    let follow = client.follow_logs(name, 0).expect("log.follow");
    // A reader that takes a millisecond per hundred lines: far slower than `seq`.
    let mut count = 0u64;
    let slow = follow.map(move |event| {
        count += 1;
        if count.is_multiple_of(100) {
            std::thread::sleep(Duration::from_millis(1));
        }
        event.expect("a follow event the SDK can read")
    });
    let mut events = Background::new("follow_logs", slow);
    go(&home, name);
    read_burst(&mut events, name, 100_000);
}

/// The daemon's resident and peak resident memory (VmRSS, VmHWM), in bytes.
pub fn daemon_memory(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Opens a raw connection that asks to follow every process and never reads a byte.
fn never_reading_follower(home: &TestHome) -> UnixStream {
    let mut socket = UnixStream::connect(home.home().socket_path()).expect("connect");
    let request = Request::LogFollow(LogReadParams {
        cursor: None,
        target: Target::All,
        lines: 0,
    });
    let payload = request.encode(1).expect("encode log.follow");
    socket
        .write_all(&frame::encode_frame(&payload).expect("frame"))
        .expect("send log.follow");
    socket
}

const MIB: u64 = 1024 * 1024;

#[cfg(target_os = "linux")]
#[test]
fn followers_that_never_read_cost_a_bounded_amount_and_hold_up_nobody() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let daemon = home.daemon_pid().expect("a daemon pid");
    let (before, _) = daemon_memory(daemon);
    let stuck: Vec<UnixStream> = (0..20).map(|_| never_reading_follower(&home)).collect();
    // A reader that keeps up, following the same lines.
    let client = home.sdk();
    let follow = client.follow_logs(Target::All, 0).expect("log.follow");
    let mut events = Background::new(
        "follow_logs",
        follow.map(|event| event.expect("a follow event the SDK can read")),
    );
    // 40 MB in lines of 20 KiB: each stuck follower is offered all of it.
    let lines: u64 = 2_000;
    home.velos(&[
        "start",
        env!("CARGO_BIN_EXE_velos-flood"),
        "--name",
        "flood",
        "--",
        "numbered",
        &lines.to_string(),
        "20480",
    ])
    .success();
    events.until("the flood's last line", |event| {
        matches!(event, FollowEvent::Line(line)
            if line.stream == Stream::Out && line.line.starts_with(format!("{lines:010} ").as_bytes()))
    });
    // Others are served meanwhile.
    let started = Instant::now();
    home.velos(&["list"]).success();
    let list_took = started.elapsed();
    let (during, peak) = daemon_memory(daemon);
    eprintln!(
        "20 never-reading followers of a 40 MB flood: daemon RSS {} MiB before, {} MiB after, \
         peak {} MiB; `velos list` took {list_took:?}",
        before / MIB,
        during / MIB,
        peak / MIB
    );
    assert!(
        peak < before + 96 * MIB,
        "the daemon's peak RSS grew by {} MiB for 20 followers that never read",
        (peak - before) / MIB
    );
    drop(stuck);
    wait_until(Duration::from_secs(10), "the daemon's memory back", || {
        let (now, _) = daemon_memory(daemon);
        if now < before + 24 * MIB {
            Ok(())
        } else {
            Err(format!(
                "daemon RSS {} MiB, {} MiB before the followers came",
                now / MIB,
                before / MIB
            ))
        }
    });
}
