//! Daemon memory and idle CPU, read from `/proc` for the daemon process only (not its
//! children): `VmRSS` at each stage of the `scale` walk, and `utime + stime` plus context
//! switches of every daemon thread over an idle window with 100 sleeping processes.
//!
//! The idle window is the benchmark's one deliberate fixed wait: nothing is connected and
//! no child writes, so a daemon without polling timers should not run at all.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Bench, Figure, Group, Readings};
use crate::report::{Target, Unit};
use crate::stats::Stats;
use crate::{harness, procfs};

const MIB: f64 = 1024.0 * 1024.0;
const KIB: f64 = 1024.0;

/// The stages RSS is read at.
pub const STAGES: [usize; 4] = [0, 10, 100, 1000];

/// The idle window (shortened by `--quick`).
pub fn idle_window(bench: &Bench) -> Duration {
    if bench.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    }
}

/// This group's rows.
pub fn figures(bench: &Bench) -> Vec<Figure> {
    let rss = |key, label: &str| Figure::new(key, Group::Memory, label, Unit::Bytes);
    let window = idle_window(bench).as_secs();
    vec![
        rss("rss_0", "daemon RSS, idle").target(Target::AtMost(2.0 * MIB)),
        rss("rss_10", "daemon RSS, 10 sleeping processes"),
        rss("rss_100", "daemon RSS, 100 sleeping processes").target(Target::AtMost(4.0 * MIB)),
        rss("rss_1000", "daemon RSS, 1000 sleeping processes"),
        rss("rss_per_process", "RSS per extra process (100 -> 1000)")
            .target(Target::AtMost(16.0 * KIB)),
        Figure::new(
            "cpu_ticks",
            Group::Cpu,
            format!("daemon CPU ticks, {window} s idle, 100 processes"),
            Unit::Count,
        )
        .target(Target::AtMost(0.0)),
        Figure::new(
            "cpu_switches",
            Group::Cpu,
            format!("daemon context switches, same {window} s"),
            Unit::Count,
        )
        .target(Target::AtMost(0.0)),
    ]
}

/// Records the daemon's RSS with `stage` processes.
pub fn rss(readings: &mut Readings, pid: u32, stage: usize) {
    let key = format!("rss_{stage}");
    readings.set_result(
        &key,
        procfs::rss_bytes(pid).map(|bytes| Stats::one(bytes as f64)),
    );
    readings.how(&key, "VmRSS of the daemon process after all are running");
}

/// Records the memory each process past the 100th costs, from the RSS at 100 and 1000.
pub fn per_process(readings: &mut Readings) {
    if let (Some(at_100), Some(at_1000)) = (readings.stats("rss_100"), readings.stats("rss_1000")) {
        let per = (at_1000.median - at_100.median) / 900.0;
        readings.set("rss_per_process", Stats::one(per));
        readings.how(
            "rss_per_process",
            "(RSS at 1000 - RSS at 100) / 900, empty logs",
        );
    }
}

/// How long the daemon must have been quiet before the idle window opens: the last
/// setup request's connection closing is still a wake-up of its own.
const SETTLE: Duration = Duration::from_millis(300);

/// Records what the daemon did over the idle window.
pub fn idle_cpu(bench: &Bench, readings: &mut Readings, pid: u32) -> Result<()> {
    let window = idle_window(bench);
    let mut last = procfs::context_switches(pid)?;
    let mut quiet_since = Instant::now();
    // A daemon with timers of its own (PM2) never goes quiet: the window opens anyway.
    let settled = harness::wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        "the daemon to go quiet after setup",
        || {
            let now = procfs::context_switches(pid)?;
            if procfs::switches_between(&last, &now) > 0 {
                (last, quiet_since) = (now, Instant::now());
            }
            Ok((quiet_since.elapsed() >= SETTLE).then_some(()))
        },
    )
    .is_ok();
    eprintln!("  idle for {window:?}");
    let ticks = procfs::cpu_ticks(pid)?;
    let switches = procfs::context_switches(pid)?;
    std::thread::sleep(window);
    let ticks = procfs::cpu_ticks(pid)?.saturating_sub(ticks);
    let switches = procfs::switches_between(&switches, &procfs::context_switches(pid)?);
    readings.set("cpu_ticks", Stats::one(ticks as f64));
    readings.how(
        "cpu_ticks",
        format!(
            "utime+stime of /proc/<pid>/stat, 1 tick = {} ms, no client connected",
            1000.0 / procfs::TICKS_PER_SECOND
        ),
    );
    readings.set("cpu_switches", Stats::one(switches as f64));
    readings.how(
        "cpu_switches",
        format!(
            "context switches of every daemon thread (/proc/<pid>/task/*/status), each wake-up is one; {}",
            if settled {
                format!("the window opened after {} ms without any", SETTLE.as_millis())
            } else {
                "never quiet for that long after setup".to_owned()
            }
        ),
    );
    Ok(())
}
