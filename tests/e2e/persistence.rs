//! Persistence: a SIGKILLed daemon's list comes back with `velosd --resurrect` (same names,
//! ids and settings; what ran runs again), `velos save` then `velos resurrect` after a
//! `velos kill`, and `velos startup` prints a service that does the former at boot.

use serde_json::Value;

use crate::harness::{TestHome, bins, fixture, logged_lines, pid_alive, wait_gone};

/// The settings of a process that must survive a restart of the daemon.
const SETTINGS: [&str; 11] = [
    "id",
    "script",
    "interpreter",
    "args",
    "cwd",
    "kill_timeout_ms",
    "autorestart",
    "max_restarts",
    "min_uptime_ms",
    "max_log_bytes",
    "log_files",
];

/// `name`'s settings, as `list --json` shows them.
fn settings(entry: &Value) -> Vec<(&'static str, Value)> {
    SETTINGS
        .iter()
        .map(|key| (*key, entry[*key].clone()))
        .collect()
}

#[test]
fn a_daemon_started_with_resurrect_brings_back_the_list_of_a_killed_one() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--name",
        "web",
        "--kill-timeout",
        "2s",
        "--max-restarts",
        "7",
        "--min-uptime",
        "1500ms",
        "--max-log-size",
        "64KiB",
        "--log-files",
        "2",
        "--",
        "an arg",
    ])
    .success();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "gone"])
        .success();
    home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--name",
        "job",
        "--no-autorestart",
    ])
    .success();
    home.velos(&["delete", "gone"]).success();
    home.velos(&["stop", "job"]).success();
    let web = home.entry("web");
    let job = home.entry("job");
    let old_pid = web["pid"].as_i64().expect("web runs") as i32;
    assert_eq!((web["id"].as_u64(), job["id"].as_u64()), (Some(0), Some(2)));

    home.kill_daemon();
    // What ran under the dead daemon goes too (velosd's children die with it, and the next
    // daemon ends any that did not).
    home.velosd(&["--resurrect"]).success();
    wait_gone(old_pid, "web's process from before");

    let names: Vec<String> = home.list().into_iter().map(|proc| proc.name).collect();
    assert_eq!(names, ["web", "job"]);
    let web_now = home.wait_running("web");
    let new_pid = web_now.pid.expect("a pid");
    assert_ne!(new_pid, old_pid, "web was not started again");
    assert!(pid_alive(new_pid));
    assert_eq!(settings(&home.entry("web")), settings(&web));
    let job_now = home.entry("job");
    assert_eq!(job_now["status"], "stopped", "{job_now:#}");
    assert_eq!(settings(&job_now), settings(&job));

    // Ids are not reused: the next process gets 3.
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "new"])
        .success();
    assert_eq!(home.entry("new")["id"], 3);
}

#[test]
fn a_resurrected_stopped_process_still_shows_its_old_lines() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("lines.sh"), "--name", "job", "--", "3"])
        .success();
    home.wait_status("job", "stopped");
    home.wait_logs_show(&["logs", "job"], "job", &["line 1", "done"]);

    home.kill_daemon();
    home.velosd(&["--resurrect"]).success();
    assert_eq!(home.get("job").status, "stopped");
    let output = home.velos(&["logs", "job"]);
    assert_eq!(
        logged_lines(&output.success().stdout_str(), "job"),
        ["line 1", "line 2", "line 3", "done"],
        "the lines are in {}\n{output}",
        home.home()
            .log_path("job", velos_proto::Stream::Out)
            .display()
    );
}

#[test]
fn save_then_resurrect_after_kill_brings_back_what_was_running() {
    let home = TestHome::new();
    let error = home.velos(&["resurrect"]).error();
    assert_eq!(error, "error: nothing saved yet: run 'velos save' first");

    home.velos(&["start", &fixture("sleeper.sh"), "--name", "web", "--", "x"])
        .success();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "job"])
        .success();
    home.velos(&["stop", "job"]).success();
    let web = home.entry("web");
    let saved = home.velos(&["save"]);
    let dump = home.path().join("dump.msgpack");
    assert_eq!(
        saved.success().stdout_str(),
        format!("saved 2 processes to {}\n", dump.display()),
        "{saved}"
    );
    assert!(dump.is_file());

    home.velos(&["kill"]).success();
    let back = home.velos(&["resurrect"]);
    let text = back.success().stdout_str();
    assert!(text.starts_with("resurrected 'web' (id 0, pid "), "{back}");
    // Like PM2: what was running comes back; a stopped process stays out.
    let names: Vec<String> = home.list().into_iter().map(|proc| proc.name).collect();
    assert_eq!(names, ["web"], "{back}");
    home.wait_running("web");
    assert_eq!(settings(&home.entry("web")), settings(&web));

    let again = home.velos(&["resurrect"]);
    assert!(again.success().stdout.is_empty(), "{again}");
    assert!(
        again.stderr_str().contains("nothing to resurrect"),
        "{again}"
    );
}

#[test]
fn startup_prints_a_service_that_runs_the_daemon_with_resurrect() {
    let home = TestHome::new();
    let velosd = bins().velosd.to_str().expect("UTF-8 path").to_owned();
    let unit = home.velos(&["startup", "systemd"]);
    let text = unit.success().stdout_str();
    assert!(
        text.lines()
            .any(|line| line == format!("ExecStart={velosd} --no-daemon --resurrect")),
        "{unit}"
    );
    assert!(
        text.lines()
            .any(|line| line == format!("Environment=VELOS_HOME={}", home.path().display())),
        "{unit}"
    );
    assert!(text.contains("[Install]"), "{unit}");
    let hint = unit.stderr_str();
    assert_eq!(hint.lines().count(), 1, "{unit}");
    assert!(
        hint.contains("systemctl --user enable --now velos"),
        "{unit}"
    );

    let plist = home.velos(&["startup", "launchd"]);
    let text = plist.success().stdout_str();
    for needed in [
        format!("<string>{velosd}</string>"),
        "<string>--no-daemon</string>".to_owned(),
        "<string>--resurrect</string>".to_owned(),
        format!("<string>{}</string>", home.path().display()),
    ] {
        assert!(text.contains(&needed), "no {needed:?}\n{plist}");
    }
    assert!(plist.stderr_str().contains("launchctl load"), "{plist}");

    // The default is this system's, and nothing here needs (or starts) a daemon.
    home.velos(&["startup"]).success();
    assert!(!home.home().pid_path().exists(), "startup started a daemon");
}
