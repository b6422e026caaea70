//! PM2 as a [`Manager`], for `--compare pm2`: installed from the npm registry into
//! `bench/.pm2` (git-ignored, never globally) and run with its own `PM2_HOME`.
//!
//! [`install`] runs `npm install --prefix bench/.pm2 pm2@latest` once; later runs reuse
//! that copy (delete the folder to get a newer PM2). Without npm or node, or when the
//! install fails, it prints why and the run goes on without PM2.
//!
//! Each [`Pm2`] has a fresh `PM2_HOME` under `/tmp`; dropping it runs `pm2 kill` (bounded),
//! SIGKILLs the God daemon if it is still there, then every process carrying the run's mark.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{self, MARK_ENV};
use crate::manager::{Manager, Proc};
use crate::procfs;

/// How long one PM2 command or setup step may take: PM2 starts processes one at a time,
/// and a thousand take minutes.
const PATIENCE: Duration = Duration::from_secs(600);

/// How long `npm install` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// An installed PM2.
#[derive(Debug, Clone)]
pub struct Pm2Install {
    /// `bench/.pm2/node_modules/.bin/pm2`.
    pub bin: PathBuf,
    /// Its version, from its package.json.
    pub version: String,
}

/// Installs PM2 into `bench/.pm2` unless it is there already. `Ok(None)` (after printing
/// why) when npm or node is missing or the install fails.
pub fn install() -> Result<Option<Pm2Install>> {
    let prefix = harness::workspace_root().join("bench").join(".pm2");
    let bin = prefix.join("node_modules").join(".bin").join("pm2");
    for tool in ["node", "npm"] {
        let found = harness::run(Command::new(tool).arg("--version"), Duration::from_secs(60));
        if let Err(error) = found {
            eprintln!("skipping the PM2 comparison: {tool} is not usable ({error:#})");
            return Ok(None);
        }
    }
    if !bin.exists() {
        eprintln!(
            "installing PM2: npm install --prefix {} pm2@latest",
            prefix.display()
        );
        let installed = harness::run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg("pm2@latest"),
            INSTALL_TIMEOUT,
        );
        if let Err(error) = installed {
            eprintln!("skipping the PM2 comparison: the install failed ({error:#})");
            return Ok(None);
        }
    }
    let manifest = prefix.join("node_modules").join("pm2").join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let version = serde_json::from_str::<Value>(&text)?["version"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    Ok(Some(Pm2Install { bin, version }))
}

/// A PM2 daemon in its own `PM2_HOME`.
pub struct Pm2 {
    install: Pm2Install,
    home: TempDir,
    daemon: Cell<Option<u32>>,
    files: Cell<usize>,
}

impl Pm2 {
    /// A fresh home; the daemon starts with the first command.
    pub fn new(install: &Pm2Install) -> Result<Pm2> {
        Ok(Pm2 {
            install: install.clone(),
            home: harness::temp_dir("vbp-")?,
            daemon: Cell::new(None),
            files: Cell::new(0),
        })
    }

    fn root(&self) -> &Path {
        self.home.path()
    }

    fn mark(&self) -> String {
        harness::mark_for(self.root())
    }

    fn pid_from_file(&self) -> Option<u32> {
        std::fs::read_to_string(self.root().join("pm2.pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }
}

impl Manager for Pm2 {
    fn label(&self) -> &'static str {
        "PM2"
    }

    fn daemon_pid(&self) -> Result<u32> {
        if let Some(pid) = self.daemon.get() {
            return Ok(pid);
        }
        self.run(&["ping"])?;
        let pid = self
            .pid_from_file()
            .ok_or_else(|| anyhow!("no pid in {}/pm2.pid", self.root().display()))?;
        self.daemon.set(Some(pid));
        Ok(pid)
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.install.bin);
        command
            .args(args)
            .current_dir(self.root())
            .env("PM2_HOME", self.root())
            .env(MARK_ENV, self.mark())
            .env("NO_COLOR", "1");
        command
    }

    fn list_json_args(&self) -> &'static [&'static str] {
        &["jlist"]
    }

    fn add_sleepers(&self, script: &Path, names: &[String]) -> Result<()> {
        // One ecosystem file starts them all with a single CLI call.
        let apps: Vec<Value> = names
            .iter()
            .map(|name| json!({ "name": name, "script": script }))
            .collect();
        let n = self.files.get();
        self.files.set(n + 1);
        let file = self.root().join(format!("apps-{n}.json"));
        std::fs::write(&file, json!({ "apps": apps }).to_string())
            .with_context(|| format!("writing {}", file.display()))?;
        self.run(&["start", &file.to_string_lossy()])?;
        Ok(())
    }

    fn processes(&self) -> Result<Vec<Proc>> {
        let output = self.run(&["jlist"])?;
        let text = String::from_utf8_lossy(&output.stdout);
        // Anything PM2 prints before the array (a first-run banner) is skipped.
        let start = text
            .find('[')
            .ok_or_else(|| anyhow!("pm2 jlist printed no JSON array"))?;
        let list: Vec<Value> =
            serde_json::from_str(text[start..].trim()).context("parsing pm2 jlist")?;
        Ok(list
            .iter()
            .map(|app| Proc {
                name: app["name"].as_str().unwrap_or_default().to_owned(),
                pid: app["pid"]
                    .as_u64()
                    .filter(|&pid| pid > 0)
                    .and_then(|pid| u32::try_from(pid).ok()),
                online: app["pm2_env"]["status"] == "online",
            })
            .collect())
    }

    fn start_program(&self, program: &Path, args: &[String], name: &str) -> Result<PathBuf> {
        let program = program.to_string_lossy();
        let mut command = vec![
            "start",
            &program,
            "--name",
            name,
            "--interpreter",
            "none",
            "--no-autorestart",
            "--",
        ];
        command.extend(args.iter().map(String::as_str));
        self.run(&command)?;
        Ok(self.root().join("logs").join(format!("{name}-out.log")))
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.run(&["delete", name]).map(drop)
    }

    fn delete_all(&self) -> Result<()> {
        self.run(&["delete", "all"]).map(drop)
    }

    fn sdk_socket(&self) -> Option<PathBuf> {
        None
    }

    fn patience(&self) -> Duration {
        PATIENCE
    }

    fn is_peer(&self) -> bool {
        true
    }
}

impl Drop for Pm2 {
    fn drop(&mut self) {
        if self.root().join("pm2.pid").exists()
            && let Err(error) = harness::run(&mut self.cli(&["kill"]), Duration::from_secs(120))
        {
            eprintln!("warning: pm2 kill: {error:#}");
        }
        for pid in self.daemon.get().into_iter().chain(self.pid_from_file()) {
            let _ = harness::wait_until(
                Duration::from_secs(5),
                Duration::from_millis(10),
                "the PM2 daemon to exit",
                || Ok((!procfs::alive(pid)).then_some(())),
            );
            harness::kill_if_marked(pid, &self.mark());
        }
        let left = harness::kill_marked(&self.mark());
        if left > 0 {
            eprintln!("warning: killed {left} PM2 processes left after `pm2 kill`");
        }
    }
}
