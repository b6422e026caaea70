//! Readiness (issue 11): `--ready notify|message|log:REGEX|http:URL`. A process with a
//! ready mode is `starting` until it says it is ready; `velos start` waits for that and
//! exits 0, or exits non-zero with the reason and the process's last log lines when it
//! is not ready within `--ready-timeout` (the process is stopped and left errored).

use std::time::{Duration, Instant};

use velos_proto::EventKind;

use crate::harness::{Output, TestHome, fixture};

/// Runs `velos start FIXTURE --name NAME --ready READY EXTRA...` and returns what it printed
/// and how long it took.
fn start_ready(
    home: &TestHome,
    script: &str,
    name: &str,
    ready: &str,
    extra: &[&str],
) -> (Output, Duration) {
    let script = fixture(script);
    let mut args = vec!["start", &script, "--name", name, "--ready", ready];
    args.extend_from_slice(extra);
    let begun = Instant::now();
    let out = home.velos(&args);
    (out, begun.elapsed())
}

#[test]
fn notify_start_waits_for_ready_sent_by_any_process_of_the_tree() {
    let home = TestHome::new();
    let mut events = home.events();
    let (out, took) = start_ready(&home, "notify_ready.py", "svc", "notify", &["--", "1"]);
    out.success();
    assert!(
        took >= Duration::from_secs(1),
        "start returned before READY=1: {out}"
    );
    assert!(out.stdout_str().contains("started 'svc'"), "{out}");
    let info = home.entry("svc");
    assert_eq!(info["status"], "running", "{info}");
    assert_eq!(info["ready"], "notify", "{info}");
    assert_eq!(info["status_text"], "serving 3 clients", "{info}");
    let text = home.velos(&["info", "svc"]).success().stdout_str();
    assert!(text.contains("serving 3 clients"), "{text}");
    let seen = events.until("'svc' ready", |event| event.kind == EventKind::Ready);
    let kinds: Vec<EventKind> = seen.iter().map(|event| event.kind).collect();
    use EventKind::*;
    assert_eq!(kinds, [Started, Starting, Ready], "{seen:#?}");
    assert!(
        seen.iter().all(|event| event.pid == seen[0].pid),
        "{seen:#?}"
    );
}

#[test]
fn not_ready_in_time_fails_the_start_with_the_reason_and_the_last_log_lines() {
    let home = TestHome::new();
    let (out, took) = start_ready(
        &home,
        "sleeper.sh",
        "mute",
        "notify",
        &["--ready-timeout", "1s"],
    );
    assert!(!out.status.success(), "{out}");
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("'mute' (id 0) did not become ready: not ready within 1s"),
        "{out}"
    );
    assert!(stderr.contains("last lines of 'mute'"), "{out}");
    assert!(stderr.contains("  ready"), "the line it wrote: {out}");
    assert!(took < Duration::from_secs(20), "{out}");
    let info = home.entry("mute");
    assert_eq!(info["status"], "errored", "{info}");
    assert_eq!(info["pid"], serde_json::Value::Null, "stopped: {info}");
    assert!(
        info["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("not ready within 1s")),
        "{info}"
    );
}

#[test]
fn no_wait_returns_while_starting() {
    let home = TestHome::new();
    let (out, _) = start_ready(
        &home,
        "notify_ready.py",
        "svc",
        "notify",
        &["--no-wait", "--", "3"],
    );
    out.success();
    assert_eq!(home.get("svc").status, "starting");
    home.wait_running("svc");
}

#[test]
fn log_ready_waits_for_the_first_matching_line_on_either_stream() {
    let home = TestHome::new();
    let ready = r"log:listening on port \d+";
    let (out, took) = start_ready(&home, "slow_boot.sh", "boot", ready, &["--", "1"]);
    out.success();
    assert!(took >= Duration::from_secs(1), "{out}");
    assert_eq!(home.get("boot").status, "running");
    assert_eq!(home.entry("boot")["ready"], r"log:listening on port \d+");
}

#[test]
fn a_log_regex_that_does_not_parse_is_refused_and_adds_nothing() {
    let home = TestHome::new();
    let error = home
        .velos(&["start", &fixture("sleeper.sh"), "--ready", "log:(unclosed"])
        .error();
    assert!(error.contains("log:(unclosed"), "{error}");
    assert!(home.list().is_empty());
    let error = home
        .velos(&["start", &fixture("sleeper.sh"), "--ready", "tcp:80"])
        .error();
    assert!(error.contains("is not a ready mode"), "{error}");
}

#[test]
fn http_ready_waits_for_a_2xx_answer() {
    let home = TestHome::new();
    let port = crate::harness::free_port().to_string();
    let url = format!("http:http://127.0.0.1:{port}/health");
    let (out, took) = start_ready(&home, "http_ready.py", "web", &url, &["--", &port, "1"]);
    out.success();
    assert!(took >= Duration::from_secs(1), "503s are not ready: {out}");
    assert_eq!(home.get("web").status, "running");
    let error = home
        .velos(&[
            "start",
            &fixture("sleeper.sh"),
            "--ready",
            "http:http://192.0.2.1/",
        ])
        .error();
    assert!(error.contains("only loopback addresses"), "{error}");
}

#[test]
fn message_ready_is_nodes_process_send() {
    if !crate::harness::on_path("node") {
        eprintln!("skipped: node is not installed");
        return;
    }
    let home = TestHome::new();
    let (out, took) = start_ready(
        &home,
        "message_ready.js",
        "nodeapp",
        "message",
        &["--", "800"],
    );
    out.success();
    assert!(took >= Duration::from_millis(800), "{out}");
    assert_eq!(home.get("nodeapp").status, "running");
    // The channel stays open: a later process.send does not crash the program.
    home.wait_log("nodeapp", velos_proto::Stream::Out, "still alive");
    let after = home.entry("nodeapp");
    assert_eq!(
        (&after["status"], &after["restarts"]),
        (&"running".into(), &0.into()),
        "{after}"
    );
}

#[test]
fn restart_waits_until_the_new_run_is_ready_too() {
    let home = TestHome::new();
    let ready = "log:listening on port";
    start_ready(&home, "slow_boot.sh", "boot", ready, &["--", "1"])
        .0
        .success();
    let before = home.get("boot").pid;
    let begun = Instant::now();
    let out = home.velos(&["restart", "boot"]);
    out.success();
    assert!(begun.elapsed() >= Duration::from_secs(1), "{out}");
    let after = home.get("boot");
    assert_eq!(after.status, "running", "{out}");
    assert_ne!(after.pid, before);
}
