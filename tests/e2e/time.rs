//! `velos start --time` (PM2's `time`): each line goes to the log files after the time it
//! arrived, so `velos logs --timestamps`, `--since` and `--json` know the time of lines read
//! back from the files, after a daemon restart too; nothing else shows the stamp.

use velos_proto::Stream;

use crate::harness::{TestHome, fixture, logged_lines};

/// The stamp at the start of a line of a log file, if it has one.
fn stamp_of(line: &str) -> Option<(&str, &str)> {
    let (stamp, rest) = line.split_at_checked(24)?;
    let shaped = stamp
        .bytes()
        .zip(b"0000-00-00T00:00:00.000Z")
        .all(|(byte, shape)| match shape {
            b'0' => byte.is_ascii_digit(),
            fixed => byte == *fixed,
        });
    (shaped && rest.starts_with(' ')).then(|| (stamp, &rest[1..]))
}

#[test]
fn time_stamps_each_line_in_the_files_and_logs_reads_the_times_back_after_a_daemon_restart() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("lines.sh"),
        "--name",
        "app",
        "--time",
        "--no-autorestart",
        "--",
        "2",
        "1",
    ])
    .success();
    home.wait_status("app", "stopped");

    // The files: every line stamped once.
    let out = String::from_utf8(home.log_file("app", Stream::Out)).expect("UTF-8");
    let stamped: Vec<(&str, &str)> = out
        .lines()
        .map(|line| stamp_of(line).unwrap_or_else(|| panic!("no stamp: {line:?}\n{out}")))
        .collect();
    let texts: Vec<&str> = stamped.iter().map(|(_, text)| *text).collect();
    assert_eq!(texts, ["line 1", "line 2", "done"], "{out}");
    let err = String::from_utf8(home.log_file("app", Stream::Err)).expect("UTF-8");
    assert_eq!(
        stamp_of(err.trim_end()).map(|(_, text)| text),
        Some("err 1")
    );

    // From memory: the lines as written, without the stamp.
    let shown = home
        .velos(&["logs", "app", "--raw", "--out"])
        .success()
        .stdout_str();
    assert_eq!(shown, "line 1\nline 2\ndone\n");

    // After a daemon restart the lines come from the files: with their own times.
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    let shown = home
        .velos(&["logs", "app", "--timestamps", "--out"])
        .success()
        .stdout_str();
    let expected: Vec<String> = stamped
        .iter()
        .map(|(stamp, text)| format!("{stamp} app | {text}"))
        .collect();
    let got: Vec<&str> = shown.lines().collect();
    assert_eq!(
        got, expected,
        "the times read back are not the ones written"
    );

    // Without --timestamps, the stamp is not shown as part of the line.
    let plain = home.velos(&["logs", "app", "--out"]).success().stdout_str();
    assert_eq!(
        logged_lines(&plain, "app"),
        ["line 1", "line 2", "done"],
        "{plain}"
    );
    // --since counts them as timed lines (nothing left out for want of a time).
    let search = home.velos(&["logs", "app", "--since", "1h", "--json"]);
    search.success();
    let times: Vec<serde_json::Value> = search
        .stdout_str()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON")["time"].clone())
        .collect();
    assert_eq!(times.len(), 4, "{search}");
    assert!(times.iter().all(serde_json::Value::is_string), "{search}");
    assert!(!search.stderr_str().contains("no time"), "{search}");
}

#[test]
fn followers_see_time_stamped_lines_without_their_stamp() {
    let home = TestHome::new();
    let mut follow = home.spawn(&["logs", "-f"]);
    home.velos(&["start", &fixture("ticker.sh"), "--name", "tick", "--time"])
        .success();
    let line = follow.wait_line("a tick", |line| line.contains("tick 3"));
    assert_eq!(line, "tick | tick 3");
    home.velos(&["stop", "tick"]).success();
    let out = String::from_utf8(home.log_file("tick", Stream::Out)).expect("UTF-8");
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(
        stamp_of(first).map(|(_, text)| text),
        Some("tick 1"),
        "{out}"
    );
}

#[test]
fn ecosystem_time_and_log_date_format_and_the_config_key_turn_it_on() {
    let home = TestHome::new();
    let dir = home.path().join("apps");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let script = fixture("exit_with.sh");
    std::fs::write(
        dir.join("ecosystem.config.json"),
        format!(
            r#"{{"apps": [
                {{"name": "a", "script": "{script}", "args": "0", "time": true, "autorestart": false}},
                {{"name": "b", "script": "{script}", "args": "0", "log_date_format": "YYYY-MM-DD HH:mm", "autorestart": false}}
            ]}}"#
        ),
    )
    .expect("write the ecosystem file");
    std::fs::write(
        dir.join("velos.toml"),
        format!("[[apps]]\nname = \"c\"\nscript = \"{script}\"\nargs = [\"0\"]\ntime = true\nautorestart = false\n"),
    )
    .expect("write velos.toml");
    let started = home.velos(&[
        "start",
        dir.join("ecosystem.config.json").to_str().expect("UTF-8"),
    ]);
    started.success();
    assert!(!started.stderr_str().contains("warning"), "{started}");
    home.velos(&["start", dir.join("velos.toml").to_str().expect("UTF-8")])
        .success();
    for name in ["a", "b", "c"] {
        home.wait_status(name, "stopped");
        let out = String::from_utf8(home.log_file(name, Stream::Out)).expect("UTF-8");
        assert_eq!(
            stamp_of(out.trim_end()).map(|(_, text)| text),
            Some("exiting with 0"),
            "{name}: {out}"
        );
    }
}

#[test]
fn info_and_list_show_the_time_setting() {
    let home = TestHome::new();
    let sleeper = fixture("sleeper.sh");
    home.velos(&["start", &sleeper, "--name", "stamped", "--time"])
        .success();
    home.velos(&["start", &sleeper, "--name", "plain"])
        .success();
    assert_eq!(home.entry("stamped")["time"], true);
    assert_eq!(home.entry("plain")["time"], serde_json::Value::Null);
    let info = home.velos(&["info", "stamped", "--json"]).json();
    assert_eq!(info["time"], true, "{info:#}");
    let text = home.velos(&["info", "stamped"]).stdout_str();
    assert!(text.contains("log times"), "{text}");
    let text = home.velos(&["info", "plain"]).stdout_str();
    assert!(!text.contains("log times"), "{text}");
}
