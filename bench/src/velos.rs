//! velos as a [`Manager`]: the release CLI with a fresh `VELOS_HOME`, and the Rust SDK for
//! setup.
//!
//! The home is `/tmp/vb-XXXXXX` (short: the socket path must fit in ~104 bytes). The CLI
//! runs with `VELOS_HOME`, `VELOS_DAEMON` (the freshly built velosd) and the run's mark.
//! The daemon is started by the first command, as a user's would be.
//!
//! Dropping a [`Velos`] runs `velos kill` (bounded), SIGKILLs the daemon if it is still
//! there, then every process carrying the mark: nothing outlives the benchmark, even when a
//! figure failed halfway.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;
use velos_proto::{Home, Stream};
use velos_sdk::{StartParams, Target, blocking::Client};

use crate::harness::{self, Bins, MARK_ENV};
use crate::manager::{Manager, Proc};
use crate::procfs;

/// How long one velos command or setup step may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A velos daemon in its own home.
pub struct Velos {
    bins: Bins,
    home: TempDir,
    daemon: Cell<Option<u32>>,
}

impl Velos {
    /// A fresh home; the daemon starts with the first command.
    pub fn new(bins: &Bins) -> Result<Velos> {
        Ok(Velos {
            bins: bins.clone(),
            home: harness::temp_dir("vb-")?,
            daemon: Cell::new(None),
        })
    }

    fn root(&self) -> &Path {
        self.home.path()
    }

    fn mark(&self) -> String {
        harness::mark_for(self.root())
    }

    fn socket(&self) -> PathBuf {
        Home::at(self.root()).socket_path()
    }

    fn client(&self) -> Result<Client> {
        let mut client = Client::connect(self.socket()).context("connecting to velosd")?;
        client.set_timeout(Some(PATIENCE));
        client.set_stop_timeout(Some(PATIENCE));
        Ok(client)
    }

    fn start_params(&self, script: &Path, name: &str, args: &[String]) -> StartParams {
        StartParams {
            script: script.to_string_lossy().into_owned(),
            name: Some(name.to_owned()),
            args: args.to_vec(),
            cwd: Some(self.root().to_string_lossy().into_owned()),
            ..StartParams::default()
        }
    }
}

impl Manager for Velos {
    fn label(&self) -> &'static str {
        "velos"
    }

    fn daemon_pid(&self) -> Result<u32> {
        if let Some(pid) = self.daemon.get() {
            return Ok(pid);
        }
        self.run(&["ping"])?;
        let pid = self.client()?.ping().context("asking velosd its pid")?.pid;
        self.daemon.set(Some(pid));
        Ok(pid)
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bins.velos);
        command
            .args(args)
            .current_dir(self.root())
            .env("VELOS_HOME", self.root())
            .env("VELOS_DAEMON", &self.bins.velosd)
            .env(MARK_ENV, self.mark())
            .env("NO_COLOR", "1");
        command
    }

    fn list_json_args(&self) -> &'static [&'static str] {
        &["list", "--json"]
    }

    fn add_sleepers(&self, script: &Path, names: &[String]) -> Result<()> {
        let mut client = self.client()?;
        for name in names {
            client
                .start(self.start_params(script, name, &[]))
                .with_context(|| format!("starting '{name}'"))?;
        }
        Ok(())
    }

    fn processes(&self) -> Result<Vec<Proc>> {
        let list = self.client()?.list().context("listing processes")?;
        Ok(list
            .into_iter()
            .map(|p| Proc {
                online: p.status == velos_sdk::ProcessStatus::Running,
                name: p.name,
                pid: p.pid,
            })
            .collect())
    }

    fn start_program(&self, program: &Path, args: &[String], name: &str) -> Result<PathBuf> {
        let info = self
            .client()?
            .start(self.start_params(program, name, args))
            .with_context(|| format!("starting '{name}'"))?;
        Ok(if info.out_log.is_empty() {
            Home::at(self.root()).log_path(name, Stream::Out)
        } else {
            PathBuf::from(info.out_log)
        })
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.client()?
            .delete(name)
            .with_context(|| format!("deleting '{name}'"))?;
        Ok(())
    }

    fn delete_all(&self) -> Result<()> {
        self.client()?
            .delete(Target::All)
            .context("deleting every process")?;
        Ok(())
    }

    fn sdk_socket(&self) -> Option<PathBuf> {
        Some(self.socket())
    }

    fn patience(&self) -> Duration {
        PATIENCE
    }
}

impl Drop for Velos {
    fn drop(&mut self) {
        if self.socket().exists()
            && let Err(error) = self.run(&["kill"])
        {
            eprintln!("warning: velos kill: {error:#}");
        }
        let from_file = std::fs::read_to_string(Home::at(self.root()).pid_path())
            .ok()
            .and_then(|text| text.trim().parse().ok());
        for pid in self.daemon.get().into_iter().chain(from_file) {
            // `velos kill` returns when the daemon answered; it exits just after.
            let _ = harness::wait_until(
                Duration::from_secs(5),
                Duration::from_millis(10),
                "velosd to exit",
                || Ok((!procfs::alive(pid)).then_some(())),
            );
            harness::kill_if_marked(pid, &self.mark());
        }
        let left = harness::kill_marked(&self.mark());
        if left > 0 {
            eprintln!("warning: killed {left} velos processes left after `velos kill`");
        }
    }
}
