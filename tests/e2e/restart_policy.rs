//! `--restart always|on-failure|never` and `--stop-exit-codes`: which exits are restarted.
//! `always` restarts an exit 0 too (PM2's habit: "exit so the manager restarts me"),
//! counted as the policy's restart (`crash` on the wire, `autorestart` in text: a clean exit
//! is never called a crash, nor in watch mode's waiting message); `never` leaves a failure
//! errored; an exit with one of the stop exit codes is a clean stop, never restarted.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestHome, WAIT, fixture, wait_until};

/// How long a test watches that nothing comes back: well past the first backoff delays.
const WATCH: Duration = Duration::from_millis(800);

/// Polls `name`'s `list --json` entry for `duration`, failing at once if `holds` is false.
#[track_caller]
fn holds_for(home: &TestHome, name: &str, duration: Duration, holds: impl Fn(&Value) -> bool) {
    let start = Instant::now();
    while start.elapsed() < duration {
        let entry = home.entry(name);
        assert!(
            holds(&entry),
            "after {:?}, {name:?} is {entry:#}",
            start.elapsed()
        );
    }
}

/// `velos start exit_with.sh --name NAME FLAGS... -- CODE`.
fn start_exiting(home: &TestHome, name: &str, flags: &[&str], code: &str) {
    let script = fixture("exit_with.sh");
    let mut args = vec!["start", script.as_str(), "--name", name];
    args.extend(flags);
    args.extend(["--", code]);
    home.velos(&args).success();
}

#[test]
fn restart_always_restarts_an_exit_0() {
    let home = TestHome::new();
    start_exiting(&home, "done", &["--restart", "always"], "0");
    let entry = wait_until(WAIT, "two restarts of an app that exits 0", || {
        let entry = home.entry("done");
        if entry["restarts"].as_u64().is_some_and(|n| n >= 2) {
            Ok(entry)
        } else {
            Err(entry.to_string())
        }
    });
    assert_eq!(entry["restart"], "always", "{entry:#}");
    assert_eq!(
        entry["restart_counts"]["crash"], entry["restarts"],
        "the policy's restarts: {entry:#}"
    );
    assert_eq!(
        entry["last_restart"]["detail"], "exited with code 0",
        "{entry:#}"
    );
    let info = home.velos(&["info", "done"]).stdout_str();
    assert!(info.contains("autorestart   always"), "{info}");
}

#[test]
fn by_default_an_exit_0_is_a_stop() {
    let home = TestHome::new();
    start_exiting(&home, "done", &[], "0");
    home.wait_status("done", "stopped");
    holds_for(&home, "done", WATCH, |entry| {
        entry["status"] == "stopped" && entry["restarts"] == 0 && entry["restart"] == "on-failure"
    });
}

#[test]
fn a_stop_exit_code_leaves_it_stopped() {
    let home = TestHome::new();
    start_exiting(&home, "clean", &["--stop-exit-codes", "3,4"], "3");
    home.wait_status("clean", "stopped");
    holds_for(&home, "clean", WATCH, |entry| {
        entry["status"] == "stopped" && entry["restarts"] == 0 && entry["exit_code"] == 3
    });
    let entry = home.entry("clean");
    assert_eq!(
        entry["stop_exit_codes"],
        serde_json::json!([3, 4]),
        "{entry:#}"
    );
    let info = home.velos(&["info", "clean"]).stdout_str();
    assert!(info.contains("stop exit codes  3, 4\n"), "{info}");
    // Another code is still a failure.
    start_exiting(&home, "other", &["--stop-exit-codes", "3"], "5");
    wait_until(WAIT, "a restart after code 5", || {
        let entry = home.entry("other");
        if entry["restarts"].as_u64().is_some_and(|n| n >= 1) {
            Ok(())
        } else {
            Err(entry.to_string())
        }
    });
}

#[test]
fn restart_never_leaves_a_crash_errored() {
    let home = TestHome::new();
    start_exiting(&home, "once", &["--restart", "never"], "1");
    home.wait_status("once", "errored");
    holds_for(&home, "once", WATCH, |entry| {
        entry["status"] == "errored"
            && entry["restarts"] == 0
            && entry["restart"] == "never"
            && entry["autorestart"] == false
    });
}

#[test]
fn restart_and_no_autorestart_that_disagree_are_refused() {
    let home = TestHome::new();
    let output = home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--restart",
        "always",
        "--no-autorestart",
    ]);
    let error = output.error();
    assert!(
        error.contains("--no-autorestart") && error.contains("--restart"),
        "{error}"
    );
}

#[test]
fn a_clean_exit_restarted_by_restart_always_is_never_called_a_crash() {
    let home = TestHome::new();
    start_exiting(&home, "done", &["--restart", "always"], "0");
    wait_until(WAIT, "a restart of an app that exits 0", || {
        let entry = home.entry("done");
        if entry["restarts"].as_u64().is_some_and(|n| n >= 1) {
            Ok(())
        } else {
            Err(entry.to_string())
        }
    });
    let info = home.velos(&["info", "done"]).stdout_str();
    assert!(!info.contains("crash"), "{info}");
    assert!(info.contains("(autorestart "), "{info}");

    // In watch mode a quick clean exit waits for a change; its message says how it ended.
    let dir = home.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    let script = fixture("exit_with.sh");
    let watch = dir.to_str().unwrap();
    home.velos(&[
        "start",
        &script,
        "--name",
        "watched",
        "--restart",
        "always",
        "--watch",
        watch,
        "--",
        "0",
    ])
    .success();
    let entry = wait_until(WAIT, "errored, waiting for a file change", || {
        let entry = home.entry("watched");
        if entry["status"] == "errored" && entry["error"].is_string() {
            Ok(entry)
        } else {
            Err(entry.to_string())
        }
    });
    let error = entry["error"].as_str().unwrap();
    assert!(
        error.starts_with("exited with code 0 within") && !error.contains("crash"),
        "{entry:#}"
    );
    let list = home.velos(&["list"]).stdout_str();
    assert!(!list.contains("crash"), "{list}");
}
