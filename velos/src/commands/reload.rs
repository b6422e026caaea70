//! `velos reload <name|id|all|file.toml> [--parallel N] [--update-env]`: replace each
//! process with a new run, with no downtime (`process.reload`).
//!
//! One request per target (per app of a config file, in file order, as `restart
//! velos.toml` does; apps not in the list are skipped with a note). Each replaced
//! process gets a line on stdout; a failed replacement ends the command with exit code
//! 1, the reason and the process's last log lines on stderr.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use futures_lite::future::block_on;
use velos_proto::{ReloadOutcome, ReloadParams, ReloadResult, Target};
use velos_sdk::Client;

use super::{daemon, explain, explain_change, start};
use crate::config::{self, Config, Selection};

/// Runs `velos reload`.
pub fn run(target: &str, parallel: u32, update_env: bool) -> Result<()> {
    let mut client = daemon()?;
    if config::is_config(target) {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let config = Config::load(target, &cwd, &Selection::default())?;
        let listed: HashSet<String> = block_on(client.list())
            .map_err(explain)?
            .into_iter()
            .map(|process| process.name)
            .collect();
        let base_env = start::current_env();
        for name in config.names() {
            if !listed.contains(name) {
                eprintln!(
                    "'{name}' (from {}) is not in the list; skipped (start it with 'velos start {}')",
                    config.shown(),
                    config.shown()
                );
                continue;
            }
            let env = update_env.then(|| config.env(name, &base_env));
            reload(&mut client, Target::Name(name.to_owned()), parallel, env)?;
        }
        return Ok(());
    }
    let env = update_env.then(start::current_env);
    reload(&mut client, Target::parse(target), parallel, env)
}

/// One `process.reload`, reported.
fn reload(
    client: &mut Client,
    target: Target,
    parallel: u32,
    env: Option<BTreeMap<String, String>>,
) -> Result<()> {
    let what = format!("the reload of '{target}'");
    let params = ReloadParams {
        target: target.clone(),
        parallel: Some(parallel),
        env,
    };
    let outcomes = block_on(client.reload(params)).map_err(|err| explain_change(err, &what))?;
    if outcomes.is_empty() && target == Target::All {
        eprintln!("no processes to reload");
    }
    let mut failure = None;
    {
        let mut out = io::stdout().lock();
        let mut err = io::stderr().lock();
        for outcome in &outcomes {
            match outcome.result {
                ReloadResult::Replaced => writeln!(out, "{}", replaced_line(outcome))?,
                ReloadResult::Failed => failure = Some(outcome.clone()),
                _ => writeln!(err, "{}", not_reloaded_line(outcome))?,
            }
        }
    }
    if let Some(failed) = failure {
        if let Ok(process) = block_on(client.info(failed.id)) {
            start::show_last_lines(client, &process, &failed.name);
        }
        bail!("{}", failed_message(&failed));
    }
    Ok(())
}

/// `reloaded 'web' (id 0): pid 1200 replaced by pid 1250`
fn replaced_line(outcome: &ReloadOutcome) -> String {
    let pids = match (outcome.old_pid, outcome.new_pid) {
        (Some(old), Some(new)) => format!(": pid {old} replaced by pid {new}"),
        (None, Some(new)) => format!(": now pid {new}"),
        _ => String::new(),
    };
    format!("reloaded '{}' (id {}){pids}", outcome.name, outcome.id)
}

/// A process left as it was: not running, or not reached after a failure.
fn not_reloaded_line(outcome: &ReloadOutcome) -> String {
    format!(
        "'{}' (id {}) not reloaded: {}",
        outcome.name,
        outcome.id,
        outcome.reason.as_deref().unwrap_or("unknown reason")
    )
}

/// Why the reload failed, and that the old run keeps running.
fn failed_message(outcome: &ReloadOutcome) -> String {
    let kept = match outcome.old_pid {
        Some(pid) => format!("the old run (pid {pid}) keeps running"),
        None => "the old run keeps running".to_owned(),
    };
    format!(
        "the reload of '{}' (id {}) failed: {}; {kept}, and the reload stopped there (see 'velos logs {}')",
        outcome.name,
        outcome.id,
        outcome.reason.as_deref().unwrap_or("unknown reason"),
        outcome.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(result: ReloadResult) -> ReloadOutcome {
        ReloadOutcome {
            id: 3,
            name: "web".to_owned(),
            result,
            old_pid: Some(100),
            new_pid: Some(200),
            reason: Some("the replacement (pid 200) exited with code 1 before it was ready".into()),
        }
    }

    #[test]
    fn lines_name_the_process_and_its_pids() {
        assert_eq!(
            replaced_line(&outcome(ReloadResult::Replaced)),
            "reloaded 'web' (id 3): pid 100 replaced by pid 200"
        );
        assert_eq!(
            failed_message(&outcome(ReloadResult::Failed)),
            "the reload of 'web' (id 3) failed: the replacement (pid 200) exited with code 1 \
             before it was ready; the old run (pid 100) keeps running, and the reload stopped \
             there (see 'velos logs web')"
        );
    }
}
