//! What every figure stands on: the release binaries, temporary directories, running a
//! command with a bound, bounded waits, and killing whatever a run left behind.
//!
//! - [`build`] runs `scripts/build --message-format=json` (the README's build: static musl
//!   binaries where the musl target is installed, else the default target's; with the cargo
//!   that runs the benchmark, else `cargo` on `PATH`) and takes the executables' paths from
//!   cargo's messages: `cargo run -p velos-bench` builds only this binary, and a stale
//!   binary would measure the wrong code.
//! - [`temp_dir`] makes directories directly under `/tmp` with a short prefix, because a
//!   Unix socket path is capped near 104 bytes.
//! - [`run`] and [`time`] run a command under the [`watchdog`]. Output goes
//!   to anonymous files, not pipes: a daemon the command starts may inherit them, and a pipe
//!   it holds open would never reach end-of-file.
//! - [`wait_until`] polls a condition up to a bound and reports what it last saw.
//! - [`kill_marked`] is the last step of every cleanup: each command the benchmark runs
//!   carries [`MARK_ENV`] naming its run, daemons and their children inherit it, and
//!   everything still carrying it is SIGKILLed (with its process group, when it leads one).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal};
use serde_json::Value;
use tempfile::TempDir;

use crate::{procfs, watchdog};

/// The environment variable that marks every process a benchmark run started.
pub const MARK_ENV: &str = "VELOS_BENCH_MARK";

/// The release binaries under test.
#[derive(Debug, Clone)]
pub struct Bins {
    /// The CLI.
    pub velos: PathBuf,
    /// The daemon.
    pub velosd: PathBuf,
}

/// The workspace root: the parent of this crate.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bench crate lives inside the workspace")
}

/// Builds `velos` and `velosd` as the README does (`scripts/build`) and returns their paths.
pub fn build() -> Result<Bins> {
    // `cargo run` sets CARGO for the program it runs; a bench binary run by hand falls back
    // to the cargo that built it, then to PATH.
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO").map(PathBuf::from))
        .filter(|cargo| cargo.exists())
        .unwrap_or_else(|| PathBuf::from("cargo"));
    eprintln!("building velos and velosd (release, scripts/build)...");
    let script = workspace_root().join("scripts/build");
    let output = Command::new(&script)
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO", &cargo)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("`scripts/build` failed ({})", output.status);
    }
    let (mut velos, mut velosd) = (None, None);
    for line in output.stdout.split(|&byte| byte == b'\n') {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_bin = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"));
        match (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            (Some("velos"), Some(path)) if is_bin => velos = Some(PathBuf::from(path)),
            (Some("velosd"), Some(path)) if is_bin => velosd = Some(PathBuf::from(path)),
            _ => {}
        }
    }
    match (velos, velosd) {
        (Some(velos), Some(velosd)) => Ok(Bins { velos, velosd }),
        (velos, velosd) => {
            bail!("cargo built no executable for velos ({velos:?}) or velosd ({velosd:?})")
        }
    }
}

/// A fresh directory `/tmp/<prefix>XXXXXX`, removed when dropped.
pub fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .with_context(|| format!("creating a directory /tmp/{prefix}..."))
}

/// Writes a small script (mode 0644: the manager picks the interpreter by extension).
pub fn write_script(dir: &Path, name: &str, body: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs `command` to the end, at most `timeout`, and returns what it printed. A non-zero
/// exit is an error carrying its stderr.
pub fn run(command: &mut Command, timeout: Duration) -> Result<Output> {
    let mut out = tempfile::tempfile().context("creating a temporary file")?;
    let mut err = tempfile::tempfile().context("creating a temporary file")?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()
        .with_context(|| format!("running {}", show(command)))?;
    let status = watchdog::wait(&mut child, timeout).with_context(|| show(command))?;
    let output = Output {
        status,
        stdout: read_all(&mut out)?,
        stderr: read_all(&mut err)?,
    };
    if !status.success() {
        bail!(
            "{} failed ({status}): {}",
            show(command),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// Runs `command` to the end, at most `timeout`, and returns its wall time from spawn to
/// exit. Its stdout goes to /dev/null (the command still formats and writes everything);
/// a non-zero exit is an error carrying its stderr.
pub fn time(command: &mut Command, timeout: Duration) -> Result<Duration> {
    let mut err = tempfile::tempfile().context("creating a temporary file")?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.try_clone()?);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("running {}", show(command)))?;
    let status = watchdog::wait(&mut child, timeout).with_context(|| show(command))?;
    let elapsed = started.elapsed();
    if !status.success() {
        let stderr = read_all(&mut err)?;
        bail!(
            "{} failed ({status}): {}",
            show(command),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(elapsed)
}

fn read_all(file: &mut File) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `program arg arg`, for error messages.
pub fn show(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    let args: Vec<String> = command
        .get_args()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    format!("`{program} {}`", args.join(" "))
}

/// Polls `condition` every `interval` until it gives a value, for at most `timeout`. The
/// condition returns `Ok(None)` for "not yet" and may fail; on timeout the error says
/// `what` and the last thing seen.
pub fn wait_until<T>(
    timeout: Duration,
    interval: Duration,
    what: &str,
    mut condition: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match condition() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "not yet".to_owned(),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last: {last})");
        }
        std::thread::sleep(interval);
    }
}

/// The mark of everything started for `dir`: this run's pid and the directory, so a later
/// run can tell an interrupted run's leftovers (their run's pid is gone) from a run that is
/// still going.
pub fn mark_for(dir: &Path) -> String {
    format!("{}:{}", std::process::id(), dir.display())
}

/// SIGKILLs whatever an interrupted earlier run (Ctrl-C skips every `Drop`) left running:
/// processes whose mark names a benchmark pid that is gone. Returns how many there were.
pub fn kill_leftovers() -> usize {
    let mut killed = 0;
    for process in procfs::with_variable(MARK_ENV) {
        let owner = process
            .value
            .split_once(':')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if owner.is_some_and(procfs::alive) {
            continue;
        }
        killed += 1;
        let Some(target) = i32::try_from(process.pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        if process.pgid == process.pid {
            let _ = rustix::process::kill_process_group(target, Signal::KILL);
        }
        let _ = rustix::process::kill_process(target, Signal::KILL);
    }
    killed
}

/// SIGKILLs every process carrying `MARK_ENV=<mark>`, and the process group of each that
/// leads its own group; returns how many processes there were.
///
/// A group is killed only when its leader carries the mark: a CLI we ran shares the
/// benchmark's own group, which must survive.
pub fn kill_marked(mark: &str) -> usize {
    let entry = format!("{MARK_ENV}={mark}");
    // Two sweeps: a process forked while the first ran is caught by the second.
    let mut total = 0;
    for _ in 0..2 {
        let found = procfs::carrying(&entry);
        total = total.max(found.len());
        for &(pid, pgid) in &found {
            let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
                continue;
            };
            if pgid == pid {
                let _ = rustix::process::kill_process_group(target, Signal::KILL);
            }
            let _ = rustix::process::kill_process(target, Signal::KILL);
        }
    }
    total
}

/// SIGKILLs `pid` if it still carries `mark` (so a reused pid is left alone).
pub fn kill_if_marked(pid: u32, mark: &str) {
    let entry = format!("{MARK_ENV}={mark}");
    if procfs::carrying_pid(pid, &entry)
        && let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw)
    {
        let _ = rustix::process::kill_process(target, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_output_and_time_returns_a_duration() {
        let output = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        let elapsed = time(&mut Command::new("true"), Duration::from_secs(10)).unwrap();
        assert!(elapsed > Duration::ZERO);
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let error = run(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("broken"), "{error:#}");
        let error = time(
            Command::new("sh").args(["-c", "echo nope >&2; exit 1"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("nope"), "{error:#}");
    }

    #[test]
    fn wait_until_gives_up_with_what_it_last_saw() {
        let mut calls = 0;
        let value = wait_until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            "three",
            || {
                calls += 1;
                Ok((calls == 3).then_some(calls))
            },
        )
        .unwrap();
        assert_eq!(value, 3);
        let error = wait_until::<()>(
            Duration::from_millis(30),
            Duration::from_millis(5),
            "the impossible",
            || bail!("still broken"),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("the impossible") && text.contains("still broken"),
            "{text}"
        );
    }

    #[test]
    fn marked_processes_are_killed_and_others_are_not() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mark = format!("test-{}", std::process::id());
        let mut marked = Command::new("sleep")
            .arg("30")
            .env(MARK_ENV, &mark)
            .spawn()
            .unwrap();
        let mut other = Command::new("sleep").arg("30").spawn().unwrap();
        // spawn returns once the child has begun its exec, which may be before the kernel
        // has set up the new environment that /proc shows: wait for it, with a bound.
        let entry = format!("{MARK_ENV}={mark}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !procfs::carrying_pid(marked.id(), &entry) {
            assert!(
                std::time::Instant::now() < deadline,
                "the mark never showed"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(kill_marked(&mark), 1);
        assert!(!marked.wait().unwrap().success());
        assert!(other.try_wait().unwrap().is_none());
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
