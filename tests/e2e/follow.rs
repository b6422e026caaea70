//! Live logs and events: `velos logs --follow` (one process or all, `--timestamps`), which
//! ends with exit 0 when the daemon shuts down; the SDK's `follow_logs` and `events`
//! streams, their gap reports, and every kind of event.

use std::time::{Duration, SystemTime};

use velos_sdk::{EventKind, FollowEvent, ProcessEvent, Stream, Target};

use crate::harness::{Background, TestHome, fixture};

/// `N` of a `ticker.sh` line (`tick N`), after any prefix.
fn tick_number(line: &str) -> Option<u64> {
    line.rsplit_once("tick ")?.1.trim().parse().ok()
}

/// Starts `ticker.sh` as `name` and waits until it has written a few lines.
#[track_caller]
fn start_ticker(home: &TestHome, name: &str) {
    home.velos(&["start", &fixture("ticker.sh"), "--name", name])
        .success();
    // 50 lines a second: "tick 3" is looked for among the last 10,000 lines, not the
    // default 15 (which a loaded machine scrolls past before `velos logs` runs).
    home.wait_logs_show(&["logs", name, "--lines", "10000"], name, &["tick 3"]);
}

/// Asserts that `numbers` count up by one: no line lost or shown twice.
#[track_caller]
fn assert_consecutive(numbers: &[u64], context: &str) {
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "not consecutive: {numbers:?}\n{context}"
        );
    }
}

#[test]
fn logs_follow_shows_the_last_lines_then_new_ones_and_ends_when_the_daemon_stops() {
    let home = TestHome::new();
    start_ticker(&home, "tick");

    let mut follow = home.spawn(&["logs", "tick", "--follow", "-n", "2"]);
    let first = follow.wait_line("a first line", |line| line.starts_with("tick | tick "));
    let first = tick_number(&first).expect("a tick number");
    follow.wait_line("a line written after following began", |line| {
        tick_number(line).is_some_and(|n| n >= first + 10)
    });

    home.velos(&["kill"]).success();
    let (status, stderr) = follow.wait_exit();
    assert!(
        status.success(),
        "`velos logs -f` exited with {status} when the daemon stopped; stderr: {stderr}"
    );
    assert!(stderr.contains("the daemon stopped"), "stderr: {stderr}");
    let numbers: Vec<u64> = follow
        .seen()
        .iter()
        .map(|line| {
            assert!(line.starts_with("tick | tick "), "{line:?}");
            tick_number(line).expect("a tick number")
        })
        .collect();
    assert_consecutive(&numbers, "`velos logs tick -f`");
}

#[test]
fn logs_follow_without_a_name_follows_every_process_started_before_or_after() {
    let home = TestHome::new();
    start_ticker(&home, "early");
    let mut follow = home.spawn(&["logs", "-f", "-n", "0"]);
    follow.wait_line("a new line of 'early'", |line| {
        line.starts_with("early | tick ")
    });
    home.velos(&["start", &fixture("ticker.sh"), "--name", "late"])
        .success();
    // Padded to the longest name known ('early').
    follow.wait_line("a line of 'late', started after following began", |line| {
        line.starts_with(" late | tick ")
    });
}

#[test]
fn timestamps_show_when_each_line_was_received() {
    let home = TestHome::new();
    start_ticker(&home, "tick");
    let check = |line: &str| {
        let (stamp, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        let time = humantime::parse_rfc3339(stamp)
            .unwrap_or_else(|error| panic!("{stamp:?} in {line:?} is not RFC 3339: {error}"));
        let off = SystemTime::now()
            .duration_since(time)
            .unwrap_or_else(|early| early.duration());
        assert!(off < Duration::from_secs(60), "{line:?} is {off:?} off");
        assert!(rest.starts_with("tick | tick "), "{line:?}");
    };

    let output = home.velos(&["logs", "tick", "-n", "3", "--timestamps"]);
    let text = output.success().stdout_str();
    assert_eq!(text.lines().count(), 3, "{output}");
    text.lines().for_each(check);

    let mut follow = home.spawn(&["logs", "tick", "-f", "-n", "0", "--timestamps"]);
    let line = follow.wait_line("a followed line", |line| line.contains("tick | tick "));
    check(&line);
}

#[test]
fn sdk_follow_logs_gives_the_last_lines_then_new_ones_until_the_daemon_stops() {
    let home = TestHome::new();
    start_ticker(&home, "tick");
    let mut client = home.sdk();
    let follow = client.follow_logs("tick", 3).expect("log.follow");
    let initial: Vec<u64> = follow
        .initial()
        .lines
        .iter()
        .map(|line| tick_number(&String::from_utf8_lossy(&line.line)).expect("a tick"))
        .collect();
    assert_eq!(initial.len(), 3, "{initial:?}");
    assert_consecutive(&initial, "the initial lines");
    let last = initial[2];

    let mut lines = Background::new(
        "follow_logs",
        follow.map(|event| event.expect("a follow event the SDK can read")),
    );
    let seen = lines.until("ten new lines", |event| {
        matches!(event, FollowEvent::Line(line)
            if tick_number(&String::from_utf8_lossy(&line.line)).is_some_and(|n| n >= last + 10))
    });
    let mut numbers = vec![last];
    for event in &seen {
        let FollowEvent::Line(line) = event else {
            panic!("a gap at 50 lines a second: {seen:#?}");
        };
        assert_eq!((line.name.as_str(), line.id), ("tick", 0));
        assert!(line.time_ms.is_some(), "{line:?}");
        numbers.push(tick_number(&String::from_utf8_lossy(&line.line)).expect("a tick"));
    }
    assert_consecutive(&numbers, "initial last line, then the followed lines");

    // The client that opened the stream still answers on its own connection.
    assert_eq!(client.list().expect("list")[0].name, "tick");
    home.velos(&["kill"]).success();
    lines.until_end();
}

#[test]
fn sdk_follow_logs_reports_the_lines_a_slow_reader_missed() {
    let home = TestHome::new();
    let client = home.sdk();
    // Following everything, so that a process started later is followed from its first line.
    let follow = client.follow_logs(Target::All, 0).expect("log.follow");
    // Far more lines than the daemon queues for a follower, written while nobody reads.
    let total: u64 = 100_000;
    home.velos(&[
        "start",
        env!("CARGO_BIN_EXE_velos-flood"),
        "--name",
        "flood",
        "--",
        "numbered",
        &total.to_string(),
        "20",
    ])
    .success();
    home.wait_status("flood", "stopped");

    let mut events = Background::new(
        "follow_logs",
        follow.map(|event| event.expect("a follow event the SDK can read")),
    );
    // Every line is the one after the last, plus what a gap before it said was skipped.
    // Read until a line after a gap checks out (or the last line came without any gap).
    let mut expected: u64 = 1;
    let mut gaps = 0;
    loop {
        let Some(event) = events.next() else {
            panic!("the stream ended before line {expected}")
        };
        let line = match event {
            FollowEvent::Gap(skipped) => {
                assert!(skipped > 0);
                gaps += 1;
                expected += skipped;
                continue;
            }
            FollowEvent::Line(line) if line.name == "flood" && line.stream == Stream::Out => line,
            // The flood's summary on stderr.
            FollowEvent::Line(_) => continue,
            other => panic!("unexpected {other:?}"),
        };
        let number: u64 = String::from_utf8_lossy(&line.line[..10])
            .parse()
            .expect("a numbered line");
        assert_eq!(
            number, expected,
            "a line lost or repeated without a gap saying so"
        );
        expected += 1;
        if gaps > 0 || number == total {
            break;
        }
    }
    assert!(gaps > 0, "100000 unread lines and no gap reported");
}

#[test]
fn sdk_events_report_starts_exits_restarts_give_ups_stops_and_deletes() {
    let home = TestHome::new();
    let mut events = home.events();

    home.velos(&[
        "start",
        &fixture("exit_with.sh"),
        "--name",
        "crash",
        "--max-restarts",
        "1",
        "--",
        "7",
    ])
    .success();
    let crash = events.until("'crash' errored", |event| event.kind == EventKind::Errored);
    let kinds: Vec<EventKind> = crash.iter().map(|event| event.kind).collect();
    use EventKind::*;
    assert_eq!(
        kinds,
        [Started, Exited, Restarting, Started, Exited, Errored],
        "{crash:#?}"
    );
    assert!(
        crash
            .iter()
            .all(|event| event.name == "crash" && event.id == 0)
    );
    assert!(crash[0].pid.is_some(), "{crash:#?}");
    assert_eq!(crash[1].exit_code, Some(7), "{crash:#?}");
    assert_eq!(crash[2].restart_in_ms, Some(100), "{crash:#?}");
    assert_eq!(crash[3].restarts, 1, "{crash:#?}");
    assert!(crash[5].reason.is_some(), "{crash:#?}");

    home.velos(&["start", &fixture("sleeper.sh"), "--name", "calm"])
        .success();
    home.velos(&["stop", "calm"]).success();
    home.velos(&["delete", "calm"]).success();
    let calm: Vec<ProcessEvent> =
        events.until("'calm' deleted", |event| event.kind == EventKind::Deleted);
    let kinds: Vec<EventKind> = calm.iter().map(|event| event.kind).collect();
    assert_eq!(kinds, [Started, Exited, Stopped, Deleted], "{calm:#?}");
    assert!(calm.iter().all(|event| event.name == "calm"));
    assert!(
        calm[1].signal.is_some() || calm[1].exit_code.is_some(),
        "{calm:#?}"
    );

    home.velos(&["kill"]).success();
    let rest = events.until_end();
    assert!(
        rest.iter().all(|event| event.kind != EventKind::Started),
        "{rest:#?}"
    );
}

#[test]
fn logs_follow_of_a_deleted_process_says_so_and_ends() {
    let home = TestHome::new();
    start_ticker(&home, "tick");
    let mut follow = home.spawn(&["logs", "tick", "-f", "-n", "1"]);
    follow.wait_line("a line", |line| line.starts_with("tick | tick "));
    home.velos(&["delete", "tick"]).success();
    let (status, stderr) = follow.wait_exit();
    assert!(
        status.success(),
        "`velos logs tick -f` exited with {status} when 'tick' was deleted; stderr: {stderr}"
    );
    assert!(
        stderr.contains("'tick' (id 0) was deleted"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("daemon stopped"), "stderr: {stderr}");
}

#[test]
fn followers_get_a_line_longer_than_the_daemon_keeps_whole() {
    let home = TestHome::new();
    let client = home.sdk();
    let follow = client.follow_logs(Target::All, 0).expect("log.follow");
    let mut events = Background::new(
        "follow_logs",
        follow.map(|event| event.expect("a follow event the SDK can read")),
    );
    let len = 100_000;
    home.velos(&[
        "start",
        &fixture("long_line.sh"),
        "--name",
        "long",
        "--",
        &len.to_string(),
    ])
    .success();
    let seen = events.until(
        "the tail line",
        |event| matches!(event, FollowEvent::Line(line) if line.line == b"tail"),
    );
    // Pieces (partial, then continued) joined: one line of `len` bytes, then "tail".
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut open = false;
    for event in seen {
        let FollowEvent::Line(line) = event else {
            panic!("a gap or an end in a small follow: {event:?}");
        };
        if line.continued && open {
            lines
                .last_mut()
                .expect("an open line")
                .extend_from_slice(&line.line);
        } else {
            lines.push(line.line);
        }
        open = line.partial;
    }
    assert_eq!(
        lines.len(),
        2,
        "{:?}",
        lines.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(lines[0].len(), len);
    assert!(lines[0].iter().all(|&b| b == b'x'));
}
