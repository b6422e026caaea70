//! `just bench`: the figures of issue 4, measured on the release binaries, printed as
//! tables with their targets and (with `--compare pm2`) PM2's figures beside them.
//!
//! ```text
//! cargo run --release -p velos-bench -- [--quick] [--compare pm2] [--only GROUP,...]
//! ```
//!
//! The benchmark builds `velos` and `velosd` itself (see `harness`), runs every figure
//! against a daemon in a fresh temporary home, and leaves nothing running: each manager's
//! `Drop` shuts its daemon down and kills whatever carries the run's mark. Progress goes to
//! stderr, tables to stdout. Linux only: the figures come from `/proc`.
//!
//! The same executable is the log writer: `velos-bench write-lines N` (see `writer`).

mod figures;
mod harness;
mod manager;
mod pm2;
mod procfs;
mod report;
mod stats;
mod velos;
mod watchdog;
mod writer;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::figures::{Bench, Group};
use crate::report::{Table, Value};

const USAGE: &str = "usage: velos-bench [--quick] [--compare pm2] [--only GROUP[,GROUP...]]

Measures velos against the targets of issue 4 and prints a table per group.

  --quick          a short smoke run: fewer runs, smaller counts, no 1000-process stage
  --compare pm2    also measure PM2 (installed into bench/.pm2 with npm) and print ratios
  --only GROUPS    only these groups: memory cpu cli sdk start stop logs reload size
  -h, --help       this help";

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    quick: bool,
    compare_pm2: bool,
    only: BTreeSet<Group>,
    help: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--compare" => match args.next().map(String::as_str) {
                    Some("pm2") => options.compare_pm2 = true,
                    Some(other) => bail!("cannot compare with '{other}': only 'pm2' is known"),
                    None => bail!("--compare needs a peer: --compare pm2"),
                },
                "--only" => {
                    let Some(list) = args.next() else {
                        bail!("--only needs groups, like --only memory,cli");
                    };
                    for name in list.split(',').filter(|name| !name.is_empty()) {
                        let group = Group::parse(name).with_context(|| {
                            format!("no group '{name}' (see 'velos-bench --help')")
                        })?;
                        options.only.insert(group);
                    }
                }
                "-h" | "--help" => options.help = true,
                other => bail!("unknown argument '{other}' (see 'velos-bench --help')"),
            }
        }
        Ok(options)
    }

    fn groups(&self) -> BTreeSet<Group> {
        if self.only.is_empty() {
            Group::ALL.into_iter().collect()
        } else {
            self.only.clone()
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("write-lines") => writer::main(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    if options.help {
        println!("{USAGE}");
        return Ok(());
    }
    let started = Instant::now();
    let leftovers = harness::kill_leftovers();
    if leftovers > 0 {
        eprintln!("killed {leftovers} processes an interrupted earlier run left behind");
    }
    let bins = harness::build()?;
    let pm2 = if options.compare_pm2 {
        pm2::install()?
    } else {
        None
    };
    let scratch = harness::temp_dir("vbs-")?;
    let sleeper = harness::write_script(scratch.path(), "sleeper.sh", "exec sleep 3600\n")?;
    let bench = Bench {
        exe: std::env::current_exe().context("finding this executable")?,
        sleeper,
        scratch,
        pm2,
        quick: options.quick,
        groups: options.groups(),
        bins,
    };
    print_header(&bench, &options);
    let groups: [fn(&Bench) -> Vec<Table>; 6] = [
        figures::scale::tables,
        figures::start::tables,
        figures::stop::tables,
        figures::logs::tables,
        figures::reload::tables,
        figures::size::tables,
    ];
    let mut missed = Vec::new();
    for group in groups {
        for table in group(&bench) {
            print!("\n{}", table.render(bench.pm2.is_some()));
            let _ = std::io::stdout().flush();
            missed.extend(misses(&table));
        }
    }
    println!();
    println!(
        "took {}; load average at the end: {}",
        humanize(started.elapsed()),
        procfs_load()
    );
    if missed.is_empty() {
        println!("every target met");
    } else {
        println!("targets missed: {}", missed.join("; "));
    }
    Ok(())
}

/// The figures of `table` whose target velos misses.
fn misses(table: &Table) -> Vec<String> {
    table
        .rows
        .iter()
        .filter(|row| match (&row.target, &row.velos) {
            (Some(target), Value::Measured(stats)) => !target.met_by(stats),
            (Some(_), Value::Failed(_)) => true,
            _ => false,
        })
        .map(|row| row.figure.clone())
        .collect()
}

fn print_header(bench: &Bench, options: &Options) {
    let version = harness::run(
        Command::new(&bench.bins.velos).arg("--version"),
        Duration::from_secs(10),
    )
    .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    .unwrap_or_else(|_| "velos (version unknown)".into());
    let mut peers = String::new();
    if let Some(pm2) = &bench.pm2 {
        peers = format!(", PM2 {}", pm2.version);
    } else if options.compare_pm2 {
        peers = ", PM2 not available (see above)".into();
    }
    println!("velos-bench: {version} (release build){peers}");
    println!("machine: {}", machine());
    println!("load average at the start: {}", procfs_load());
    if bench.quick {
        println!("--quick: a smoke run with fewer runs and smaller counts; not for publishing");
    }
}

/// CPU model, core count and kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, name)| name.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}

fn procfs_load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn humanize(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        Options::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_arguments_measure_every_group() {
        let options = parse(&[]).unwrap();
        assert_eq!(options, Options::default());
        assert_eq!(options.groups().len(), Group::ALL.len());
    }

    #[test]
    fn flags_and_groups_are_read() {
        let options = parse(&[
            "--quick",
            "--compare",
            "pm2",
            "--only",
            "cli,logs",
            "--only",
            "sdk",
        ])
        .unwrap();
        assert!(options.quick && options.compare_pm2);
        assert_eq!(
            options.groups().into_iter().collect::<Vec<_>>(),
            [Group::Cli, Group::Sdk, Group::Logs]
        );
    }

    #[test]
    fn unknown_peers_groups_and_flags_are_refused() {
        assert!(parse(&["--compare", "supervisord"]).is_err());
        assert!(parse(&["--compare"]).is_err());
        assert!(parse(&["--only", "speed"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
