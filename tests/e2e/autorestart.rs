//! Auto-restart: a crashing process is started again after a backoff (100 ms, doubling),
//! shows `waiting` meanwhile, and is left `errored` with the reason after `--max-restarts`
//! quick failures; a run longer than `--min-uptime` resets the backoff; `stop` and `delete`
//! never restart anything and cancel a pending restart.

use std::time::{Duration, Instant};

use serde_json::Value;
use velos_proto::Stream;
use velos_sdk::EventKind;

use crate::harness::{Output, TestHome, WAIT, fixture, wait_until};

/// How long a test watches that nothing comes back: well past the first backoff delays.
const WATCH: Duration = Duration::from_millis(700);

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

/// Waits until `name` is waiting for a restart at least `at_least_ms` away, and returns
/// its entry and when it was asked for: the restart is due `restart_in_ms` after that at
/// the earliest.
#[track_caller]
fn wait_for_a_pending_restart(home: &TestHome, name: &str, at_least_ms: u64) -> (Value, Instant) {
    wait_until(
        WAIT,
        &format!("{name:?} to wait {at_least_ms} ms or more for a restart"),
        || {
            let asked = Instant::now();
            let entry = home.entry(name);
            let pending = entry["restart_in_ms"].as_u64();
            if entry["status"] == "waiting" && pending.is_some_and(|ms| ms >= at_least_ms) {
                Ok((entry, asked))
            } else {
                Err(entry.to_string())
            }
        },
    )
}

/// Starts `exit_with.sh CODE` as `name` with `options`: a process that exits with `code` at
/// once, every run.
fn start_exiting(home: &TestHome, name: &str, options: &[&str], code: &str) {
    let script = fixture("exit_with.sh");
    let mut args = vec!["start", script.as_str(), "--name", name];
    args.extend_from_slice(options);
    args.extend(["--", code]);
    home.velos(&args).success();
}

/// Starts a crash loop as `crash`, waits until a restart at least 300 ms away is pending,
/// and runs `velos CANCEL` (`stop crash`, `delete crash`). Returns the home, the waiting
/// entry and what the command printed once the command returned before the restart was
/// due: only then did it cancel a pending restart. Where it took longer (a loaded
/// machine), the restart may have come first and the test could tell nothing: it tries
/// again in a fresh home, a few times.
#[track_caller]
fn cancel_a_pending_restart(cancel: &[&str]) -> (TestHome, Value, Output) {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let home = TestHome::new();
        start_exiting(&home, "crash", &[], "1");
        let (waiting, asked) = wait_for_a_pending_restart(&home, "crash", 300);
        let output = home.velos(cancel);
        let pending = Duration::from_millis(waiting["restart_in_ms"].as_u64().unwrap_or(0));
        let returned = asked.elapsed();
        if returned < pending {
            return (home, waiting, output);
        }
        eprintln!(
            "`velos {}` returned {returned:?} after the list that saw the restart {pending:?} \
             away: too late to tell; again",
            cancel.join(" ")
        );
    }
    panic!(
        "in {ATTEMPTS} attempts, `velos {}` never returned before the restart it was to cancel \
         was due",
        cancel.join(" ")
    );
}

#[test]
fn a_crashing_process_is_restarted_again_and_again_and_waits_in_between() {
    let home = TestHome::new();
    start_exiting(&home, "crash", &[], "1");
    let mut seen_waiting = None;
    let entry = wait_until(WAIT, "3 restarts", || {
        let entry = home.entry("crash");
        if entry["status"] == "waiting" {
            seen_waiting = Some(entry.clone());
        }
        match entry["restarts"].as_u64() {
            Some(restarts) if restarts >= 3 => Ok(entry),
            _ => Err(entry.to_string()),
        }
    });
    assert!(
        ["waiting", "running", "errored"].contains(&entry["status"].as_str().unwrap_or("")),
        "{entry:#}"
    );
    assert_ne!(entry["status"], "errored", "gave up too early: {entry:#}");
    let waiting = seen_waiting.expect("never saw the status `waiting` between restarts");
    assert!(waiting["pid"].is_null(), "{waiting:#}");
    assert!(waiting["restart_in_ms"].as_u64().is_some(), "{waiting:#}");
    assert_eq!(
        waiting["exit_code"], 1,
        "the last exit is kept: {waiting:#}"
    );

    // The table shows the wait too.
    let (waiting, _) = wait_for_a_pending_restart(&home, "crash", 100);
    let table = home.velos(&["list"]);
    let text = table.success().stdout_str();
    assert!(
        text.contains("waiting") && text.contains("restart in"),
        "{waiting:#}\n{table}"
    );
}

#[test]
fn after_max_restarts_quick_failures_it_is_errored_with_the_reason() {
    let home = TestHome::new();
    start_exiting(&home, "crash", &["--max-restarts", "2"], "3");
    home.wait_status("crash", "errored");
    let entry = home.entry("crash");
    assert_eq!(entry["restarts"], 2, "{entry:#}");
    assert_eq!(entry["exit_code"], 3, "{entry:#}");
    assert!(entry["restart_in_ms"].is_null(), "{entry:#}");
    let reason = entry["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("3 times in a row") && reason.contains("not restarting"),
        "{entry:#}"
    );

    let list = home.velos(&["list"]);
    assert!(
        list.success()
            .stdout_str()
            .contains(&format!("'crash' (id 0) errored: {reason}")),
        "{list}"
    );
    let info = home.velos(&["info", "crash"]);
    let text = info.success().stdout_str();
    assert!(text.contains(&format!("error         {reason}")), "{info}");
    assert!(text.contains("last exit     code 3"), "{info}");
    // Given up means left alone.
    holds_for(&home, "crash", WATCH, |entry| {
        entry["status"] == "errored" && entry["restarts"] == 2
    });
}

#[test]
fn stop_never_restarts_a_process() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "calm"])
        .success();
    home.wait_running("calm");
    home.velos(&["stop", "calm"]).success();
    holds_for(&home, "calm", WATCH, |entry| {
        entry["status"] == "stopped" && entry["restarts"] == 0 && entry["pid"].is_null()
    });
}

#[test]
fn stop_cancels_a_pending_restart() {
    let (home, waiting, stop) = cancel_a_pending_restart(&["stop", "crash"]);
    let restarts = waiting["restarts"].as_u64();
    assert_eq!(
        stop.success().stdout_str(),
        "stopped 'crash' (id 0)\n",
        "{stop}"
    );
    let pending = waiting["restart_in_ms"].as_u64().unwrap_or(0);
    holds_for(
        &home,
        "crash",
        Duration::from_millis(pending) + Duration::from_millis(300),
        |entry| entry["status"] == "stopped" && entry["restarts"].as_u64() == restarts,
    );
}

#[test]
fn delete_cancels_a_pending_restart() {
    let (home, waiting, delete) = cancel_a_pending_restart(&["delete", "crash"]);
    delete.success();
    let log = home.log_file("crash", Stream::Out);
    let pending = Duration::from_millis(waiting["restart_in_ms"].as_u64().unwrap_or(0));
    let start = Instant::now();
    while start.elapsed() < pending + Duration::from_millis(300) {
        let list = home.list();
        assert!(list.is_empty(), "a deleted process came back: {list:#?}");
    }
    // Nothing of it ran either: its output file did not grow after the delete.
    assert_eq!(
        String::from_utf8_lossy(&home.log_file("crash", Stream::Out)),
        String::from_utf8_lossy(&log),
        "it ran again after the delete"
    );
}

#[test]
fn no_autorestart_leaves_a_crash_errored() {
    let home = TestHome::new();
    start_exiting(&home, "once", &["--no-autorestart"], "4");
    home.wait_status("once", "errored");
    holds_for(&home, "once", WATCH, |entry| {
        entry["status"] == "errored" && entry["restarts"] == 0 && entry["autorestart"] == false
    });
}

#[test]
fn quick_failures_double_the_delay_then_give_up() {
    let home = TestHome::new();
    let mut events = home.events();
    start_exiting(
        &home,
        "quick",
        &["--min-uptime", "10s", "--max-restarts", "3"],
        "1",
    );
    let seen = events.until("the `errored` event", |event| {
        event.kind == EventKind::Errored
    });
    let delays: Vec<Option<u64>> = seen
        .iter()
        .filter(|event| event.kind == EventKind::Restarting)
        .map(|event| event.restart_in_ms)
        .collect();
    assert_eq!(delays, [Some(100), Some(200), Some(400)], "{seen:#?}");
    let reason = seen.last().and_then(|event| event.reason.clone());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("4 times in a row")),
        "{seen:#?}"
    );
}

#[test]
fn runs_longer_than_min_uptime_reset_the_backoff() {
    let home = TestHome::new();
    let mut events = home.events();
    // Each run lasts 300 ms, longer than --min-uptime, so no failure counts as quick: the
    // delay stays at 100 ms, and --max-restarts 1 is never reached.
    home.velos(&[
        "start",
        &fixture("exit_after.sh"),
        "--name",
        "slow",
        "--min-uptime",
        "200ms",
        "--max-restarts",
        "1",
        "--",
        "0.3",
        "1",
    ])
    .success();
    let mut restarts = Vec::new();
    while restarts.len() < 3 {
        let event = events.next().expect("the events stream ended");
        assert_ne!(event.kind, EventKind::Errored, "gave up: {event:#?}");
        if event.kind == EventKind::Restarting {
            restarts.push(event);
        }
    }
    for event in &restarts {
        assert_eq!(event.restart_in_ms, Some(100), "{restarts:#?}");
    }
    assert_ne!(home.entry("slow")["status"], "errored");
}
