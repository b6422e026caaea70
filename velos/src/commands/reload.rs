//! `velos reload <name|id|all|file.toml> [--parallel N] [--update-env]`: replace each
//! process with a new run, with no downtime (`process.reload`).
//!
//! One request per target. A config file (`--only` some of its apps) is one request per
//! app, in file order, with the file's current settings and instances (see `apply.rs`;
//! the environment too with `--update-env` or `--env NAME`); its apps not in the list are
//! started, as `restart velos.toml` does. Each replaced process gets a line on stdout; a
//! failed replacement ends the command with exit code 1, the reason and the process's
//! last log lines on stderr.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use futures_lite::future::block_on;
use velos_proto::{ReloadOutcome, ReloadParams, ReloadResult, StartParams, Target};
use velos_sdk::Client;

use super::apply::{Apply, apply_file};
use super::change::not_a_file;
use super::outcome::Outcomes;
use super::{daemon, explain_change, start};
use crate::cli::FileArgs;
use crate::config::{self, Config, Selection};

/// Runs `velos reload`.
pub fn run(target: &str, parallel: u32, update_env: bool, file: &FileArgs) -> Result<()> {
    if config::is_config(target) {
        return run_config(target, parallel, update_env, file);
    }
    not_a_file(target, file)?;
    let mut client = daemon()?;
    let env = update_env.then(start::current_env);
    reload(&mut client, Target::parse(target), parallel, env, None)
}

/// `velos reload velos.toml`
fn run_config(path: &str, parallel: u32, update_env: bool, file: &FileArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let selection = Selection::new(&file.only, file.env.clone());
    let config = Config::load(path, &cwd, &selection)?;
    config.warn();
    let mut client = daemon()?;
    // --env NAME asks for the file's environment, as --update-env does.
    let update_env = update_env || file.env.is_some();
    let mut outcomes = Outcomes::new("reload");
    apply_file(
        &mut client,
        &config,
        update_env,
        Apply::Reload { parallel },
        &mut outcomes,
    )?;
    outcomes.finish()
}

/// One `process.reload`, reported; with `settings`, the replacements start with those
/// (the target is then one app).
pub fn reload(
    client: &mut Client,
    target: Target,
    parallel: u32,
    env: Option<BTreeMap<String, String>>,
    settings: Option<StartParams>,
) -> Result<()> {
    let what = format!("the reload of '{target}'");
    let params = ReloadParams {
        target: target.clone(),
        parallel: Some(parallel),
        env,
        settings: settings.map(Box::new),
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
