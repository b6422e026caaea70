//! Everyday views and housekeeping (issue 8, defect 11): `velos list` fits the width of
//! the output (`COLUMNS`, else the terminal's), names that look like config files are
//! refused, `velos delete --logs` removes a process's log files, and `velos flush NAME`
//! empties the files a deleted process left.

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, wait_until};

/// Asserts that every line of `text` is at most `width` characters.
#[track_caller]
fn fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "a line of {} characters in {width}:\n{text}",
            line.chars().count()
        );
    }
}

#[test]
fn list_fits_the_width_in_columns_by_shortening_names_and_dropping_columns() {
    let home = TestHome::new();
    for name in [
        "payments-reconciliation-worker-1",
        "payments-reconciliation-worker-2",
    ] {
        home.velos(&["start", &fixture("sleeper.sh"), "--name", name])
            .success();
    }
    home.velos(&[
        "start",
        &fixture("exit_with.sh"),
        "--name",
        "nightly-report-generator",
        "--max-restarts",
        "0",
        "--",
        "3",
    ])
    .success();
    home.wait_running("payments-reconciliation-worker-2");
    home.wait_status("nightly-report-generator", "errored");

    // A pipe without COLUMNS has no width: whole names, every column.
    let whole = home.velos(&["list"]);
    let text = whole.success().stdout_str();
    assert!(text.contains("payments-reconciliation-worker-1"), "{whole}");
    assert!(
        text.contains("restarts") && text.contains("exit"),
        "{whole}"
    );

    for width in [60, 40] {
        let narrow = home.cmd(&["list"]).env("COLUMNS", &width.to_string()).run();
        let text = narrow.success().stdout_str();
        fits(&text, width);
        assert!(text.contains('…'), "no name was shortened\n{narrow}");
        // The two workers stay apart: the ends of their names are kept.
        assert!(
            text.contains("er-1 │") && text.contains("er-2 │"),
            "{narrow}"
        );
        assert!(
            text.contains("running") && text.contains("errored"),
            "{narrow}"
        );
        // The reason below the table is wrapped, not cut.
        let words: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("not restarting it"), "{narrow}");
    }
}

#[test]
fn names_that_look_like_config_files_are_refused() {
    let home = TestHome::new();
    for name in [
        "app.toml",
        "web.json",
        "eco.config.js",
        "x.cjs",
        "a.yaml",
        "a.yml",
    ] {
        let output = home.velos(&["start", &fixture("sleeper.sh"), "--name", name]);
        let error = output.error();
        assert!(
            error.contains(&format!("'{name}'")) && error.contains("config file"),
            "{output}"
        );
    }
    assert!(home.list().is_empty());
    // The same rule in the daemon, for SDK clients.
    let mut client = home.sdk();
    let mut params = velos_proto::StartParams::new(fixture("sleeper.sh")).expect("params");
    params.name = Some("api.toml".into());
    let refused = client.start(params).expect_err("a config-file name");
    assert!(refused.to_string().contains("config file"), "{refused}");
}

#[test]
fn delete_with_logs_removes_the_log_files_and_rotated_ones() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("lines.sh"),
        "--name",
        "job",
        "--max-log-size",
        "1KiB",
        "--log-files",
        "2",
        "--",
        "200",
    ])
    .success();
    home.wait_status("job", "stopped");
    let logs = home.home().logs_dir();
    wait_until(WAIT, "a rotated log file", || {
        logs.join("job-out.log.1").exists()
    });
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "jobs"])
        .success();

    let deleted = home.velos(&["delete", "job", "--logs"]);
    let text = deleted.success().stdout_str();
    assert!(text.starts_with("deleted 'job' (id 0)"), "{deleted}");
    let left: Vec<String> = std::fs::read_dir(&logs)
        .expect("logs/")
        .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.starts_with("job-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{deleted}");
    // Another process's files, whose name starts the same way, stay.
    assert!(home.home().log_path("jobs", Stream::Out).exists());
}

#[test]
fn flush_empties_the_files_a_deleted_process_left() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("lines.sh"), "--name", "old", "--", "3"])
        .success();
    home.wait_status("old", "stopped");
    home.wait_log("old", Stream::Out, "done");
    home.velos(&["delete", "old"]).success();
    let out = home.home().log_path("old", Stream::Out);
    assert!(!std::fs::read(&out).expect("the log").is_empty());

    let flushed = home.velos(&["flush", "old"]);
    flushed.success();
    assert_eq!(std::fs::read(&out).expect("the log"), b"", "{flushed}");
    assert!(flushed.stdout_str().contains("old"), "{flushed}");

    // Names are checked: nothing outside logs/ is touched, and unknown names are errors.
    let error = home.velos(&["flush", "../x"]).error();
    assert!(error.contains("'../x'"), "{error}");
    let error = home.velos(&["flush", "never"]).error();
    assert!(error.contains("'never'"), "{error}");
}
