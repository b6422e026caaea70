//! `velos logs` and the log files: `name |` prefixes, `-n` and its default of 15, `--raw`
//! bytes, and the files at `logs/<name>-out.log` and `-err.log`, byte for byte; rotation
//! (`--max-log-size`, `--log-files`) without losing a line, `velos logs` reading across
//! the rotated files, and `velos flush`.

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
fn logs_without_a_name_give_n_lines_of_each_process() {
    let home = TestHome::new();
    for name in ["alpha", "beta"] {
        home.velos(&["start", &fixture("lines.sh"), "--name", name, "--", "10"])
            .success();
        home.wait_logs_show(&["logs", name, "-n", "100"], name, &["done"]);
    }
    let output = home.velos(&["logs", "-n", "3"]);
    let text = output.success().stdout_str();
    for name in ["alpha", "beta"] {
        assert_eq!(
            logged_lines(&text, name),
            ["line 9", "line 10", "done"],
            "-n 3 is three lines of each process, as PM2\n{output}"
        );
    }
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

/// The numbers of `numbered.sh` lines (`n 00042`), failing the test on any other line.
#[track_caller]
fn numbers(lines: impl IntoIterator<Item = String>, context: &str) -> Vec<u32> {
    lines
        .into_iter()
        .map(|line| {
            line.strip_prefix("n ")
                .and_then(|number| number.parse().ok())
                .unwrap_or_else(|| panic!("not a numbered line: {line:?}\n{context}"))
        })
        .collect()
}

/// Asserts that `numbers` run from `first` to `last` by one.
#[track_caller]
fn assert_run(numbers: &[u32], first: u32, last: u32, context: &str) {
    let expected: Vec<u32> = (first..=last).collect();
    if numbers != expected {
        let lost: Vec<&u32> = expected.iter().filter(|n| !numbers.contains(n)).collect();
        panic!(
            "expected {first}..={last} in order, got {} numbers ({}..{}), missing {:?}\n{context}",
            numbers.len(),
            numbers.first().unwrap_or(&0),
            numbers.last().unwrap_or(&0),
            &lost[..lost.len().min(20)]
        );
    }
}

/// Starts `numbered.sh LINES` as `name` with `args`, and waits until it exited and its
/// last line is in the current log file or a rotated one.
#[track_caller]
fn write_numbered(home: &TestHome, name: &str, lines: u32, args: &[&str]) {
    let (count, script) = (lines.to_string(), fixture("numbered.sh"));
    let mut command = vec!["start", &script, "--name", name];
    command.extend_from_slice(args);
    command.extend(["--", &count]);
    home.velos(&command).success();
    let proc = home.wait_status(name, "stopped");
    assert_eq!(proc.exit_code, Some(0), "{proc:?}");
    let last = format!("n {lines:05}\n");
    wait_until(WAIT, &format!("{last:?} in a log file"), || {
        let current = home.log_file(name, Stream::Out);
        current.ends_with(last.as_bytes())
            || (current.is_empty() && rotated(home, name, 1).is_some())
    });
}

/// The bytes of `<name>-out.log.<back>`, if it exists.
fn rotated(home: &TestHome, name: &str, back: u32) -> Option<Vec<u8>> {
    let path = home.home().log_path(name, Stream::Out);
    std::fs::read(format!("{}.{back}", path.display())).ok()
}

fn text_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn rotated_log_files_keep_every_line_in_order() {
    let home = TestHome::new();
    let total = 3000;
    write_numbered(
        &home,
        "rot",
        total,
        &["--max-log-size", "2KiB", "--log-files", "2"],
    );

    let older = rotated(&home, "rot", 2).expect("rot-out.log.2 after 24 KB at 2 KiB a file");
    let newer = rotated(&home, "rot", 1).expect("rot-out.log.1");
    assert!(
        rotated(&home, "rot", 3).is_none(),
        "more than --log-files 2 rotated files kept"
    );
    let current = home.log_file("rot", Stream::Out);
    // Oldest first, the kept files hold one unbroken run of lines up to the last.
    let mut kept = text_lines(&older);
    kept.extend(text_lines(&newer));
    kept.extend(text_lines(&current));
    let kept = numbers(kept, "the kept log files");
    let first = kept.first().copied().unwrap_or(0);
    assert!(
        first > 1,
        "nothing was dropped by rotation: {} lines kept",
        kept.len()
    );
    assert_run(
        &kept,
        first,
        total,
        "rot-out.log.2, .1 and rot-out.log, in order",
    );

    let output = home.velos(&["logs", "rot", "-n", "100"]);
    let shown = numbers(
        logged_lines(&output.success().stdout_str(), "rot"),
        &output.to_string(),
    );
    assert_run(&shown, total - 99, total, &output.to_string());

    // Everything velos still has, memory and files together, in order.
    let output = home.velos(&["logs", "rot", "-n", "5000"]);
    let shown = numbers(
        logged_lines(&output.success().stdout_str(), "rot"),
        &output.to_string(),
    );
    let first = shown.first().copied().unwrap_or(0);
    assert!(
        first <= total - 999,
        "fewer lines than velos keeps in memory: {}",
        shown.len()
    );
    assert_run(&shown, first, total, &output.to_string());
}

#[test]
fn rotated_log_files_stay_within_the_size_limit() {
    let home = TestHome::new();
    let (max, line_len) = (2048, 8);
    write_numbered(
        &home,
        "cap",
        3000,
        &["--max-log-size", "2KiB", "--log-files", "2"],
    );
    let current = home.log_file("cap", Stream::Out);
    let sizes: Vec<usize> = [
        rotated(&home, "cap", 2),
        rotated(&home, "cap", 1),
        Some(current),
    ]
    .into_iter()
    .flatten()
    .map(|bytes| bytes.len())
    .collect();
    // Rotation happens at a line boundary, so a file may pass the limit by one line at most.
    assert!(
        sizes.iter().all(|&size| size <= max + line_len),
        "log files of {sizes:?} bytes (.2, .1, current) with --max-log-size 2KiB"
    );
}

#[test]
fn logs_read_back_across_rotated_files_beyond_the_lines_in_memory() {
    let home = TestHome::new();
    // 24 000 bytes at 8 KiB a file: every line still on disk (the rotated files hold at
    // least 8 KiB each, and two are kept), and three times more lines than the daemon
    // keeps in memory (1000), so the older ones come from the rotated files.
    let total = 3000;
    write_numbered(
        &home,
        "big",
        total,
        &["--max-log-size", "8KiB", "--log-files", "2"],
    );
    assert!(rotated(&home, "big", 1).is_some(), "no big-out.log.1");
    let output = home.velos(&["logs", "big", "-n", "5000"]);
    let shown = numbers(
        logged_lines(&output.success().stdout_str(), "big"),
        &output.to_string(),
    );
    assert_run(
        &shown,
        1,
        total,
        "`velos logs big -n 5000` across .2, .1 and the current file",
    );

    let output = home.velos(&["logs", "big", "-n", "1500", "--raw"]);
    let shown = numbers(text_lines(&output.success().stdout), &output.to_string());
    assert_run(&shown, total - 1499, total, &output.to_string());
}

#[test]
fn flush_empties_the_log_files() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("lines.sh"),
        "--name",
        "app",
        "--",
        "5",
        "2",
    ])
    .success();
    home.velos(&["start", &fixture("lines.sh"), "--name", "other", "--", "3"])
        .success();
    home.wait_logs_show(&["logs", "app"], "app", &["done", "err 2"]);
    home.wait_logs_show(&["logs", "other"], "other", &["done"]);

    let flushed = home.velos(&["flush", "app"]);
    assert_eq!(
        flushed.success().stdout_str(),
        "flushed the logs of 'app' (id 0)\n",
        "{flushed}"
    );
    assert!(home.log_file("app", Stream::Out).is_empty());
    assert!(home.log_file("app", Stream::Err).is_empty());
    let logs = home.velos(&["logs", "app"]);
    assert!(logs.success().stdout.is_empty(), "{logs}");
    assert!(
        !home.log_file("other", Stream::Out).is_empty(),
        "flushed the wrong process"
    );

    // Without a name, every process; its next lines go to the emptied file.
    home.velos(&["flush"]).success();
    assert!(home.log_file("other", Stream::Out).is_empty());
    home.velos(&["restart", "app"]).success();
    home.wait_log("app", Stream::Out, "done");
    assert_eq!(
        home.log_file("app", Stream::Out),
        b"line 1\nline 2\nline 3\nline 4\nline 5\ndone\n"
    );

    let error = home.velos(&["flush", "nope"]).error();
    assert!(error.contains("'nope'"), "{error}");
}

#[test]
fn a_stream_without_newlines_is_rotated_at_twice_the_size_limit() {
    let home = TestHome::new();
    let total = 300_000;
    home.velos(&[
        "start",
        "/bin/sh",
        "--name",
        "endless",
        "--max-log-size",
        "50KiB",
        "--log-files",
        "10",
        "--",
        "-c",
        &format!("head -c {total} /dev/zero | tr '\\0' x; exec sleep 1000"),
    ])
    .success();
    let files = wait_until(WAIT, "every byte in the log files", || {
        let mut files = vec![home.log_file("endless", Stream::Out)];
        files.extend((1..=10).filter_map(|back| rotated(&home, "endless", back)));
        let bytes: usize = files.iter().map(Vec::len).sum();
        if bytes == total {
            Ok(files)
        } else {
            Err(format!("{bytes} bytes of {total}"))
        }
    });
    let sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    assert!(
        sizes.iter().all(|&size| size <= 2 * 50 * 1024),
        "a line with no end took a file past twice --max-log-size 50KiB: {sizes:?}"
    );
    assert!(files.iter().all(|file| file.iter().all(|&b| b == b'x')));
}
