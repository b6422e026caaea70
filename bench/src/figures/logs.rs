//! Log throughput: the writer (`velos-bench write-lines`, numbered 100-byte lines as fast
//! as it can) under each manager, against the same writer redirected straight to a file on
//! the same disk, the machine's limit.
//!
//! Each run's time goes from the writer's own start (its stamp file, so the manager's spawn
//! latency is left out) to the moment the log file holds every byte, polled every
//! millisecond; the direct run's time ends when the writer exits. Then every line is
//! checked: present exactly once, in order, intact. A log that stops growing short of the
//! full size for [`STALL`] has lost lines: its time ends at its last growth and the
//! check counts what is missing. How late the poll saw the full size (measured from the
//! file's mtime, its last change) is printed with the time, so that what the poll adds is
//! on record beside what it measures.
//!
//! Daemon CPU is `utime + stime` over the run; peak RSS is `VmRSS` sampled every few
//! polls (and, for velos, `VmHWM`, the peak over the daemon's life).

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::{Bench, Figure, Group, Readings};
use crate::harness::{self, MARK_ENV};
use crate::manager::Manager;
use crate::report::{Table, Target, Unit, format_value};
use crate::stats::Stats;
use crate::writer::{self, LINE_BYTES, LineCheck};
use crate::{procfs, watchdog};

/// How long a log may stop growing before its missing lines count as lost.
const STALL: Duration = Duration::from_secs(10);
/// The longest a run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the log's size is checked.
const POLL: Duration = Duration::from_millis(1);
/// RSS is sampled every this many polls.
const RSS_EVERY: u64 = 5;
/// Runs of each kind of writer, each beside a run straight to a file (one with `--quick`).
const RUNS: usize = 8;

const MIB: f64 = 1024.0 * 1024.0;

/// How the writer writes: lines per `write`, and the table's title.
struct Writes {
    batch: usize,
    title: &'static str,
    /// The targets of issue 14 are for this one.
    targets: bool,
}

const WRITES: [Writes; 3] = [
    Writes {
        batch: writer::BATCH_LINES,
        title: "Log throughput (writes of 65,500 bytes)",
        targets: true,
    },
    Writes {
        batch: 10_485,
        title: "Log throughput (writes of ~1 MiB)",
        targets: false,
    },
    Writes {
        batch: 1,
        title: "Log throughput (one line per write)",
        targets: false,
    },
];

/// This group's tables: one per kind of writer.
pub fn tables(bench: &Bench) -> Vec<Table> {
    if !bench.wants(Group::Logs) {
        return Vec::new();
    }
    let lines: u64 = if bench.quick { 100_000 } else { 1_000_000 };
    let runs = if bench.quick { 1 } else { RUNS };
    WRITES
        .iter()
        .filter_map(|writes| table(bench, writes, lines, runs))
        .collect()
}

fn table(bench: &Bench, writes: &Writes, lines: u64, runs: usize) -> Option<Table> {
    let what = format!("logs, {} lines per write", writes.batch);
    let mut direct_times = Vec::new();
    let (mut velos, mut pm2) = bench.against_each(&what, |manager, readings| {
        // velos's runs alternate with runs straight to a file, so that both see the same
        // machine (the others' load, the page cache, the disk).
        let direct = (!manager.is_peer()).then_some(&mut direct_times);
        captured(bench, manager, readings, lines, runs, writes.batch, direct)
    });
    match Stats::of_durations(&direct_times) {
        Some(time) => {
            let rate = time.map(|t| lines as f64 / t);
            velos.set("direct_time", time);
            velos.set("direct_rate", rate);
            velos.how(
                "direct_time",
                "`velos-bench write-lines N > file`, writer start to exit, each run just before one of velos",
            );
            for readings in std::iter::once(&mut velos).chain(pm2.as_mut()) {
                if let Some(captured) = readings.stats("log_rate") {
                    readings.set("log_ratio", Stats::one(captured.median / rate.median));
                    readings.how(
                        "log_ratio",
                        "median captured lines/s / median direct lines/s",
                    );
                }
            }
        }
        None => velos.skip("direct_time", "no run straight to a file succeeded"),
    }
    let n = if lines.is_multiple_of(1_000_000) {
        format!("{},000,000", lines / 1_000_000)
    } else {
        format!("{},000", lines / 1000)
    };
    let figure = |key, label: String, unit| Figure::new(key, Group::Logs, label, unit);
    let target = |figure: Figure, target| match writes.targets {
        true => figure.target(target),
        false => figure,
    };
    // CPU per 100 MB: the figure is for `lines` lines of 100 bytes.
    let cpu_bound = 0.05 * (lines as f64 * LINE_BYTES as f64) / 100e6;
    let figures = vec![
        figure(
            "direct_time",
            format!("{n} lines straight to a file: time"),
            Unit::Seconds,
        )
        .velos_only(),
        figure(
            "direct_rate",
            "straight to a file: lines/s".into(),
            Unit::Rate("lines/s"),
        )
        .velos_only(),
        figure(
            "log_time",
            "captured: time until the log holds all".into(),
            Unit::Seconds,
        ),
        figure(
            "log_rate",
            "captured: lines/s".into(),
            Unit::Rate("lines/s"),
        ),
        figure("log_bytes", "captured: MB/s".into(), Unit::ByteRate),
        target(
            figure(
                "log_ratio",
                "captured / straight-to-file rate".into(),
                Unit::Ratio,
            ),
            Target::AtLeast(0.9),
        ),
        figure(
            "log_wrong",
            "lines lost, repeated, reordered or cut".into(),
            Unit::Count,
        )
        .target(Target::EveryAtMost(0.0)),
        target(
            figure(
                "log_cpu",
                "daemon CPU time while capturing".into(),
                Unit::Seconds,
            ),
            Target::AtMost(cpu_bound),
        ),
        target(
            figure(
                "log_rss",
                "peak daemon RSS while capturing".into(),
                Unit::Bytes,
            ),
            Target::EveryAtMost(8.0 * MIB),
        ),
    ];
    super::table(bench, writes.title, figures, &velos, pm2.as_ref())
}

/// One run of the writer straight to a file, checked: its time.
fn direct(bench: &Bench, lines: u64, batch: usize) -> Result<Duration> {
    let log = bench.scratch.path().join("direct.log");
    let stamp = bench.scratch.path().join("direct.stamp");
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = Command::new(&bench.exe)
        .args(writer_args(lines, batch, &stamp, false))
        .env(MARK_ENV, bench.mark())
        .stdin(Stdio::null())
        .stdout(out)
        .spawn()
        .context("running the writer")?;
    let status = watchdog::wait(&mut child, RUN_TIMEOUT)?;
    let end = SystemTime::now();
    if !status.success() {
        bail!("the writer failed ({status})");
    }
    let time = end.duration_since(read_stamp(&stamp)?)?;
    let check = writer::check(&std::fs::read(&log)?, lines);
    if check.wrong() > 0 {
        bail!("the file itself is wrong: {}", describe(&check));
    }
    std::fs::remove_file(&log)?;
    Ok(time)
}

/// The writer under `manager`.
/// The writer under `manager`, `runs` times; with `direct`, each run follows one straight
/// to a file, whose time goes there.
fn captured(
    bench: &Bench,
    manager: &dyn Manager,
    readings: &mut Readings,
    lines: u64,
    runs: usize,
    batch: usize,
    mut direct_times: Option<&mut Vec<Duration>>,
) -> Result<()> {
    let pid = manager.daemon_pid()?;
    let expected = lines * LINE_BYTES as u64;
    let (mut times, mut wrong, mut cpu, mut peaks) = (vec![], vec![], vec![], vec![]);
    let mut lags = Vec::new();
    let mut worst: Option<LineCheck> = None;
    for run in 0..runs {
        if let Some(times) = direct_times.as_deref_mut() {
            match direct(bench, lines, batch) {
                Ok(time) => times.push(time),
                Err(error) => eprintln!("  straight to a file: {error:#}"),
            }
        }
        let name = format!("writer{run}");
        let stamp = bench
            .scratch
            .path()
            .join(format!("{}-{run}.stamp", manager.label()));
        let _ = std::fs::remove_file(&stamp);
        let ticks = procfs::cpu_ticks(pid)?;
        let mut peak = procfs::rss_bytes(pid)?;
        let log =
            manager.start_program(&bench.exe, &writer_args(lines, batch, &stamp, true), &name)?;
        let deadline = Instant::now() + RUN_TIMEOUT;
        let (mut size, mut grew, mut grew_at, mut polls) =
            (0, Instant::now(), SystemTime::now(), 0);
        let end = loop {
            let now = SystemTime::now();
            let metadata = std::fs::metadata(&log).ok();
            let len = metadata.as_ref().map_or(0, |m| m.len());
            if len >= expected {
                // How late the poll saw it: the file's last change was at its mtime.
                if let Some(lag) = metadata
                    .and_then(|m| m.modified().ok())
                    .and_then(|changed| now.duration_since(changed).ok())
                {
                    lags.push(lag);
                }
                break now;
            }
            if len != size {
                (size, grew, grew_at) = (len, Instant::now(), now);
            } else if grew.elapsed() > STALL {
                break grew_at;
            }
            if Instant::now() > deadline {
                bail!("the log held {len} of {expected} bytes after {RUN_TIMEOUT:?}");
            }
            polls += 1;
            if polls % RSS_EVERY == 0 {
                peak = peak.max(procfs::rss_bytes(pid).unwrap_or(0));
            }
            std::thread::sleep(POLL);
        };
        let ticks = procfs::cpu_ticks(pid)? - ticks;
        let started = harness::wait_until(
            Duration::from_secs(10),
            Duration::from_millis(5),
            "the writer's stamp",
            || Ok(read_stamp(&stamp).ok()),
        )?;
        times.push(end.duration_since(started).unwrap_or_default());
        let check = writer::check(&std::fs::read(&log)?, lines);
        if worst.is_none_or(|w| check.wrong() > w.wrong()) {
            worst = Some(check);
        }
        wrong.push(check.wrong() as f64);
        cpu.push(ticks as f64 / procfs::TICKS_PER_SECOND);
        peaks.push(peak as f64);
        manager.delete(&name)?;
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&stamp);
    }
    let time = Stats::of_durations(&times).expect("at least one run");
    readings.set("log_time", time);
    readings.set("log_rate", time.map(|t| lines as f64 / t));
    readings.set("log_bytes", time.map(|t| expected as f64 / t));
    readings.set("log_wrong", Stats::of(&wrong).expect("at least one run"));
    readings.set("log_cpu", Stats::of(&cpu).expect("at least one run"));
    readings.set("log_rss", Stats::of(&peaks).expect("at least one run"));
    let mut time_how =
        "writer's start stamp to the log file's full size, polled every 1 ms".to_owned();
    if let Some(lag) = Stats::of_durations(&lags) {
        // What the poll adds: from the file's last change (its mtime, as fine as the
        // file system keeps it) to the poll that saw it full.
        time_how.push_str(&format!(
            "; the poll saw the full size a median {} after the file's last change (mtime)",
            format_value(Unit::Seconds, lag.median)
        ));
    }
    readings.how("log_time", time_how);
    if let Some(worst) = worst.filter(|w| w.wrong() > 0) {
        readings.how("log_wrong", format!("worst run: {}", describe(&worst)));
    }
    readings.how(
        "log_cpu",
        "utime+stime of the daemon, start request to full log",
    );
    let mut rss_how = format!("VmRSS sampled every {RSS_EVERY} polls");
    if !manager.is_peer()
        && let Ok(hwm) = procfs::peak_rss_bytes(pid)
    {
        rss_how.push_str(&format!(
            "; VmHWM over the daemon's life {}",
            format_value(Unit::Bytes, hwm as f64)
        ));
    }
    readings.how("log_rss", rss_how);
    Ok(())
}

fn writer_args(lines: u64, batch: usize, stamp: &Path, linger: bool) -> Vec<String> {
    let mut args = vec![
        "write-lines".to_owned(),
        lines.to_string(),
        "--batch".to_owned(),
        batch.to_string(),
        "--stamp".to_owned(),
        stamp.to_string_lossy().into_owned(),
    ];
    if linger {
        args.push("--linger".to_owned());
    }
    args
}

/// When the writer started, from its stamp file.
fn read_stamp(path: &Path) -> Result<SystemTime> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let nanos: u64 = text.trim().parse().context("a stamp is nanoseconds")?;
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos))
}

fn describe(check: &LineCheck) -> String {
    format!(
        "{} lines found, {} lost, {} repeated, {} out of order, {} cut or changed",
        check.lines, check.lost, check.duplicated, check.out_of_order, check.malformed
    )
}
