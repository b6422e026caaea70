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
    assert!(
        text.contains("resurrected 'job' (id 1), stopped\n"),
        "{back}"
    );
    // Like PM2: what was running comes back running; a stopped process comes back stopped,
    // with its settings.
    let names: Vec<String> = home.list().into_iter().map(|proc| proc.name).collect();
    assert_eq!(names, ["web", "job"], "{back}");
    home.wait_running("web");
    assert_eq!(settings(&home.entry("web")), settings(&web));
    assert_eq!(home.get("job").status, "stopped");

    let again = home.velos(&["resurrect"]);
    assert!(again.success().stdout.is_empty(), "{again}");
    assert!(
        again.stderr_str().contains("nothing to resurrect"),
        "{again}"
    );
}

#[test]
fn save_refuses_an_empty_list_over_a_saved_one_unless_forced() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "web"])
        .success();
    home.velos(&["save"]).success();
    let dump = home.path().join("dump.msgpack");
    let saved = std::fs::read(&dump).expect("the dump");
    home.velos(&["kill"]).success();

    // The habit after a kill: an empty daemon, then `save`.
    let refused = home.velos(&["save"]);
    let error = refused.error();
    assert_eq!(
        error,
        format!(
            "error: not saving an empty list over {}, which holds 1 process(es): bring them \
             back with 'velos resurrect', or save the empty list with 'velos save --force'",
            dump.display()
        ),
        "{refused}"
    );
    assert_eq!(
        std::fs::read(&dump).expect("the dump"),
        saved,
        "dump changed"
    );

    let back = home.velos(&["resurrect"]);
    assert!(
        back.success()
            .stdout_str()
            .starts_with("resurrected 'web' (id 0, pid "),
        "{back}"
    );
    home.wait_running("web");

    home.velos(&["delete", "web"]).success();
    let forced = home.velos(&["save", "--force"]);
    assert_eq!(
        forced.success().stdout_str(),
        format!("saved 0 processes to {}\n", dump.display()),
        "{forced}"
    );
}

#[test]
fn resurrect_falls_back_to_the_daemons_own_list_when_nothing_was_saved() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "web"])
        .success();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "job"])
        .success();
    home.velos(&["stop", "job"]).success();
    let old_pid = home.wait_running("web").pid.expect("a pid");
    home.kill_daemon();
    wait_gone(old_pid, "web's process from before");

    let back = home.velos(&["resurrect"]);
    let text = back.success().stdout_str();
    assert!(text.starts_with("resurrected 'web' (id 0, pid "), "{back}");
    assert!(text.contains("resurrected 'job' (id 1), stopped"), "{back}");
    let state = home.path().join("state.msgpack");
    // The first command after the crash also says that the daemon died (one_daemon.rs).
    let stderr = back.stderr_str();
    let (crash_note, rest) = stderr.split_once('\n').unwrap_or_default();
    assert!(crash_note.contains("did not shut down cleanly"), "{back}");
    assert_eq!(
        rest,
        format!(
            "nothing was saved with 'velos save' ({} does not exist): bringing back the list \
             the daemon last kept, {}\n",
            home.path().join("dump.msgpack").display(),
            state.display()
        ),
        "{back}"
    );
    home.wait_running("web");
    assert_eq!(home.get("job").status, "stopped");
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
