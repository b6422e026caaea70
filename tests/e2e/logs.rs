//! `velos logs` and the log files: `name |` prefixes, `-n` and its default of 15, `--raw`
//! bytes, and the files at `logs/<name>-out.log` and `-err.log`, byte for byte.

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, logged_lines, wait_until};

/// `line 1` .. `line n`.
fn numbered(range: std::ops::RangeInclusive<u32>, word: &str) -> Vec<String> {
    range.map(|i| format!("{word} {i}")).collect()
}

#[test]
fn logs_show_stdout_and_stderr_with_name_prefixes() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("lines.sh"),
        "--name",
        "app",
        "--",
        "30",
        "3",
    ])
    .success();
    let output = home.wait_logs_show(&["logs", "app", "-n", "50"], "app", &["done", "err 3"]);
    let shown = logged_lines(&output.stdout_str(), "app");

    let mut expected_out = numbered(1..=30, "line");
    expected_out.push("done".to_owned());
    let out: Vec<&String> = shown
        .iter()
        .filter(|line| line.starts_with("line") || *line == "done")
        .collect();
    assert_eq!(out, expected_out.iter().collect::<Vec<_>>(), "{output}");
    let err: Vec<&String> = shown
        .iter()
        .filter(|line| line.starts_with("err"))
        .collect();
    assert_eq!(
        err,
        numbered(1..=3, "err").iter().collect::<Vec<_>>(),
        "{output}"
    );
    assert_eq!(shown.len(), 34, "unexpected extra lines\n{output}");

    // `--lines` is the long form of `-n`.
    let long = home.velos(&["logs", "app", "--lines", "50"]);
    assert_eq!(
        logged_lines(&long.success().stdout_str(), "app").len(),
        34,
        "{long}"
    );
}

#[test]
fn logs_default_to_the_last_15_lines() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("lines.sh"), "--name", "many", "--", "40"])
        .success();
    home.wait_logs_show(&["logs", "many", "-n", "100"], "many", &["done"]);

    let output = home.velos(&["logs", "many"]);
    let shown = logged_lines(&output.success().stdout_str(), "many");
    let mut expected = numbered(27..=40, "line");
    expected.push("done".to_owned());
    assert_eq!(shown, expected, "expected the last 15 lines\n{output}");

    let output = home.velos(&["logs", "many", "-n", "3"]);
    let shown = logged_lines(&output.success().stdout_str(), "many");
    assert_eq!(shown, ["line 39", "line 40", "done"], "{output}");
}

#[test]
fn raw_logs_keep_every_byte_and_a_final_line_without_newline() {
    let expected: &[u8] = b"first\n\nthird \xff\xfe bytes\n\nlast without newline";
    let home = TestHome::new();
    home.velos(&["start", &fixture("raw_bytes.sh"), "--name", "raw"])
        .success();
    home.wait_status("raw", "stopped");
    let out_log = home.home().log_path("raw", Stream::Out);
    wait_until(WAIT, &format!("all bytes in {}", out_log.display()), || {
        let log = home.log_file("raw", Stream::Out);
        if log == expected {
            Ok(())
        } else {
            Err(format!("{:?}", String::from_utf8_lossy(&log)))
        }
    });

    let output = home.velos(&["logs", "raw", "--raw", "-n", "50"]);
    output.success();
    assert_eq!(
        output.stdout,
        expected,
        "`--raw` must print the bytes as written\nexpected {:?}\n     got {:?}",
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(&output.stdout)
    );

    // Prefixed, every line is still there, the empty ones included.
    let output = home.velos(&["logs", "raw", "-n", "50"]);
    output.success();
    let text = String::from_utf8_lossy(&output.stdout);
    let shown = logged_lines(&text, "raw");
    assert_eq!(shown.len(), 5, "expected 5 lines\n{output}");
    assert_eq!(shown[0], "first", "{output}");
    assert_eq!(shown[1], "", "{output}");
    assert!(
        shown[2].starts_with("third ") && shown[2].ends_with(" bytes"),
        "{output}"
    );
    assert_eq!(shown[3], "", "{output}");
    assert_eq!(shown[4], "last without newline", "{output}");
}

#[test]
fn log_files_live_at_the_contract_paths() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("lines.sh"),
        "--name",
        "paths",
        "--",
        "3",
        "2",
    ])
    .success();
    let out_path = home.path().join("logs").join("paths-out.log");
    let err_path = home.path().join("logs").join("paths-err.log");
    for (path, expected) in [
        (&out_path, "line 1\nline 2\nline 3\ndone\n"),
        (&err_path, "err 1\nerr 2\n"),
    ] {
        wait_until(WAIT, &format!("{expected:?} in {}", path.display()), || {
            let bytes = std::fs::read(path).unwrap_or_default();
            if bytes == expected.as_bytes() {
                Ok(())
            } else {
                Err(format!("{:?}", String::from_utf8_lossy(&bytes)))
            }
        });
    }
}
