//! The long tests behind `just stress` (issue 3, promises 3 and 4 at volume). Every test
//! is `#[ignore]`d, so `cargo test --workspace` skips them; `just stress` runs them in
//! release, one at a time, and each prints the figures it reached (run with
//! `--nocapture` to see them).
//!
//! - A gigabyte of numbered lines, written as fast as a compiled writer can: every line is
//!   in the log file exactly once, in order, and the daemon's memory stays bounded.
//! - Awkward output at volume: lines of several MiB, non-UTF-8 bytes, empty lines, lines
//!   split across writes, both streams interleaved, no final newline: byte for byte.
//! - 200 SDK clients at once for 10 s: every answer correct, no leaked descriptor.
//!
//! The daemon under test is built in the same profile as these tests (release under
//! `just stress`); the CLI is the harness's. Figures are printed as `figure: value` lines.

// The e2e harness, shared as is. A plain `#[path = "../e2e/harness.rs"] mod harness;`
// would look for its `cli` and `process` submodules beside it rather than in `harness/`;
// a path on an inline module makes `harness.rs` resolve them as it does in e2e.
#[path = "../e2e"]
mod e2e {
    #[allow(dead_code, unused_imports)]
    pub mod harness;
}
mod numbered;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use velos_proto::{ProcessStatus, Stream};
use velos_sdk::blocking::Client;

use e2e::harness::{self, TestHome, WAIT, fixture, wait_until};

/// The writer (`stress/flood.rs`), built by cargo for these tests.
const FLOOD: &str = env!("CARGO_BIN_EXE_velos-flood");

/// The ceiling on the daemon's resident memory while a child floods it.
const MAX_DAEMON_RSS: u64 = 64 << 20;

/// How often the sampler reads the daemon's memory and descriptors.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

#[test]
#[ignore = "long: run with `just stress`"]
fn a_gigabyte_of_numbered_lines_arrives_whole_and_in_order_with_bounded_daemon_memory() {
    const LINES: u64 = 10_000_000;
    const LINE_LEN: usize = 100;
    const _: () = assert!(LINE_LEN >= numbered::MIN_LINE_LEN);
    let home = TestHome::new();
    let daemon = start_daemon(&home);
    let sampler = Sampler::start(daemon);
    let lines = LINES.to_string();
    let line_len = LINE_LEN.to_string();

    let start = Instant::now();
    home.velos(&[
        "start", FLOOD, "--name", "flood", "--", "numbered", &lines, &line_len,
    ])
    .success();
    let status = wait_exited(&home, "flood", Duration::from_secs(600));
    let elapsed = start.elapsed();
    let peaks = sampler.stop();
    let writer = String::from_utf8_lossy(&home.log_file("flood", Stream::Err)).into_owned();
    assert_eq!(
        status,
        ProcessStatus::Stopped,
        "the writer failed: {writer}"
    );

    let path = home.home().log_path("flood", Stream::Out);
    let checked = Instant::now();
    let found = check_numbered(&path, LINES, LINE_LEN);
    let bytes = LINES * LINE_LEN as u64;
    println!("== 1 GB of numbered lines");
    println!("daemon: {}", daemon_binary().display());
    println!("writer: {}", writer.trim());
    println!("lines written: {LINES}");
    println!(
        "lines found in order, exactly once: {}",
        found.as_ref().map_or_else(|(n, _)| *n, |n| *n)
    );
    println!("bytes: {bytes} ({:.2} GB)", bytes as f64 / 1e9);
    println!(
        "start to exit reported: {:.2} s, {:.0} MB/s",
        elapsed.as_secs_f64(),
        mb_per_s(bytes, elapsed)
    );
    println!("file checked in {:.2} s", checked.elapsed().as_secs_f64());
    peaks.print();
    if let Err((_, error)) = &found {
        panic!("{}: {error}", path.display());
    }
    assert!(
        peaks.rss_bytes < MAX_DAEMON_RSS,
        "the daemon's resident memory peaked at {} MiB, over {} MiB",
        peaks.rss_bytes >> 20,
        MAX_DAEMON_RSS >> 20
    );
}

#[test]
#[ignore = "long: run with `just stress`"]
fn awkward_output_at_volume_is_kept_byte_for_byte_on_each_stream() {
    const TOTAL: u64 = 256 << 20;
    let home = TestHome::new();
    let daemon = start_daemon(&home);
    let expected = home.path().join("expected");
    std::fs::create_dir(&expected).expect("create expected/");
    let sampler = Sampler::start(daemon);

    let start = Instant::now();
    home.velos(&[
        "start",
        FLOOD,
        "--name",
        "mixed",
        "--",
        "mixed",
        &TOTAL.to_string(),
        "42",
        expected.to_str().expect("UTF-8 path"),
    ])
    .success();
    let status = wait_exited(&home, "mixed", Duration::from_secs(600));
    let elapsed = start.elapsed();
    let peaks = sampler.stop();
    assert_eq!(status, ProcessStatus::Stopped, "the writer failed");
    let summary = std::fs::read_to_string(expected.join("summary")).expect("flood's summary");
    let figure = |key: &str| -> u64 {
        summary
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {summary:?}"))
    };

    let mut results = Vec::new();
    for (stream, name) in [(Stream::Out, "out"), (Stream::Err, "err")] {
        let log = home.home().log_path("mixed", stream);
        results.push((name, same_files(&log, &expected.join(name))));
    }
    // `velos logs` shows every line whole (read back from the files past the 16 KiB
    // memory keeps of a line), as the README says.
    let raw = home.velos(&["logs", "mixed", "--raw", "-n", "1000"]);
    raw.success();
    let longest_shown = raw
        .stdout
        .split(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);

    let bytes = figure("out_bytes") + figure("err_bytes");
    println!("== awkward output at volume");
    println!("daemon: {}", daemon_binary().display());
    println!(
        "stdout: {} bytes, {} lines; stderr: {} bytes, {} lines",
        figure("out_bytes"),
        figure("out_lines"),
        figure("err_bytes"),
        figure("err_lines")
    );
    println!(
        "writes: {}; lines of 1-6 MiB: {}; longest line: {} bytes; last lines without newline",
        figure("writes"),
        figure("long_lines"),
        figure("longest_line")
    );
    for (name, result) in &results {
        match result {
            Ok(bytes) => println!("logs/mixed-{name}.log: {bytes} bytes, identical"),
            Err(error) => println!("logs/mixed-{name}.log: DIFFERS: {error}"),
        }
    }
    println!("longest line shown by `velos logs --raw`: {longest_shown} bytes");
    println!(
        "start to exit reported: {:.2} s, {:.0} MB/s",
        elapsed.as_secs_f64(),
        mb_per_s(bytes, elapsed)
    );
    peaks.print();
    for (name, result) in results {
        if let Err(error) = result {
            panic!("logs/mixed-{name}.log differs from what was written: {error}");
        }
    }
    assert!(
        longest_shown > 16 * 1024,
        "`velos logs` showed no line longer than {longest_shown} bytes: cut at 16 KiB?"
    );
    assert!(
        peaks.rss_bytes < MAX_DAEMON_RSS,
        "the daemon's resident memory peaked at {} MiB",
        peaks.rss_bytes >> 20
    );
}

#[test]
#[ignore = "long: run with `just stress`"]
fn two_hundred_sdk_clients_for_ten_seconds_get_correct_answers_and_leak_nothing() {
    const CLIENTS: usize = 200;
    const DURATION: Duration = Duration::from_secs(10);
    /// Each client connects again after this many requests, so connections churn too.
    const REQUESTS_PER_CONNECTION: u64 = 100;
    let home = TestHome::new();
    let daemon = start_daemon(&home);
    for name in ["alpha", "beta"] {
        home.velos(&["start", &fixture("sleeper.sh"), "--name", name])
            .success();
        home.wait_log(name, Stream::Out, "ready");
    }
    home.wait_running("alpha");
    home.wait_running("beta");
    let socket = home.home().socket_path();
    let fds_before = fd_count(daemon).expect("the daemon's descriptors");
    let rss_before = rss_bytes(daemon).unwrap_or(0);
    let sampler = Sampler::start(daemon);

    let served = AtomicU64::new(0);
    let connections = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_errors = Mutex::new(Vec::new());
    let barrier = Barrier::new(CLIENTS);
    let fail = |what: String| {
        errors.fetch_add(1, Ordering::Relaxed);
        let mut first = first_errors.lock().unwrap_or_else(|p| p.into_inner());
        if first.len() < 10 {
            first.push(what);
        }
    };
    let start = Instant::now();
    thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                barrier.wait();
                let deadline = Instant::now() + DURATION;
                let mut client: Option<Client> = None;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if n.is_multiple_of(REQUESTS_PER_CONNECTION) {
                        client = None;
                    }
                    let current = match &mut client {
                        Some(client) => client,
                        None => match Client::connect(&socket) {
                            Ok(new) => {
                                connections.fetch_add(1, Ordering::Relaxed);
                                client.insert(new)
                            }
                            Err(error) => {
                                fail(format!("connect: {error}"));
                                n += 1;
                                continue;
                            }
                        },
                    };
                    match check_one(current, n, daemon) {
                        Ok(()) => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            fail(error);
                            client = None;
                        }
                    }
                    n += 1;
                }
            });
        }
    });
    let elapsed = start.elapsed();
    // Every client is dropped; the daemon must close each connection's descriptor.
    let fds_after = wait_until(
        WAIT,
        "the daemon's descriptors back to the baseline",
        || match fd_count(daemon) {
            Some(count) if count <= fds_before => Ok(count),
            other => Err(format!("{other:?} descriptors, {fds_before} before")),
        },
    );
    let peaks = sampler.stop();
    let served = served.into_inner();
    let errors = errors.into_inner();
    println!("== {CLIENTS} concurrent SDK clients");
    println!("daemon: {}", daemon_binary().display());
    println!(
        "clients: {CLIENTS} for {:.1} s (ping, list, logs in turn; a new connection every \
         {REQUESTS_PER_CONNECTION} requests)",
        elapsed.as_secs_f64()
    );
    println!(
        "requests served: {served} ({:.0}/s)",
        served as f64 / elapsed.as_secs_f64()
    );
    println!("connections: {}", connections.into_inner());
    println!("errors: {errors}");
    println!(
        "daemon fds: {fds_before} before, {} at peak, {fds_after} after",
        peaks.fds
    );
    println!(
        "daemon RSS: {:.1} MiB before, {:.1} MiB at peak",
        rss_before as f64 / (1 << 20) as f64,
        peaks.rss_bytes as f64 / (1 << 20) as f64
    );
    let first_errors = first_errors.into_inner().unwrap_or_else(|p| p.into_inner());
    assert_eq!(errors, 0, "first errors: {first_errors:#?}");
    assert!(served > 0, "no request was served");
    assert_eq!(home.get("alpha").status, "running");
}

/// Sends request `n` (ping, list and logs in turn) and checks the answer.
fn check_one(client: &mut Client, n: u64, daemon: i32) -> Result<(), String> {
    match n % 3 {
        0 => {
            let info = client.ping().map_err(|e| format!("ping: {e}"))?;
            if info.pid as i32 != daemon {
                return Err(format!("ping answered pid {}, not {daemon}", info.pid));
            }
        }
        1 => {
            let list = client.list().map_err(|e| format!("list: {e}"))?;
            let names: Vec<(&str, ProcessStatus)> = list
                .iter()
                .map(|proc| (proc.name.as_str(), proc.status))
                .collect();
            if names
                != [
                    ("alpha", ProcessStatus::Running),
                    ("beta", ProcessStatus::Running),
                ]
            {
                return Err(format!("list answered {names:?}"));
            }
        }
        _ => {
            let logs = client.logs("alpha", 5).map_err(|e| format!("logs: {e}"))?;
            if !logs.lines.iter().any(|line| line.line == b"ready") {
                return Err(format!("logs answered {:?}", logs.lines));
            }
        }
    }
    Ok(())
}

/// The daemon the stress tests run: built in this test binary's profile, so `just stress`
/// (release) measures a release daemon.
fn daemon_binary() -> &'static Path {
    static DAEMON: OnceLock<PathBuf> = OnceLock::new();
    DAEMON.get_or_init(|| {
        if cfg!(debug_assertions) {
            return harness::bins().velosd.clone();
        }
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "velosd",
                "--message-format=json",
            ])
            .current_dir(harness::workspace_root())
            .stdin(Stdio::null())
            .output()
            .expect("run cargo build --release -p velosd");
        assert!(
            output.status.success(),
            "`cargo build --release -p velosd` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
            .stdout
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
            .filter(|message| {
                message["reason"] == "compiler-artifact" && message["target"]["name"] == "velosd"
            })
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo built no velosd executable")
    })
}

/// Starts `home`'s daemon from [`daemon_binary`] and returns its pid.
#[track_caller]
fn start_daemon(home: &TestHome) -> i32 {
    let velosd = daemon_binary().to_str().expect("UTF-8 path");
    home.cmd(&["ping"])
        .env("VELOS_DAEMON", velosd)
        .run()
        .success();
    let pid = home.daemon_pid().expect("velos.pid after ping");
    // Compared as paths: another build may have replaced the file since the daemon
    // started (the link then ends in " (deleted)").
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the daemon's executable");
    let exe = exe.to_string_lossy();
    assert_eq!(
        exe.strip_suffix(" (deleted)").unwrap_or(&exe),
        velosd,
        "the daemon is not the one under test"
    );
    pid
}

/// Waits until `name` has exited and returns its status.
#[track_caller]
fn wait_exited(home: &TestHome, name: &str, timeout: Duration) -> ProcessStatus {
    let mut client = Client::connect(home.home().socket_path()).expect("connect to the daemon");
    wait_until(timeout, &format!("{name} to exit"), || {
        let list = client.list().map_err(|e| e.to_string())?;
        match list.iter().find(|proc| proc.name == name) {
            Some(proc)
                if matches!(proc.status, ProcessStatus::Stopped | ProcessStatus::Errored) =>
            {
                Ok(proc.status)
            }
            other => Err(format!("{other:?}")),
        }
    })
}

/// Checks that `path` holds numbered lines 1..=lines, each once, in order, and nothing
/// else, reading it in a stream. Returns how many were found in order, or that count and
/// what went wrong.
fn check_numbered(path: &Path, lines: u64, len: usize) -> Result<u64, (u64, String)> {
    let file = File::open(path).map_err(|e| (0, format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(4 << 20, file);
    let mut want = Vec::with_capacity(len);
    let mut got = vec![0; len];
    for i in 1..=lines {
        want.clear();
        numbered::push_line(&mut want, i, len);
        if let Err(error) = reader.read_exact(&mut got) {
            return Err((i - 1, format!("ends before line {i} ({error})")));
        }
        if got != want {
            return Err((
                i - 1,
                format!(
                    "line {i} is {:?}, expected {:?}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                ),
            ));
        }
    }
    let mut rest = Vec::new();
    let extra = reader
        .take(1 << 10)
        .read_to_end(&mut rest)
        .map_err(|e| (lines, e.to_string()))?;
    if extra > 0 {
        return Err((
            lines,
            format!(
                "more after the last line: {:?}",
                String::from_utf8_lossy(&rest)
            ),
        ));
    }
    Ok(lines)
}

/// Compares two files in a stream; returns their length, or where they differ.
fn same_files(got: &Path, expected: &Path) -> Result<u64, String> {
    let open = |path: &Path| {
        File::open(path)
            .map(|file| BufReader::with_capacity(1 << 20, file))
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    let (mut a, mut b) = (open(got)?, open(expected)?);
    let (mut left, mut right) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut left).map_err(|e| e.to_string())?;
        let m = read_full(&mut b, &mut right).map_err(|e| e.to_string())?;
        if let Some(at) = left[..n.min(m)]
            .iter()
            .zip(&right[..n.min(m)])
            .position(|(x, y)| x != y)
        {
            return Err(format!("first difference at byte {}", offset + at as u64));
        }
        if n != m {
            return Err(format!(
                "lengths differ: the log ends at byte {} , the writer's copy at {}",
                offset + n as u64,
                offset + m as u64
            ));
        }
        if n == 0 {
            return Ok(offset);
        }
        offset += n as u64;
    }
}

/// Reads until `buf` is full or the end of the file.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// The resident memory of `pid` (VmRSS), in bytes.
fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// How many descriptors `pid` has open.
fn fd_count(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The highest memory and descriptor counts a [`Sampler`] saw.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    rss_bytes: u64,
    fds: usize,
    samples: u64,
}

impl Peaks {
    fn print(&self) {
        println!(
            "daemon peak RSS: {:.1} MiB (ceiling {} MiB); peak fds: {}; {} samples every {:?}",
            self.rss_bytes as f64 / (1 << 20) as f64,
            MAX_DAEMON_RSS >> 20,
            self.fds,
            self.samples,
            SAMPLE_EVERY
        );
    }
}

/// Reads a process's VmRSS and descriptor count every [`SAMPLE_EVERY`] on a thread, and
/// keeps the peaks.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Peaks>,
}

impl Sampler {
    fn start(pid: i32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut peaks = Peaks::default();
            while !stopped.load(Ordering::Relaxed) {
                peaks.rss_bytes = peaks.rss_bytes.max(rss_bytes(pid).unwrap_or(0));
                peaks.fds = peaks.fds.max(fd_count(pid).unwrap_or(0));
                peaks.samples += 1;
                // A sampling interval, not a wait for a condition.
                thread::sleep(SAMPLE_EVERY);
            }
            peaks
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler panicked")
    }
}
