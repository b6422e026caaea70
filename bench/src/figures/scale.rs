//! The walk from an idle daemon to 10, 100 and 1000 sleeping processes, measuring at each
//! stage what the `memory`, `cpu`, `cli` and `sdk` groups ask for. Starting a thousand
//! processes is the slow part, so it happens once per manager.
//!
//! Order at each stage: start the missing sleepers (untimed, the manager's quickest way)
//! and wait until all run; read RSS; at 100, the idle CPU window, then the SDK; then the
//! CLI timings. `--quick` stops at 100.

use anyhow::Result;

use super::{Bench, Group, Readings, cli, memory, sdk};
use crate::manager::{self, Manager};
use crate::report::Table;

/// The tables of the groups this walk serves.
pub fn tables(bench: &Bench) -> Vec<Table> {
    let serves = [Group::Memory, Group::Cpu, Group::Cli, Group::Sdk];
    if !serves.iter().any(|&group| bench.wants(group)) {
        return Vec::new();
    }
    let (mut velos, pm2) =
        bench.against_each("daemon with 0 to 1000 processes", |m, r| walk(bench, m, r));
    cli::ping_margin(&mut velos);
    if let Some(pm2) = &pm2 {
        cli::speedup(&mut velos, pm2);
    }
    let memory = super::table(
        bench,
        "Daemon memory and idle CPU",
        memory::figures(bench),
        &velos,
        pm2.as_ref(),
    );
    let cli = super::table(
        bench,
        "CLI wall time (whole process)",
        cli::figures(bench),
        &velos,
        pm2.as_ref(),
    );
    let sdk = super::table(
        bench,
        "SDK round trips",
        sdk::figures(),
        &velos,
        pm2.as_ref(),
    );
    [memory, cli, sdk].into_iter().flatten().collect()
}

fn walk(bench: &Bench, manager: &dyn Manager, readings: &mut Readings) -> Result<()> {
    let top = if bench.wants(Group::Memory) || bench.wants(Group::Cli) {
        1000
    } else {
        100
    };
    let pid = manager.daemon_pid()?;
    let mut running = 0;
    for stage in memory::STAGES.into_iter().filter(|&stage| stage <= top) {
        if bench.quick && stage == 1000 {
            for key in ["rss_1000", "rss_per_process", "list_1000", "ping_1000"] {
                readings.skip(key, "left out by --quick");
            }
            continue;
        }
        if stage > running {
            eprintln!(
                "  {}: starting {} sleeping processes",
                manager.label(),
                stage - running
            );
            let names: Vec<String> = (running..stage).map(|i| format!("s{i}")).collect();
            manager.add_sleepers(&bench.sleeper, &names)?;
            manager::wait_online(manager, stage)?;
            running = stage;
        }
        if bench.wants(Group::Memory) {
            memory::rss(readings, pid, stage);
        }
        if stage == 100 && bench.wants(Group::Cpu) {
            memory::idle_cpu(bench, readings, pid)?;
        }
        if stage == 100 && bench.wants(Group::Sdk) {
            sdk::measure(bench, manager, readings);
        }
        if bench.wants(Group::Cli) && cli::STAGES.contains(&stage) {
            cli::at(bench, manager, readings, stage);
        }
    }
    memory::per_process(readings);
    Ok(())
}
