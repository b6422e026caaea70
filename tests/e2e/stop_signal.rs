//! PM2 habits about signals: `--kill-signal` is what the app gets on stop (and after a
//! save/resurrect), `velos stop` says when it had to use SIGKILL.

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, wait_until};

#[test]
fn kill_signal_sigint_is_what_the_app_receives_on_stop_and_after_resurrect() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("signal_log.py"),
        "--name",
        "polite",
        "--kill-signal",
        "SIGINT",
    ])
    .success();
    home.wait_log("polite", Stream::Out, "ready");
    home.wait_running("polite");
    let info = home.velos(&["info", "polite"]);
    info.success();
    assert!(
        info.stdout_str()
            .lines()
            .any(|line| line.starts_with("kill signal") && line.ends_with("SIGINT")),
        "info shows the kill signal\n{info}"
    );
    let stop = home.velos(&["stop", "polite"]);
    stop.success();
    assert!(
        !stop.stdout_str().contains("SIGKILL"),
        "it ended on SIGINT\n{stop}"
    );
    let log = String::from_utf8_lossy(&home.log_file("polite", Stream::Out)).into_owned();
    assert!(log.contains("got SIGINT"), "the app got SIGINT: {log:?}");
    assert!(!log.contains("got SIGTERM"), "and not SIGTERM: {log:?}");

    // Saved and brought back by a new daemon: still SIGINT ("INT" and a number spell it too).
    home.velos(&["restart", "polite"]).success();
    wait_count(&home, "polite", "ready", 2);
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    home.wait_running("polite");
    assert_eq!(home.entry("polite")["kill_signal"], "SIGINT");
    wait_count(&home, "polite", "ready", 3);
    home.velos(&["delete", "polite"]).success();
    let log = String::from_utf8_lossy(&home.log_file("polite", Stream::Out)).into_owned();
    assert_eq!(log.matches("got SIGINT").count(), 3, "{log:?}");
    assert!(!log.contains("got SIGTERM"), "{log:?}");
}

/// Waits until `name`'s stdout log holds `needle` `count` times (its signal handlers are
/// in place once it printed "ready").
#[track_caller]
fn wait_count(home: &TestHome, name: &str, needle: &str, count: usize) {
    wait_until(
        WAIT,
        &format!("{count} x {needle:?} in {name}'s log"),
        || {
            let log = String::from_utf8_lossy(&home.log_file(name, Stream::Out)).into_owned();
            if log.matches(needle).count() >= count {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
}

#[test]
fn kill_signal_accepts_short_names_and_numbers_and_refuses_others_in_one_line() {
    let home = TestHome::new();
    for (name, spelling) in [("short", "int"), ("number", "2")] {
        home.velos(&[
            "start",
            &fixture("sleeper.sh"),
            "--name",
            name,
            "--kill-signal",
            spelling,
        ])
        .success();
        assert_eq!(home.entry(name)["kill_signal"], "SIGINT", "{spelling}");
    }
    let bad = home.velos(&["start", &fixture("sleeper.sh"), "--kill-signal", "SIGNOPE"]);
    let line = bad.error();
    assert!(line.contains("'SIGNOPE' is not a signal"), "{line}");
}

#[test]
fn stop_says_when_it_had_to_use_sigkill() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("ignore_term.py"),
        "--name",
        "stubborn",
        "--kill-timeout",
        "300ms",
    ])
    .success();
    home.wait_log("stubborn", Stream::Out, "ready");
    home.wait_running("stubborn");
    let stop = home.velos(&["stop", "stubborn"]);
    stop.success();
    let out = stop.stdout_str();
    assert!(
        out.contains(
            "stopped 'stubborn' (id 0): still running 300ms after SIGTERM, so velos sent SIGKILL"
        ),
        "{stop}"
    );
    assert_eq!(home.entry("stubborn")["killed"], true);

    // One that ends on the stop signal: no such line.
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "polite"])
        .success();
    home.wait_log("polite", Stream::Out, "ready");
    let stop = home.velos(&["stop", "polite"]);
    stop.success();
    assert!(!stop.stdout_str().contains("SIGKILL"), "{stop}");
}
