//! The figures of issue 4, one module per group, and what they share: the run's settings
//! ([`Bench`]), a manager's readings ([`Readings`]), and turning readings into a table.
//!
//! Each group runs its steps against a fresh velos, then (with `--compare pm2`) a fresh PM2
//! ([`Bench::against_each`]), so one manager's leftovers never weigh on the other's figures.
//! A failing step fails the figures it had not measured yet, and the run goes on.
//!
//! - `scale`: one walk from 0 to 10, 100 and 1000 sleeping processes, measuring at each
//!   stage what `memory` (RSS, idle CPU), `cli` (list and ping wall time) and `sdk`
//!   (round trips) ask for, so the thousand processes are started once.
//! - `start`: start one; N started one after another; stop all of them.
//! - `stop`: stop one process against the child's own exit on SIGTERM.
//! - `logs`: log throughput against the same writer redirected to a file.
//! - `reload`: `reload` of the Node example's 4 instances while a client runs at full
//!   speed: failed requests and the reload's duration.
//! - `size`: the release binaries' sizes.

pub mod cli;
pub mod logs;
pub mod memory;
pub mod reload;
pub mod scale;
pub mod sdk;
pub mod size;
pub mod start;
pub mod stop;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Result;
use tempfile::TempDir;

use crate::harness::Bins;
use crate::manager::Manager;
use crate::pm2::{Pm2, Pm2Install};
use crate::report::{Row, Table, Target, Unit, Value};
use crate::stats::Stats;
use crate::velos::Velos;

/// A group of figures, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Daemon RSS at 0, 10, 100 and 1000 processes.
    Memory,
    /// Daemon CPU over an idle window with 100 processes.
    Cpu,
    /// `list --json` and `ping` wall time.
    Cli,
    /// SDK round trips.
    Sdk,
    /// `start` wall time, one and many; stop all.
    Start,
    /// `stop` overhead.
    Stop,
    /// Log throughput.
    Logs,
    /// `reload` under load.
    Reload,
    /// Binary sizes.
    Size,
}

impl Group {
    /// Every group, in the order the tables are printed.
    pub const ALL: [Group; 9] = [
        Group::Memory,
        Group::Cpu,
        Group::Cli,
        Group::Sdk,
        Group::Start,
        Group::Stop,
        Group::Logs,
        Group::Reload,
        Group::Size,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            Group::Memory => "memory",
            Group::Cpu => "cpu",
            Group::Cli => "cli",
            Group::Sdk => "sdk",
            Group::Start => "start",
            Group::Stop => "stop",
            Group::Logs => "logs",
            Group::Reload => "reload",
            Group::Size => "size",
        }
    }

    /// The group called `name`.
    pub fn parse(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|group| group.name() == name)
    }
}

/// The settings and shared files of one benchmark run.
pub struct Bench {
    /// The binaries under test.
    pub bins: Bins,
    /// Scripts, stamps and the direct-to-file logs.
    pub scratch: TempDir,
    /// `exec sleep 3600` as a `.sh` script.
    pub sleeper: PathBuf,
    /// This executable, which is also the log writer (`write-lines`).
    pub exe: PathBuf,
    /// PM2, with `--compare pm2` when it could be installed.
    pub pm2: Option<Pm2Install>,
    /// `--quick`: fewer runs, smaller counts, no 1000-process stage.
    pub quick: bool,
    /// The groups to measure.
    pub groups: BTreeSet<Group>,
}

impl Bench {
    /// Whether `group` is measured in this run.
    pub fn wants(&self, group: Group) -> bool {
        self.groups.contains(&group)
    }

    /// The mark of processes the benchmark starts itself (outside any manager).
    pub fn mark(&self) -> String {
        crate::harness::mark_for(self.scratch.path())
    }

    /// How many runs a figure gets: `full` for velos, `peer` for PM2 (whose commands take
    /// a thousand times longer), a third of that with `--quick`.
    pub fn runs(&self, manager: &dyn Manager, full: usize, peer: usize) -> usize {
        let runs = if manager.is_peer() { peer } else { full };
        if self.quick { runs.div_ceil(3) } else { runs }
    }

    /// Runs `measure` against a fresh velos, then against a fresh PM2 when comparing.
    pub fn against_each(
        &self,
        what: &str,
        mut measure: impl FnMut(&dyn Manager, &mut Readings) -> Result<()>,
    ) -> (Readings, Option<Readings>) {
        eprintln!("{what}: velos");
        let mut velos = Readings::default();
        match Velos::new(&self.bins) {
            Ok(manager) => {
                if let Err(error) = measure(&manager, &mut velos) {
                    eprintln!("  velos: {error:#}");
                    velos.fail(error);
                }
            }
            Err(error) => velos.fail(error),
        }
        let pm2 = self.pm2.as_ref().map(|install| {
            eprintln!("{what}: PM2 {}", install.version);
            let mut pm2 = Readings::default();
            match Pm2::new(install) {
                Ok(manager) => {
                    if let Err(error) = measure(&manager, &mut pm2) {
                        eprintln!("  PM2: {error:#}");
                        pm2.fail(error);
                    }
                }
                Err(error) => pm2.fail(error),
            }
            pm2
        });
        (velos, pm2)
    }
}

/// One manager's readings in one group, by figure key.
#[derive(Debug, Default)]
pub struct Readings {
    values: HashMap<String, Value>,
    how: HashMap<String, String>,
    failure: Option<String>,
}

impl Readings {
    /// Records a figure.
    pub fn set(&mut self, key: &str, stats: Stats) {
        self.values.insert(key.to_owned(), Value::Measured(stats));
    }

    /// Records a figure, or why it could not be measured.
    pub fn set_result(&mut self, key: &str, result: Result<Stats>) {
        let value = match result {
            Ok(stats) => Value::Measured(stats),
            Err(error) => Value::Failed(format!("{error:#}")),
        };
        self.values.insert(key.to_owned(), value);
    }

    /// Records that a figure was left out, and why.
    pub fn skip(&mut self, key: &str, reason: &str) {
        self.values
            .insert(key.to_owned(), Value::Skipped(reason.to_owned()));
    }

    /// Says how a figure was measured, beyond its runs.
    pub fn how(&mut self, key: &str, text: impl Into<String>) {
        self.how.insert(key.to_owned(), text.into());
    }

    /// A step failed: every figure not recorded yet failed with it.
    pub fn fail(&mut self, error: anyhow::Error) {
        self.failure = Some(format!("{error:#}"));
    }

    /// A recorded figure's summary.
    pub fn stats(&self, key: &str) -> Option<Stats> {
        self.values.get(key).and_then(Value::stats).copied()
    }

    fn value(&self, key: &str) -> Value {
        match (self.values.get(key), &self.failure) {
            (Some(value), _) => value.clone(),
            (None, Some(failure)) => Value::Failed(failure.clone()),
            (None, None) => Value::Skipped("not reached".into()),
        }
    }
}

/// A row a group can print.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Its key in [`Readings`].
    pub key: &'static str,
    /// The group `--only` selects it by.
    pub group: Group,
    /// What it is, in words.
    pub label: String,
    /// Its unit.
    pub unit: Unit,
    /// The target from issue 4.
    pub target: Option<Target>,
    /// Whether PM2 is measured for it too (the direct-to-file limit and the SDK are not).
    pub peer: bool,
}

impl Figure {
    /// A figure measured for both managers, without a target.
    pub fn new(key: &'static str, group: Group, label: impl Into<String>, unit: Unit) -> Figure {
        Figure {
            key,
            group,
            label: label.into(),
            unit,
            target: None,
            peer: true,
        }
    }

    /// With a target.
    pub fn target(mut self, target: Target) -> Figure {
        self.target = Some(target);
        self
    }

    /// Measured for velos (or the machine) only.
    pub fn velos_only(mut self) -> Figure {
        self.peer = false;
        self
    }
}

/// The table of the selected `figures`; `None` when none is selected.
pub fn table(
    bench: &Bench,
    title: &str,
    figures: Vec<Figure>,
    velos: &Readings,
    pm2: Option<&Readings>,
) -> Option<Table> {
    let rows: Vec<Row> = figures
        .into_iter()
        .filter(|figure| bench.wants(figure.group))
        .map(|figure| Row {
            velos: velos.value(figure.key),
            pm2: pm2
                .filter(|_| figure.peer)
                .map(|readings| readings.value(figure.key)),
            how: velos.how.get(figure.key).cloned(),
            pm2_how: pm2.and_then(|readings| readings.how.get(figure.key).cloned()),
            figure: figure.label,
            unit: figure.unit,
            target: figure.target,
        })
        .collect();
    (!rows.is_empty()).then(|| Table {
        title: title.to_owned(),
        rows,
    })
}
