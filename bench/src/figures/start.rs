//! `start` wall time: one process (the CLI returns once the daemon answered), N started one
//! after another, then `stop all` of those N.
//!
//! The script is `exec sleep 3600` as a `.sh` file, so the manager picks the interpreter.
//! One untimed warm-up start comes first. PM2 takes a third of a second a start and slows
//! as its list grows, so only its first tenth is timed and the total scaled (a lower bound);
//! the rest of its N are added from one ecosystem file before `stop all`.

use std::time::Instant;

use anyhow::Result;

use super::{Bench, Figure, Group, Readings};
use crate::manager::{self, Manager};
use crate::report::{Table, Target, Unit, format_value};
use crate::stats::Stats;

/// This group's tables.
pub fn tables(bench: &Bench) -> Vec<Table> {
    if !bench.wants(Group::Start) {
        return Vec::new();
    }
    let count = if bench.quick { 50 } else { 500 };
    let (velos, pm2) = bench.against_each("start", |m, r| measure(bench, m, r, count));
    super::table(bench, "Start", figures(count), &velos, pm2.as_ref())
        .into_iter()
        .collect()
}

fn figures(count: usize) -> Vec<Figure> {
    vec![
        Figure::new(
            "start_one",
            Group::Start,
            "start one process (whole CLI)",
            Unit::Seconds,
        )
        .target(Target::AtMost(0.003)),
        Figure::new(
            "start_many",
            Group::Start,
            format!("{count} starts one after another, total"),
            Unit::Seconds,
        )
        .target(Target::AtMost(2.0 * count as f64 / 500.0)),
        Figure::new(
            "stop_all",
            Group::Start,
            format!("stop all of {count} processes (whole CLI)"),
            Unit::Seconds,
        ),
    ]
}

fn measure(
    bench: &Bench,
    manager: &dyn Manager,
    readings: &mut Readings,
    count: usize,
) -> Result<()> {
    let cli = manager.label().to_lowercase();
    let sleeper = bench.sleeper.to_string_lossy().into_owned();
    manager.daemon_pid()?;
    manager.run(&["start", &sleeper, "--name", "warm"])?;
    let runs = bench.runs(manager, 20, 5);
    let times = (0..runs)
        .map(|i| manager.time(&["start", &sleeper, "--name", &format!("one{i}")]))
        .collect::<Result<Vec<_>>>()?;
    readings.set(
        "start_one",
        Stats::of_durations(&times).expect("at least one run"),
    );
    readings.how(
        "start_one",
        format!("`{cli} start sleeper.sh --name oneN`, spawn to exit, each a new process"),
    );
    manager.delete_all()?;

    let timed = if manager.is_peer() { count / 10 } else { count };
    eprintln!("  {}: {timed} starts one after another", manager.label());
    let started = Instant::now();
    let each = (0..timed)
        .map(|i| manager.time(&["start", &sleeper, "--name", &format!("q{i}")]))
        .collect::<Result<Vec<_>>>()?;
    let total = started.elapsed().as_secs_f64();
    let scale = count as f64 / timed as f64;
    readings.set("start_many", Stats::one(total * scale));
    let per = Stats::of_durations(&each).expect("at least one start");
    let per = format!(
        "each start median {}, min {}, max {}",
        format_value(Unit::Seconds, per.median),
        format_value(Unit::Seconds, per.min),
        format_value(Unit::Seconds, per.max)
    );
    readings.how(
        "start_many",
        if timed == count {
            format!("`{cli} start` one after another, one clock around all; {per}")
        } else {
            format!(
                "only the first {timed} timed, total x{scale:.0}: a lower bound, PM2 slows as its list grows; {per}"
            )
        },
    );

    if timed < count {
        let rest: Vec<String> = (timed..count).map(|i| format!("q{i}")).collect();
        manager.add_sleepers(&bench.sleeper, &rest)?;
    }
    manager::wait_online(manager, count)?;
    eprintln!("  {}: stop all", manager.label());
    let stop = manager.time(&["stop", "all"])?;
    readings.set("stop_all", Stats::one(stop.as_secs_f64()));
    readings.how(
        "stop_all",
        format!("`{cli} stop all`, spawn to exit, all exit on SIGTERM"),
    );
    Ok(())
}
