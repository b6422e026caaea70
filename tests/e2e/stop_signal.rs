//! PM2 habits about signals: `--kill-signal` is what the app gets on stop (and after a
//! save/resurrect), `velos stop` says when it had to use SIGKILL, `velos signal` sends any
//! signal to a running app (PM2's `sendSignal`).

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, wait_until};

/// Starts the fixture `script` as `name` with `extra` flags and waits until it runs and
/// has printed "ready" (its signal handlers are in place); returns its pid.
#[track_caller]
fn start_ready(home: &TestHome, script: &str, name: &str, extra: &[&str]) -> i32 {
    let script = fixture(script);
    let mut args = vec!["start", &script, "--name", name];
    args.extend_from_slice(extra);
    home.velos(&args).success();
    home.wait_log(name, Stream::Out, "ready");
    home.wait_running(name)
        .pid
        .expect("a running process has a pid")
}

/// `ignore_term.py` as "stubborn" with a 300 ms kill timeout: a stop of it ends in SIGKILL.
#[track_caller]
fn start_stubborn(home: &TestHome) {
    start_ready(
        home,
        "ignore_term.py",
        "stubborn",
        &["--kill-timeout", "300ms"],
    );
}

/// The text of `name`'s stdout log file.
fn out_log(home: &TestHome, name: &str) -> String {
    String::from_utf8_lossy(&home.log_file(name, Stream::Out)).into_owned()
}

#[test]
fn kill_signal_sigint_is_what_the_app_receives_on_stop_and_after_resurrect() {
    let home = TestHome::new();
    start_ready(
        &home,
        "signal_log.py",
        "polite",
        &["--kill-signal", "SIGINT"],
    );
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
    let log = out_log(&home, "polite");
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
    let log = out_log(&home, "polite");
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
            let log = out_log(home, name);
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
    start_stubborn(&home);
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
    start_ready(&home, "sleeper.sh", "polite", &[]);
    let stop = home.velos(&["stop", "polite"]);
    stop.success();
    assert!(!stop.stdout_str().contains("SIGKILL"), "{stop}");
}

/// The text of `path`, empty if it does not exist yet.
fn text_of(path: &std::path::Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Waits until the file at `path` holds `needle`.
#[track_caller]
fn wait_in(path: &std::path::Path, needle: &str) {
    wait_until(WAIT, &format!("{needle:?} in {}", path.display()), || {
        let text = text_of(path);
        if text.contains(needle) {
            Ok(())
        } else {
            Err(format!("{text:?}"))
        }
    });
}

#[test]
fn velos_signal_sends_any_signal_to_the_running_app_by_name_short_name_or_number() {
    let home = TestHome::new();
    let pid = start_ready(&home, "signal_log.py", "app", &[]);
    let out = home.home().log_path("app", Stream::Out);

    let sent = home.velos(&["signal", "SIGUSR2", "app"]);
    sent.success();
    assert_eq!(
        sent.stdout_str().trim_end(),
        format!("sent SIGUSR2 to 'app' (id 0, pid {pid})"),
        "{sent}"
    );
    wait_in(&out, "got SIGUSR2");

    // A short name, any case, an id as the target.
    home.velos(&["signal", "hup", "0"]).success();
    wait_in(&out, "got SIGHUP");
    // A number.
    let usr1 = rustix::process::Signal::USR1.as_raw().to_string();
    home.velos(&["signal", &usr1, "app"]).success();
    wait_in(&out, "got SIGUSR1");

    // None of these ends it: still the same run.
    let app = home.entry("app");
    assert_eq!(app["status"], "running", "{app}");
    assert_eq!(
        (app["pid"].as_i64(), app["restarts"].as_u64()),
        (Some(i64::from(pid)), Some(0))
    );
}

#[test]
fn velos_signal_reaches_every_instance_or_the_one_named() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("signal_log.py"),
        "--name",
        "web",
        "-i",
        "2",
    ])
    .success();
    let logs: Vec<_> = (0..2)
        .map(|k| home.home().instance_log_path("web", k, Stream::Out))
        .collect();
    for log in &logs {
        wait_in(log, "ready");
    }
    let sent = home.velos(&["signal", "USR2", "web"]);
    sent.success();
    assert_eq!(sent.stdout_str().lines().count(), 2, "{sent}");
    for log in &logs {
        wait_in(log, "got SIGUSR2");
    }
    home.velos(&["signal", "SIGHUP", "web:1"]).success();
    wait_in(&logs[1], "got SIGHUP");
    // `all` too (instance 0 gets this one; instance 1 already has its SIGHUP).
    home.velos(&["signal", "SIGUSR1", "all"]).success();
    wait_in(&logs[0], "got SIGUSR1");
    wait_in(&logs[1], "got SIGUSR1");
    assert!(
        !text_of(&logs[0]).contains("got SIGHUP"),
        "only web:1 got SIGHUP"
    );
}

#[test]
fn velos_signal_to_a_process_not_running_or_an_unknown_signal_is_one_error_and_sends_nothing() {
    let home = TestHome::new();
    start_ready(&home, "signal_log.py", "app", &[]);

    let bad = home.velos(&["signal", "SIGNOPE", "app"]);
    let line = bad.error();
    assert!(line.contains("'SIGNOPE' is not a signal"), "{line}");
    assert!(line.contains("SIGUSR2"), "it says how to spell one: {line}");
    let missing = home.velos(&["signal", "USR2", "nosuch"]);
    assert!(
        missing.error().contains("no process named 'nosuch'"),
        "{missing}"
    );

    home.velos(&["stop", "app"]).success();
    let before = out_log(&home, "app");
    for target in ["app", "0", "all"] {
        let stopped = home.velos(&["signal", "USR2", target]);
        let line = stopped.error();
        assert!(line.contains("not running"), "{target}: {line}");
    }
    // `all` with one running beside a stopped one: the running one gets it, the stopped
    // one is named on stderr.
    start_ready(&home, "signal_log.py", "other", &[]);
    let all = home.velos(&["signal", "USR2", "all"]);
    assert!(all.status.success(), "`all` signals what runs: {all}");
    assert!(
        all.stderr_str().contains("'app' (id 0) is stopped"),
        "{all}"
    );
    home.wait_log("other", Stream::Out, "got SIGUSR2");
    let after = out_log(&home, "app");
    assert_eq!(before, after, "the stopped app got nothing");
}

#[test]
fn only_the_stop_that_used_sigkill_says_so() {
    let home = TestHome::new();
    start_stubborn(&home);
    let first = home.velos(&["stop", "stubborn"]);
    assert!(first.success().stdout_str().contains("SIGKILL"), "{first}");

    // Already stopped: this stop sent nothing, so it says nothing about SIGKILL...
    let second = home.velos(&["stop", "stubborn"]);
    second.success();
    assert_eq!(
        second.stdout_str().trim_end(),
        "stopped 'stubborn' (id 0)",
        "{second}"
    );
    let all = home.velos(&["stop", "all"]);
    assert!(!all.success().stdout_str().contains("SIGKILL"), "{all}");
    // ...while the list still says how its last run ended.
    assert_eq!(home.entry("stubborn")["killed"], true);
    let deleted = home.velos(&["delete", "stubborn"]);
    assert_eq!(
        deleted.success().stdout_str().trim_end(),
        "deleted 'stubborn' (id 0)",
        "{deleted}"
    );
}
