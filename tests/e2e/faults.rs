//! Faults of the daemon's own world (issue 3, promise 6), and the quick half of "nothing
//! lost from logs" (promise 4; the 1 GB and high-volume runs are in `tests/stress`).
//!
//! - Log files: deleted under a running process (created again at the next write), or
//!   not writable (a directory in its place): the daemon keeps serving, `velos logs` warns
//!   and shows the lines from memory, `list --json` has `log_error`, and logging resumes
//!   by itself once the file can be written.
//! - The socket file deleted while the daemon runs: the same daemon binds it again.
//! - The daemon killed with SIGKILL: its children get SIGTERM at once (parent-death
//!   signal); whatever ignores it, grandchildren and escaped descendants included, is
//!   ended by the next daemon on the same home (SIGTERM, then SIGKILL after 5 s).
//! - Its runs' notify sockets (`--ready notify`), which it cannot remove, go when the next
//!   daemon starts.
//! - A stale pid file naming an unrelated live process: that process is never signalled.
//! - Output at exit: a child that writes fast and exits at once loses nothing; lines of
//!   several MiB, non-UTF-8 bytes and a last line without a newline are kept byte for byte.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use serde_json::Value;
use velos_proto::Stream;

use crate::harness::{
    TestHome, WAIT, fixture, logged_lines, pid_alive, ping_socket, signal_pid, wait_gone,
    wait_until,
};
use crate::orphans::{Reported, describe, path_arg, stat};

/// How long the next daemon gives leftovers of a dead one between SIGTERM and SIGKILL.
const LEFTOVER_KILL_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn a_log_file_deleted_under_a_running_process_is_created_again() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("ticker.sh"), "--name", "ticker"])
        .success();
    home.wait_log("ticker", Stream::Out, "tick 3\n");
    let path = home.home().log_path("ticker", Stream::Out);
    std::fs::remove_file(&path).expect("delete the log file");

    let ticks = wait_until(WAIT, "ticks in a new logs/ticker-out.log", || {
        let found = ticks(&std::fs::read(&path).ok()?);
        (found.len() >= 3).then_some(found)
    });
    assert_consecutive(&ticks, &path);
    assert_eq!(file_mode(&path), 0o600, "the new log file's mode");
    assert_eq!(log_error(&home, "ticker"), None);
    // The daemon still answers, and shows the lines of the new file. The ticker writes 50
    // lines a second, so the tick read above is asked for among the last 10,000 lines, not
    // the default 15 (which a loaded machine scrolls past before `velos logs` runs).
    let newest = format!("tick {}", ticks[ticks.len() - 1]);
    home.wait_logs_show(
        &["logs", "ticker", "--lines", "10000"],
        "ticker",
        &[&newest],
    );
}

#[test]
fn an_unwritable_log_file_is_reported_and_logging_resumes_once_it_is_gone() {
    let home = TestHome::new();
    // A log file that cannot be opened for writing, made before the process starts: a
    // directory in its place. (A link to /dev/full is refused outright: the daemon
    // follows no links in its home, see home_safety.rs.)
    home.velos(&["ping"]).success();
    let path = home.home().log_path("full", Stream::Out);
    std::fs::create_dir_all(path.parent().expect("logs/")).expect("create logs/");
    std::fs::create_dir(&path).expect("a directory in place of the log file");
    home.velos(&["start", &fixture("ticker.sh"), "--name", "full"])
        .success();

    let error = wait_until(WAIT, "`log_error` for full in `list --json`", || {
        log_error(&home, "full")
    });
    assert!(
        error.contains("cannot open") || error.contains("cannot write"),
        "log_error does not say what failed: {error:?}"
    );
    let output = wait_until(
        WAIT,
        "`velos logs full` to warn and show lines from memory",
        || {
            let output = home.velos(&["logs", "full"]);
            let warned = output
                .stderr_str()
                .lines()
                .any(|line| line.starts_with("warning: full: cannot"));
            let shown = logged_lines(&String::from_utf8_lossy(&output.stdout), "full");
            if output.status.success() && warned && shown.iter().any(|l| l.starts_with("tick ")) {
                Ok(output)
            } else {
                Err(output.to_string())
            }
        },
    );
    assert!(
        !output.stderr_str().contains("error:"),
        "a log write error is a warning, not an error\n{output}"
    );
    assert_eq!(home.get("full").status, "running");
    home.velos(&["ping"]).success();

    // Take the obstacle away: the next write creates a regular file and logging resumes.
    std::fs::remove_dir(&path).expect("remove the directory");
    let ticks = wait_until(WAIT, "ticks in a regular logs/full-out.log", || {
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        let found = ticks(&std::fs::read(&path).ok()?);
        (found.len() >= 3).then_some(found)
    });
    assert_consecutive(&ticks, &path);
    assert_eq!(file_mode(&path), 0o600, "the new log file's mode");
    wait_until(WAIT, "`log_error` to be null again", || {
        match log_error(&home, "full") {
            None => Ok(()),
            Some(error) => Err(error),
        }
    });
    let output = home.velos(&["logs", "full"]);
    output.success();
    assert!(
        !output.stderr_str().contains("warning:"),
        "still warning after logging resumed\n{output}"
    );
}

#[test]
fn a_deleted_socket_is_bound_again_by_the_same_daemon() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "keeper"])
        .success();
    let before = home.wait_running("keeper");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");
    let socket = home.home().socket_path();

    std::fs::remove_file(&socket).expect("delete velos.sock");
    let info = wait_until(WAIT, "the daemon to answer on velos.sock again", || {
        ping_socket(&socket)
    });
    assert_eq!(info.pid as i32, daemon, "another daemon answers");
    let mode = std::fs::metadata(&socket)
        .expect("velos.sock")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the new socket's mode");

    let after = home.get("keeper");
    assert_eq!(after, before, "the process table changed");
    assert_eq!(home.daemon_pid(), Some(daemon), "velos.pid changed");
    assert!(pid_alive(daemon), "the daemon {daemon} is gone");
}

#[test]
fn children_of_a_sigkilled_daemon_get_sigterm_and_the_next_daemon_ends_the_rest() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "polite"])
        .success();
    home.wait_log("polite", Stream::Out, "ready");
    let polite = home.wait_running("polite").pid.expect("running has a pid");
    // Ignores SIGTERM, with a grandchild, an environment-less child and a double-forked
    // descendant in its own session.
    let pids_file = home.path().join("stubborn.pids");
    home.velos(&[
        "start",
        &fixture("escapes.py"),
        "--name",
        "stubborn",
        "--",
        path_arg(&pids_file),
        "stay",
    ])
    .success();
    let reported = wait_until(WAIT, "the stubborn process's pid file", || {
        Reported::read(&pids_file)
    });
    reported.record(&home);
    let old = home.daemon_pid().expect("velos.pid names the daemon");

    signal_pid(old, Signal::KILL);
    wait_gone(old, "the SIGKILLed daemon");
    // The parent-death signal: a child that does not ignore SIGTERM ends at once.
    wait_gone(
        polite,
        "a child of the SIGKILLed daemon that exits on SIGTERM",
    );
    // What ignores SIGTERM runs on until a daemon comes back for this home.
    for (role, pid) in reported.all() {
        assert!(
            pid_alive(pid),
            "{role} {pid} did not outlive the daemon; only the next daemon should end it: {}",
            describe(&[pid])
        );
    }

    // A SIGKILLed daemon is a zombie as soon as its main thread is gone, while its other
    // threads may hold the socket and the pid file lock a moment longer.
    wait_until(
        WAIT,
        "the dead daemon's socket to refuse connections",
        || std::os::unix::net::UnixStream::connect(home.home().socket_path()).is_err(),
    );

    // Any command starts the next daemon, which ends what the dead one left.
    home.velos(&["list"]).success();
    let new = home.daemon_pid().expect("velos.pid after auto-start");
    assert_ne!(new, old, "velos.pid still names the dead daemon");
    wait_until(
        LEFTOVER_KILL_TIMEOUT + WAIT,
        "the next daemon to end everything the dead one left",
        || {
            let alive = reported.alive();
            if alive.is_empty() {
                Ok(())
            } else {
                Err(alive.join("\n"))
            }
        },
    );
    assert!(pid_alive(new), "the new daemon {new} is gone");
}

/// A `sleep 600` this test started; killed and reaped on drop.
struct Stranger(Child);

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Stranger {
    /// Whether it still runs, untouched: not exited, not stopped.
    #[track_caller]
    fn assert_untouched(&mut self, after: &str) {
        let pid = self.0.id() as i32;
        match self.0.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!("the unrelated process {pid} ended ({status}) {after}"),
            Err(error) => panic!("cannot wait for {pid}: {error}"),
        }
        let state = stat(pid).map(|s| s.state);
        assert!(
            matches!(state, Some('S' | 'R' | 'D')),
            "the unrelated process {pid} is in state {state:?} {after}"
        );
    }
}

#[test]
fn a_stale_pid_file_naming_an_unrelated_process_never_gets_it_signalled() {
    let home = TestHome::new();
    let mut stranger = Stranger(
        Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = stranger.0.id() as i32;
    let pid_path = home.home().pid_path();
    let stale = format!("{pid}\n");

    // No daemon: `velos kill` has nothing to stop, and must not take the pid file's word.
    std::fs::write(&pid_path, &stale).expect("write velos.pid");
    home.velos(&["kill"]).success();
    stranger.assert_untouched("after `velos kill` with a stale velos.pid and no daemon");

    // A command starts a fresh daemon over the stale file; `velos kill` stops that one.
    std::fs::write(&pid_path, &stale).expect("write velos.pid");
    home.velos(&["list"]).success();
    let daemon = home.daemon_pid().expect("velos.pid after auto-start");
    assert_ne!(daemon, pid, "velos.pid still names the unrelated process");
    assert_eq!(home.ping().pid as i32, daemon);
    stranger.assert_untouched("after `velos list` replaced a stale velos.pid");
    home.velos(&["kill"]).success();
    wait_gone(daemon, "the daemon after `velos kill`");
    assert!(!pid_path.exists(), "velos.pid left after `velos kill`");
    stranger.assert_untouched("after `velos kill`");
}

#[test]
fn a_fast_writer_that_exits_at_once_loses_no_line() {
    let home = TestHome::new();
    let lines = 200_000;
    home.velos(&[
        "start",
        &fixture("count_to.sh"),
        "--name",
        "burst",
        "--",
        &lines.to_string(),
    ])
    .success();
    // The daemon reports the exit only once the pipes are drained: from then on the files
    // hold everything.
    let proc = home.wait_status("burst", "stopped");
    assert_eq!(proc.exit_code, Some(0), "{proc:?}");
    for (stream, word) in [(Stream::Out, "out"), (Stream::Err, "err")] {
        let expected: String = (1..=lines).map(|i| format!("{word} {i}\n")).collect();
        assert_same_bytes(
            &home.log_file("burst", stream),
            expected.as_bytes(),
            &format!("logs/burst-{word}.log"),
        );
    }
}

#[test]
fn a_line_of_several_mib_is_whole_in_the_file_and_in_velos_logs() {
    let home = TestHome::new();
    let len = 5 << 20;
    home.velos(&[
        "start",
        &fixture("long_line.sh"),
        "--name",
        "long",
        "--",
        &len.to_string(),
    ])
    .success();
    home.wait_status("long", "stopped");
    let mut expected = vec![b'x'; len];
    expected.extend_from_slice(b"\ntail");
    assert_same_bytes(
        &home.log_file("long", Stream::Out),
        &expected,
        "logs/long-out.log",
    );

    // Whole, though the daemon keeps only 16 KiB of it in memory: read from the file.
    let raw = home.velos(&["logs", "long", "--raw"]);
    raw.success();
    assert_same_bytes(&raw.stdout, &expected, "`velos logs long --raw`");
    let shown = home.velos(&["logs", "long"]);
    let mut prefixed = b"long | ".to_vec();
    prefixed.extend_from_slice(&expected);
    prefixed.extend_from_slice(b"\n");
    prefixed.splice(7 + len + 1..7 + len + 1, b"long | ".iter().copied());
    assert_same_bytes(&shown.success().stdout, &prefixed, "`velos logs long`");
}

#[test]
fn interleaved_awkward_output_is_kept_byte_for_byte_on_each_stream() {
    let home = TestHome::new();
    let expected = home.path().join("expected");
    std::fs::create_dir(&expected).expect("create expected/");
    // About 16 MiB, both streams written in turn: lines of several MiB, empty lines,
    // non-UTF-8 bytes, lines split across writes, no newline at the end.
    home.velos(&[
        "start",
        env!("CARGO_BIN_EXE_velos-flood"),
        "--name",
        "mixed",
        "--",
        "mixed",
        &(16 << 20).to_string(),
        "7",
        path_arg(&expected),
    ])
    .success();
    let proc = home.wait_status("mixed", "stopped");
    assert_eq!(proc.exit_code, Some(0), "{proc:?}");
    let summary = std::fs::read_to_string(expected.join("summary")).expect("flood's summary");
    for (stream, file) in [(Stream::Out, "out"), (Stream::Err, "err")] {
        let wanted = std::fs::read(expected.join(file)).expect("flood's expected copy");
        assert_same_bytes(
            &home.log_file("mixed", stream),
            &wanted,
            &format!("logs/mixed-{file}.log (flood wrote: {summary:?})"),
        );
    }
}

/// The log error `list --json` shows for `name` (the key must be there, null or a string).
#[track_caller]
fn log_error(home: &TestHome, name: &str) -> Option<String> {
    let output = home.velos(&["list", "--json"]);
    output.success();
    let json = output.json();
    let entry = json
        .as_array()
        .and_then(|list| list.iter().find(|entry| entry["name"] == name))
        .unwrap_or_else(|| panic!("no {name:?} in `list --json`\n{output}"));
    match entry.get("log_error") {
        Some(Value::Null) => None,
        Some(Value::String(error)) => Some(error.clone()),
        other => panic!("`log_error` is not null or a string: {other:?} in {entry}"),
    }
}

/// The numbers of the complete `tick N` lines in a ticker's log.
fn ticks(bytes: &[u8]) -> Vec<u64> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return Vec::new(),
    };
    String::from_utf8_lossy(complete)
        .lines()
        .map(|line| {
            line.strip_prefix("tick ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a tick line: {line:?}"))
        })
        .collect()
}

/// Every tick in the file follows the one before: nothing lost or repeated.
#[track_caller]
fn assert_consecutive(ticks: &[u64], path: &Path) {
    let gap = ticks.windows(2).find(|pair| pair[1] != pair[0] + 1);
    assert_eq!(gap, None, "{} skips or repeats: {ticks:?}", path.display());
}

fn file_mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Asserts `got == expected`, showing where they first differ rather than megabytes.
#[track_caller]
fn assert_same_bytes(got: &[u8], expected: &[u8], what: &str) {
    if got == expected {
        return;
    }
    let at = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let around = |bytes: &[u8]| {
        let from = at.saturating_sub(40);
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..(at + 40).min(bytes.len())])
            .into_owned()
    };
    panic!(
        "{what}: {} bytes, expected {}; first difference at byte {at}\n\
         got      ...{:?}...\nexpected ...{:?}...",
        got.len(),
        expected.len(),
        around(got),
        around(expected),
    );
}

#[test]
fn notify_sockets_left_by_a_sigkilled_daemon_are_removed_by_the_next() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("notify_ready.py"),
        "--name",
        "notified",
        "--ready",
        "notify",
        "--",
        "0.1",
    ])
    .success();
    home.wait_running("notified");
    let id = home.entry("notified")["id"].as_u64().expect("an id");
    let socket = home.path().join(format!("notify-{id}-1.sock"));
    assert!(
        socket.exists(),
        "the run's notify socket is {}",
        socket.display()
    );

    home.kill_daemon();
    assert!(
        socket.exists(),
        "a SIGKILLed daemon cannot remove its sockets"
    );
    // The next daemon (started by the next command) removes them.
    home.velos(&["list"]).success();
    assert!(!socket.exists(), "{} is still there", socket.display());
}
