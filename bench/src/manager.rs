//! The process managers under test, behind one trait, so every figure runs the same steps
//! against velos and (with `--compare pm2`) PM2.
//!
//! What is timed always goes through the manager's own CLI, as a user would type it
//! ([`Manager::cli`]). Setup and teardown (starting a thousand sleepers, reading the list,
//! deleting) use the quickest way each manager offers (velos: the Rust SDK; PM2: one
//! ecosystem file), because only the figure itself is being measured.
//!
//! A manager value owns a fresh home (`VELOS_HOME`, `PM2_HOME`) and its daemon; dropping it
//! shuts the daemon down and kills everything it started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::harness;

/// A managed process as its manager lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Its name.
    pub name: String,
    /// Its pid, while it runs.
    pub pid: Option<u32>,
    /// Whether the manager says it is running (`running`, PM2's `online`).
    pub online: bool,
}

/// What a figure needs from a process manager.
pub trait Manager {
    /// `velos` or `PM2`.
    fn label(&self) -> &'static str;

    /// The daemon's pid, starting the daemon first if it is not running.
    fn daemon_pid(&self) -> Result<u32>;

    /// The CLI with `args`, in this manager's home and with the run's mark.
    fn cli(&self, args: &[&str]) -> Command;

    /// The arguments that print every process as JSON (`list --json`, `jlist`).
    fn list_json_args(&self) -> &'static [&'static str];

    /// Starts `script` once under each of `names` (untimed setup).
    fn add_sleepers(&self, script: &Path, names: &[String]) -> Result<()>;

    /// Every process, as the manager lists it.
    fn processes(&self) -> Result<Vec<Proc>>;

    /// Starts `program` with `args` as `name` (untimed) and returns its stdout log's path.
    fn start_program(&self, program: &Path, args: &[String], name: &str) -> Result<PathBuf>;

    /// Stops and removes `name`.
    fn delete(&self, name: &str) -> Result<()>;

    /// Stops and removes every process.
    fn delete_all(&self) -> Result<()>;

    /// The daemon's socket, for a manager with a Rust SDK (velos).
    fn sdk_socket(&self) -> Option<PathBuf>;

    /// The bound on one CLI command or setup step: PM2 needs minutes where velos needs
    /// seconds.
    fn patience(&self) -> Duration;

    /// Whether this is a peer velos is compared with (fewer runs: its commands are slow).
    fn is_peer(&self) -> bool {
        false
    }

    /// Runs the CLI with `args`, bounded by [`Manager::patience`] (untimed).
    fn run(&self, args: &[&str]) -> Result<std::process::Output> {
        harness::run(&mut self.cli(args), self.patience())
    }

    /// Runs the CLI with `args` and returns its wall time, spawn to exit.
    fn time(&self, args: &[&str]) -> Result<Duration> {
        harness::time(&mut self.cli(args), self.patience())
    }
}

/// Waits until exactly `count` processes are listed, all running with a pid.
pub fn wait_online(manager: &dyn Manager, count: usize) -> Result<Vec<Proc>> {
    let what = format!("{count} running processes under {}", manager.label());
    harness::wait_until(manager.patience(), Duration::from_millis(20), &what, || {
        let list = manager.processes()?;
        let online = list.iter().filter(|p| p.online && p.pid.is_some()).count();
        if list.len() > count {
            bail!("{} listed", list.len());
        }
        Ok((online == count).then_some(list))
    })
}

/// Waits until the process `name` runs and its pid has become `command` (a script that
/// `exec`s it), and returns that pid.
pub fn wait_running_as(manager: &dyn Manager, name: &str, command: &str) -> Result<u32> {
    let what = format!("'{name}' running as {command} under {}", manager.label());
    harness::wait_until(manager.patience(), Duration::from_millis(5), &what, || {
        let list = manager.processes()?;
        let pid = list
            .iter()
            .find(|p| p.name == name && p.online)
            .and_then(|p| p.pid);
        Ok(pid.filter(|&pid| crate::procfs::command_name(pid).as_deref() == Some(command)))
    })
}
