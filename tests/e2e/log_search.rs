//! Searching logs: `velos logs --grep`, `--since`/`--until`, `--err`/`--out` and `--json`,
//! over the lines in memory and those only the files still hold (the ring keeps 1000).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use velos_sdk::Stream;

use crate::harness::TestHome;

/// `ERROR-first`, 1200 plain lines (so that the first lines are in the file only), then
/// `ERROR-last` on stderr and `out-last` on stdout; then it waits.
fn start_mix(home: &TestHome) {
    home.velos(&[
        "start",
        "/bin/sh",
        "--name",
        "mix",
        "--",
        "-c",
        "echo ERROR-first; seq 1 1200 | sed 's/^/n /'; echo ERROR-last >&2; echo out-last; \
         exec sleep 1000",
    ])
    .success();
    home.wait_log("mix", Stream::Out, "out-last");
    home.wait_log("mix", Stream::Err, "ERROR-last");
}

/// Starts `two`, a shell that echoes the `early` lines, waits until something is written
/// to the fifo it returns, then echoes the `late` lines and sleeps. Returns once the last
/// early line is in its log.
fn start_two(home: &TestHome, early: &[&str], late: &[&str]) -> PathBuf {
    let fifo = home.path().join("go");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    let echo =
        |lines: &[&str]| -> String { lines.iter().map(|line| format!("echo {line}; ")).collect() };
    let script = format!(
        "{}read x < {}; {}exec sleep 1000",
        echo(early),
        fifo.display(),
        echo(late)
    );
    home.velos(&["start", "/bin/sh", "--name", "two", "--", "-c", &script])
        .success();
    let last = early.last().expect("an early line");
    home.wait_log("two", Stream::Out, last);
    fifo
}

/// The text of each line of `velos logs` output, without the `name | ` prefix.
fn texts(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            line.split_once(" | ")
                .map_or(line, |(_, text)| text)
                .to_owned()
        })
        .collect()
}

#[test]
fn grep_finds_lines_in_memory_and_in_the_files() {
    let home = TestHome::new();
    start_mix(&home);
    let output = home.velos(&["logs", "mix", "--grep", "ERROR"]);
    output.success();
    assert_eq!(
        texts(&output.stdout_str()),
        ["ERROR-first", "ERROR-last"],
        "{output}"
    );
    // -n counts matching lines: the last ones.
    let output = home.velos(&["logs", "mix", "--grep", "^n 1[01]", "-n", "3"]);
    assert_eq!(texts(&output.stdout_str()), ["n 1197", "n 1198", "n 1199"]);
    let output = home.velos(&["logs", "--grep", "(?i)error-FIRST"]);
    assert_eq!(texts(&output.stdout_str()), ["ERROR-first"], "{output}");
    // Nothing found: nothing on stdout, a note on stderr, success.
    let output = home.velos(&["logs", "mix", "--grep", "no such text"]);
    output.success();
    assert!(output.stdout.is_empty(), "{output}");
    assert!(
        output.stderr_str().contains("no matching log lines"),
        "{output}"
    );
    // A bad expression is a usage error naming the flag.
    let output = home.velos(&["logs", "mix", "--grep", "("]);
    assert_eq!(output.status.code(), Some(2), "{output}");
    assert!(output.stderr_str().contains("--grep"), "{output}");
}

#[test]
fn err_and_out_keep_one_stream() {
    let home = TestHome::new();
    start_mix(&home);
    let output = home.velos(&["logs", "mix", "--err"]);
    assert_eq!(texts(&output.stdout_str()), ["ERROR-last"], "{output}");
    let output = home.velos(&["logs", "mix", "--out", "-n", "2"]);
    assert_eq!(
        texts(&output.stdout_str()),
        ["n 1200", "out-last"],
        "{output}"
    );
    let output = home.velos(&["logs", "mix", "--out", "--err"]);
    assert_eq!(output.status.code(), Some(2), "{output}");
}

#[test]
fn json_gives_one_object_per_line_with_its_time_when_known() {
    let home = TestHome::new();
    start_mix(&home);
    let output = home.velos(&["logs", "mix", "--grep", "ERROR", "--json"]);
    output.success();
    let objects: Vec<Value> = output
        .stdout_str()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    assert_eq!(objects.len(), 2, "{output}");
    let id = home.get("mix").id;
    // The first line is only in the file, which does not keep the time.
    assert_eq!(
        objects[0],
        serde_json::json!({"time": null, "name": "mix", "instance": 0, "id": id, "stream": "out",
                           "line": "ERROR-first"})
    );
    assert_eq!(objects[1]["stream"], "err");
    assert_eq!(objects[1]["line"], "ERROR-last");
    let time = objects[1]["time"]
        .as_str()
        .expect("a time for a line in memory");
    let time = humantime::parse_rfc3339(time).expect("RFC 3339");
    let age = SystemTime::now().duration_since(time).unwrap_or_default();
    assert!(age < Duration::from_secs(300), "{time:?} is {age:?} ago");
    // Without a filter, --json is the last -n lines (stdout's and stderr's last lines
    // may have arrived in either order).
    let output = home.velos(&["logs", "mix", "--json", "-n", "2"]);
    let mut last: Vec<String> = output
        .stdout_str()
        .lines()
        .map(|line| {
            let object: Value = serde_json::from_str(line).expect("a JSON object");
            object["line"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    last.sort();
    assert_eq!(last, ["ERROR-last", "out-last"], "{output}");
}

#[test]
fn since_and_until_split_the_log_at_a_moment() {
    let home = TestHome::new();
    let fifo = start_two(&home, &["early"], &["late"]);
    // A moment strictly between the two lines: after `early` was received, before `late`
    // is written (the fifo holds it back). The pauses keep it off either line's
    // millisecond; they wait for the clock, not for an event.
    std::thread::sleep(Duration::from_millis(20));
    let moment = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&fifo, "go\n").expect("write the fifo");
    home.wait_log("two", Stream::Out, "late");

    let output = home.velos(&["logs", "two", "--since", &moment]);
    assert_eq!(texts(&output.stdout_str()), ["late"], "{output}");
    let output = home.velos(&["logs", "two", "--until", &moment]);
    assert_eq!(texts(&output.stdout_str()), ["early"], "{output}");
    let output = home.velos(&["logs", "two", "--since", "1h"]);
    assert_eq!(texts(&output.stdout_str()), ["early", "late"], "{output}");
    let output = home.velos(&["logs", "two", "--since", "yesterday"]);
    assert_eq!(output.status.code(), Some(2), "{output}");
}

#[test]
fn since_leaves_out_lines_only_the_files_hold_and_says_so() {
    let home = TestHome::new();
    start_mix(&home);
    let output = home.velos(&["logs", "mix", "--since", "1h", "--grep", "ERROR"]);
    output.success();
    assert_eq!(texts(&output.stdout_str()), ["ERROR-last"], "{output}");
    let note = output.stderr_str();
    assert!(
        note.contains("1 line read back from the log files carries no time")
            && note.contains("--since"),
        "{output}"
    );
}

#[test]
fn follow_applies_the_filters_to_every_new_line() {
    let home = TestHome::new();
    let fifo = start_two(
        &home,
        &["match-early", "noise-early"],
        &["noise-late", "match-late"],
    );
    let mut follow = home.spawn(&["logs", "two", "-f", "--grep", "match", "--json"]);
    follow.wait_line("the early match", |line| line.contains("match-early"));
    std::fs::write(&fifo, "go\n").expect("write the fifo");
    follow.wait_line("the late match", |line| line.contains("match-late"));
    // `noise-late` was written before `match-late`: had it passed, it would be here.
    let lines: Vec<Value> = follow
        .seen()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON object"))
        .collect();
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["line"].as_str())
        .collect();
    assert_eq!(texts, ["match-early", "match-late"]);
    home.velos(&["kill"]).success();
    let (status, _) = follow.wait_exit();
    assert!(status.success());
}

#[test]
fn json_names_the_app_and_the_instance_of_each_line() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        "/bin/sh",
        "-i",
        "2",
        "--name",
        "pair",
        "--",
        "-c",
        "echo hello-$VELOS_INSTANCE; exec sleep 1000",
    ])
    .success();
    home.wait_logs_show(&["logs", "pair"], "pair:0", &["hello-0"]);
    home.wait_logs_show(&["logs", "pair"], "pair:1", &["hello-1"]);
    let output = home.velos(&["logs", "pair", "--json", "--grep", "hello"]);
    let mut seen: Vec<(String, u64, String)> = output
        .stdout_str()
        .lines()
        .map(|line| {
            let object: Value = serde_json::from_str(line).expect("a JSON object");
            (
                object["name"].as_str().unwrap_or_default().to_owned(),
                object["instance"].as_u64().expect("an instance number"),
                object["line"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("pair".to_owned(), 0, "hello-0".to_owned()),
            ("pair".to_owned(), 1, "hello-1".to_owned())
        ],
        "{output}"
    );
}
