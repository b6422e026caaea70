//! CLI wall time: `velos list --json` and `velos ping` (PM2: `pm2 jlist`, `pm2 ping`) as
//! whole processes, from spawn to exit, with 0, 100 and 1000 processes.
//!
//! Each figure gets one untimed warm-up run (page cache, the daemon's first connection),
//! then its timed runs. Stdout goes to /dev/null: the CLI still builds and writes all of
//! its output.

use std::process::Command;
use std::time::Duration;

use super::{Bench, Figure, Group, Readings};
use crate::harness;
use crate::manager::Manager;
use crate::report::{Target, Unit};
use crate::stats::Stats;

/// The stages the CLI is timed at.
pub const STAGES: [usize; 3] = [0, 100, 1000];

/// This group's rows.
pub fn figures(bench: &Bench) -> Vec<Figure> {
    let mut figures = vec![
        Figure::new(
            "spawn_floor",
            Group::Cli,
            "floor: spawn and wait for `true`",
            Unit::Seconds,
        )
        .velos_only(),
        Figure::new(
            "version",
            Group::Cli,
            "CLI start-up alone (--version)",
            Unit::Seconds,
        ),
    ];
    for stage in STAGES {
        let key = match stage {
            0 => "list_0",
            100 => "list_100",
            _ => "list_1000",
        };
        let mut figure = Figure::new(
            key,
            Group::Cli,
            format!("list --json, {stage} processes"),
            Unit::Seconds,
        );
        match stage {
            100 => figure = figure.target(Target::AtMost(0.0015)),
            1000 => figure = figure.target(Target::AtMost(0.004)),
            _ => {}
        }
        figures.push(figure);
    }
    if bench.pm2.is_some() {
        figures.push(
            Figure::new(
                "list_speedup",
                Group::Cli,
                "pm2 jlist / velos list --json, 100 processes",
                Unit::Ratio,
            )
            .target(Target::AtLeast(100.0))
            .velos_only(),
        );
    }
    for (stage, key) in STAGES.into_iter().zip(["ping_0", "ping_100", "ping_1000"]) {
        figures.push(Figure::new(
            key,
            Group::Cli,
            format!("ping, {stage} processes"),
            Unit::Seconds,
        ));
    }
    figures.push(
        Figure::new(
            "ping_over_version",
            Group::Cli,
            "ping beyond --version, 100 processes",
            Unit::Seconds,
        )
        .target(Target::AtMost(0.0003))
        .velos_only(),
    );
    figures
}

/// Records how much longer `velos ping` (100 processes) takes than `velos --version`:
/// connecting and one round trip, beyond the CLI's own start-up.
pub fn ping_margin(velos: &mut Readings) {
    if let (Some(ping), Some(version)) = (velos.stats("ping_100"), velos.stats("version")) {
        velos.set(
            "ping_over_version",
            Stats::one(ping.median - version.median),
        );
        velos.how("ping_over_version", "difference of the medians above");
    }
}

/// Times `list --json` and `ping` with `stage` processes running; with none, also the
/// CLI's start-up alone and (for velos) the machine's floor for any process.
pub fn at(bench: &Bench, manager: &dyn Manager, readings: &mut Readings, stage: usize) {
    let runs = bench.runs(manager, 30, 5);
    if stage == 0 {
        if !manager.is_peer() {
            let times: anyhow::Result<Vec<Duration>> = (0..runs)
                .map(|_| harness::time(&mut Command::new("true"), manager.patience()))
                .collect();
            readings.set_result(
                "spawn_floor",
                times.map(|times| Stats::of_durations(&times).expect("at least one run")),
            );
            readings.how("spawn_floor", "what any process costs on this machine");
        }
        let times: anyhow::Result<Vec<Duration>> =
            (0..runs).map(|_| manager.time(&["--version"])).collect();
        readings.set_result(
            "version",
            times.map(|times| Stats::of_durations(&times).expect("at least one run")),
        );
        readings.how(
            "version",
            format!(
                "`{} --version`, spawn to exit",
                manager.label().to_lowercase()
            ),
        );
    }
    for (name, args) in [("list", manager.list_json_args()), ("ping", &["ping"][..])] {
        let key = format!("{name}_{stage}");
        let _ = manager.time(args);
        let times: anyhow::Result<Vec<Duration>> = (0..runs).map(|_| manager.time(args)).collect();
        readings.set_result(
            &key,
            times.map(|times| Stats::of_durations(&times).expect("at least one run")),
        );
        readings.how(
            &key,
            format!(
                "`{} {}`, spawn to exit",
                manager.label().to_lowercase(),
                args.join(" ")
            ),
        );
    }
}

/// Records how many times faster velos lists 100 processes than PM2.
pub fn speedup(velos: &mut Readings, pm2: &Readings) {
    if let (Some(ours), Some(theirs)) = (velos.stats("list_100"), pm2.stats("list_100")) {
        velos.set("list_speedup", Stats::one(theirs.median / ours.median));
        velos.how("list_speedup", "ratio of the medians above");
    }
}
