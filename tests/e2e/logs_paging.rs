//! `velos logs` of more than one answer carries: every line asked for, each whole, read
//! page by page with the daemon's memory bounded by its page, however big the log or its
//! lines.

use std::time::Duration;

use velos_proto::{LogReadParams, Target};

use crate::follow_burst::daemon_memory;
use crate::harness::{TestHome, fixture, wait_until};

const MIB: u64 = 1024 * 1024;

/// The bound on one `velos logs` of a whole 16 MB or 48 MiB log. What these tests assert is
/// every line and the daemon's memory, not speed: a debug build spends about 2.5 s of CPU
/// (CLI and daemon) on one such read, which a machine loaded twentyfold stretches to
/// minutes. Only a hung read waits this long.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Starts `velos-flood numbered LINES LEN` as `name` and waits until it has exited.
fn flood(home: &TestHome, name: &str, lines: u64, len: u64) {
    home.velos(&[
        "start",
        env!("CARGO_BIN_EXE_velos-flood"),
        "--name",
        name,
        "--",
        "numbered",
        &lines.to_string(),
        &len.to_string(),
    ])
    .success();
    wait_stopped(home, name);
}

/// Waits until `name` is stopped: it has ended, and the daemon has read all it wrote (tens
/// of MB through a debug build), within [`READ_TIMEOUT`].
#[track_caller]
fn wait_stopped(home: &TestHome, name: &str) {
    wait_until(READ_TIMEOUT, &format!("{name} to be stopped"), || {
        let proc = home.get(name);
        (proc.status == "stopped")
            .then_some(())
            .ok_or(format!("{proc:?}"))
    });
}

/// Checks that `output` is the numbered lines `first..=last` (each `len` bytes with its
/// newline), in order, each once.
#[track_caller]
fn assert_numbered(output: &[u8], first: u64, last: u64, len: usize) {
    let lines: Vec<&[u8]> = output
        .strip_suffix(b"\n")
        .unwrap_or(output)
        .split(|&b| b == b'\n')
        .collect();
    assert_eq!(
        lines.len() as u64,
        last + 1 - first,
        "expected lines {first}..={last}"
    );
    for (i, line) in lines.iter().enumerate() {
        let expected = first + i as u64;
        let number: u64 = std::str::from_utf8(&line[..10])
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "line {i} is not numbered: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(40)])
                )
            });
        assert_eq!(number, expected, "line {i}");
        assert_eq!(line.len() + 1, len, "line {expected} has the wrong length");
    }
}

/// `output` without the summary `velos-flood` writes on stderr after `lines` lines, which
/// must be in it once. It is written after the last numbered line, but on another pipe: the
/// daemon may read it before the last numbered lines still in the stdout pipe (under load
/// it does), so it stands near the end, not necessarily last.
#[track_caller]
fn without_summary(output: &[u8], lines: u64) -> Vec<u8> {
    let summary = format!("wrote {lines} lines");
    let (summaries, numbered): (Vec<&[u8]>, Vec<&[u8]>) = output
        .split_inclusive(|&b| b == b'\n')
        .partition(|line| line.starts_with(summary.as_bytes()));
    assert_eq!(
        summaries.len(),
        1,
        "the flood's summary is not in the output once: {:?}",
        summaries
            .iter()
            .map(|line| String::from_utf8_lossy(line))
            .collect::<Vec<_>>()
    );
    numbered.concat()
}

#[cfg(target_os = "linux")]
#[test]
fn logs_n_beyond_one_answer_gives_every_line_asked_for_with_bounded_memory() {
    // The figures (2,000,000 lines, -n 1,000,000) are `just stress`'s; this is the
    // same at a size a debug build reads in seconds: still several pages.
    let home = TestHome::new();
    let total = 400_000;
    flood(&home, "big", total, 40);
    let daemon = home.daemon_pid().expect("a daemon pid");
    let (_, peak_before) = daemon_memory(daemon);

    // The last lines are the numbered ones on stdout, then the summary on stderr.
    let output = home
        .cmd(&["logs", "big", "-n", "200000", "--raw"])
        .timeout(READ_TIMEOUT)
        .run();
    let numbered = without_summary(&output.success().stdout, total);
    assert_numbered(&numbered, total - 200_000 + 2, total, 40);

    // Far more than there are: every line, the first one first.
    let output = home
        .cmd(&["logs", "big", "-n", "100000000", "--raw"])
        .timeout(READ_TIMEOUT)
        .run();
    assert_numbered(
        &without_summary(&output.success().stdout, total),
        1,
        total,
        40,
    );

    let (_, peak_after) = daemon_memory(daemon);
    eprintln!(
        "`velos logs -n 100000000` of a 16 MB, 400,000-line log: daemon peak RSS {} MiB \
         before, {} MiB after",
        peak_before / MIB,
        peak_after / MIB
    );
    assert!(
        peak_after < peak_before + 24 * MIB,
        "reading the log back took the daemon's peak RSS from {} to {} MiB",
        peak_before / MIB,
        peak_after / MIB
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_log_of_one_huge_line_is_read_back_whole_with_bounded_memory() {
    let home = TestHome::new();
    let len: usize = 48 << 20;
    home.velos(&[
        "start",
        &fixture("long_line.sh"),
        "--name",
        "huge",
        "--",
        &len.to_string(),
    ])
    .success();
    wait_stopped(&home, "huge");
    let daemon = home.daemon_pid().expect("a daemon pid");
    let (_, peak_before) = daemon_memory(daemon);

    let output = home
        .cmd(&["logs", "huge", "-n", "2", "--raw"])
        .timeout(READ_TIMEOUT)
        .run();
    let stdout = &output.success().stdout;
    assert_eq!(stdout.len(), len + 5, "the whole line and the tail");
    assert!(stdout[..len].iter().all(|&b| b == b'x'));
    assert_eq!(&stdout[len..], b"\ntail");

    // Through the SDK: the pieces joined back into one line. (A debug build under load
    // may take longer than the quick timeout for a page.)
    let mut client = home.sdk();
    client.set_timeout(Some(Duration::from_secs(60)));
    let logs = client.logs("huge", 2).expect("log.read");
    assert_eq!(logs.lines.len(), 2);
    assert_eq!(logs.lines[0].line.len(), len);
    assert_eq!(logs.lines[1].line, b"tail");

    let (_, peak_after) = daemon_memory(daemon);
    eprintln!(
        "`velos logs` of a single 48 MiB line: daemon peak RSS {} MiB before, {} MiB after",
        peak_before / MIB,
        peak_after / MIB
    );
    assert!(
        peak_after < peak_before + 32 * MIB,
        "reading one 48 MiB line back took the daemon's peak RSS from {} to {} MiB",
        peak_before / MIB,
        peak_after / MIB
    );
}

#[test]
fn each_page_fits_in_one_answer_and_says_where_the_next_starts() {
    let home = TestHome::new();
    flood(&home, "paged", 300_000, 40);
    let mut client = home.sdk();
    client.set_timeout(Some(Duration::from_secs(60)));
    let mut params = LogReadParams {
        target: Target::All,
        lines: 250_000,
        cursor: None,
    };
    let mut pages = 0;
    let mut lines = 0;
    loop {
        let page = client.logs_page(&params).expect("log.read");
        pages += 1;
        lines += page.lines.iter().filter(|line| !line.partial).count();
        match page.next {
            Some(next) => params.cursor = Some(next),
            None => break,
        }
        assert!(pages < 100, "no end in sight");
    }
    assert_eq!(lines, 250_000);
    assert!(pages >= 2, "250,000 lines came in {pages} page(s)");
}
