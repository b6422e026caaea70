//! `stop` overhead: how long `stop <name>` takes for a process that exits at once on
//! SIGTERM, against how long that process itself takes to exit when signalled directly.
//!
//! The process is `sh sleeper.sh`, which `exec`s `sleep 3600`; each run waits until it has
//! become `sleep`, so both sides stop the same program. The direct side is spawned by the
//! benchmark in its own process group, sent SIGTERM, and waited for. The overhead is the
//! difference of the medians; it includes the CLI's own start-up (see `ping` in the CLI
//! table).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal};

use super::{Bench, Figure, Group, Readings};
use crate::harness::{self, MARK_ENV};
use crate::manager::{self, Manager};
use crate::report::{Table, Unit};
use crate::stats::Stats;
use crate::{procfs, watchdog};

/// This group's tables.
pub fn tables(bench: &Bench) -> Vec<Table> {
    if !bench.wants(Group::Stop) {
        return Vec::new();
    }
    let (mut velos, mut pm2) = bench.against_each("stop", |m, r| measure(bench, m, r));
    eprintln!("stop: the child's own exit on SIGTERM");
    let runs = if bench.quick { 4 } else { 10 };
    match child_exit(bench, runs) {
        Ok(exit) => {
            velos.set("child_exit", exit);
            velos.how(
                "child_exit",
                "`sh sleeper.sh` spawned here, SIGTERM to wait() returning",
            );
            for readings in std::iter::once(&mut velos).chain(pm2.as_mut()) {
                if let Some(stop) = readings.stats("stop_one") {
                    readings.set("stop_overhead", Stats::one(stop.median - exit.median));
                    readings.how("stop_overhead", "median stop minus median child exit");
                }
            }
        }
        Err(error) => velos.set_result("child_exit", Err(error)),
    }
    let figures = vec![
        Figure::new(
            "stop_one",
            Group::Stop,
            "stop one process (whole CLI)",
            Unit::Seconds,
        ),
        Figure::new(
            "child_exit",
            Group::Stop,
            "the child's own exit on SIGTERM",
            Unit::Seconds,
        )
        .velos_only(),
        Figure::new(
            "stop_overhead",
            Group::Stop,
            "stop beyond the child's own exit",
            Unit::Seconds,
        ),
    ];
    super::table(bench, "Stop", figures, &velos, pm2.as_ref())
        .into_iter()
        .collect()
}

fn measure(bench: &Bench, manager: &dyn Manager, readings: &mut Readings) -> Result<()> {
    let cli = manager.label().to_lowercase();
    let sleeper = bench.sleeper.to_string_lossy().into_owned();
    manager.daemon_pid()?;
    let runs = bench.runs(manager, 10, 3);
    let mut times = Vec::new();
    for i in 0..runs {
        let name = format!("stop{i}");
        manager.run(&["start", &sleeper, "--name", &name])?;
        manager::wait_running_as(manager, &name, "sleep")?;
        times.push(manager.time(&["stop", &name])?);
    }
    readings.set(
        "stop_one",
        Stats::of_durations(&times).expect("at least one run"),
    );
    readings.how(
        "stop_one",
        format!("`{cli} stop stopN` of `exec sleep 3600`, spawn to exit"),
    );
    manager.delete_all()
}

/// How long `sh sleeper.sh`, once it is `sleep`, takes from SIGTERM to being waited for.
fn child_exit(bench: &Bench, runs: usize) -> Result<Stats> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut child = Command::new("sh")
            .arg(&bench.sleeper)
            .process_group(0)
            .env(MARK_ENV, bench.mark())
            .stdin(Stdio::null())
            .spawn()
            .context("running sh sleeper.sh")?;
        let pid = child.id();
        let became_sleep = harness::wait_until(
            Duration::from_secs(10),
            Duration::from_millis(1),
            "sh to exec sleep",
            || Ok((procfs::command_name(pid).as_deref() == Some("sleep")).then_some(())),
        );
        if let Err(error) = became_sleep {
            let _ = child.kill();
            let _ = child.wait();
            return Err(error);
        }
        let target = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .context("pid")?;
        let started = Instant::now();
        rustix::process::kill_process(target, Signal::TERM)?;
        let status = watchdog::wait(&mut child, Duration::from_secs(10))?;
        times.push(started.elapsed());
        if status.success() {
            bail!("sleep ignored SIGTERM and exited 0");
        }
    }
    Ok(Stats::of_durations(&times).expect("at least one run"))
}
