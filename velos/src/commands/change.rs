//! `velos stop|restart|delete`: of one process, of `all`, or of the apps of a config file.
//!
//! A name, id or `all` is one request; the daemon does `all` in parallel and answers when
//! every process it touched has exited. A config file (`velos stop velos.toml`) is one
//! request per app, in file order. Apps that are not in the list are skipped with a note
//! on stderr, except by `restart`, which starts them (as PM2 does with an ecosystem
//! file), and restarts the others with the file's current settings (their environment
//! too with `--update-env`); every app is checked before anything changes.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use velos_proto::{DeleteParams, ProcessInfo, ProcessStatus, RestartParams, StartParams, Target};
use velos_sdk::Client;

use super::outcome::{Outcomes, is_up, why_not_up};
use super::{daemon, explain, explain_change, start};
use crate::config::{self, Config, Selection};

/// What `stop`, `restart` and `delete` do to their targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Stop,
    Restart { update_env: bool },
    Delete { logs: bool },
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Stop => "stop",
            Change::Restart { .. } => "restart",
            Change::Delete { .. } => "delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Change::Stop => "stopped",
            Change::Restart { .. } => "restarted",
            Change::Delete { .. } => "deleted",
        }
    }
}

/// `velos stop|restart|delete <name|id|all|file.toml>`
pub fn run(target: &str, change: Change) -> Result<()> {
    if config::is_config(target) {
        return run_config(target, change);
    }
    let target = Target::parse(target);
    let mut client = daemon()?;
    let env = change_env(change, start::current_env());
    let what = format!("the {} of '{target}'", change.verb());
    let changed = apply(&mut client, target.clone(), change, env)
        .map_err(|err| explain_change(err, &what))?;

    if changed.is_empty() && target == Target::All {
        eprintln!("no processes to {}", change.verb());
        return Ok(());
    }
    let mut outcomes = Outcomes::new(change.verb());
    let changed = wait_until_ready(&mut client, change, changed, &mut outcomes);
    report_changed(change, &changed, &mut outcomes)?;
    outcomes.finish()
}

/// After a restart: each process with a ready mode is waited for until it is ready, as
/// `velos start` does; one that does not become ready is counted as a failure with the
/// reason (its last log lines on stderr) and left out of what is reported.
fn wait_until_ready(
    client: &mut Client,
    change: Change,
    changed: Vec<ProcessInfo>,
    outcomes: &mut Outcomes,
) -> Vec<ProcessInfo> {
    if !matches!(change, Change::Restart { .. }) {
        return changed;
    }
    // Instances of an app of several are named `name:K`.
    let several: std::collections::HashSet<String> = crate::output::apps_of_several(&changed)
        .into_iter()
        .map(str::to_owned)
        .collect();
    changed
        .into_iter()
        .filter_map(|process| {
            let labelled = several.contains(&process.name) || process.instance > 0;
            match start::wait_until_ready(client, process, labelled) {
                Ok(process) => Some(process),
                Err(err) => {
                    outcomes.failed(format!("{err:#}"));
                    None
                }
            }
        })
        .collect()
}

/// Prints a line for each process that ended up as asked, and counts the others.
fn report_changed(change: Change, changed: &[ProcessInfo], outcomes: &mut Outcomes) -> Result<()> {
    let mut stdout = io::stdout().lock();
    for process in changed {
        match failure(change, process) {
            Some(line) => outcomes.failed(line),
            None => {
                outcomes.succeeded();
                writeln!(stdout, "{}", change_line(change, process))?;
            }
        }
    }
    Ok(())
}

/// Why `process` did not end up as `change` asked, if it did not: a restarted process
/// must run, a stopped one must not.
fn failure(change: Change, process: &ProcessInfo) -> Option<String> {
    let (name, id) = (&process.name, process.id);
    match change {
        Change::Restart { .. } if !is_up(process) => Some(format!(
            "'{name}' (id {id}) did not restart: {} (see 'velos logs {name}')",
            why_not_up(process)
        )),
        Change::Stop if process.pid.is_some() && process.status == ProcessStatus::Running => {
            Some(format!(
                "'{name}' (id {id}) is running again: another command started it while it \
                 stopped (run 'velos stop {name}' again)"
            ))
        }
        _ => None,
    }
}

/// The environment a restart sends: this shell's with `--update-env`, else none (the
/// remembered one).
fn change_env(change: Change, env: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (change == Change::Restart { update_env: true }).then_some(env)
}

/// One request.
fn apply(
    client: &mut Client,
    target: Target,
    change: Change,
    env: Option<BTreeMap<String, String>>,
) -> velos_sdk::Result<Vec<ProcessInfo>> {
    match change {
        Change::Stop => block_on(client.stop(target)),
        Change::Restart { .. } => block_on(client.restart_with(RestartParams {
            target,
            env,
            settings: None,
        })),
        Change::Delete { logs } => block_on(client.delete_with(DeleteParams { target, logs })),
    }
}

/// `velos stop|restart|delete velos.toml`
fn run_config(path: &str, change: Change) -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let config = Config::load(path, &cwd, &Selection::default())?;
    if let Change::Restart { .. } = change {
        config.warn();
    }
    let mut client = daemon()?;
    let listed: HashSet<String> = block_on(client.list())
        .map_err(explain)?
        .into_iter()
        .map(|process| process.name)
        .collect();
    let base_env = start::current_env();

    // Restart starts the apps not in the list and gives the others the file's current
    // settings: every app is resolved first, so a bad one changes nothing.
    let mut to_start: BTreeMap<&str, StartParams> = BTreeMap::new();
    let mut settings: BTreeMap<&str, StartParams> = BTreeMap::new();
    if let Change::Restart { update_env } = change {
        for name in config.names() {
            let mut params = config.start_params(name, &base_env)?;
            if listed.contains(name) {
                // The environment it has stays, unless --update-env.
                if !update_env {
                    params.env = None;
                }
                settings.insert(name, params);
            } else {
                to_start.insert(name, params);
            }
        }
    }

    let mut outcomes = Outcomes::new(change.verb());
    for name in config.names() {
        if let Some(params) = to_start.remove(name) {
            start::start_one(
                &mut client,
                params,
                name,
                &config,
                &mut outcomes,
                true,
                &mut io::stdout(),
            )?;
            continue;
        }
        if !listed.contains(name) {
            eprintln!(
                "'{name}' (from {}) is not in the list; skipped",
                config.shown()
            );
            continue;
        }
        let target = Target::Name(name.to_owned());
        let what = format!("the {} of '{name}'", change.verb());
        let changed = match settings.remove(name) {
            // The settings carry the environment (or none, to keep the one it has).
            Some(settings) => block_on(client.restart_with(RestartParams {
                target,
                env: None,
                settings: Some(Box::new(settings)),
            })),
            None => apply(&mut client, target, change, None),
        }
        .map_err(|err| explain_change(err, &what))
        .with_context(|| format!("{} '{name}' from {}", verb_ing(change), config.shown()))?;
        let changed = wait_until_ready(&mut client, change, changed, &mut outcomes);
        report_changed(change, &changed, &mut outcomes)?;
    }
    outcomes.finish()
}

fn verb_ing(change: Change) -> &'static str {
    match change {
        Change::Stop => "stopping",
        Change::Restart { .. } => "restarting",
        Change::Delete { .. } => "deleting",
    }
}

/// `stopped 'api' (id 0)`, `restarted 'api' (id 0, pid 1234)`.
pub fn change_line(change: Change, process: &ProcessInfo) -> String {
    let (name, id) = (&process.name, process.id);
    match (change, process.pid) {
        (Change::Restart { .. }, Some(pid)) => {
            format!("{} '{name}' (id {id}, pid {pid})", change.past())
        }
        (Change::Restart { .. }, None) => format!(
            "{} '{name}' (id {id}), now {}{}",
            change.past(),
            process.status,
            process
                .error
                .as_deref()
                .map(|error| format!(": {error}"))
                .unwrap_or_default()
        ),
        _ if process.killed => format!(
            "{} '{name}' (id {id}): still running {} after {}, so velos sent SIGKILL",
            change.past(),
            humantime::format_duration(std::time::Duration::from_millis(process.kill_timeout_ms)),
            if process.kill_signal.is_empty() {
                "SIGTERM"
            } else {
                &process.kill_signal
            }
        ),
        _ => format!("{} '{name}' (id {id})", change.past()),
    }
}

#[cfg(test)]
mod tests {
    use velos_proto::ProcessStatus;

    use super::*;
    use crate::output::tests::process;

    #[test]
    fn each_change_says_what_happened_to_whom() {
        let mut stopped = process(3, "api", ProcessStatus::Stopped);
        stopped.pid = None;
        assert_eq!(change_line(Change::Stop, &stopped), "stopped 'api' (id 3)");
        let mut killed = stopped.clone();
        killed.killed = true;
        killed.kill_timeout_ms = 500;
        killed.kill_signal = "SIGINT".into();
        assert_eq!(
            change_line(Change::Stop, &killed),
            "stopped 'api' (id 3): still running 500ms after SIGINT, so velos sent SIGKILL"
        );
        assert_eq!(
            change_line(Change::Delete { logs: false }, &stopped),
            "deleted 'api' (id 3)"
        );
        let mut running = process(3, "api", ProcessStatus::Running);
        running.pid = Some(77);
        assert_eq!(
            change_line(Change::Restart { update_env: false }, &running),
            "restarted 'api' (id 3, pid 77)"
        );
        let mut errored = process(3, "api", ProcessStatus::Errored);
        errored.error = Some("node: not found".into());
        assert_eq!(
            change_line(Change::Restart { update_env: true }, &errored),
            "restarted 'api' (id 3), now errored: node: not found"
        );
    }

    #[test]
    fn a_restart_that_leaves_it_down_or_a_stop_that_leaves_it_up_is_a_failure() {
        let restart = Change::Restart { update_env: false };
        let mut errored = process(3, "api", ProcessStatus::Errored);
        errored.pid = None;
        errored.error = Some("could not run '/x/app.sh'".into());
        assert_eq!(
            failure(restart, &errored).as_deref(),
            Some(
                "'api' (id 3) did not restart: errored: could not run '/x/app.sh' (see 'velos \
                 logs api')"
            )
        );
        let mut running = process(3, "api", ProcessStatus::Running);
        running.pid = Some(77);
        assert_eq!(failure(restart, &running), None);
        assert!(failure(Change::Stop, &running).is_some());
        assert_eq!(failure(Change::Stop, &errored), None);
        assert_eq!(failure(Change::Delete { logs: true }, &running), None);
    }

    #[test]
    fn only_restart_with_update_env_sends_an_environment() {
        let env = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(
            change_env(Change::Restart { update_env: true }, env.clone()),
            Some(env.clone())
        );
        assert_eq!(
            change_env(Change::Restart { update_env: false }, env.clone()),
            None
        );
        assert_eq!(change_env(Change::Stop, env), None);
    }
}
